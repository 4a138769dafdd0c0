package digdag

import "context"

// SessionsService lists sessions and their attempts.
type SessionsService service

// List lists sessions, newest first (GET /api/sessions); lastID and page
// as in ProjectsService.Sessions.
func (s *SessionsService) List(ctx context.Context, lastID string, page int) ([]*Session, error) {
	var sc sessionCollection
	if err := s.client.getJSON(ctx, "/api/sessions", pageQuery(lastID, page), &sc); err != nil {
		return nil, err
	}
	return sc.Sessions, nil
}

// Get reads one session (GET /api/sessions/ID).
func (s *SessionsService) Get(ctx context.Context, id string) (*Session, error) {
	if err := requireID("session", id); err != nil {
		return nil, err
	}
	var se Session
	if err := s.client.getJSON(ctx, path("/api/sessions", id), nil, &se); err != nil {
		return nil, err
	}
	return &se, nil
}

// Attempts lists a session's attempts (GET /api/sessions/ID/attempts).
func (s *SessionsService) Attempts(ctx context.Context, id string) ([]*Attempt, error) {
	if err := requireID("session", id); err != nil {
		return nil, err
	}
	var ac attemptCollection
	if err := s.client.getJSON(ctx, path("/api/sessions", id, "attempts"), nil, &ac); err != nil {
		return nil, err
	}
	return ac.Attempts, nil
}

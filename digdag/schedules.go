package digdag

import (
	"context"
	"net/http"
	"time"
)

// SchedulesService lists schedules, and backfills, skips, enables and
// disables them.
type SchedulesService service

// List lists every schedule (GET /api/schedules).
func (s *SchedulesService) List(ctx context.Context) ([]*Schedule, error) {
	var sc scheduleCollection
	if err := s.client.getJSON(ctx, "/api/schedules", nil, &sc); err != nil {
		return nil, err
	}
	return sc.Schedules, nil
}

// Get reads one schedule (GET /api/schedules/ID).
func (s *SchedulesService) Get(ctx context.Context, id string) (*Schedule, error) {
	if err := requireID("schedule", id); err != nil {
		return nil, err
	}
	var sc Schedule
	if err := s.client.getJSON(ctx, path("/api/schedules", id), nil, &sc); err != nil {
		return nil, err
	}
	return &sc, nil
}

// BackfillRequest is RestScheduleBackfillRequest: start the sessions a
// schedule would have started from FromTime on (up to its next run, or
// Count of them), each attempt named AttemptName.
type BackfillRequest struct {
	FromTime    time.Time `json:"fromTime"`
	DryRun      bool      `json:"dryRun"`
	AttemptName string    `json:"attemptName"`
	Count       *int      `json:"count,omitempty"`
}

// Backfill runs a schedule's past sessions (POST
// /api/schedules/ID/backfill) and returns the attempts started (with
// DryRun, those it would start; their ids are empty). Sent once: a retry
// could start the sessions twice under another name.
func (s *SchedulesService) Backfill(ctx context.Context, id string, r *BackfillRequest) ([]*Attempt, error) {
	if err := requireID("schedule", id); err != nil {
		return nil, err
	}
	if r == nil || r.FromTime.IsZero() || r.AttemptName == "" {
		return nil, invalidArg("backfill needs a from time and an attempt name")
	}
	req := *r
	req.FromTime = r.FromTime.UTC()
	body, err := jsonBody(&req)
	if err != nil {
		return nil, err
	}
	// digdag answers RestScheduleAttemptCollection: the schedule's id,
	// project and workflow, and its attempts
	var ac struct {
		Attempts []*Attempt `json:"attempts"`
	}
	if err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/api/schedules", id, "backfill"),
		body: body, contentType: "application/json"}, &ac); err != nil {
		return nil, err
	}
	return ac.Attempts, nil
}

// Disable stops a schedule (POST /api/schedules/ID/disable).
func (s *SchedulesService) Disable(ctx context.Context, id string) (*ScheduleSummary, error) {
	return s.post(ctx, id, "disable")
}

// Enable restarts a disabled schedule (POST /api/schedules/ID/enable).
func (s *SchedulesService) Enable(ctx context.Context, id string) (*ScheduleSummary, error) {
	return s.post(ctx, id, "enable")
}

func (s *SchedulesService) post(ctx context.Context, id, verb string) (*ScheduleSummary, error) {
	if err := requireID("schedule", id); err != nil {
		return nil, err
	}
	var sum ScheduleSummary
	if err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/api/schedules", id, verb),
		body: []byte("{}"), contentType: "application/json", retry: true}, &sum); err != nil {
		return nil, err
	}
	return &sum, nil
}

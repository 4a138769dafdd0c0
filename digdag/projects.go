package digdag

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// ProjectsService pushes projects and reads what hangs off them.
type ProjectsService service

// PushOptions tune Push.
type PushOptions struct {
	// ScheduleFrom starts the project's schedules from this time instead
	// of the server's now (digdag push --schedule-from).
	ScheduleFrom time.Time
}

// Push uploads a project archive (a tar.gz as Archive makes) as a new
// revision of project name, creating the project if need be: PUT
// /api/projects?project=NAME&revision=REV. An empty revision is a random
// UUID, as digdag push makes. A push is sent once, never retried.
func (s *ProjectsService) Push(ctx context.Context, name, revision string, archive []byte, o *PushOptions) (*Project, error) {
	if name == "" {
		return nil, invalidArg("empty project name")
	}
	if revision == "" {
		revision = uuid.NewString()
	}
	q := url.Values{"project": {name}, "revision": {revision}}
	if o != nil && !o.ScheduleFrom.IsZero() {
		q.Set("schedule_from", o.ScheduleFrom.UTC().Format(time.RFC3339))
	}
	var p Project
	err := s.client.doJSON(ctx, &request{method: http.MethodPut, path: "/api/projects", query: q,
		body: archive, contentType: "application/gzip"}, &p)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// List lists projects (GET /api/projects).
func (s *ProjectsService) List(ctx context.Context) ([]*Project, error) {
	var pc projectCollection
	if err := s.client.getJSON(ctx, "/api/projects", nil, &pc); err != nil {
		return nil, err
	}
	return pc.Projects, nil
}

// Get finds a project by name (GET /api/projects?name=NAME); an unknown
// name is an *APIError matching td.ErrNotFound.
func (s *ProjectsService) Get(ctx context.Context, name string) (*Project, error) {
	if name == "" {
		return nil, invalidArg("empty project name")
	}
	var pc projectCollection
	if err := s.client.getJSON(ctx, "/api/projects", url.Values{"name": {name}}, &pc); err != nil {
		return nil, err
	}
	for _, p := range pc.Projects {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, &APIError{StatusCode: http.StatusNotFound, Method: http.MethodGet, Path: "/api/projects",
		Message: fmt.Sprintf("no project named %q", name)}
}

// GetByID reads one project (GET /api/projects/ID).
func (s *ProjectsService) GetByID(ctx context.Context, id string) (*Project, error) {
	if err := requireID("project", id); err != nil {
		return nil, err
	}
	var p Project
	if err := s.client.getJSON(ctx, path("/api/projects", id), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Revisions lists a project's revisions, newest first.
func (s *ProjectsService) Revisions(ctx context.Context, projectID string) ([]*Revision, error) {
	if err := requireID("project", projectID); err != nil {
		return nil, err
	}
	var rc revisionCollection
	if err := s.client.getJSON(ctx, path("/api/projects", projectID, "revisions"), nil, &rc); err != nil {
		return nil, err
	}
	return rc.Revisions, nil
}

// Workflows lists the workflows of a project's latest revision (or of
// revision when given).
func (s *ProjectsService) Workflows(ctx context.Context, projectID, revision string) ([]*Workflow, error) {
	if err := requireID("project", projectID); err != nil {
		return nil, err
	}
	var q url.Values
	if revision != "" {
		q = url.Values{"revision": {revision}}
	}
	var wc workflowCollection
	if err := s.client.getJSON(ctx, path("/api/projects", projectID, "workflows"), q, &wc); err != nil {
		return nil, err
	}
	return wc.Workflows, nil
}

// Workflow reads one workflow of a project by name, of the latest
// revision or of revision when given (GET
// /api/projects/ID/workflows/NAME).
func (s *ProjectsService) Workflow(ctx context.Context, projectID, name, revision string) (*Workflow, error) {
	if err := requireID("project", projectID); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, invalidArg("empty workflow name")
	}
	var q url.Values
	if revision != "" {
		q = url.Values{"revision": {revision}}
	}
	var w Workflow
	if err := s.client.getJSON(ctx, path("/api/projects", projectID, "workflows", name), q, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Sessions lists a project's sessions, newest first (of workflow when
// given). page bounds one page (0: the server's default); lastID pages
// on from the smallest id seen.
func (s *ProjectsService) Sessions(ctx context.Context, projectID, workflow, lastID string, page int) ([]*Session, error) {
	if err := requireID("project", projectID); err != nil {
		return nil, err
	}
	q := pageQuery(lastID, page)
	if workflow != "" {
		q.Set("workflow", workflow)
	}
	var sc sessionCollection
	if err := s.client.getJSON(ctx, path("/api/projects", projectID, "sessions"), q, &sc); err != nil {
		return nil, err
	}
	return sc.Sessions, nil
}

// Schedules lists a project's schedules (of workflow when given).
func (s *ProjectsService) Schedules(ctx context.Context, projectID, workflow string) ([]*Schedule, error) {
	if err := requireID("project", projectID); err != nil {
		return nil, err
	}
	q := url.Values{}
	if workflow != "" {
		q.Set("workflow", workflow)
	}
	var sc scheduleCollection
	if err := s.client.getJSON(ctx, path("/api/projects", projectID, "schedules"), q, &sc); err != nil {
		return nil, err
	}
	return sc.Schedules, nil
}

// SetSecret sets a project secret (PUT /api/projects/ID/secrets/KEY with
// {"value": ...}). The value joins the client's masked secrets first.
func (s *ProjectsService) SetSecret(ctx context.Context, projectID, key, value string) error {
	if err := requireID("project", projectID); err != nil {
		return err
	}
	if key == "" {
		return invalidArg("empty secret key")
	}
	s.client.red.Add(value)
	body, err := jsonBody(struct {
		Value string `json:"value"`
	}{value})
	if err != nil {
		return err
	}
	return s.client.doJSON(ctx, &request{method: http.MethodPut, path: path("/api/projects", projectID, "secrets", key),
		body: body, contentType: "application/json", retry: true}, nil)
}

// Secrets lists the keys of a project's secrets (never their values: the
// API has none to give).
func (s *ProjectsService) Secrets(ctx context.Context, projectID string) ([]string, error) {
	if err := requireID("project", projectID); err != nil {
		return nil, err
	}
	var sl secretList
	if err := s.client.getJSON(ctx, path("/api/projects", projectID, "secrets"), nil, &sl); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(sl.Secrets))
	for _, k := range sl.Secrets {
		keys = append(keys, k.Key)
	}
	return keys, nil
}

// DeleteSecret deletes a project secret (DELETE
// /api/projects/ID/secrets/KEY); an unknown key matches td.ErrNotFound.
func (s *ProjectsService) DeleteSecret(ctx context.Context, projectID, key string) error {
	if err := requireID("project", projectID); err != nil {
		return err
	}
	if key == "" {
		return invalidArg("empty secret key")
	}
	return s.client.doJSON(ctx, &request{method: http.MethodDelete, path: path("/api/projects", projectID, "secrets", key), retry: true}, nil)
}

// pageQuery is digdag's paging: last_id and page_size.
func pageQuery(lastID string, page int) url.Values {
	q := url.Values{}
	if lastID != "" {
		q.Set("last_id", lastID)
	}
	if page > 0 {
		q.Set("page_size", strconv.Itoa(page))
	}
	return q
}

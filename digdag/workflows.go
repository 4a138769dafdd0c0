package digdag

import (
	"context"
	"net/url"
)

// WorkflowsService reads workflow definitions by id.
type WorkflowsService service

// Get reads a workflow definition (GET /api/workflows/ID).
func (s *WorkflowsService) Get(ctx context.Context, id string) (*Workflow, error) {
	if err := requireID("workflow", id); err != nil {
		return nil, err
	}
	var w Workflow
	if err := s.client.getJSON(ctx, path("/api/workflows", id), nil, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// List lists the workflows of every project's latest revision.
func (s *WorkflowsService) List(ctx context.Context) ([]*Workflow, error) {
	var wc workflowCollection
	if err := s.client.getJSON(ctx, "/api/workflows", nil, &wc); err != nil {
		return nil, err
	}
	return wc.Workflows, nil
}

// Truncation modes of TruncatedSessionTime (digdag's SessionTimeTruncate).
const (
	TruncateHour         = "hour"
	TruncateDay          = "day"
	TruncateSchedule     = "schedule"
	TruncateNextSchedule = "next_schedule"
)

// TruncatedSessionTime asks the server for the session time of a start
// (GET /api/workflows/ID/truncated_session_time): sessionTime is an
// instant ("2026-01-02T03:04:05Z") or a local time in the workflow's zone
// ("2026-01-02T00:00:00"); mode ("" or a Truncate constant) truncates it
// to the hour, the day or the workflow's schedule.
func (s *WorkflowsService) TruncatedSessionTime(ctx context.Context, workflowID, sessionTime, mode string) (*WorkflowSessionTime, error) {
	if err := requireID("workflow", workflowID); err != nil {
		return nil, err
	}
	q := url.Values{"session_time": {sessionTime}}
	if mode != "" {
		q.Set("mode", mode)
	}
	var st WorkflowSessionTime
	if err := s.client.getJSON(ctx, path("/api/workflows", workflowID, "truncated_session_time"), q, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

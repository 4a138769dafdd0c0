package digdag

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/td"
)

// AttemptsService starts, lists, kills, retries and waits for attempts.
type AttemptsService service

// StartRequest is RestSessionAttemptRequest: what PUT /api/attempts takes.
type StartRequest struct {
	WorkflowID string `json:"workflowId"`
	// SessionTime is the session's time (sent as an instant).
	SessionTime time.Time `json:"sessionTime"`
	// RetryAttemptName names a new attempt of an existing session; empty
	// starts the session's first attempt.
	RetryAttemptName string         `json:"retryAttemptName,omitempty"`
	Resume           *Resume        `json:"resume,omitempty"`
	Params           map[string]any `json:"params"`
}

// Resume makes a new attempt skip the tasks that succeeded in attempt
// AttemptID: Mode "failed" reruns the tasks that did not succeed, Mode
// "from" reruns from the task matching From (a +name pattern) on.
type Resume struct {
	Mode      string `json:"mode"`
	AttemptID string `json:"attemptId"`
	From      string `json:"from,omitempty"`
}

// Start starts an attempt (PUT /api/attempts). When a session for that
// workflow and session time exists already and no RetryAttemptName is
// given, digdag answers 409 and Start returns *AttemptConflictError with
// the existing attempt — unless the 409 answers a retried request, which
// means the first request went through: then the attempt is returned.
func (s *AttemptsService) Start(ctx context.Context, r *StartRequest) (*Attempt, error) {
	if r == nil {
		return nil, invalidArg("nil start request")
	}
	if err := requireID("workflow", r.WorkflowID); err != nil {
		return nil, err
	}
	if r.SessionTime.IsZero() {
		return nil, invalidArg("start: no session time")
	}
	req := *r
	req.SessionTime = r.SessionTime.UTC().Truncate(time.Second)
	if req.Params == nil {
		req.Params = map[string]any{}
	}
	body, err := jsonBody(&req)
	if err != nil {
		return nil, err
	}
	rq := &request{method: http.MethodPut, path: "/api/attempts", body: body, contentType: "application/json", retry: true}
	var a Attempt
	err = s.client.call(ctx, rq, s.client.decoder(rq, &a), func(resp *http.Response, retried bool) error {
		var existing Attempt
		if err := s.client.decoder(rq, &existing)(resp); err != nil || existing.ID == "" {
			return newAPIError(resp, rq.method, rq.path, s.client.red)
		}
		if retried {
			a = existing
			return nil
		}
		return &AttemptConflictError{Attempt: &existing}
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// ListOptions select the attempts of List.
type ListOptions struct {
	Project, Workflow string
	// IncludeRetried lists every attempt of a session, not only its last.
	IncludeRetried bool
	LastID         string // page on from the smallest id seen
	PageSize       int    // 0: the server's default
}

// List lists attempts, newest first (GET /api/attempts).
func (s *AttemptsService) List(ctx context.Context, o *ListOptions) ([]*Attempt, error) {
	if o == nil {
		o = &ListOptions{}
	}
	if o.Workflow != "" && o.Project == "" {
		return nil, invalidArg("listing the attempts of a workflow needs its project too")
	}
	q := pageQuery(o.LastID, o.PageSize)
	if o.Project != "" {
		q.Set("project", o.Project)
	}
	if o.Workflow != "" {
		q.Set("workflow", o.Workflow)
	}
	if o.IncludeRetried {
		q.Set("include_retried", "true")
	}
	var ac attemptCollection
	if err := s.client.getJSON(ctx, "/api/attempts", q, &ac); err != nil {
		return nil, err
	}
	return ac.Attempts, nil
}

// Get reads one attempt (GET /api/attempts/ID).
func (s *AttemptsService) Get(ctx context.Context, id string) (*Attempt, error) {
	if err := requireID("attempt", id); err != nil {
		return nil, err
	}
	var a Attempt
	if err := s.client.getJSON(ctx, path("/api/attempts", id), nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Retries lists the other attempts of the attempt's session (GET
// /api/attempts/ID/retries).
func (s *AttemptsService) Retries(ctx context.Context, id string) ([]*Attempt, error) {
	if err := requireID("attempt", id); err != nil {
		return nil, err
	}
	var ac attemptCollection
	if err := s.client.getJSON(ctx, path("/api/attempts", id, "retries"), nil, &ac); err != nil {
		return nil, err
	}
	return ac.Attempts, nil
}

// Tasks lists an attempt's tasks (GET /api/attempts/ID/tasks).
func (s *AttemptsService) Tasks(ctx context.Context, id string) ([]*Task, error) {
	if err := requireID("attempt", id); err != nil {
		return nil, err
	}
	var tc taskCollection
	if err := s.client.getJSON(ctx, path("/api/attempts", id, "tasks"), nil, &tc); err != nil {
		return nil, err
	}
	return tc.Tasks, nil
}

// Kill asks the server to kill a running attempt (POST
// /api/attempts/ID/kill). digdag answers 409 when the attempt is done or
// already being killed; Kill returns that as an *APIError matching
// td.ErrConflict, except after a retried request, when it is the first
// request's doing.
func (s *AttemptsService) Kill(ctx context.Context, id string) error {
	if err := requireID("attempt", id); err != nil {
		return err
	}
	rq := &request{method: http.MethodPost, path: path("/api/attempts", id, "kill"), contentType: "application/json", retry: true}
	return s.client.call(ctx, rq, nil, func(resp *http.Response, retried bool) error {
		if retried {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
		return newAPIError(resp, rq.method, rq.path, s.client.red)
	})
}

// RetryOptions tune Retry; they are digdag retry's options.
type RetryOptions struct {
	// Name is the new attempt's retry attempt name (default: a random
	// UUID, as digdag retry).
	Name string
	// Revision picks the workflow definition: "" the same one (digdag
	// retry --keep-revision), LatestRevision the project's latest, any
	// other value that revision.
	Revision string
	// ResumeFrom reruns from the task matching this +name on; Failed
	// reruns only the tasks that did not succeed; neither reruns all.
	ResumeFrom string
	Failed     bool
	// Params are added over the attempt's params.
	Params map[string]any
}

// LatestRevision is RetryOptions.Revision for the project's latest revision.
const LatestRevision = "latest"

// Retry starts a new attempt of the session of attempt id, with its
// session time and params, as digdag retry does.
func (s *AttemptsService) Retry(ctx context.Context, id string, o *RetryOptions) (*Attempt, error) {
	if o == nil {
		o = &RetryOptions{}
	}
	if o.ResumeFrom != "" && o.Failed {
		return nil, invalidArg("retry: give ResumeFrom or Failed, not both")
	}
	a, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	wfID := a.Workflow.ID
	switch o.Revision {
	case "":
		if wfID == "" {
			return nil, invalidArg("attempt %s has no stored workflow to retry; retry with the latest revision", id)
		}
	default:
		rev := o.Revision
		if rev == LatestRevision {
			rev = ""
		}
		def, err := s.client.Projects.Workflow(ctx, a.Project.ID, a.Workflow.Name, rev)
		if err != nil {
			return nil, err
		}
		wfID = def.ID
	}
	name := o.Name
	if name == "" {
		name = uuid.NewString()
	}
	params := map[string]any{}
	for k, v := range a.Params {
		params[k] = v
	}
	for k, v := range o.Params {
		params[k] = v
	}
	req := &StartRequest{WorkflowID: wfID, SessionTime: a.SessionTime, RetryAttemptName: name, Params: params}
	switch {
	case o.ResumeFrom != "":
		req.Resume = &Resume{Mode: "from", AttemptID: a.ID, From: o.ResumeFrom}
	case o.Failed:
		req.Resume = &Resume{Mode: "failed", AttemptID: a.ID}
	}
	return s.Start(ctx, req)
}

// WaitOptions tune Wait. The zero value polls from 1 s doubling to 30 s
// with no timeout beyond the context.
type WaitOptions struct {
	MinDelay, MaxDelay time.Duration
	// Timeout gives up after this long with an error matching
	// td.ErrWaitTimeout (the attempt keeps running).
	Timeout time.Duration
	// OnPoll sees every attempt read.
	OnPoll func(*Attempt)
}

// Wait polls an attempt until it is done. A successful attempt is
// returned; one that ended in error or was killed returns the attempt and
// an *AttemptFailedError naming its failed tasks. Cancelling ctx stops
// the wait, not the attempt.
func (s *AttemptsService) Wait(ctx context.Context, id string, o *WaitOptions) (*Attempt, error) {
	if o == nil {
		o = &WaitOptions{}
	}
	minD, maxD := o.MinDelay, o.MaxDelay
	if minD <= 0 {
		minD = time.Second
	}
	if maxD <= 0 {
		maxD = 30 * time.Second
	}
	maxD = max(maxD, minD)
	var deadline time.Time
	if o.Timeout > 0 {
		deadline = time.Now().Add(o.Timeout)
	}
	for i := 0; ; i++ {
		a, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if o.OnPoll != nil {
			o.OnPoll(a)
		}
		if a.Done {
			if a.Success {
				return a, nil
			}
			fe := &AttemptFailedError{Attempt: a}
			if tasks, err := s.Tasks(ctx, id); err == nil {
				for _, t := range tasks {
					if t.State == "error" && !t.IsGroup {
						fe.Failed = append(fe.Failed, t.FullName)
					}
				}
			}
			return a, fe
		}
		wait := backoff.Exp(minD, maxD, i)
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return a, &waitTimeout{fmt.Sprintf("digdag: attempt %s still %s after %s", id, a.State(), o.Timeout)}
			}
			wait = min(wait, left)
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// waitTimeout is Wait's Timeout (td.ErrWaitTimeout).
type waitTimeout struct{ msg string }

func (e *waitTimeout) Error() string        { return e.msg }
func (e *waitTimeout) Is(target error) bool { return target == td.ErrWaitTimeout }

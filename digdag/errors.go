package digdag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/td"
)

// APIError is a non-2xx answer from the workflow API. It matches td's
// sentinels with errors.Is (td.ErrNotFound for 404 and so on, as
// td.APIError does). It never contains the API key.
type APIError struct {
	StatusCode int
	Method     string
	Path       string // request path, without query string
	Message    string // the server's message ("message" of digdag's error body)
	// RetryAfter is the server's Retry-After (429/503), zero when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("digdag: %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode), msg)
	switch e.StatusCode {
	case http.StatusUnauthorized:
		s += " (check the API key: TD_API_KEY, --apikey or ~/.td/td.conf)"
	case http.StatusForbidden:
		s += " (the API key has no permission for this)"
	}
	return td.Redact(s)
}

// Is reports whether target is td's sentinel for e's status code.
func (e *APIError) Is(target error) bool {
	return (&td.APIError{StatusCode: e.StatusCode}).Is(target)
}

// As gives e as a *td.APIError too (errors.As(err, &tdErr)): code that
// handles td's API errors, tdctl's exit codes among it, handles the
// workflow API's the same way.
func (e *APIError) As(target any) bool {
	if p, ok := target.(**td.APIError); ok {
		*p = &td.APIError{StatusCode: e.StatusCode, Method: e.Method, Path: e.Path, Message: e.Message, RetryAfter: e.RetryAfter}
		return true
	}
	return false
}

// AttemptConflictError is digdag's 409 on a start: a session for that
// workflow and session time exists already (start it again with a retry
// name, or retry the attempt). It matches td.ErrConflict.
type AttemptConflictError struct {
	// Attempt is the session's existing attempt, as the server sent it.
	Attempt *Attempt
}

func (e *AttemptConflictError) Error() string {
	a := e.Attempt
	return fmt.Sprintf("digdag: a session for session time %s already exists (session %s, attempt %s): retry attempt %s, or start with a retry name",
		a.SessionTime.Format(time.RFC3339), a.SessionID, a.ID, a.ID)
}

// Is makes errors.Is(err, td.ErrConflict) true.
func (e *AttemptConflictError) Is(target error) bool { return target == td.ErrConflict }

// NetError is a request that got no usable HTTP answer; it matches
// td.ErrNetwork.
type NetError struct {
	Method, Path string
	Err          error // the transport's error (redacted in Error)
	red          *td.Secrets
}

func (e *NetError) Error() string {
	return fmt.Sprintf("digdag: %s %s: %s", e.Method, e.Path, e.red.Redact(e.Err.Error()))
}

// Unwrap returns the transport error.
func (e *NetError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, td.ErrNetwork) true.
func (e *NetError) Is(target error) bool { return target == td.ErrNetwork }

// ProtocolError is an answer the client cannot use (not the JSON it should
// be); it matches td.ErrProtocol.
type ProtocolError struct {
	Method, Path string
	Msg          string // redacted
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("digdag: %s %s: %s", e.Method, e.Path, e.Msg)
}

// Is makes errors.Is(err, td.ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == td.ErrProtocol }

// ArgumentError is a value refused before anything is sent (an endpoint,
// an empty id, a header); it matches td.ErrInvalidArgument.
type ArgumentError struct{ Msg string }

func (e *ArgumentError) Error() string { return "digdag: " + e.Msg }

// Is makes errors.Is(err, td.ErrInvalidArgument) true.
func (e *ArgumentError) Is(target error) bool { return target == td.ErrInvalidArgument }

func invalidArg(format string, args ...any) error {
	return &ArgumentError{Msg: fmt.Sprintf(format, args...)}
}

// AttemptFailedError is an attempt that ended in error or was killed
// (Wait); it matches td.ErrJobFailed, so that tdctl exits 3 as on a failed
// job.
type AttemptFailedError struct {
	Attempt *Attempt
	// Failed are the full names of the tasks in state error (when Wait
	// could read them).
	Failed []string
}

func (e *AttemptFailedError) Error() string {
	s := fmt.Sprintf("digdag: attempt %s of %s/%s ended with status %s", e.Attempt.ID, e.Attempt.Project.Name, e.Attempt.Workflow.Name, e.Attempt.State())
	if len(e.Failed) > 0 {
		s += " (failed: " + strings.Join(e.Failed, ", ") + ")"
	}
	return s
}

// Is makes errors.Is(err, td.ErrJobFailed) true.
func (e *AttemptFailedError) Is(target error) bool { return target == td.ErrJobFailed }

// errorBody is digdag's error answer: {"message": "...", "status": 404}.
type errorBody struct {
	Message string `json:"message"`
	Error   string `json:"error"`
}

// newAPIError reads (a bounded part of) resp's body; the caller closes it.
func newAPIError(resp *http.Response, method, path string, red *td.Secrets) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, Method: method, Path: path}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var b errorBody
	if json.Unmarshal(data, &b) == nil && (b.Message != "" || b.Error != "") {
		e.Message = strings.TrimSpace(b.Message)
		if e.Message == "" {
			e.Message = strings.TrimSpace(b.Error)
		}
	} else {
		e.Message = truncate(strings.TrimSpace(string(data)), 500)
	}
	e.Message = red.Redact(e.Message)
	if ra, ok := backoff.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = ra
	}
	return e
}

func newNetError(ctx context.Context, method, path string, err error, red *td.Secrets) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// a network timeout, not the caller's deadline
		err = errors.New(err.Error())
	}
	return &NetError{Method: method, Path: path, Err: err, red: red}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

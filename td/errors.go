package td

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
)

// Sentinel errors for errors.Is on an *APIError.
var (
	ErrUnauthorized   = errors.New("td: unauthorized")    // 401 or 403: bad API key or no permission
	ErrNotFound       = errors.New("td: not found")       // 404: unknown job, database or connection
	ErrConflict       = errors.New("td: conflict")        // 409: e.g. a reused domain_key
	ErrInvalidRequest = errors.New("td: invalid request") // 400 or 422: invalid parameters
	ErrRateLimited    = errors.New("td: rate limited")    // 429
	ErrServer         = errors.New("td: server error")    // 5xx
)

// APIError is a non-2xx answer from the API (or a 2xx other than 200 on a
// job call). It never contains the API key or a URL password.
type APIError struct {
	StatusCode int
	Method     string
	Path       string // request path, without query string
	Message    string // the most specific message the server sent
	// ConflictsWith is the id of the existing job when a domain_key was
	// reused (409).
	ConflictsWith string
	// RetryAfter is the server's Retry-After (429/503), zero when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("td: %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode), msg)
	switch {
	case e.StatusCode == http.StatusUnauthorized:
		s += " (check the API key: TD_API_KEY, --apikey or ~/.td/td.conf)"
	case e.StatusCode == http.StatusForbidden:
		s += " (the API key has no permission for this)"
	}
	return Redact(s)
}

// Is reports whether target is the sentinel matching e's status code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrInvalidRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// ErrNetwork matches (errors.Is) a request that got no usable HTTP answer:
// connection refused or reset, DNS failure, TLS failure, a connection or
// read idle timeout, an answer cut before its end.
var ErrNetwork = errors.New("td: network error")

// NetError is a request that got no usable HTTP answer (ErrNetwork). A
// timeout of the network (dialling, the read idle timeout) is a NetError
// whose Timeout is true; it never matches context.DeadlineExceeded, which
// the package returns only when the caller's context ran out.
type NetError struct {
	Method, Path string
	Err          error // the transport's error (redacted in Error)
	timeout      bool
	red          redactor
}

func (e *NetError) Error() string {
	return fmt.Sprintf("td: %s %s: %s", e.Method, e.Path, e.red.redact(e.Err.Error()))
}

// Unwrap returns the transport error.
func (e *NetError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNetwork) true.
func (e *NetError) Is(target error) bool { return target == ErrNetwork }

// Timeout reports whether the network timed out (dialling, TLS handshake,
// the read idle timeout) — not the caller's context.
func (e *NetError) Timeout() bool { return e.timeout }

// newNetError wraps a transport error. A timeout that would match
// context.DeadlineExceeded (Go's dial and header timeouts do) is kept as
// text only, so that errors.Is(err, context.DeadlineExceeded) stays the
// caller's deadline alone.
func newNetError(method, path string, err error, red redactor) *NetError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop "Get <url>:"; Error prints the path
	}
	e := &NetError{Method: method, Path: path, Err: err, red: red}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		e.timeout = true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		e.Err, e.timeout = hideDeadline(err), true
	}
	return e
}

// hideDeadline keeps a network timeout's text but not its match with
// context.DeadlineExceeded (call it only when the caller's context is
// still live).
func hideDeadline(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New(err.Error())
	}
	return err
}

// ErrProtocol matches (errors.Is) a *ProtocolError.
var ErrProtocol = errors.New("td: unusable answer")

// ProtocolError is an answer the client cannot use: a body that is not the
// JSON or gzip it should be, a partial answer that does not fit the
// request, a result that changed while it was downloaded (then it also
// matches ErrTruncated), a job answer without job_id or status (such as {})
// or about another job, a job read that disagrees with the one before it (a
// replica behind). It is not retried by the transport; Jobs.Wait reads
// again before it reports one.
type ProtocolError struct {
	Method, Path string
	Msg          string // what was wrong (redacted)
	Err          error  // the cause, may be nil
}

func (e *ProtocolError) Error() string {
	s := "td: "
	if e.Method != "" {
		s += e.Method + " " + e.Path + ": "
	}
	s += e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return Redact(s)
}

// Unwrap returns the cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// ErrInvalidArgument matches (errors.Is) an *ArgumentError.
var ErrInvalidArgument = errors.New("td: invalid argument")

// ArgumentError is a value the caller gave that the package refuses before
// sending anything: an empty or malformed API key, an unknown site or bad
// endpoint, an empty job id, an unknown format. Retrying cannot help; the
// input must change.
type ArgumentError struct{ Msg string }

func (e *ArgumentError) Error() string { return "td: " + e.Msg }

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func invalidArg(format string, args ...any) error {
	return &ArgumentError{Msg: fmt.Sprintf(format, args...)}
}

// ErrJobFailed matches (errors.Is) a *JobFailedError.
var ErrJobFailed = errors.New("td: job failed")

// JobFailedError is returned by waits when a job ends in error or killed.
type JobFailedError struct {
	JobID  string
	Status string // "error" or "killed"
	Stderr string // the job's debug.stderr (redacted), may be empty
}

func (e *JobFailedError) Error() string {
	s := fmt.Sprintf("td: job %s ended with status %s", e.JobID, e.Status)
	if st := strings.TrimSpace(e.Stderr); st != "" {
		s += ": " + lastLines(st, 5)
	}
	return Redact(s)
}

// Is makes errors.Is(err, ErrJobFailed) true.
func (e *JobFailedError) Is(target error) bool { return target == ErrJobFailed }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 1 << 20

// errorBody covers the shapes TD error bodies come in.
type errorBody struct {
	Error        string          `json:"error"`
	Message      string          `json:"message"`
	Text         string          `json:"text"`
	ErrorMessage string          `json:"errorMessage"`
	Details      json.RawMessage `json:"details"`
}

// newAPIError builds an *APIError from a response, reading (and bounding)
// its body. The caller closes the body.
func newAPIError(resp *http.Response, method, path string, red redactor) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, Method: method, Path: path}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e.Message, e.ConflictsWith = parseErrorBody(data)
	e.Message = red.redact(e.Message)
	if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = ra
	}
	return e
}

// parseErrorBody returns the most specific message in a TD error body and the
// conflicting job id, if any. Bodies that are not JSON are used as text.
func parseErrorBody(data []byte) (msg, conflictsWith string) {
	var b errorBody
	if err := json.Unmarshal(data, &b); err != nil {
		return strings.TrimSpace(truncate(string(data), 500)), ""
	}
	// most specific first: message/text carry details, error is often a title
	for _, m := range []string{b.Message, b.Text, b.ErrorMessage, b.Error} {
		if strings.TrimSpace(m) != "" {
			msg = strings.TrimSpace(m)
			break
		}
	}
	if b.Error != "" && msg != b.Error && !strings.Contains(msg, b.Error) && len(b.Error) < 80 {
		msg = b.Error + ": " + msg
	}
	if len(b.Details) > 0 {
		var d struct {
			ConflictsWith flexString `json:"conflicts_with"`
		}
		if json.Unmarshal(b.Details, &d) == nil {
			conflictsWith = string(d.ConflictsWith)
		}
		if msg == "" {
			msg = truncate(string(b.Details), 500)
		}
	}
	return msg, conflictsWith
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date
// (backoff.RetryAfter, shared with package digdag).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	return backoff.RetryAfter(v, now)
}

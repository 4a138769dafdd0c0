package backoff

import (
	"context"
	"errors"
	"math"
	"net/http"
	"syscall"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"
)

// Policy bounds the attempts of one call: MaxRetries after the first try,
// waits drawn by Jittered between MinWait and MaxWait (which also caps a
// server's Retry-After).
type Policy struct {
	MaxRetries       int
	MinWait, MaxWait time.Duration
}

// MaxRefusedRetries bounds the retries of a refused connection within the
// budget: a restarting server is back within a second or two, a wrong port
// never.
const MaxRefusedRetries = 2

// MaxTimeoutRetries bounds the retries of a network timeout (no answer
// within the read idle timeout, a dial timeout) within the budget: each
// costs a whole timeout, and a server that is silent twice in a row is
// rarely back a minute later.
const MaxTimeoutRetries = 1

// Budget is one HTTP call's attempts, shared by a transport's retries, the
// re-reads of cut answers and download resumes. Its Check is
// go-retryablehttp's CheckRetry for the td and digdag clients alike: they
// retry the same errors the same way.
type Budget struct {
	// Retry marks the call safe to repeat; Check never retries otherwise.
	Retry  bool
	Policy Policy
	// Transient decides whether a transport error is worth another try
	// (nil: the package's Transient).
	Transient func(error) bool
	// Used counts the requests sent; the caller's request hook adds one
	// per request.
	Used    int
	refused int // of which refused connections
	silent  int // of which network timeouts
	wait    time.Duration
}

// Spent reports whether no attempt is left.
func (b *Budget) Spent() bool { return b.Used > b.Policy.MaxRetries }

// Reset starts a fresh budget (a download made progress).
func (b *Budget) Reset() { b.Used, b.refused, b.silent = 0, 0, 0 }

// Backoff is the wait before the next attempt.
func (b *Budget) Backoff() time.Duration {
	return Jittered(b.Policy.MinWait, b.Policy.MaxWait, max(b.Used-1, 0))
}

// Wait is the wait Check chose for the next attempt (go-retryablehttp's
// Backoff returns it).
func (b *Budget) Wait() time.Duration { return b.wait }

// Fits reports whether waiting d still ends before ctx's deadline: a retry
// that could only start after it is not worth waiting for, and the caller
// gets the error in hand at once.
func Fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// Check is go-retryablehttp's CheckRetry: only calls marked safe to repeat
// are retried, on transient network errors (a cut answer included), 429 and
// 5xx other than 501, while the budget lasts and the wait fits before ctx's
// deadline.
func (b *Budget) Check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	if !b.Retry {
		return false, nil
	}
	var retryAfter time.Duration
	hasRetryAfter := false
	if err != nil {
		transient := b.Transient
		if transient == nil {
			transient = Transient
		}
		if !transient(err) {
			return false, nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			b.refused++
			if b.refused > MaxRefusedRetries {
				return false, nil
			}
		}
		var t interface{ Timeout() bool }
		if errors.As(err, &t) && t.Timeout() {
			b.silent++
			if b.silent > MaxTimeoutRetries {
				return false, nil
			}
		}
	} else {
		switch {
		case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable:
			retryAfter, hasRetryAfter = RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		default:
			return false, nil
		}
	}
	if b.Spent() {
		return false, nil
	}
	b.wait = b.Backoff()
	if hasRetryAfter {
		b.wait = min(retryAfter, b.Policy.MaxWait)
	}
	// Do not sleep past the caller's deadline: give the error back now.
	return Fits(ctx, b.wait), nil
}

// Client is go-retryablehttp's client for one call within b: it sends the
// requests over hc and sleeps between them, b decides whether and how
// long; the last response is kept so the caller sees the server's own
// message. onRequest sees every request with its number from 1 (after b
// counted it), onResponse every response; either may be nil.
func (b *Budget) Client(hc *http.Client, onRequest func(req *http.Request, n int), onResponse func(*http.Response)) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   hc,
		RetryMax:     math.MaxInt32, // Check enforces the budget
		RetryWaitMin: b.Policy.MinWait,
		RetryWaitMax: b.Policy.MaxWait,
		CheckRetry:   b.Check,
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return b.wait },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, req *http.Request, _ int) {
			b.Used++
			if onRequest != nil {
				onRequest(req, b.Used)
			}
		},
		ResponseLogHook: func(_ retryablehttp.Logger, resp *http.Response) {
			if onResponse != nil {
				onResponse(resp)
			}
		},
	}
}

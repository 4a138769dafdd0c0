package td

import (
	"context"
	"errors"
	"math"
	"net/http"
	"syscall"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/tdctl/tdctl/internal/backoff"
)

// RetryPolicy bounds the attempts of one call. Only calls that are safe to
// repeat are retried (GETs, Kill, Issue with a domain_key); other POSTs are
// sent once.
//
// The budget is per call and shared: a request the transport retries, an
// answer cut after its headers and re-read, and a download resumed after a
// cut all draw from the same MaxRetries+1 attempts. A resumed download that
// received bytes since its last request starts a fresh budget (it made
// progress); DownloadOptions.MaxResumes bounds the resumes overall.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first try (0 = none).
	MaxRetries int
	// MinWait and MaxWait bound the exponential back-off: before retry n
	// (from 0) the wait is drawn from [d/2, d] with d = MinWait·2ⁿ capped at
	// MaxWait ("equal jitter"). MaxWait also caps a server's Retry-After.
	MinWait, MaxWait time.Duration
}

// DefaultRetryPolicy retries 5 times, waiting 500 ms doubling to 30 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 5, MinWait: 500 * time.Millisecond, MaxWait: 30 * time.Second}
}

// maxRefusedRetries bounds the retries of a refused connection within the
// budget: a restarting server is back within a second or two, a wrong port
// never.
const maxRefusedRetries = 2

// maxTimeoutRetries bounds the retries of a network timeout (no answer
// within the read idle timeout, a dial timeout) within the budget: each
// costs a whole timeout, and a server that is silent twice in a row is
// rarely back a minute later.
const maxTimeoutRetries = 1

// budget is one call's attempts, shared by the transport's retries, the
// re-reads of cut answers and download resumes.
type budget struct {
	retry   bool // the call is safe to repeat
	policy  RetryPolicy
	used    int // requests sent
	refused int // of which refused connections
	silent  int // of which network timeouts
	wait    time.Duration
}

func (c *Client) newBudget(retry bool) *budget {
	return &budget{retry: retry, policy: c.retry}
}

// spent reports whether no attempt is left.
func (b *budget) spent() bool { return b.used > b.policy.MaxRetries }

// reset starts a fresh budget (a download made progress).
func (b *budget) reset() { b.used, b.refused, b.silent = 0, 0, 0 }

// backoff is the wait before the next attempt.
func (b *budget) backoff() time.Duration {
	return backoff.Jittered(b.policy.MinWait, b.policy.MaxWait, max(b.used-1, 0))
}

// fits reports whether waiting d still ends before ctx's deadline: a retry
// that could only start after it is not worth waiting for, and the caller
// gets the error in hand at once.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// retryClient returns go-retryablehttp's client for one call: it sends the
// requests and sleeps between them, b decides whether and how long.
func (c *Client) retryClient(b *budget) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   c.transport,
		RetryMax:     math.MaxInt32, // b.check enforces the budget
		RetryWaitMin: c.retry.MinWait,
		RetryWaitMax: c.retry.MaxWait,
		CheckRetry:   b.check,
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return b.wait },
		// Keep the last response so the caller sees the API's own message.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, req *http.Request, _ int) {
			b.used++
			c.logRequest(req, b.used)
		},
		ResponseLogHook: c.logResponse,
	}
}

// check is go-retryablehttp's CheckRetry: only calls marked safe to repeat
// are retried, on transient network errors (a cut answer included), 429 and
// 5xx other than 501, while the budget lasts and the wait fits before ctx's
// deadline.
func (b *budget) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	if !b.retry {
		return false, nil
	}
	var retryAfter time.Duration
	hasRetryAfter := false
	if err != nil {
		if !isTransientNetErr(err) {
			return false, nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			b.refused++
			if b.refused > maxRefusedRetries {
				return false, nil
			}
		}
		var t interface{ Timeout() bool }
		if errors.As(err, &t) && t.Timeout() {
			b.silent++
			if b.silent > maxTimeoutRetries {
				return false, nil
			}
		}
	} else {
		switch {
		case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable:
			retryAfter, hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		default:
			return false, nil
		}
	}
	if b.spent() {
		return false, nil
	}
	b.wait = b.backoff()
	if hasRetryAfter {
		b.wait = min(retryAfter, b.policy.MaxWait)
	}
	// Do not sleep past the caller's deadline: give the error back now.
	return fits(ctx, b.wait), nil
}

// isTransientNetErr is false for errors a retry cannot fix: an answer that
// cannot be decoded (*ProtocolError), and those backoff.Transient refuses
// (a host name that does not exist, TLS that cannot work, a cancelled call).
func isTransientNetErr(err error) bool {
	var protoErr *ProtocolError
	if errors.As(err, &protoErr) {
		return false
	}
	return backoff.Transient(err)
}

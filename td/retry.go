package td

import (
	"context"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"
)

// RetryPolicy bounds retries of idempotent calls (GETs, Kill, Issue with a
// domain_key). Other POSTs are never retried.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first try (0 = none).
	MaxRetries int
	// MinWait and MaxWait bound the exponential back-off (with jitter).
	// MaxWait also caps a server's Retry-After.
	MinWait, MaxWait time.Duration
}

// DefaultRetryPolicy retries 5 times, waiting 500 ms doubling to 30 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 5, MinWait: 500 * time.Millisecond, MaxWait: 30 * time.Second}
}

func (c *Client) newRetryClient() *retryablehttp.Client {
	rc := retryablehttp.NewClient()
	rc.HTTPClient = c.plain
	rc.Logger = nil
	rc.RetryMax = c.retry.MaxRetries
	rc.RetryWaitMin = c.retry.MinWait
	rc.RetryWaitMax = c.retry.MaxWait
	rc.CheckRetry = checkRetry
	rc.Backoff = backoff
	// Keep the last response so the caller sees the API's own message.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	rc.RequestLogHook = c.logRequest
	rc.ResponseLogHook = c.logResponse
	return rc
}

// checkRetry is method- and status-aware: only calls marked retryable in
// their context are retried, on network errors, 429 and 5xx (not 501).
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	st, _ := ctx.Value(retryKey{}).(*retryState)
	if st == nil || !st.retry {
		return false, nil
	}
	if err != nil {
		if !isTransientNetErr(err) {
			return false, nil
		}
		// nothing listening: a restart takes a moment, a wrong endpoint
		// never heals — give up after a few quick tries
		if errors.Is(err, syscall.ECONNREFUSED) {
			st.refused++
			return st.refused <= maxRefusedRetries, nil
		}
		return true, nil
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable:
		// Do not sleep past the caller's deadline: give the error back now.
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			ra = min(ra, st.maxWait)
			if dl, has := ctx.Deadline(); has && time.Until(dl) < ra {
				return false, nil
			}
		}
		return true, nil
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return true, nil
	}
	return false, nil
}

// maxRefusedRetries bounds retries of a refused connection.
const maxRefusedRetries = 2

// retryState travels in a request's context to checkRetry.
type retryState struct {
	retry   bool // the call is safe to retry
	refused int  // refused connections so far
	maxWait time.Duration
}

// isTransientNetErr is false for errors a retry cannot fix.
func isTransientNetErr(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false
	}
	msg := err.Error()
	if strings.Contains(msg, "unsupported protocol scheme") || strings.Contains(msg, "server gave HTTP response to HTTPS client") ||
		strings.Contains(msg, "tls: ") {
		return false
	}
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invErr x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &invErr) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return true
}

// backoff is exponential with full jitter between min and max, except that a
// Retry-After from the server is honoured, capped at max.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if ra > maxWait {
				ra = maxWait
			}
			return ra
		}
	}
	return expBackoff(minWait, maxWait, attempt)
}

func expBackoff(minWait, maxWait time.Duration, attempt int) time.Duration {
	if minWait <= 0 {
		return 0
	}
	d := minWait
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	if d > maxWait {
		d = maxWait
	}
	// jitter in [d/2, d]
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

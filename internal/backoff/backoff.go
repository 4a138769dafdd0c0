// Package backoff is tdctl's one exponential back-off schedule: the td
// client's retries and download resumes, the Kubernetes runner's polls and
// the benchmarks all wait by it. See docs/design.md ("Transport") for why the
// jitter is "equal jitter".
package backoff

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Exp is the wait before retry number attempt (0 for the first retry):
// minWait doubled attempt times, capped at maxWait. No jitter: for polling
// schedules that a user sees (a job's status every 1, 2, 4... seconds).
func Exp(minWait, maxWait time.Duration, attempt int) time.Duration {
	if minWait <= 0 {
		return 0
	}
	d := minWait
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	if maxWait > 0 && d > maxWait {
		d = maxWait
	}
	return d
}

// Jittered is Exp with "equal jitter": a wait drawn uniformly from
// [d/2, d] where d = Exp(minWait, maxWait, attempt). Half of each wait is
// kept so that a failing server is never hit again at once, and the other
// half spreads clients that failed together.
func Jittered(minWait, maxWait time.Duration, attempt int) time.Duration {
	d := Exp(minWait, maxWait, attempt)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// Sleep waits d, or until ctx is done (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryAfter reads an HTTP Retry-After value in seconds or as an HTTP
// date; ok is false when it is absent or unusable (negative, over a day).
func RetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs != secs || secs > 24*3600 {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Transient is false for HTTP transport errors a retry cannot fix: a host
// name that does not exist, TLS that cannot work (an http port spoken to
// with https, a certificate that does not verify), a cancelled call. A
// timeout that is not the caller's (a dial timeout, a read idle timeout) is
// worth another try. The td and digdag clients share it.
func Transient(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false
	}
	var recordErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var verifyErr *tls.CertificateVerificationError
	var authorityErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &recordErr), errors.As(err, &alertErr),
		errors.As(err, &verifyErr), errors.As(err, &authorityErr), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return false
	case errors.Is(err, context.Canceled):
		return false
	}
	return true
}

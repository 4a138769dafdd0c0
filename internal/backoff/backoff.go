// Package backoff is tdctl's one exponential back-off schedule: the td
// client's retries and download resumes, the Kubernetes runner's polls and
// the benchmarks all wait by it. See docs/design.md ("Transport") for why the
// jitter is "equal jitter".
package backoff

import (
	"context"
	"math/rand/v2"
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

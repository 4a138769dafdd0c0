package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestExpDoublesToTheCap(t *testing.T) {
	var got []time.Duration
	for i := range 6 {
		got = append(got, Exp(time.Second, 10*time.Second, i))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
	assert.Zero(t, Exp(0, time.Second, 3))
	assert.Equal(t, 30*time.Second, Exp(time.Second, 30*time.Second, 1000), "no overflow")
}

// Equal jitter: each wait lies in [d/2, d], never below half.
func TestJitteredIsEqualJitter(t *testing.T) {
	for attempt := range 5 {
		d := Exp(100*time.Millisecond, time.Second, attempt)
		seen := map[bool]bool{}
		for range 200 {
			w := Jittered(100*time.Millisecond, time.Second, attempt)
			assert.GreaterOrEqual(t, w, d/2)
			assert.LessOrEqual(t, w, d)
			seen[w < d*3/4] = true
		}
		assert.Len(t, seen, 2, "waits spread over the whole [d/2, d]")
	}
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	assert.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	assert.Less(t, time.Since(start), time.Second)
	assert.NoError(t, Sleep(context.Background(), time.Millisecond))
}

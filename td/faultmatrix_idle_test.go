package td_test

import (
	"time"

	"github.com/tdctl/tdctl/td"
)

// fmIdleOptions returns the client options that make it give up a read that
// stays idle for d (a stalled body, a request never answered). The fault
// matrix runs its stall and hang schedules only when it is not nil.
func fmIdleOptions(d time.Duration) []td.Option {
	return []td.Option{td.WithReadIdleTimeout(d)}
}

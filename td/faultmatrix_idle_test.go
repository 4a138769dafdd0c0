package td_test

import (
	"time"

	"github.com/tdctl/tdctl/td"
)

// fmIdleOptions returns the client options that make it give up a read that
// stays idle for d (a stalled body, a request never answered), or nil while
// the client has none: the fault matrix then skips its stall and hang
// schedules.
func fmIdleOptions(d time.Duration) []td.Option {
	_ = d
	return nil
}

package emulator

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestCloseLeavesNoGoroutines runs jobs on both clocks, leaves some
// unfinished, closes, and checks nothing is left running.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, opts := range []Options{
		{RunningFor: time.Hour},
		{RunningFor: 20 * time.Millisecond},
		{Clock: NewManualClock(time.Unix(0, 0)), QueuedFor: time.Second},
	} {
		s, err := New(opts)
		require.NoError(t, err)
		ln := listenLoopback(t)
		srv := &http.Server{Handler: s}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ln) }()
		base := "http://" + ln.Addr().String()
		c := &apiClient{t: t, base: base, key: "k", hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
		for i := 0; i < 3; i++ {
			c.issue("sample_datasets", "SELECT COUNT(1) FROM www_access", url.Values{"result": {"td://@/sample_datasets/leak"}})
		}
		if mc, ok := opts.Clock.(*ManualClock); ok {
			mc.Advance(time.Second)
		}
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, s.Close())
		require.NoError(t, srv.Close())
		<-done
	}
}

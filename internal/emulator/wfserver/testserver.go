package wfserver

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

// NewTestServer serves o's emulator (a new one when nil) and the workflow
// API at one loopback address, as tdctl dev-server does, for tests
// outside this package: DataDir defaults to a temporary directory,
// Endpoint to the server's own URL, the scheduler is off unless
// SchedulerTick is set, and td> waits poll every few milliseconds. All of
// it is closed when the test ends. It returns the server, its emulator and
// the base URL.
func NewTestServer(t testing.TB, o Options) (*Server, *emulator.Server, string) {
	t.Helper()
	if o.Emulator == nil {
		emu, err := emulator.New(emulator.Options{RunningFor: 20 * time.Millisecond})
		if err != nil {
			t.Fatalf("emulator.New: %v", err)
		}
		t.Cleanup(func() { emu.Close() })
		o.Emulator = emu
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.SchedulerTick == 0 {
		o.SchedulerTick = -1
	}
	if o.JobWait == nil {
		o.JobWait = &td.WaitOptions{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	if o.Endpoint == "" {
		o.Endpoint = base
	}
	srv, err := New(o)
	if err != nil {
		t.Fatalf("wfserver.New: %v", err)
	}
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return srv, o.Emulator, base
}

package cli

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tdctl/tdctl/internal/emulator"
)

// newFaultEnv is newEnv with the emulator at hand, to script its faults.
func newFaultEnv(t *testing.T, opts emulator.Options) (*env, *emulator.Server) {
	t.Helper()
	srv, base := emulator.NewTestServer(t, opts)
	home := t.TempDir()
	return &env{t: t, base: base, home: home, ctx: t.Context(), vars: map[string]string{
		"TD_API_KEY":      testKey,
		"TD_API_SERVER":   base,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
	}}, srv
}

// TestJobWaitMalformedAnswers: a malformed-but-valid answer ({} or a
// lagging replica's "running" after status said success) is read again, never
// taken for the job's verdict.
func TestJobWaitMalformedAnswers(t *testing.T) {
	e, srv := newFaultEnv(t, fast())
	good := e.issue("SELECT 1")
	bad := e.issue("SELECT * FROM no_such_table")
	for _, id := range []string{good, bad} {
		e.run("job", "wait", id, "--poll-interval", "20ms") // both finished
	}
	show := func(f emulator.Fault) emulator.Fault { f.Method, f.Path = "GET", "/v3/job/show/"; return f }
	status := func(f emulator.Fault) emulator.Fault { f.Method, f.Path = "GET", "/v3/job/status/"; return f }
	cases := []struct {
		name   string
		faults []emulator.Fault
	}{
		{"show answers {}", []emulator.Fault{show(emulator.Fault{Times: 1, Status: 200, Body: "{}"})}},
		{"status answers {}", []emulator.Fault{status(emulator.Fault{Times: 2, Status: 200, Body: "{}"})}},
		{"show lags: running", []emulator.Fault{show(emulator.Fault{Times: 2, LagStatus: "running"})}},
		{"show lags: queued", []emulator.Fault{show(emulator.Fault{Times: 1, LagStatus: "queued"})}},
		{"status and show lag", []emulator.Fault{status(emulator.Fault{Times: 1, LagStatus: "running"}), show(emulator.Fault{Times: 1, LagStatus: "running"})}},
		{"show answers a job without its id", []emulator.Fault{show(emulator.Fault{Times: 1, Status: 200, Body: `{"status":"error"}`})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for id, want := range map[string]int{good: 0, bad: 3} {
				srv.Faults().Reset()
				for _, f := range c.faults {
					srv.Faults().Add(f)
				}
				hits := srv.Faults().Hits()
				r := e.run("job", "wait", id, "--poll-interval", "20ms", "-o", "json")
				assert.Equal(t, want, r.code, "job %s: %s", id, r.stderr)
				assert.Greater(t, srv.Faults().Hits(), hits, "the fault was hit")
				if want == 0 {
					assert.Contains(t, r.stdout, `"status": "success"`)
				} else {
					assert.Contains(t, r.stderr, "ended with status error")
				}
			}
		})
	}

	// an answer that stays malformed is a protocol error (exit 2), never a
	// failed job
	srv.Faults().Reset()
	srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/show/", Status: 200, Body: "{}"})
	start := time.Now()
	r := e.run("job", "wait", good, "--poll-interval", "20ms")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no status")
	assert.Less(t, time.Since(start), 10*time.Second)

	srv.Faults().Reset()
	srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/show/", LagStatus: "running"})
	r = e.run("job", "wait", good, "--poll-interval", "20ms")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "status says success but show says running")
}

package cli

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// exportJobsOf lists the emulator's export jobs of job id.
func exportJobsOf(srv *emulator.Server, id string) []string {
	var out []string
	for i := 1; i <= srv.JobCount(); i++ {
		if j, ok := srv.Job(strconv.Itoa(i)); ok && j.ResultExportTargetJobID == id {
			out = append(out, j.ID)
		}
	}
	return out
}

// TestJobExportLostAnswer: an export whose answer is lost (or replaced by a
// gateway's 502 after the export job was made) is found again, not reported
// as "not started", and never started twice.
func TestJobExportLostAnswer(t *testing.T) {
	for _, f := range []emulator.Fault{
		{AfterHandler: true, Times: 1},
		{AfterHandler: true, Status: 502, Times: 1},
		{Status: 429, Times: 1},
	} {
		e, srv := newFaultEnv(t, fast())
		require.NoError(t, srv.CreateDatabase("out"))
		id := e.issue("SELECT 1 AS a")
		e.run("job", "wait", id, "--poll-interval", "20ms")
		f.Method, f.Path = "POST", "/v3/job/result_export/"
		srv.Faults().Add(f)
		for _, wait := range []bool{false, true} {
			args := []string{"job", "export", id, "--result-url", "td://@/out/t", "-o", "json"}
			if wait {
				srv.Faults().Add(f)
				args = append(args, "--wait", "--poll-interval", "20ms")
			}
			before := exportJobsOf(srv, id)
			r := e.run(args...)
			require.Equal(t, 0, r.code, "%+v wait=%v: %s", f, wait, r.stderr)
			after := exportJobsOf(srv, id)
			require.Len(t, after, len(before)+1, "%+v: exactly one export job", f)
			var out []map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
			require.Len(t, out, 1)
			assert.Equal(t, after[len(after)-1], out[0]["export_job_id"], "the caller gets its id")
		}
		rows, _, err := srv.TableRows("out", "t")
		require.NoError(t, err)
		assert.Len(t, rows, 2, "%+v: two commands, two appends", f)
	}
}

// TestJobExportUncertain: when the export can be neither found nor ruled
// out, the destination is "unknown", not "not started", with exit 2.
func TestJobExportUncertain(t *testing.T) {
	e, srv := newFaultEnv(t, fast())
	require.NoError(t, srv.CreateDatabase("out"))
	id := e.issue("SELECT 1 AS a")
	e.run("job", "wait", id, "--poll-interval", "20ms")
	srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/result_export/", AfterHandler: true, Times: 1})
	srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/status_by_domain_key/", Status: 503})
	r := e.run("job", "export", id, "--result-url", "td://@/out/t")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, "not started")
	assert.Contains(t, r.stdout, "unknown")
	assert.Contains(t, r.stderr, "may have started")
	assert.Len(t, exportJobsOf(srv, id), 1)
}

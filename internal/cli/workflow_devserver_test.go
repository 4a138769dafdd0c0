package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/internal/emulator/wfserver"
	"github.com/tdctl/tdctl/td"
)

// devServerEnv is tdctl dev-server as the CLI sees it: the TD API and
// digdag's REST API at one address. The workflow endpoint is not set: the
// CLI derives it from TD_API_SERVER (a host that is not TD's serves both).
func devServerEnv(t *testing.T) *env {
	emu, err := emulator.New(emulator.Options{RunningFor: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { emu.Close() })
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	srv, err := wfserver.New(wfserver.Options{Emulator: emu, DataDir: t.TempDir(), Endpoint: base, APIKey: testKey, SchedulerTick: -1,
		JobWait: &td.WaitOptions{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}})
	require.NoError(t, err)
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	home := t.TempDir()
	return &env{t: t, base: base, home: home, ctx: context.Background(), vars: map[string]string{
		"TD_API_KEY":      testKey,
		"TD_API_SERVER":   base,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
		"TDCTL_RUNS_DIR":  filepath.Join(home, "runs"),
	}}
}

// From a laptop to the server with the same files: push the example
// workflows, start one and wait, read its tasks and logs.
func TestWorkflowServerEndToEnd(t *testing.T) {
	e := devServerEnv(t)
	r := e.run("workflow", "push", examplesDir(t), "--project", "examples", "--revision", "r1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `^\d+\texamples\tr1\n$`, r.stdout)

	r = e.run("workflow", "start", "examples", "num_records", "--session", "2026-01-02", "--wait", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var a struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		SessionTime string `json:"sessionTime"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &a), r.stdout)
	assert.Equal(t, "success", a.Status)
	assert.Equal(t, "2026-01-02T00:00:00Z", a.SessionTime)

	r = e.run("workflow", "attempt", a.ID)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, regexp.MustCompile(`(?m)^\+num_records\+run\tsuccess\t\S+\t\S+\t\d+\t1$`), r.stdout, "td> task: job id and num_records")

	r = e.run("workflow", "logs", a.ID, "--task", "+num_records+show_num_records")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "1\n", r.stdout)

	r = e.run("workflow", "attempts", "--project", "examples")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^`+a.ID+`\t\d+\texamples\tnum_records\t`, r.stdout)

	// the same session again is refused, naming the attempt
	r = e.run("workflow", "start", "examples", "num_records", "--session", "2026-01-02")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "already exists")
}

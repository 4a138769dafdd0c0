package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator/wfserver"
)

// devServerEnv is tdctl dev-server as the CLI sees it: the TD API and
// digdag's REST API at one address. The workflow endpoint is not set: the
// CLI derives it from TD_API_SERVER (a host that is not TD's serves both).
func devServerEnv(t *testing.T) *env {
	_, _, base := wfserver.NewTestServer(t, wfserver.Options{APIKey: testKey})
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

	// params come back from the server as given: JSON output masks what
	// holds a secret (found by review)
	r = e.run("workflow", "start", "examples", "num_records", "--session", "2026-01-03", "--wait",
		"-p", "password=StartPw999", "-p", "dsn=mysql://u:DsnPw777@h/db")
	require.Equal(t, 0, r.code, r.stderr)
	for _, args := range [][]string{{"attempts", "--project", "examples", "-o", "json"}, {"attempts", "--project", "examples", "-o", "jsonl"}, {"sessions", "--project", "examples", "-o", "json"}} {
		r = e.run(append([]string{"workflow"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "mysql://u:***@h/db", args)
		assert.NotContains(t, r.stdout, "StartPw999", args)
		assert.NotContains(t, r.stdout, "DsnPw777", args)
	}

	r = e.run("workflow", "sessions", "--project", "examples")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^\d+\texamples\tnum_records\t2026-01-02T00:00:00\+00:00\t`+a.ID+`\tsuccess\t`, r.stdout)

	// daily_params.dig has a schedule: list it, backfill two days (dry run)
	r = e.run("workflow", "schedules", "--project", "examples", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var scheds []struct {
		ID       string                `json:"id"`
		Workflow struct{ Name string } `json:"workflow"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &scheds), r.stdout)
	require.Len(t, scheds, 1)
	assert.Equal(t, "daily_params", scheds[0].Workflow.Name)
	r = e.run("workflow", "schedules", "--backfill", scheds[0].ID, "--from", "2026-01-01", "--count", "2", "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `^\d*\t2026-01-01T00:00:00\+00:00\t\w+\n\d*\t2026-01-02T00:00:00\+00:00\t\w+\n$`, r.stdout)

	// --session last: the schedule's last session time, from the server
	r = e.run("workflow", "start", "examples", "daily_params", "--session", "last", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `"sessionTime": "\d{4}-\d\d-\d\dT00:00:00`, r.stdout, "daily_params runs daily at midnight")

	e.stdin = "s3cr3t-value\n"
	r = e.run("workflow", "secrets", "set", "--project", "examples", "pg.password")
	require.Equal(t, 0, r.code, r.stderr)
	r = e.run("workflow", "secrets", "list", "--project", "examples")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "pg.password\n", r.stdout)

	// the same session again is refused, naming the attempt
	r = e.run("workflow", "start", "examples", "num_records", "--session", "2026-01-02")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "already exists")
}

// A failed attempt on the server, fixed by a param and retried from where
// it failed: exit 3, then 0.
func TestWorkflowServerRetry(t *testing.T) {
	e := devServerEnv(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "flaky.dig"), []byte("+query:\n  td>:\n  data: SELECT 1\n  database: sample_datasets\n+check:\n  sh>: test \"${ok}\" = yes\n"), 0o600))
	r := e.run("workflow", "push", dir, "--project", "flaky")
	require.Equal(t, 0, r.code, r.stderr)
	r = e.run("workflow", "start", "flaky", "flaky", "-p", "ok=no", "--wait", "-o", "json")
	require.Equal(t, 3, r.code, r.stderr)
	assert.Contains(t, r.stderr, "failed: +flaky+check")
	var a struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &a), r.stdout)

	r = e.run("workflow", "retry", a.ID, "-p", "ok=yes", "--wait", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"status": "success"`)
	assert.Contains(t, r.stdout, `"index": 2`, "a second attempt of the session")
}

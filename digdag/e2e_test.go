package digdag

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/internal/emulator/wfserver"
)

// End to end: this client against tdctl dev-server's digdag API
// (internal/emulator/wfserver): push the seed workflows, start one, wait,
// read its tasks and logs, retry a failed one with --resume; every answer
// is checked against digdag's model field list (restmodel_test.go).

func newDevServer(t *testing.T) (*Client, *emulator.Server, string) {
	t.Helper()
	emu, err := emulator.New(emulator.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { emu.Close() })
	_, _, base := wfserver.NewTestServer(t, wfserver.Options{Emulator: emu})
	c, err := NewClient(base, WithAPIKey("1/e2ekey"))
	require.NoError(t, err)
	return c, emu, base
}

// rawGet reads an answer as JSON bytes, for the field checks.
func rawGet(t *testing.T, base, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "TD1 1/e2ekey")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, 200, res.StatusCode, "%s: %s", path, body)
	return body
}

func TestDevServerEndToEnd(t *testing.T) {
	c, emu, base := newDevServer(t)
	ctx := context.Background()
	archive, _, err := Archive(filepath.Join("..", "examples", "workflows"))
	require.NoError(t, err)
	p, err := c.Projects.Push(ctx, "seeds", "r1", archive, nil)
	require.NoError(t, err)
	wf, err := c.Projects.Workflow(ctx, p.ID, "num_records", "")
	require.NoError(t, err)
	a, err := c.Attempts.Start(ctx, &StartRequest{WorkflowID: wf.ID, SessionTime: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Params: map[string]any{}})
	require.NoError(t, err)
	a, err = c.Attempts.Wait(ctx, a.ID, &WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Timeout: 30 * time.Second})
	require.NoError(t, err)
	assert.True(t, a.Success, "%+v", a)
	tasks, err := c.Attempts.Tasks(ctx, a.ID)
	require.NoError(t, err)
	states := map[string]string{}
	for _, tk := range tasks {
		states[tk.FullName] = tk.State
	}
	assert.Equal(t, map[string]string{"+num_records": "success", "+num_records+run": "success", "+num_records+show_num_records": "success"}, states)
	files, err := c.Logs.Files(ctx, a.ID, "+num_records+show_num_records")
	require.NoError(t, err)
	require.Len(t, files, 1)
	log, err := c.Logs.Download(ctx, a.ID, files[0].FileName)
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(log))

	// every answer has digdag's fields, no more, no fewer
	checkRESTCollection(t, "RestProject", "projects", rawGet(t, base, "/api/projects"))
	checkRESTCollection(t, "RestRevision", "revisions", rawGet(t, base, "/api/projects/"+p.ID+"/revisions"))
	checkRESTCollection(t, "RestWorkflowDefinition", "workflows", rawGet(t, base, "/api/projects/"+p.ID+"/workflows"))
	checkRESTCollection(t, "RestSchedule", "schedules", rawGet(t, base, "/api/schedules"))
	checkRESTCollection(t, "RestSession", "sessions", rawGet(t, base, "/api/sessions"))
	checkRESTCollection(t, "RestSessionAttempt", "attempts", rawGet(t, base, "/api/attempts"))
	checkRESTCollection(t, "RestTask", "tasks", rawGet(t, base, "/api/attempts/"+a.ID+"/tasks"))
	checkRESTCollection(t, "RestLogFileHandle", "files", rawGet(t, base, "/api/logs/"+a.ID+"/files"))
	checkRESTFields(t, "RestSessionAttempt", rawGet(t, base, "/api/attempts/"+a.ID))
	checkRESTFields(t, "RestProject", rawGet(t, base, "/api/projects/"+p.ID))
	daily, err := c.Projects.Workflow(ctx, p.ID, "daily_params", "")
	require.NoError(t, err)
	checkRESTFields(t, "RestWorkflowSessionTime", rawGet(t, base, "/api/workflows/"+daily.ID+"/truncated_session_time?session_time=2026-03-04T05:06:07Z&mode=schedule"))

	// retry --resume of a failed attempt runs only what failed
	flaky := map[string]string{"flaky.dig": "+query:\n  td>:\n  data: SELECT 1\n  database: sample_datasets\n+check:\n  sh>: test \"${ok}\" = yes\n"}
	fp, err := c.Projects.Push(ctx, "flaky", "r1", tarOf(t, flaky), nil)
	require.NoError(t, err)
	fwf, err := c.Projects.Workflow(ctx, fp.ID, "flaky", "")
	require.NoError(t, err)
	jobs := emu.JobCount()
	first, err := c.Attempts.Start(ctx, &StartRequest{WorkflowID: fwf.ID, SessionTime: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Params: map[string]any{"ok": "no"}})
	require.NoError(t, err)
	_, err = c.Attempts.Wait(ctx, first.ID, &WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Timeout: 30 * time.Second})
	require.Error(t, err, "the first attempt fails")
	first, err = c.Attempts.Get(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, "error", first.State())
	second, err := c.Attempts.Retry(ctx, first.ID, &RetryOptions{Failed: true, Params: map[string]any{"ok": "yes"}})
	require.NoError(t, err)
	second, err = c.Attempts.Wait(ctx, second.ID, &WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Timeout: 30 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, "success", second.State())
	assert.Equal(t, jobs+1, emu.JobCount(), "the query ran once: the retry restored it")
	assert.Equal(t, first.SessionID, second.SessionID)
	assert.True(t, strings.Contains(string(rawGet(t, base, "/api/attempts/"+first.ID+"/retries")), `"index":2`))
}

// tarOf archives files with the client's own Archive.
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, writeFile(filepath.Join(dir, name), content))
	}
	data, _, err := Archive(dir)
	require.NoError(t, err)
	return data
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

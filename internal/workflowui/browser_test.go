package workflowui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromium finds a Chromium or Chrome binary: $TDCTL_CHROMIUM, else the
// usual names on PATH. The test is skipped, saying so, when there is none.
func chromium(t *testing.T) string {
	if p := os.Getenv("TDCTL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping the browser test: no chromium found (apt-get install chromium, which .ci/run does, or set TDCTL_CHROMIUM to a Chrome/Chromium binary)")
	return ""
}

// browser starts a headless Chromium with a 1200x800 window.
func browser(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1200, 800),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// The acceptance, in a real browser: a 150-task run with 2
// failures lists 150 tasks, the failure filter shows exactly the 2, the
// jump lands on the first failure, clicking a task opens its own log (no
// other task's lines), the whole-run log has one section per task, and a
// live run's page changes state without a reload. UPDATE_SCREENSHOT=1
// writes the run page to docs/workflow-ui.png (the README shows it).
func TestInBrowser(t *testing.T) {
	ctx := browser(t)
	runs := t.TempDir()
	sum := fixtureRun(t, runs)
	base := serve(t, runs)
	runURL := base + "/runs/" + sum.RunID

	do(t, ctx, chromedp.EmulateViewport(1200, 800), chromedp.Navigate(runURL), chromedp.WaitVisible(chromedp.ID("rows")))
	assert.Equal(t, 150, eval[int](t, ctx, `document.querySelectorAll('#rows tr.task').length`), "the run page lists every task")
	assert.Equal(t, 2, eval[int](t, ctx, `document.querySelectorAll('#rows tr.task[data-state=error]').length`))
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NotEmpty(t, shot)
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		require.NoError(t, os.WriteFile(filepath.Join("..", "..", "docs", "workflow-ui.png"), shot, 0o644))
	}

	// jump to the first failure: the URL's fragment is that task's row
	do(t, ctx, chromedp.Click(chromedp.ID("first-failure")))
	hash := eval[string](t, ctx, `location.hash`)
	assert.NotEmpty(t, hash)
	assert.Equal(t, "error", eval[string](t, ctx, `document.querySelector(location.hash).dataset.state`))

	// the failure filter, then a click on the first failed task
	do(t, ctx, chromedp.Click(chromedp.ID("filter-failed")), chromedp.WaitVisible(chromedp.CSS("#filter-failed.on")))
	names := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#rows tr.task a.task-link')).map(a => a.textContent)`)
	require.Len(t, names, 2, "the failure filter shows exactly the 2 failed tasks")
	var failed []string
	for _, n := range names {
		failed = append(failed, taskOf(n))
	}
	assert.ElementsMatch(t, failingTasks, failed)
	do(t, ctx, chromedp.Click(chromedp.CSS("#rows tr.task a.task-link")), chromedp.WaitVisible(chromedp.ID("log")))
	logText := eval[string](t, ctx, `document.getElementById('log').textContent`)
	assert.Contains(t, eval[string](t, ctx, `location.pathname`), "/tasks/")
	assert.Equal(t, []string{taskOf(names[0])}, uniq(taskIDs.FindAllString(logText, -1)), "the task's page shows its own lines only:\n%s", logText)
	assert.Contains(t, logText, "error: script exited with code")

	// the whole run's log: one section per task record, each its own lines
	do(t, ctx, chromedp.Navigate(runURL+"/log#log-10"), chromedp.WaitVisible(chromedp.ID("log-10")))
	assert.Equal(t, len(sum.Tasks), eval[int](t, ctx, `document.querySelectorAll('section').length`))
	bad := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('section')).filter(s => {
		const ids = new Set(s.querySelector('pre').textContent.match(/task-\d{3}/g) || []);
		return ids.size > 1;
	}).map(s => s.id)`)
	assert.Empty(t, bad, "sections holding another task's lines")

	// a live run: its page changes state in place when the waiting task ends
	id, flag, done := startLive(t, runs)
	do(t, ctx, chromedp.Navigate(base+"/runs/"+id), chromedp.WaitVisible(chromedp.ID("run-state")))
	assert.Equal(t, "running", eval[string](t, ctx, `document.getElementById('run-state').textContent`))
	assert.Contains(t, eval[string](t, ctx, `window.notReloaded = "yes"; document.getElementById("live").textContent`), "live")
	require.NoError(t, os.WriteFile(flag, nil, 0o600))
	require.NoError(t, <-done)
	done <- nil
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#run-state.st-success")))
	assert.Equal(t, "success", eval[string](t, ctx, `document.getElementById('run-state').textContent`))
	assert.Equal(t, "yes", eval[string](t, ctx, `window.notReloaded || "reloaded"`), "the page changed without a reload")
	taskState := eval[string](t, ctx, `Array.from(document.querySelectorAll('#rows tr.task')).map(r => r.dataset.state).join(",")`)
	assert.Equal(t, "success,success,success", taskState)
	assert.False(t, strings.Contains(taskState, "running"))
}

package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/workflow"
)

// requireProject is a project directory with the files of digdag's
// acceptance/require fixtures and one runs directory for all its runs.
type requireProject struct {
	dir, runs string
	ops       map[string]workflow.Operator // nil: Operators(nil)
}

func newRequireProject(t *testing.T, files map[string]string) *requireProject {
	p := &requireProject{dir: t.TempDir()}
	p.runs = filepath.Join(p.dir, ".runs")
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(p.dir, name), []byte(body), 0o644))
	}
	return p
}

func (p *requireProject) run(t *testing.T, name string, session time.Time, params map[string]any) (*workflow.Summary, string, error) {
	t.Helper()
	wf, err := workflow.ParseFile(filepath.Join(p.dir, name+".dig"))
	require.NoError(t, err)
	var out bytes.Buffer
	ops := p.ops
	if ops == nil {
		ops = Operators(nil)
	}
	r := &workflow.Runner{Operators: ops, Params: params, SessionTime: session, RunsDir: p.runs, Output: &out}
	sum, err := r.Run(context.Background(), wf)
	return sum, out.String(), err
}

// runsOf counts the runs of workflow name at session time t.
func (p *requireProject) runsOf(t *testing.T, name string, session time.Time) int {
	ids, err := workflow.RunIDs(p.runs)
	require.NoError(t, err)
	n := 0
	for _, id := range ids {
		s, err := workflow.LoadSummary(p.runs, id)
		require.NoError(t, err)
		if s.Workflow == name && s.SessionTime.Equal(session) {
			n++
		}
	}
	return n
}

// digdag's RequireIT.testRequire, testRequireFailsWhenDependentFails and
// testRequireSucceedsWhenDependentFailsButIgnoreFailureIsSet.
func TestRequireLikeDigdagRequireIT(t *testing.T) {
	session := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := newRequireProject(t, map[string]string{
		"parent.dig":                "+require:\n  require>: child\n",
		"child.dig":                 "+hello:\n  sh>: touch child.out\n",
		"parent_fail.dig":           "+require:\n  require>: fail\n",
		"parent_ignore_failure.dig": "+require:\n  require>: fail\n  ignore_failure: true\n",
		"fail.dig":                  "+fail:\n  fail>: expected failure\n",
	})
	_, out, err := p.run(t, "parent", session, nil)
	require.NoError(t, err, out)
	assert.True(t, exists(p.dir, "child.out"))
	assert.Equal(t, 1, p.runsOf(t, "child", session), "child ran as its own session")
	// the session is done: a second require> does not run it again
	_, out, err = p.run(t, "parent", session, nil)
	require.NoError(t, err, out)
	assert.Equal(t, 1, p.runsOf(t, "child", session))

	_, _, err = p.run(t, "parent_fail", session, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Dependent workflow failed.")
	_, out, err = p.run(t, "parent_ignore_failure", session, nil)
	require.NoError(t, err, out)
}

// digdag's RequireIT.testRerunOnParam (parent_rerun_on.dig,
// child_rerun_on.dig): whether require> runs the child again after a run
// of it for the same session, and whether the parent succeeds.
func TestRequireRerunOnLikeDigdagRequireIT(t *testing.T) {
	p := newRequireProject(t, map[string]string{
		"parent.dig": "+require:\n  require>: child\n  rerun_on: ${param_rerun_on}\n  params:\n    child_fail: ${child_fail}\n",
		"child.dig":  "+t1:\n  if>: ${child_fail===\"yes\"}\n  _do:\n    fail>: child failed\n  _else_do:\n    echo>: child succeed\n",
	})
	for i, c := range []struct {
		rerunOn       string
		previousFail  bool
		parentSucceed bool
		childRuns     int
	}{
		{"none", false, true, 1},
		{"none", true, false, 1},
		{"all", false, true, 2},
		{"all", true, true, 2},
		{"failed", true, true, 2},
		{"failed", false, true, 1},
	} {
		session := time.Date(2020, 5, 28, 12, 34, i, 0, time.UTC)
		childFail := map[bool]string{true: "yes", false: "no"}[c.previousFail]
		_, _, err := p.run(t, "child", session, map[string]any{"child_fail": childFail})
		assert.Equal(t, c.previousFail, err != nil, "case %d", i)
		_, out, err := p.run(t, "parent", session, map[string]any{"param_rerun_on": c.rerunOn, "child_fail": "no"})
		assert.Equal(t, c.parentSucceed, err == nil, "case %d: %v %s", i, err, out)
		assert.Equal(t, c.childRuns, p.runsOf(t, "child", session), "case %d", i)
	}
}

// require> settings are checked before anything runs.
func TestRequireCheck(t *testing.T) {
	ops := Operators(nil)
	for dig, want := range map[string]string{
		"+r:\n  require>: missing\n":                       "wf.dig:2: +wf+r: require> missing: no workflow missing.dig in",
		"+r:\n  require>: wf\n  rerun_on: sometimes\n":     "require> rerun_on must be none, failed or all (got \"sometimes\")",
		"+r:\n  require>: wf\n  project_id: 3\n":           "project_id is a digdag require> setting tdctl does not support",
		"+r:\n  require>: wf\n  session_time: yesterday\n": "require> session_time must be a time with its zone",
		"+r:\n  require>: wf\n  ignore_failur: true\n":     "unknown require> key ignore_failur (did you mean ignore_failure?)",
		"+r:\n  require>: wf\n  ignore_failure: maybe\n":   "require> ignore_failure must be true or false",
	} {
		err := checkWorkflow(t, dig, nil, ops)
		require.Error(t, err, dig)
		assert.Contains(t, err.Error(), want, dig)
	}
}

// A workflow that requires itself, directly or through another, for the
// same session would wait for itself forever: it fails instead.
func TestRequireCycleFails(t *testing.T) {
	session := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := newRequireProject(t, map[string]string{
		"a.dig": "+r:\n  require>: b\n",
		"b.dig": "+r:\n  require>: a\n",
		"c.dig": "+r:\n  require>: c\n",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 2)
	go func() { _, _, err := p.run(t, "a", session, nil); done <- err }()
	go func() { _, _, err := p.run(t, "c", session, nil); done <- err }()
	for range 2 {
		select {
		case err := <-done:
			require.Error(t, err)
		case <-ctx.Done():
			t.Fatal("require> cycle hung")
		}
	}
	_, _, err := p.run(t, "c", session.Add(time.Hour), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "require> c: the workflow requires itself")
}

// digdag's require.md: a session of the required workflow still running is
// waited for, and then counts as its run (rerun_on: none).
func TestRequireWaitsForARunningSession(t *testing.T) {
	session := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := newRequireProject(t, map[string]string{
		"parent.dig": "+r:\n  require>: child\n",
		"child.dig":  "+hello:\n  sh>: touch child.out\n",
	})
	p.ops = Operators(nil)
	p.ops["require"] = Require{Poll: 20 * time.Millisecond}
	// a run of child at that session, "running" in this (live) process
	runDir := filepath.Join(p.runs, "20261201T000000Z-aaaaaa")
	require.NoError(t, os.MkdirAll(runDir, 0o700))
	write := func(state string) {
		sum := workflow.Summary{RunID: "20261201T000000Z-aaaaaa", Workflow: "child", Path: filepath.Join(p.dir, "child.dig"),
			SessionTime: session, StartedAt: time.Now(), State: state, PID: os.Getpid(), Tasks: []*workflow.TaskRecord{}}
		data, err := json.Marshal(&sum)
		require.NoError(t, err)
		// whole, as the runner writes it: a reader never sees half of it
		tmp := filepath.Join(runDir, ".summary.tmp")
		require.NoError(t, os.WriteFile(tmp, data, 0o600))
		require.NoError(t, os.Rename(tmp, filepath.Join(runDir, "summary.json")))
	}
	write(workflow.StateRunning)
	go func() {
		time.Sleep(300 * time.Millisecond)
		write(workflow.StateSuccess)
	}()
	start := time.Now()
	_, out, err := p.run(t, "parent", session, nil)
	require.NoError(t, err, out)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "require> waited for the running session")
	assert.False(t, exists(p.dir, "child.out"), "the session that ended counts: no new run")
	assert.Contains(t, out, "waiting for child's running session")
}

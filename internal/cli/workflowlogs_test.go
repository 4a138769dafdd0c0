package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/workflow"
)

// A run record left saying "running" by a process that is gone is shown as
// interrupted, in so many words on a terminal.
func TestWorkflowLogsOfAnInterruptedRun(t *testing.T) {
	e, _, _ := wfEnv(t)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	host, _ := os.Hostname()
	runs := e.vars["TDCTL_RUNS_DIR"]
	rec := workflow.Summary{RunID: "20261125T210000Z-abcdef", State: workflow.StateRunning, PID: dead.Process.Pid, Host: host,
		Dir: filepath.Join(runs, "20261125T210000Z-abcdef"), Tasks: []*workflow.TaskRecord{
			{Path: "+wf+a", State: workflow.StateSuccess, Log: "a.log"}, {Path: "+wf+b", State: workflow.StateRunning, Log: "b.log"}}}
	data, err := json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(rec.Dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(rec.Dir, "summary.json"), data, 0o600))

	e.tty = true
	r := e.run("workflow", "logs")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^\s*\+wf\+b\s+interrupted\s`, r.stdout)
	assert.Contains(t, r.stdout, "run 20261125T210000Z-abcdef: interrupted after 0s: the run's process (pid ")
	assert.Contains(t, r.stdout, ") ended before the run did (killed?); tasks shown as interrupted did not finish (logs: "+rec.Dir+")")
}

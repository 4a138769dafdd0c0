package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The run record is on disk while the run goes: a run's finished tasks and
// the one running can be read before it ends.
func TestRunRecordIsWrittenAsTasksProgress(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	started, release := make(chan struct{}), make(chan struct{})
	r.Operators["block"] = OperatorFunc(func(context.Context, *TaskContext) (*Result, error) {
		close(started)
		<-release
		return nil, nil
	})
	wf := parse(t, "+a:\n  echo>: one\n+b:\n  block>: x\n")
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), wf)
		done <- err
	}()
	<-started
	var sum *Summary
	require.Eventually(t, func() bool {
		var err error
		sum, err = LoadSummary(r.RunsDir, "")
		return err == nil && len(sum.Tasks) == 2
	}, 5*time.Second, 20*time.Millisecond, "the record shows both tasks before the run ends")
	assert.Equal(t, StateRunning, sum.State)
	assert.Equal(t, os.Getpid(), sum.PID)
	assert.Equal(t, "+test+a", sum.Tasks[0].Path)
	assert.Equal(t, StateSuccess, sum.Tasks[0].State)
	assert.Equal(t, StateRunning, sum.Tasks[1].State)

	close(release)
	require.NoError(t, <-done)
	sum, err := LoadSummary(r.RunsDir, "")
	require.NoError(t, err)
	assert.Equal(t, StateSuccess, sum.State)
	assert.Equal(t, StateSuccess, sum.Tasks[1].State)
	leftovers, _ := filepath.Glob(filepath.Join(sum.Dir, ".*.tmp"))
	assert.Empty(t, leftovers, "no temporary record left behind")
}

// A record left saying running by a process that is gone reads as
// interrupted, with the unfinished tasks interrupted.
func TestRunRecordOfADeadProcessIsInterrupted(t *testing.T) {
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	dir := t.TempDir()
	host, _ := os.Hostname()
	rec := Summary{RunID: "20261125T210000Z-abcdef", State: StateRunning, PID: dead.Process.Pid, Host: host, Tasks: []*TaskRecord{
		{Path: "+wf+a", State: StateSuccess}, {Path: "+wf+b", State: StateRunning}}}
	data, err := json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, rec.RunID), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, rec.RunID, "summary.json"), data, 0o600))

	sum, err := LoadSummary(dir, "")
	require.NoError(t, err)
	assert.Equal(t, StateInterrupted, sum.State)
	assert.Contains(t, sum.Error, "ended before the run did")
	assert.Equal(t, StateSuccess, sum.Tasks[0].State)
	assert.Equal(t, StateInterrupted, sum.Tasks[1].State)

	// the same record from a live process still reads as running
	rec.PID = os.Getpid()
	data, _ = json.Marshal(rec)
	require.NoError(t, os.WriteFile(filepath.Join(dir, rec.RunID, "summary.json"), data, 0o600))
	sum, err = LoadSummary(dir, rec.RunID)
	require.NoError(t, err)
	assert.Equal(t, StateRunning, sum.State)
}

// A run ends when its last task does: a record write still waiting for its
// turn is dropped for the final one (before, every run waited out up to
// SaveInterval, a quarter of a second, after its last task).
func TestRunDoesNotWaitForAScheduledRecordWrite(t *testing.T) {
	old := saveInterval
	saveInterval = time.Hour
	defer func() { saveInterval = old }()
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, "+a:\n  echo>: one\n+b:\n  echo>: two\n+c:\n  echo>: three\n")
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), wf)
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the run waited for a record write scheduled an hour later")
	}
	sum, err := LoadSummary(r.RunsDir, "")
	require.NoError(t, err)
	assert.Equal(t, StateSuccess, sum.State)
	require.Len(t, sum.Tasks, 3)
	for _, task := range sum.Tasks {
		assert.Equal(t, StateSuccess, task.State, task.Path)
	}
}

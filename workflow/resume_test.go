package workflow

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counting is a runner whose operators count their runs per task instance;
// fail> fails while *failing is true.
func counting(t *testing.T, failing *bool) (*Runner, map[string]int, *bytes.Buffer) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	var mu sync.Mutex
	runs := map[string]int{}
	count := func(tc *TaskContext) {
		mu.Lock()
		runs[tc.Instance]++
		mu.Unlock()
	}
	r.Operators["set"] = definer{OperatorFunc(func(ctx context.Context, tc *TaskContext) (*Result, error) {
		count(tc)
		return storeOp{}.Run(ctx, tc)
	}), storeOp{}.Defines}
	r.Operators["echo"] = OperatorFunc(func(ctx context.Context, tc *TaskContext) (*Result, error) {
		count(tc)
		return echoOp(ctx, tc)
	})
	r.Operators["fail"] = OperatorFunc(func(ctx context.Context, tc *TaskContext) (*Result, error) {
		count(tc)
		if *failing {
			return nil, errors.New("boom")
		}
		return nil, nil
	})
	return r, runs, &out
}

// definer is an operator with a Defines of its own.
type definer struct {
	OperatorFunc
	defines func(*Task) []string
}

func (d definer) Defines(t *Task) []string { return d.defines(t) }

// digdag's `retry --resume` over a parallel group and a for_each loop: the
// branch and iterations that succeeded are restored, with what they stored.
func TestResumeRestoresParallelBranchesAndLoopIterations(t *testing.T) {
	failing := true
	r, runs, out := counting(t, &failing)
	wf := parse(t, `+loop:
  for_each>:
    n: [1, 2]
  _do:
    set>: {last_n: "${n}"}
+par:
  _parallel: true
  +a:
    set>: {a: A}
  +b:
    fail>: x
+after:
  echo>: ${last_n} ${a}
`)
	prev, err := r.Run(context.Background(), wf)
	require.Error(t, err)
	assert.Equal(t, 1, runs["+test+par+a"])

	failing = false
	out.Reset()
	sum, err := r.Resume(context.Background(), wf, prev, ResumeOptions{KeepSession: true})
	require.NoError(t, err)
	assert.Equal(t, 1, runs["+test+par+a"], "the branch that succeeded is restored")
	assert.Equal(t, 2, runs["+test+par+b"], "the failed branch runs again")
	assert.Equal(t, 1, runs["+test+loop^sub+for-0=n=0=1"], "loop iterations are restored")
	assert.Contains(t, out.String(), "+test+after: 2 A\n")
	assert.Equal(t, prev.RunID, sum.ResumedFrom)
	assert.Equal(t, prev.SessionUUID, sum.SessionUUID)
	assert.Equal(t, prev.SessionTime, sum.SessionTime)

	// --resume-from +b: +a is a parallel sibling, not upstream: it runs too
	_, err = r.Resume(context.Background(), wf, prev, ResumeOptions{From: "+b", Strict: true})
	require.NoError(t, err)
	assert.Equal(t, 2, runs["+test+par+a"])
	assert.Equal(t, 1, runs["+test+loop^sub+for-0=n=0=1"])
}

// A task that succeeded on its second attempt (_retry) is restored by its
// digdag name, without the attempt mark.
func TestResumeRestoresARetriedTask(t *testing.T) {
	failing := false
	r, runs, _ := counting(t, &failing)
	n := 0
	r.Operators["flaky"] = definer{OperatorFunc(func(ctx context.Context, tc *TaskContext) (*Result, error) {
		n++
		if n == 1 {
			return nil, errors.New("first try")
		}
		return &Result{Store: map[string]any{"got": "it"}}, nil
	}), func(*Task) []string { return []string{"got"} }}
	wf := parse(t, "+f:\n  _retry: 1\n  flaky>: x\n+g:\n  fail>: x\n+h:\n  echo>: ${got}\n")
	failing = true
	prev, err := r.Run(context.Background(), wf)
	require.Error(t, err)
	require.Equal(t, 2, n)
	failing = false
	var out bytes.Buffer
	r.Output = &out
	_, err = r.Resume(context.Background(), wf, prev, ResumeOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, n, "not run again")
	assert.Equal(t, 2, runs["+test+g"])
	assert.Contains(t, out.String(), "+test+h: it\n")
}

// A store holding a secret is never written to the record: the task runs
// again on resume.
func TestResumeNeverRecordsASecretStore(t *testing.T) {
	failing := true
	r, runs, _ := counting(t, &failing)
	wf := parse(t, "+s:\n  set>: {token: \"${secret:password}\"}\n+p:\n  set>: {plain: x}\n+f:\n  fail>: x\n")
	prev, err := r.Run(context.Background(), wf)
	require.Error(t, err)
	data, err := os.ReadFile(filepath.Join(prev.Dir, "summary.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(data), "pa55w0rd-xyz")
	assert.Contains(t, string(data), `"store_withheld": true`)
	failing = false
	_, err = r.Resume(context.Background(), wf, prev, ResumeOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, runs["+test+s"], "its store was withheld: it runs again")
	assert.Equal(t, 1, runs["+test+p"])
}

// A -p param equal to a secret the workflow names is withheld from the
// run record from its first write on (found by review: the record was
// written before any ${secret:...} was read).
func TestRunRecordWithholdsAParamEqualToASecret(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Params = map[string]any{"tok": "pa55w0rd-xyz", "plain": "x"}
	r.Operators["slow"] = OperatorFunc(func(ctx context.Context, tc *TaskContext) (*Result, error) {
		files, _ := filepath.Glob(filepath.Join(r.RunsDir, "*", "summary.json"))
		if len(files) != 1 {
			return nil, errors.New("no run record yet")
		}
		data, err := os.ReadFile(files[0])
		if err == nil && strings.Contains(string(data), "pa55w0rd-xyz") {
			return nil, errors.New("the record holds the secret while the run goes on")
		}
		return &Result{}, err
	})
	wf := parse(t, "+first:\n  slow>: x\n+show:\n  echo>: ${secret:password} ${plain}\n")
	sum, err := r.Run(context.Background(), wf)
	require.NoError(t, err, out.String())
	data, err := os.ReadFile(filepath.Join(sum.Dir, "summary.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(data), "pa55w0rd-xyz")
	assert.Contains(t, string(data), `"tok"`, "named among the withheld params")
}

func TestResumeTaskNames(t *testing.T) {
	wf := parse(t, "+g:\n  +load:\n    echo>: x\n+h:\n  +load:\n    echo>: y\n")
	tk, err := FindTaskByName(wf, "+g+load")
	require.NoError(t, err)
	assert.Equal(t, "+test+g+load", tk.Path)
	_, err = FindTaskByName(wf, "+load")
	require.ErrorContains(t, err, "+load names 2 tasks (+test+g+load, +test+h+load): give more of the name")
	_, err = FindTaskByName(wf, "+lod")
	require.ErrorContains(t, err, "no task +lod in workflow test (did you mean +test+g+load?)")
	r := newRunner(t, &bytes.Buffer{})
	_, err = r.Resume(context.Background(), wf, nil, ResumeOptions{From: "+g", Goal: "+h"})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "cannot be combined"))
}

// An _error task that ran for the failed task runs again when the task
// fails again on resume: it is never restored.
func TestResumeRunsErrorTasksAgain(t *testing.T) {
	failing := true
	r, runs, _ := counting(t, &failing)
	wf := parse(t, "+f:\n  fail>: x\n  _error:\n    echo>: cleanup\n")
	prev, err := r.Run(context.Background(), wf)
	require.Error(t, err)
	require.Equal(t, 1, runs["+test+f^error"])
	_, err = r.Resume(context.Background(), wf, prev, ResumeOptions{})
	require.Error(t, err)
	assert.Equal(t, 2, runs["+test+f"])
	assert.Equal(t, 2, runs["+test+f^error"])
}

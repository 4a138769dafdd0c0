package workflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoOp writes its command to the log.
var echoOp = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
	fmt.Fprintln(tc.Log, Format(tc.Command))
	return nil, nil
})

// storeOp stores its params (set>: {k: v}).
type storeOp struct{}

func (storeOp) Run(_ context.Context, tc *TaskContext) (*Result, error) {
	m, _ := tc.Command.(map[string]any)
	return &Result{Store: m}, nil
}

func (storeOp) Defines(t *Task) []string {
	var out []string
	if t.Command != nil {
		for i := 0; i+1 < len(t.Command.Content); i += 2 {
			out = append(out, t.Command.Content[i].Value)
		}
	}
	return out
}

// getOp is a param_get> over a map: {store_key: param_name}.
type getOp struct{ store map[string]string }

func (g getOp) Run(_ context.Context, tc *TaskContext) (*Result, error) {
	out := map[string]any{}
	for k, name := range tc.Command.(map[string]any) {
		out[Format(name)] = g.store[k]
	}
	time.Sleep(time.Duration(len(out)) * time.Millisecond)
	return &Result{Store: out}, nil
}

func (getOp) Defines(t *Task) []string {
	var out []string
	for i := 0; i+1 < len(t.Command.Content); i += 2 {
		out = append(out, t.Command.Content[i+1].Value)
	}
	return out
}

func newRunner(t *testing.T, out *bytes.Buffer) *Runner {
	return &Runner{
		Operators: map[string]Operator{"echo": echoOp, "set": storeOp{}, "fail": OperatorFunc(func(context.Context, *TaskContext) (*Result, error) {
			return nil, errors.New("boom")
		})},
		Secrets:     SecretMap{"password": "pa55w0rd-xyz"},
		RunsDir:     t.TempDir(),
		Output:      out,
		SessionTime: time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC),
	}
}

func parse(t *testing.T, src string) *Workflow {
	t.Helper()
	wf, err := Parse("test.dig", []byte(src))
	require.NoError(t, err)
	return wf
}

func TestParseErrorsCarryLines(t *testing.T) {
	_, err := Parse("bad.dig", []byte("+a:\n  echo>: hi\n  sh>: x\n+b:\n  _bogus: 1\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.dig:3: task +a has two operators")
	assert.Contains(t, err.Error(), "bad.dig:5: unknown directive _bogus")

	_, err = Parse("y.dig", []byte("+a:\n  echo>: [unclosed\n"))
	require.Error(t, err)
	assert.Regexp(t, `^y\.dig:\d+: bad YAML`, err.Error())

	_, err = Parse("z.dig", []byte("+a:\n  database: x\n"))
	require.ErrorContains(t, err, "z.dig:2: +a: parameter \"database\" given but the task has no operator")
}

func TestCheckFindsEverythingBeforeRunning(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, `
+first:
  echo>: ${not_defined}
+second:
  nosuch>: x
+third:
  echo>: ${secret:nope}
+fourth:
  set>:
    later: 1
+fifth:
  echo>: ${later} ${session_date} ${secret:password}
`)
	err := r.Check(wf)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "test.dig:3: +test+first: param ${not_defined} is not defined")
	assert.Contains(t, msg, "test.dig:5: +test+second: unknown operator nosuch>")
	assert.Contains(t, msg, "test.dig:7: +test+third: secret \"nope\" is not set: export TDCTL_SECRET_NOPE")
	assert.NotContains(t, msg, "later")
	_, err = r.Run(context.Background(), wf)
	require.Error(t, err)
	assert.Empty(t, out.String(), "nothing ran")
}

func TestStoredParamsFlowToLaterTasks(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, `
_export:
  td:
    database: www_access
+a:
  set>:
    td.last_job_id: "42"
+group:
  +b:
    echo>: job ${td.last_job_id} on ${td.database} at ${session_time}
  +c:
    set>:
      x: from-c
+d:
  echo>: ${x}
`)
	sum, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "+test+group+b: job 42 on www_access at 2026-11-25T21:00:00+00:00\n")
	assert.Contains(t, out.String(), "+test+d: from-c\n")
	assert.Equal(t, StateSuccess, sum.State)
	require.Len(t, sum.Tasks, 4)
	for _, rec := range sum.Tasks {
		data, err := os.ReadFile(rec.Log)
		require.NoError(t, err)
		if rec.Path == "+test+d" {
			assert.Equal(t, "from-c\n", string(data), "one log per task")
		}
	}
	loaded, err := LoadSummary(r.RunsDir, "latest")
	require.NoError(t, err)
	assert.Equal(t, sum.RunID, loaded.RunID)
	assert.Len(t, loaded.FindTask("+d"), 1)
}

func TestParallelForEachParamGetBindsPerIteration(t *testing.T) {
	// The seed's slide-18 workflow, plus a variant where every iteration
	// fetches a different key into the same param name.
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Operators["param_get"] = getOp{store: map[string]string{"key": "K", "value1": "v1", "value2": "v2", "value3": "v3", "value4": "v4", "value5": "v5"}}
	wf := parse(t, `
+loop_task:
  for_each>:
    value: [value1, value2, value3, value4, value5]
  _parallel: true
  _do:
    param_get>:
      key: ${value}
    +show_value:
      echo>: ${value}
+loop_fetch:
  for_each>:
    value: [value1, value2, value3, value4, value5]
  _parallel: true
  _do:
    param_get>:
      ${value}: fetched
    +show_fetched:
      echo>: ${value}=${fetched}
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var shown, fetched []string
	for _, l := range lines {
		if strings.Contains(l, "+show_value: ") {
			shown = append(shown, l[strings.LastIndex(l, ": ")+2:])
		}
		if strings.Contains(l, "+show_fetched: ") {
			fetched = append(fetched, l[strings.LastIndex(l, ": ")+2:])
		}
	}
	sort.Strings(shown)
	sort.Strings(fetched)
	assert.Equal(t, []string{"value1", "value2", "value3", "value4", "value5"}, shown)
	assert.Equal(t, []string{"value1=v1", "value2=v2", "value3=v3", "value4=v4", "value5=v5"}, fetched)
}

func TestParallelMergeIsDeclarationOrder(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	var n atomic.Int32
	r.Operators["slowset"] = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		// first declared branch finishes last
		d := 30 - 10*int(n.Add(1))
		time.Sleep(time.Duration(max(d, 0)) * time.Millisecond)
		return &Result{Store: map[string]any{"winner": Format(tc.Command)}}, nil
	})
	wf := parse(t, `
+p:
  _parallel: true
  +one:
    slowset>: one
  +two:
    slowset>: two
+show:
  echo>: ${winner}
`)
	_, err := r.Run(context.Background(), wf)
	require.Error(t, err, "winner is not statically defined: slowset has no Defines")
	r.Params = map[string]any{"winner": "none"}
	_, err = r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "+test+show: two\n")
}

func TestErrorTaskAndRetry(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	var tries atomic.Int32
	r.Operators["flaky"] = OperatorFunc(func(context.Context, *TaskContext) (*Result, error) {
		if tries.Add(1) < 3 {
			return nil, errors.New("transient")
		}
		return nil, nil
	})
	wf := parse(t, `
+retried:
  _retry: 2
  flaky>:
+broken:
  fail>:
  _error:
    +notify:
      echo>: failed ${error.task}
+never:
  echo>: not reached
`)
	sum, err := r.Run(context.Background(), wf)
	require.ErrorContains(t, err, "boom")
	assert.EqualValues(t, 3, tries.Load())
	assert.Contains(t, out.String(), "failed +test+broken")
	assert.NotContains(t, out.String(), "not reached")
	assert.Equal(t, StateError, sum.State)
	states := map[string]string{}
	for _, rec := range sum.Tasks {
		states[rec.Path] = rec.State
	}
	assert.Equal(t, StateError, states["+test+broken"])
	assert.Equal(t, StateSuccess, states["+test+retried"])
}

func TestSecretsNeverReachLogs(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, `
+a:
  echo>: mysql://user:${secret:password}@host/db/table and raw ${secret:password}
+b:
  fail>:
  note: ${secret:password}
`)
	sum, err := r.Run(context.Background(), wf)
	require.Error(t, err)
	assert.NotContains(t, out.String(), "pa55w0rd-xyz")
	assert.Contains(t, out.String(), "raw ***")
	for _, rec := range sum.Tasks {
		data, _ := os.ReadFile(rec.Log)
		assert.NotContains(t, string(data), "pa55w0rd-xyz")
	}
	summary, _ := os.ReadFile(filepath.Join(sum.Dir, "summary.json"))
	assert.NotContains(t, string(summary), "pa55w0rd-xyz")
}

func TestForEachCartesianSequential(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	var mu sync.Mutex
	var seen []string
	r.Operators["rec"] = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		mu.Lock()
		seen = append(seen, Format(tc.Command))
		mu.Unlock()
		return nil, nil
	})
	wf := parse(t, `
+loop:
  for_each>:
    a: [1, 2]
    b: [x, y]
  _do:
    rec>: ${a}${b}
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, []string{"1x", "1y", "2x", "2y"}, seen)
}

func TestInterpolationKeepsTypes(t *testing.T) {
	s := Scope{"list": []any{"a", "b"}, "n": int64(3)}
	v, err := interp("${list}", s, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []any{"a", "b"}, v)
	v, err = interp("n=${n} list=${list}", s, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, `n=3 list=["a","b"]`, v)
	_, err = interp("${missing}", s, nil, nil)
	var me *MissingError
	require.True(t, errors.As(err, &me))
	assert.Equal(t, "missing", me.Name)
}

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
    +get:
      param_get>:
        key: ${value}
    +show_value:
      echo>: ${value}
+loop_fetch:
  for_each>:
    value: [value1, value2, value3, value4, value5]
  _parallel: true
  _do:
    +get:
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
	r.Operators["slowset"] = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		// the first declared branch finishes last
		if Format(tc.Command) == "one" {
			time.Sleep(50 * time.Millisecond)
		}
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
	assert.Equal(t, StateError, states["+test+retried"])
	assert.Equal(t, StateError, states["+test+retried#2"])
	assert.Equal(t, StateSuccess, states["+test+retried#3"], "each attempt is its own task instance")
}

func TestGroupRetryGivesChildrenNewNames(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	var mu sync.Mutex
	var names, taskNames []string
	var tries atomic.Int32
	r.Operators["flaky"] = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		mu.Lock()
		names = append(names, tc.Instance)
		taskNames = append(taskNames, Format(tc.Scope["task_name"]))
		mu.Unlock()
		if tries.Add(1) < 2 {
			return nil, errors.New("transient")
		}
		return nil, nil
	})
	wf := parse(t, "+g:\n  _retry: 1\n  +q:\n    flaky>:\n")
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, []string{"+test+g+q", "+test+g#2+q"}, names, "operators deriving idempotency keys from Instance issue new work on a retry")
	// digdag's retried task keeps its name
	assert.Equal(t, []string{"+test+g+q", "+test+g+q"}, taskNames)
}

func TestNestedParallelDoesNotDeadlock(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.MaxParallel = 2
	wf := parse(t, `
+outer:
  for_each>:
    table: [a, b, c, d, e, f, g, h, i, j]
  _parallel: true
  _do:
    +pair:
      _parallel: true
      +x:
        echo>: x ${table}
      +y:
        echo>: y ${table}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sum, err := r.Run(ctx, wf)
	require.NoError(t, err)
	assert.Len(t, sum.Tasks, 20)
}

func TestLogNamesNeverCollide(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	long := strings.Repeat("v", 300)
	wf := parse(t, "+a:\n  +b:\n    echo>: first\n+a_b:\n  echo>: second\n+l:\n  for_each>:\n    v: ["+long+", "+long+"]\n  _do:\n    echo>: ${v}\n")
	sum, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, rec := range sum.Tasks {
		assert.False(t, seen[rec.Log], "log %s reused", rec.Log)
		seen[rec.Log] = true
	}
	b1, _ := os.ReadFile(sum.Tasks[0].Log)
	b2, _ := os.ReadFile(sum.Tasks[1].Log)
	assert.Equal(t, "first\n", string(b1))
	assert.Equal(t, "second\n", string(b2))
}

func TestForEachWithSubtasksIsRejected(t *testing.T) {
	_, err := Parse("f.dig", []byte("+l:\n  for_each>:\n    v: [1]\n  _do:\n    echo>: ${v}\n  +after:\n    echo>: x\n"))
	require.ErrorContains(t, err, "f.dig:6: for_each> runs only its _do: block; move +after into _do")
}

func TestMultiLineSecretMasked(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n-----END KEY-----"
	r.Secrets = SecretMap{"key": pem}
	wf := parse(t, "+a:\n  echo>: ${secret:key}\n")
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.NotContains(t, out.String(), "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf")
}

func TestRunErrorKeepsItsCause(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Operators["block"] = OperatorFunc(func(ctx context.Context, _ *TaskContext) (*Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	sum, err := r.Run(ctx, parse(t, "+a:\n  block>:\n"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// stopped from outside: interrupted, not failed
	assert.Equal(t, StateInterrupted, sum.State)
	assert.Equal(t, StateInterrupted, sum.Tasks[0].State)
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

// validatingOp records the TaskContext Check gives its Validate and
// refuses a literal "bad" in its limit parameter.
type validatingOp struct{ seen *[]*TaskContext }

func (validatingOp) Run(context.Context, *TaskContext) (*Result, error) { return nil, nil }

func (v validatingOp) Validate(tc *TaskContext) error {
	*v.seen = append(*v.seen, tc)
	if tc.String("limit") == "bad" {
		return errors.New("limit must be a number")
	}
	return nil
}

func TestCheckRunsOperatorValidationOnLiteralValues(t *testing.T) {
	var out bytes.Buffer
	var seen []*TaskContext
	r := newRunner(t, &out)
	r.Operators["v"] = validatingOp{&seen}
	wf := parse(t, `
_export:
  n: 3
+first:
  echo>: runs first
+ok:
  v>: cmd ${n}
  limit: 10
  label: ${n}
  _k8s:
    image: alpine
    memory: ${n}Mi
+bad:
  v>: cmd
  limit: bad
`)
	err := r.Check(wf)
	require.EqualError(t, err, "test.dig:14: +test+bad: limit must be a number")
	require.Len(t, seen, 2)
	ok := seen[0]
	assert.Nil(t, ok.Command, "a command holding ${...} is not evaluated at check time")
	assert.Equal(t, map[string]bool{"": true, "label": true, "_k8s.memory": true}, ok.Dynamic)
	assert.Equal(t, map[string]any{"limit": int64(10)}, ok.Config)
	assert.Equal(t, map[string]any{"image": "alpine"}, ok.K8s)
	assert.True(t, ok.Has("label"), "a value known at run time only counts as set")
	assert.False(t, ok.Has("missing"))

	_, err = r.Run(context.Background(), wf)
	require.ErrorContains(t, err, "limit must be a number")
	assert.Empty(t, out.String(), "a mistake in a later task stops the run before the first task")
}

func TestCheckRejectsALiteralForEachValueThatIsNoList(t *testing.T) {
	r := newRunner(t, &bytes.Buffer{})
	wf := parse(t, "+l:\n  for_each>:\n    ok: [a, b]\n    json: '[1, 2]'\n    late: ${later}\n    v: 3\n  _do:\n    echo>: ${v}\n")
	r.Params = map[string]any{"later": "[1]"}
	require.EqualError(t, r.Check(wf), "test.dig:6: +test+l: for_each> v must be a list (got 3)")
}

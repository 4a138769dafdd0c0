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

// lines returns the output lines of the tasks whose path ends with suffix,
// without the prefix.
func linesOf(out, suffix string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if p, v, ok := strings.Cut(l, ": "); ok && strings.HasSuffix(p, suffix) {
			got = append(got, v)
		}
	}
	return got
}

// digdag's ConfigEvalEngine evaluates a task's keys in order, each seeing
// the ones before it; a key overriding an inherited param takes its place
// (digdag-core ConfigEvalEngine.evalObjectRecursive; RunParamsVisibilityIT's
// export_overwrite).
func TestOwnKeysVisibleInOrder(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Operators["show"] = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		tc.Log.Write([]byte(Format(tc.Command) + " | " + tc.String("b") + "\n"))
		return nil, nil
	})
	wf := parse(t, `
_export:
  msg: outer
+chain:
  a: one
  b: ${a}-two
  show>: ${b}
+override:
  show>: ${msg}
  msg: local
  b: ${msg}!
+after:
  echo>: ${msg}
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, []string{"one-two | one-two"}, linesOf(out.String(), "+chain"))
	assert.Equal(t, []string{"local | local!"}, linesOf(out.String(), "+override"))
	assert.Equal(t, []string{"outer"}, linesOf(out.String(), "+after"), "a task's own keys stay in it")

	// a key written after the one using it is not visible to it
	wf = parse(t, "+t:\n  show>: ${later}\n  later: x\n")
	err = r.Check(wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.dig:2: +test+t: param ${later} is not defined")
}

// An _export value is evaluated by each task that uses it, with that
// task's params: digdag merges exports unevaluated into each task's config
// (WorkflowExecutor.collectParams) and evaluates them there
// (OperatorManager.evalConfig). Today's stale ${td.last_job_id}.
func TestExportEvaluatedWhenUsed(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Params = map[string]any{"td.last_job_id": "0"}
	wf := parse(t, `
_export:
  job: ${td.last_job_id}
  label: job-${job}
+q1:
  set>:
    td.last_job_id: "1"
+show1:
  echo>: ${job} ${label}
+group:
  +q2:
    set>:
      td.last_job_id: "2"
  +show2:
    echo>: ${job} ${label}
+show3:
  echo>: ${job}
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, []string{"1 job-1"}, linesOf(out.String(), "+show1"))
	assert.Equal(t, []string{"2 job-2"}, linesOf(out.String(), "+show2"))
	assert.Equal(t, []string{"2"}, linesOf(out.String(), "+show3"))

	// without -p, the export's name is defined by the task before its use:
	// check accepts it; a use before that is reported, naming the export
	r.Params = nil
	require.NoError(t, r.Check(wf))
	wf = parse(t, "_export:\n  job: ${td.last_job_id}\n  unused: ${nowhere}\n+show:\n  echo>: ${job}\n+q:\n  set>:\n    td.last_job_id: \"1\"\n")
	err = r.Check(wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.dig:2: +test+show (through _export job): param ${td.last_job_id} is not defined")
	assert.Contains(t, err.Error(), "test.dig:3: +test _export unused: param ${nowhere} is not defined", "a name defined nowhere in the workflow is reported, used or not")

	// exports that refer to each other in a loop fail the task using them
	wf = parse(t, "_export:\n  a: ${b}\n  b: ${a}\n+show:\n  echo>: ${a}\n")
	_, err = r.Run(context.Background(), wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "_export a (test.dig:2): _export b (test.dig:3): it refers to a, which refers back to it")
}

// resetOp stores like set> and replaces the names in reset: whole, as
// digdag's TaskResult.resetStoreParams does for td.last_results.
type resetOp struct{}

func (resetOp) Run(_ context.Context, tc *TaskContext) (*Result, error) {
	m, _ := tc.Command.(map[string]any)
	return &Result{Store: map[string]any{"td.last_results": m}, Reset: []string{"td.last_results"}}, nil
}

func (resetOp) Defines(*Task) []string { return []string{"td.last_results"} }

// TdIT's td_store_last_result_twice: the second query's row replaces the
// first's (no column of the first survives), also across groups; an empty
// result gives {} (td_store_last_result_empty).
func TestResetReplacesStoredParam(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Operators["rows"] = resetOp{}
	wf := parse(t, `
+run1:
  rows>: {a: A1, b: B}
+g:
  +run2:
    rows>: {a: A2, d: D}
  +inner:
    echo>: ${td.last_results}
+post:
  echo>: ${td.last_results}
+empty:
  rows>: {}
+post_empty:
  echo>: ${td.last_results}
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, []string{`{"a":"A2","d":"D"}`}, linesOf(out.String(), "+inner"))
	assert.Equal(t, []string{`{"a":"A2","d":"D"}`}, linesOf(out.String(), "+post"))
	assert.Equal(t, []string{`{}`}, linesOf(out.String(), "+post_empty"))
}

// Params stored inside for_each> iterations reach the tasks after the loop
// (digdag collects the store params of an upstream task's whole subtree:
// TaskTree.getRecursiveParentsUpstreamChildrenIdListFromFar); the last
// iteration wins. Each iteration still starts from the loop's scope.
func TestForEachStoresReachTasksAfterLoop(t *testing.T) {
	for _, parallel := range []string{"false", "true", "{limit: 2}"} {
		t.Run(parallel, func(t *testing.T) {
			var out bytes.Buffer
			r := newRunner(t, &out)
			wf := parse(t, `
+loop:
  for_each>:
    v: [a, b, c]
  _parallel: `+parallel+`
  _do:
    +store:
      set>:
        last: ${v}
    +show:
      echo>: ${last}
+after:
  echo>: ${last}
`)
			_, err := r.Run(context.Background(), wf)
			require.NoError(t, err)
			shown := linesOf(out.String(), "+show")
			sort.Strings(shown)
			assert.Equal(t, []string{"a", "b", "c"}, shown, "each iteration sees its own")
			assert.Equal(t, []string{"c"}, linesOf(out.String(), "+after"))
		})
	}
}

// concurrency records how many tasks run at once, and the order they
// start and end in.
type concurrency struct {
	mu        sync.Mutex
	now, peak int
	events    []string
}

func (c *concurrency) op() Operator {
	return OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		c.mu.Lock()
		c.now++
		c.peak = max(c.peak, c.now)
		c.events = append(c.events, "start "+Format(tc.Command))
		c.mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		c.mu.Lock()
		c.now--
		c.events = append(c.events, "end "+Format(tc.Command))
		c.mu.Unlock()
		return &Result{Store: map[string]any{"v": tc.Command}}, nil
	})
}

// ParallelIT's parallel_limit: `_parallel: {limit: 2}` runs task1 and
// task2 together and task3 once both have ended (digdag's WorkflowCompiler
// chains each batch of N after the whole batch before; a later batch sees
// what the earlier ones stored). The same for for_each> iterations.
func TestParallelLimit(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	c := &concurrency{}
	r.Operators["work"] = c.op()
	r.Params = map[string]any{"v": "none"}
	wf := parse(t, `
+group1:
  _parallel:
    limit: 2
  +task1:
    work>: task1
  +task2:
    work>: task2
  +task3:
    work>: task3
  +task4:
    echo>: ${v}
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, 2, c.peak)
	i3 := indexOf(c.events, "start task3")
	assert.Greater(t, i3, indexOf(c.events, "end task1"))
	assert.Greater(t, i3, indexOf(c.events, "end task2"))
	assert.Equal(t, []string{"task2"}, linesOf(out.String(), "+task4"), "task4 runs with task3 and sees what task1 and task2 stored")

	c2 := &concurrency{}
	r.Operators["work"] = c2.op()
	wf = parse(t, "+loop:\n  for_each>:\n    n: [1, 2, 3, 4, 5]\n  _parallel:\n    limit: 3\n  _do:\n    work>: ${n}\n")
	_, err = r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, 3, c2.peak)
	assert.Greater(t, indexOf(c2.events, "start 4"), indexOf(c2.events, "end 3"))

	for src, msg := range map[string]string{
		"+g:\n  _parallel: {limit: 0}\n  +a:\n    echo>: x\n":   "test.dig:2: _parallel must be true, false or {limit: N}",
		"+g:\n  _parallel: {limt: 2}\n  +a:\n    echo>: x\n":    "_parallel: unknown key limt",
		"+g:\n  _parallel: [1]\n  +a:\n    echo>: x\n":          "test.dig:2: _parallel must be true, false or {limit: N}",
		"+a:\n  _parallel: true\n  echo>: x\n":                  "_parallel applies to a group of +subtasks or a for_each>, loop>, for_range> or td_for_each>, not to a echo> task",
		"+g:\n  _parallel: {limit: two}\n  +a:\n    echo>: x\n": "_parallel must be true, false or {limit: N}",
	} {
		_, err := Parse("test.dig", []byte(src))
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), msg, src)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// digdag's RetryControl: `_retry: {limit, interval, interval_type}` waits
// interval seconds before each retry, or with exponential interval × 2^n
// (n = retries so far), capped at max_interval.
func TestRetryWaits(t *testing.T) {
	cases := map[string][]time.Duration{
		"{limit: 3, interval: 2}":                                              {2 * time.Second, 2 * time.Second, 2 * time.Second},
		"{limit: 3, interval: 2, interval_type: constant}":                     {2 * time.Second, 2 * time.Second, 2 * time.Second},
		"{limit: 3, interval: 2, interval_type: exponential}":                  {2 * time.Second, 4 * time.Second, 8 * time.Second},
		"{limit: 3, interval: 2, interval_type: exponential, max_interval: 5}": {2 * time.Second, 4 * time.Second, 5 * time.Second},
		"3": nil,
	}
	for retry, want := range cases {
		t.Run(retry, func(t *testing.T) {
			var out bytes.Buffer
			r := newRunner(t, &out)
			var waits []time.Duration
			r.sleep = func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}
			var tries atomic.Int32
			r.Operators["flaky"] = OperatorFunc(func(context.Context, *TaskContext) (*Result, error) {
				if tries.Add(1) < 4 {
					return nil, errors.New("not yet")
				}
				return nil, nil
			})
			wf := parse(t, "+t:\n  _retry: "+retry+"\n  flaky>: x\n")
			_, err := r.Run(context.Background(), wf)
			require.NoError(t, err)
			assert.Equal(t, int32(4), tries.Load())
			assert.Equal(t, want, waits)
		})
	}

	// a real (short) wait, and a cancelled one ends the run at once
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Operators["flaky"] = OperatorFunc(func(context.Context, *TaskContext) (*Result, error) { return nil, errors.New("never") })
	wf := parse(t, "+t:\n  _retry: {limit: 1, interval: 1}\n  flaky>: x\n")
	start := time.Now()
	_, err := r.Run(context.Background(), wf)
	require.Error(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	wf = parse(t, "+t:\n  _retry: {limit: 1, interval: 3600}\n  flaky>: x\n")
	start = time.Now()
	_, err = r.Run(ctx, wf)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)

	for src, msg := range map[string]string{
		"+t:\n  _retry: {limit: 2, interval_type: linear}\n  echo>: x\n": "test.dig:2: _retry interval_type must be constant or exponential (got linear)",
		"+t:\n  _retry: {interval: 2}\n  echo>: x\n":                     "test.dig:2: _retry: {...} needs limit",
		"+t:\n  _retry: {limit: 2, intervall: 2}\n  echo>: x\n":          "_retry: unknown key intervall (did you mean interval?)",
		"+t:\n  _retry: -1\n  echo>: x\n":                                "test.dig:2: _retry must be a number of retries or {limit: N, interval: SECONDS, interval_type: constant|exponential} (got -1)",
	} {
		_, err := Parse("test.dig", []byte(src))
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), msg, src)
	}
}

// digdag's WorkflowCompiler: "A task can't have subtasks".
func TestOperatorWithSubtasksIsRejected(t *testing.T) {
	_, err := Parse("test.dig", []byte("+a:\n  echo>: hi\n  +b:\n    echo>: there\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.dig:3: task +a has both an operator (echo>) and subtasks (+b)")
}

func writeFiles(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return dir
}

// digdag's examples/include.dig: `!include : 'file.dig'` splices the
// mapping of another file, relative to the including file
// (digdag-core YamlConfigLoader), into the task that includes it.
func TestInclude(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.dig":        "_export:\n  who: world\n+basic:\n  !include : 'tasks/basic.dig'\n+after:\n  echo>: after ${from_basic}\n",
		"tasks/basic.dig": "+hello:\n  echo>: hello ${who}\n+store:\n  set>:\n    from_basic: yes\n+more:\n  !include : more.dig\n",
		"tasks/more.dig":  "+bye:\n  echo>: bye\n",
	})
	wf, err := ParseFile(filepath.Join(dir, "main.dig"))
	require.NoError(t, err)
	var out bytes.Buffer
	r := newRunner(t, &out)
	_, err = r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, "+main+basic+hello: hello world\n+main+basic+more+bye: bye\n+main+after: after yes\n", out.String())
	assert.Equal(t, filepath.Join(dir, "tasks", "basic.dig"), wf.Root.Children[0].Children[0].File)

	// problems in an included file carry its name and line
	dir = writeFiles(t, map[string]string{
		"main.dig": "+a:\n  !include : bad.dig\n",
		"bad.dig":  "+x:\n  echo>: ${nope}\n+y:\n  _bogus: 1\n",
	})
	wf, err = ParseFile(filepath.Join(dir, "main.dig"))
	require.ErrorContains(t, err, filepath.Join(dir, "bad.dig")+":4: unknown directive _bogus")

	// a loop, a file outside the project, a missing file
	dir = writeFiles(t, map[string]string{
		"p/main.dig":  "+a:\n  !include : a.dig\n+b:\n  !include : ../outside.dig\n+c:\n  !include : missing.dig\n",
		"p/a.dig":     "+x:\n  !include : b.dig\n",
		"p/b.dig":     "+y:\n  !include : a.dig\n",
		"outside.dig": "+z:\n  echo>: z\n",
	})
	_, err = ParseFile(filepath.Join(dir, "p", "main.dig"))
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "b.dig:2: !include a.dig: the file includes itself (through main.dig → a.dig → b.dig)")
	assert.Contains(t, msg, "main.dig:4: !include ../outside.dig: the file is outside the project directory")
	assert.Contains(t, msg, "main.dig:6: !include missing.dig: no such file or directory")
	assert.NotContains(t, msg, "neither an operator")

	// files that include the next one eight times each, seven deep
	// (8^7 = 2,097,152 tasks from 8 small files) are held to MaxNodes like
	// aliases, in bounded time: one line, no exponential walk
	files := map[string]string{"l7.dig": "+t:\n  echo>: x\n"}
	for d := range 7 {
		var b strings.Builder
		for i := range 8 {
			fmt.Fprintf(&b, "+t%d:\n  !include : 'l%d.dig'\n", i, d+1)
		}
		files[fmt.Sprintf("l%d.dig", d)] = b.String()
	}
	dir = writeFiles(t, files)
	start := time.Now()
	_, err = ParseFile(filepath.Join(dir, "l0.dig"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "included files add more than 100000 nodes to this workflow")
	assert.Equal(t, 1, strings.Count(err.Error(), "more than 100000 nodes"), "reported once")
	assert.Less(t, time.Since(start), 10*time.Second)

	// the alias limits hold in an included file
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'h'; i++ {
		prev := string(i - 1)
		bomb += string(i) + ": &" + string(i) + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
	}
	dir = writeFiles(t, map[string]string{
		"main.dig": "+a:\n  !include : bomb.dig\n",
		"bomb.dig": "_export:\n  " + strings.ReplaceAll(strings.TrimSpace(bomb), "\n", "\n  ") + "\n+t:\n  echo>: x\n",
	})
	_, err = ParseFile(filepath.Join(dir, "main.dig"))
	require.ErrorContains(t, err, "YAML aliases add more than")
}

// shOp stands for sh>: it may set any param with ::set-param.
type shOp struct{}

func (shOp) Run(context.Context, *TaskContext) (*Result, error) {
	return &Result{Store: map[string]any{"from_script": "s"}}, nil
}

func (shOp) Defines(*Task) []string { return []string{AnyName} }

// Item 10: after an sh> task, an undefined name is still reported — as a
// warning naming the sh> tasks that could set it — instead of check
// going blind.
func TestCheckAfterShellWarns(t *testing.T) {
	var out, warn bytes.Buffer
	r := newRunner(t, &out)
	r.Operators["sh"] = shOp{}
	r.Warnings = &warn
	wf := parse(t, `
+early:
  echo>: ${before_any_script}
+s1:
  sh>: ./a.sh
+g:
  +s2:
    sh>: ./b.sh
+use:
  echo>: ${from_script} ${typo_name}
`)
	err := r.Check(wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.dig:3: +test+early: param ${before_any_script} is not defined")
	assert.NotContains(t, err.Error(), "typo_name")
	assert.Contains(t, warn.String(), "warning: test.dig:10: +test+use: ${from_script} is not defined by _export, -p or a task before this one; it must come from ::set-param of +test+g+s2, +test+s1")
	assert.Contains(t, warn.String(), "${typo_name}")

	// the run fails at the task when the script did not set it
	warn.Reset()
	wf = parse(t, "+s1:\n  sh>: ./a.sh\n+use:\n  echo>: ${typo_name}\n")
	_, err = r.Run(context.Background(), wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "param ${typo_name} is not defined")
	assert.Empty(t, warn.String(), "Run does not repeat Check's warnings")
}

// An exported value naming something nothing in the workflow defines is
// reported where it is written, used or not (td> reads td.database itself).
func TestCheckExportNamingNothing(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, "_export:\n  td:\n    database: ${databse}\n  later: ${td.last_job_id}\n+a:\n  echo>: x\n+b:\n  set>:\n    td.last_job_id: \"1\"\n")
	err := r.Check(wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.dig:3: +test _export td.database: param ${databse} is not defined")
	assert.NotContains(t, err.Error(), "last_job_id", "defined by a task before its use")
}

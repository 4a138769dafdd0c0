package operators

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/workflow"
)

// runProject writes files (wf.dig among them) to a project directory and
// runs wf.dig with params and every operator; it returns the directory.
func runProject(t *testing.T, ctx context.Context, files map[string]string, params map[string]any) (string, *workflow.Summary, string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	wf, err := workflow.ParseFile(filepath.Join(dir, "wf.dig"))
	require.NoError(t, err)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: Operators(nil), Params: params, RunsDir: filepath.Join(dir, "runs"), Output: &out}
	sum, err := r.Run(ctx, wf)
	return dir, sum, out.String(), err
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// digdag's ConditionalOperatorIT.testMeta (acceptance/conditional/
// conditional.dig): loop> with ${i}, for_each>, if> true and false.
func TestConditionalLikeDigdagConditionalOperatorIT(t *testing.T) {
	dir, _, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": `
+loop:
  loop>: ${n}
  _do:
    sh>: touch loop_${i}.out

+for_each:
  for_each>:
    fruit: [apple, orange]
    verb: [eat, throw]
  _do:
    sh>: touch ${verb}_${fruit}.out

+if:
  if>: ${val == "1"}
  _do:
    sh>: touch if.out

+else:
  if>: ${val != "1"}
  _do:
    sh>: touch else.out
`}, map[string]any{"n": "3", "val": "1"})
	require.NoError(t, err, out)
	for _, f := range []string{"loop_0.out", "loop_1.out", "loop_2.out", "eat_apple.out", "throw_apple.out", "eat_orange.out", "throw_orange.out", "if.out"} {
		assert.True(t, exists(dir, f), f)
	}
	assert.False(t, exists(dir, "loop_3.out"))
	assert.False(t, exists(dir, "else.out"))
}

// digdag's ConditionalOperatorIT.testConditionalFail (conditional/
// fail.dig): fail> under if> fails the run before the next task; with the
// condition false the next task runs.
func TestConditionalFailLikeDigdagIT(t *testing.T) {
	dig := `
+if:
  if>: ${cond == "fail"}
  _do:
    fail>: testtest

+touch:
  sh>: touch ${cond}.out
`
	dir, sum, _, err := runProject(t, context.Background(), map[string]string{"wf.dig": dig}, map[string]any{"cond": "fail"})
	require.Error(t, err)
	assert.Equal(t, "testtest", err.Error(), "the task's error is fail>'s message")
	assert.False(t, exists(dir, "fail.out"))
	rec := sum.FindTask("+wf+if^sub")
	require.Len(t, rec, 1, "if>'s _do runs as +wf+if^sub")
	assert.Equal(t, workflow.StateError, rec[0].State)

	dir, _, _, err = runProject(t, context.Background(), map[string]string{"wf.dig": dig}, map[string]any{"cond": "success"})
	require.NoError(t, err)
	assert.True(t, exists(dir, "success.out"))
}

// digdag-docs operators/if.md: _else_do runs when false; the value is read
// as a boolean as digdag reads it.
func TestIfElseDoAndTruth(t *testing.T) {
	_, _, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": `
+t:
  if>: ${param}
  _do:
    echo>: ${param} == true
  _else_do:
    echo>: ${param} == false
`}, map[string]any{"param": false})
	require.NoError(t, err)
	assert.Contains(t, out, "+wf+t^sub: false == false\n")

	for v, want := range map[any]bool{true: true, "true": true, "True": true, false: false, "false": false, "": false, int64(1): true, int64(0): false, "null": false} {
		got, err := truth(v)
		require.NoError(t, err, v)
		assert.Equal(t, want, got, "%v", v)
	}
	for _, v := range []any{"yes", "2", 1.5} {
		_, err = truth(v)
		assert.Error(t, err, v)
	}
	_, err = truth("yes")
	assert.EqualError(t, err, "if> needs true or false (got yes)")
}

// digdag-docs operators/fail.md: an _error task reads the message as
// ${error.message}.
func TestFailMessageReachesErrorTask(t *testing.T) {
	_, _, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": `
+check:
  fail>: count is less than 10!
  _error:
    echo>: got ${error.message}
`}, nil)
	require.Error(t, err)
	assert.Contains(t, out, "+wf+check^error: got count is less than 10!\n")
}

// digdag's acceptance/parallel/parallel_variable_loop.dig and
// operators/loop.md: +loop-N tasks with ${i}, under ^sub; _parallel runs
// them side by side; count: is loop>'s value too.
func TestLoopNamesAndParallel(t *testing.T) {
	_, sum, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": `
+loop:
  loop>: 2
  _parallel: true
  _do:
    +task1:
      echo>: loop${i},task1
    +task2:
      sh>: sleep 0.3; echo loop${i},task2
+count:
  loop>:
  count: 1
  _do:
    echo>: once ${i}
`}, nil)
	require.NoError(t, err, out)
	for _, i := range []string{"0", "1"} {
		assert.Contains(t, out, "+wf+loop^sub+loop-"+i+"+task1: loop"+i+",task1\n")
		assert.Contains(t, out, "+wf+loop^sub+loop-"+i+"+task2: loop"+i+",task2\n")
	}
	assert.Contains(t, out, "+wf+count^sub+loop-0: once 0\n")
	// parallel: the second iteration's task1 starts before the first's
	// task2 (which sleeps) ends
	t1 := sum.FindTask("+wf+loop^sub+loop-1+task1")[0]
	t2 := sum.FindTask("+wf+loop^sub+loop-0+task2")[0]
	assert.True(t, t1.StartedAt.Before(t2.StartedAt.Add(t2.Duration)), "loop> _parallel ran its iterations in order")
}

// digdag-docs operators/for_range.md: the ranges, their task names and
// ${range.from}, ${range.to}, ${range.index}; slices divides the range.
func TestForRangeLikeDigdagDoc(t *testing.T) {
	_, _, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": `
+repeat:
  for_range>:
    from: 10
    to: 50
    step: 10
  _do:
    echo>: processing from ${range.from} to ${range.to}.
+step3:
  for_range>:
    from: 0
    to: 10
    step: 3
  _do:
    echo>: ${range.index} ${range.from}-${range.to}
+slices:
  for_range>: {from: 0, to: 10, slices: 3}
  _do:
    echo>: slice ${range.index} ${range.from}-${range.to}
`}, nil)
	require.NoError(t, err, out)
	for _, r := range [][2]string{{"10", "20"}, {"20", "30"}, {"30", "40"}, {"40", "50"}} {
		assert.Contains(t, out, "+wf+repeat^sub+range-from="+r[0]+"&to="+r[1]+": processing from "+r[0]+" to "+r[1]+".\n")
	}
	for _, l := range []string{"0 0-3", "1 3-6", "2 6-9", "3 9-10"} {
		assert.Contains(t, out, ": "+l+"\n")
	}
	for _, l := range []string{"slice 0 0-4", "slice 1 4-8", "slice 2 8-10"} {
		assert.Contains(t, out, ": "+l+"\n")
	}
	assert.NotContains(t, out, "slice 3")
}

// digdag's WaitIT: wait> takes (about) its duration, in each mode;
// wait_invalid_config.dig (blocking with poll_interval) fails.
func TestWaitLikeDigdagWaitIT(t *testing.T) {
	for _, extra := range []string{"", "\n  blocking: true", "\n  blocking: false", "\n  poll_interval: 1s"} {
		start := time.Now()
		_, _, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": "+wait:\n  wait>: 1s" + extra + "\n"}, nil)
		require.NoError(t, err, out)
		assert.GreaterOrEqual(t, time.Since(start), time.Second, extra)
		assert.Less(t, time.Since(start), 5*time.Second, extra)
	}
	err := checkWorkflow(t, "+wait:\n  wait>: 10s\n  blocking: true\n  poll_interval: 5s\n", nil, Operators(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wf.dig:2: +wf+wait: wait> poll_interval can't be given with blocking: true")

	// waits take no MaxParallel slot: 4 parallel waits of 1 s with
	// MaxParallel 1 end in about 1 s, not 4
	wf := filepath.Join(t.TempDir(), "wf.dig")
	require.NoError(t, os.WriteFile(wf, []byte("+w:\n  loop>: 4\n  _parallel: true\n  _do:\n    wait>: 1s\n"), 0o644))
	parsed, err := workflow.ParseFile(wf)
	require.NoError(t, err)
	start := time.Now()
	_, err = (&workflow.Runner{Operators: Operators(nil), MaxParallel: 1, RunsDir: filepath.Join(filepath.Dir(wf), "runs")}).Run(context.Background(), parsed)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
	// blocking: true holds its slot, as it holds digdag's executor: 3
	// parallel blocking waits of 1 s with MaxParallel 1 take 3 s at least
	require.NoError(t, os.WriteFile(wf, []byte("+w:\n  loop>: 3\n  _parallel: true\n  _do:\n    wait>: 1s\n    blocking: true\n"), 0o644))
	parsed, err = workflow.ParseFile(wf)
	require.NoError(t, err)
	start = time.Now()
	_, err = (&workflow.Runner{Operators: Operators(nil), MaxParallel: 1, RunsDir: filepath.Join(filepath.Dir(wf), "runs")}).Run(context.Background(), parsed)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 3*time.Second)

	// cancellation ends the wait
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, sum, _, err := runProject(t, ctx, map[string]string{"wf.dig": "+wait:\n  wait>: 1h\n"}, nil)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, workflow.StateInterrupted, sum.State)

	for in, want := range map[string]time.Duration{"10s": 10 * time.Second, "1m": time.Minute, "1d 2h": 26 * time.Hour, "1h30m": 90 * time.Minute, "0s": 0} {
		d, ok := parseDuration(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, d, in)
	}
	for _, in := range []string{"", "10", "1.5s", "10ms", "s"} {
		_, ok := parseDuration(in)
		assert.False(t, ok, in)
	}
}

// digdag's CallIT.callSubdirLocal (acceptance/call/): call> by name and by
// file, from a subdirectory and from one below it; the called tasks see the
// caller's params and work in their file's directory.
func TestCallLikeDigdagCallIT(t *testing.T) {
	child := "+hello:\n  sh>: pwd > ${outdir}/${name}.out\n"
	outdir := t.TempDir()
	dir, sum, out, err := runProject(t, context.Background(), map[string]string{
		"wf.dig": `
+call_by_name:
  _export:
    name: call_by_name
  +call:
    call>: child
+call_by_file:
  _export:
    name: call_by_file
  +call:
    call>: child.dig
+call_sub:
  _export:
    name: call_sub
  +call:
    call>: sub/child.dig
+call_subsub:
  _export:
    name: call_subsub
  +call:
    call>: sub/subsub/child.dig
`,
		"child.dig": child, "sub/child.dig": child, "sub/subsub/child.dig": child,
	}, map[string]any{"outdir": outdir})
	require.NoError(t, err, out)
	read := func(n string) string {
		b, err := os.ReadFile(filepath.Join(outdir, n+".out"))
		require.NoError(t, err, n)
		return strings.TrimSpace(string(b))
	}
	base, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	assert.Equal(t, base, read("call_by_name"))
	assert.Equal(t, base, read("call_by_file"))
	assert.Equal(t, filepath.Join(base, "sub"), read("call_sub"))
	assert.Equal(t, filepath.Join(base, "sub", "subsub"), read("call_subsub"))
	assert.Len(t, sum.FindTask("+wf+call_sub+call^sub+hello"), 1)
}

// Mistakes in the control operators' settings are reported by check with
// file:line before anything runs.
func TestControlOperatorsCheck(t *testing.T) {
	ops := Operators(nil)
	cases := map[string]string{
		"+a:\n  loop>: three\n  _do:\n    echo>: x\n":                                     "wf.dig:2: +wf+a: loop> must be a whole number ≥ 0 (got three)",
		"+a:\n  loop>: 2\n  cont: 3\n  _do:\n    echo>: x\n":                              "unknown loop> key cont (did you mean count?)",
		"+a:\n  loop>: 2000\n  _do:\n    echo>: x\n":                                      "too many loop subtasks (2000); the limit is 1000",
		"+a:\n  loop>: 2\n":                                                               "wf.dig:1: loop> needs a _do: block",
		"+a:\n  if>: true\n":                                                              "wf.dig:2: +wf+a: if> needs _do",
		"+a:\n  if>: maybe\n  _do:\n    echo>: x\n":                                       "if> needs true or false (got maybe)",
		"+a:\n  echo>: x\n  _else_do:\n    echo>: y\n":                                    "wf.dig:3: _else_do belongs to an if> task",
		"+a:\n  call>: missing.dig\n":                                                     "wf.dig:2: +wf+a: call> missing.dig: no such workflow file",
		"+a:\n  call>: ../x.dig\n":                                                        "outside the project directory",
		"+a:\n  for_range>: {from: 0, to: 10}\n  _do:\n    echo>: x\n":                    "for_range> needs step or slices",
		"+a:\n  for_range>: {from: 0, to: 9, step: 1, slices: 3}\n  _do:\n    echo>: x\n": "for_range> takes step or slices, not both",
		"+a:\n  for_range>: {fromm: 0, to: 10, step: 1}\n  _do:\n    echo>: x\n":          "unknown for_range> key fromm (did you mean from?)",
		"+a:\n  wait>: 10 seconds\n":                                                      "wait> needs a duration like 10s",
		"+a:\n  fail>: x\n  mesage: y\n":                                                  "unknown fail> key mesage",
		"+a:\n  loop>: 2\n  _do:\n    echo>: ${j}\n":                                      "${j}",
		"+a:\n  loop>: 2\n  _do:\n    echo>: x\n    colour: red\n":                        "unknown echo> key colour",
	}
	for dig, want := range cases {
		err := checkWorkflow(t, dig, nil, ops)
		require.Error(t, err, dig)
		assert.Contains(t, err.Error(), want, dig)
	}
	err := checkWorkflow(t, "+a:\n  call>: other\n", map[string]string{"other.dig": "+x:\n  echo>: a\n  _bakground: true\n"}, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "other.dig:3: unknown directive _bakground (did you mean _background?)")
	// the names the operators give _do are known to check
	for _, dig := range []string{
		"+a:\n  loop>: 2\n  _do:\n    echo>: ${i}\n",
		"+a:\n  for_range>: {from: 0, to: 4, slices: 2}\n  _do:\n    echo>: ${range.from} ${range.index}\n",
		"+a:\n  wait>: 1m 30s\n  poll_interval: 10s\n",
	} {
		assert.NoError(t, checkWorkflow(t, dig, nil, ops), dig)
	}
}

// digdag's BackgroundAfterIT (acceptance/background_after/
// background_task.dig, background_group.dig): a _background task or group
// runs beside the task before it, and the tasks after it wait for it;
// background_with_parallel.dig: refused under _parallel.
func TestBackgroundLikeDigdagBackgroundAfterIT(t *testing.T) {
	for _, bg := range []string{"_background: true\n    sh>: touch ${outdir}/background_done.txt\n", "_background: true\n    +task:\n      sh>: touch ${outdir}/background_done.txt\n"} {
		outdir := t.TempDir()
		_, _, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": `
+group:
  +forward_task:
    sh>: for t in 0.1 0.2 0.4 0.8 1.6; do test -f ${outdir}/background_done.txt && echo ok > ${outdir}/background.txt && break || sleep $t; done
  +background:
    ` + bg + `
  +following_task:
    sh>: test -f ${outdir}/background_done.txt
  +following_group:
    +task:
      sh>: test -f ${outdir}/background_done.txt
`}, map[string]any{"outdir": outdir})
		require.NoError(t, err, out)
		assert.True(t, exists(outdir, "background.txt"), "the background task ran beside the one before it")
	}
	err := checkWorkflow(t, "+group:\n  _parallel: true\n  +forward_task:\n    echo>: forward\n  +background:\n    _background: true\n    echo>: background\n", nil, Operators(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wf.dig:5: _background: true is not needed in +background")
}

// digdag-docs operators/fail.md with workflow_definition's _check: the
// ^check task runs after the task succeeds, with the params it stored, and
// its failure is the task's.
func TestCheckRunsAfterTheTask(t *testing.T) {
	dig := `
+count:
  sh>: echo "::set-param count=${n}"
  _check:
    if>: ${count < 10}
    _do:
      fail>: count is less than 10!
+after:
  echo>: count=${count}
`
	_, sum, out, err := runProject(t, context.Background(), map[string]string{"wf.dig": dig}, map[string]any{"n": 3})
	require.Error(t, err)
	assert.Equal(t, "count is less than 10!", err.Error())
	assert.Len(t, sum.FindTask("+wf+count^check^sub"), 1)
	assert.NotContains(t, out, "+wf+after")
	_, _, out, err = runProject(t, context.Background(), map[string]string{"wf.dig": dig}, map[string]any{"n": 30})
	require.NoError(t, err, out)
	assert.Contains(t, out, "+wf+after: count=30\n")

	err = checkWorkflow(t, "+g:\n  _check:\n    echo>: x\n  +a:\n    echo>: y\n", nil, Operators(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wf.dig:2: _check applies to a task with an operator")
}

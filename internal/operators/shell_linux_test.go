package operators

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/workflow"
)

// runnerHelperEnv makes the test binary a workflow runner (see TestMain):
// its value is a directory holding wf.dig.
const runnerHelperEnv = "TDCTL_OPERATORS_TEST_RUNNER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(runnerHelperEnv); dir != "" {
		wf, err := workflow.ParseFile(filepath.Join(dir, "wf.dig"))
		if err == nil {
			r := &workflow.Runner{Operators: Operators(nil), RunsDir: filepath.Join(dir, "runs")}
			_, err = r.Run(context.Background(), wf)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// stubbornScript starts, in the workflow's directory, a child that ignores
// SIGTERM and one that does not, and writes every pid (the shell's too) to
// pids, then "ready" — and, unless exit is set, waits for its children.
func stubbornScript(exit bool) string {
	s := `(trap '' TERM; exec sleep 300) & echo $! >> pids
sleep 300 & echo $! >> pids
echo $$ >> pids
: > ready
`
	if !exit {
		s += "trap '' TERM\nwait\n"
	}
	return s
}

// writeWorkflow writes wf.dig with one sh> task running job.sh.
func writeWorkflow(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "job.sh"), []byte(script), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "wf.dig"), []byte("+a:\n  sh>: sh job.sh\n+b:\n  echo>: after\n"), 0o644))
	return dir
}

func readPids(t *testing.T, dir string) []int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "pids"))
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, n)
	}
	require.Len(t, pids, 3)
	return pids
}

// alive reports whether pid runs (a zombie, waiting for a reaper that may
// never come in a container, does not).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	state := data[i+2]
	return state != 'Z' && state != 'X'
}

// requireAllGone waits up to d for every pid to end.
func requireAllGone(t *testing.T, pids []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL) // do not leave them to the next test
			}
			t.Fatalf("still running after %s: %v", d, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFile(t *testing.T, path string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		require.False(t, time.Now().After(deadline), "%s never appeared", path)
		time.Sleep(10 * time.Millisecond)
	}
}

func runDir(ctx context.Context, t *testing.T, dir string, env *Env) (string, error) {
	t.Helper()
	wf, err := workflow.ParseFile(filepath.Join(dir, "wf.dig"))
	require.NoError(t, err)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: Operators(env), RunsDir: filepath.Join(dir, "runs"), Output: &out}
	_, err = r.Run(ctx, wf)
	return out.String(), err
}

func TestShellCancelKillsTheWholeGroupAfterTheGrace(t *testing.T) {
	dir := writeWorkflow(t, stubbornScript(false))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		waitFile(t, filepath.Join(dir, "ready"), 10*time.Second)
		cancel()
	}()
	start := time.Now()
	_, err := runDir(ctx, t, dir, &Env{ShellGrace: 300 * time.Millisecond})
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second, "the grace is 300ms")
	requireAllGone(t, readPids(t, dir), 3*time.Second)
}

func TestShellExit0LeavingChildrenSucceedsAndKillsThem(t *testing.T) {
	dir := writeWorkflow(t, stubbornScript(true)+"echo done\n")
	start := time.Now()
	out, err := runDir(context.Background(), t, dir, &Env{ShellGrace: 300 * time.Millisecond})
	require.NoError(t, err, "a script that exits 0 succeeds: %s", out)
	assert.Contains(t, out, "+wf+a: done\n")
	assert.Contains(t, out, "+wf+b: after\n")
	assert.Less(t, time.Since(start), 4*time.Second, "not held by the children's open output")
	requireAllGone(t, readPids(t, dir), 3*time.Second)
}

func TestShellChildrenDieWithAKilledRunner(t *testing.T) {
	dir := writeWorkflow(t, stubbornScript(false))
	runner := exec.Command(os.Args[0], "-test.run=^$")
	runner.Env = append(os.Environ(), runnerHelperEnv+"="+dir)
	var stderr bytes.Buffer
	runner.Stderr = &stderr
	require.NoError(t, runner.Start())
	waitFile(t, filepath.Join(dir, "ready"), 10*time.Second)
	pids := readPids(t, dir)
	for _, p := range pids {
		require.True(t, alive(p), "pid %d runs before the runner is killed", p)
	}
	require.NoError(t, runner.Process.Signal(syscall.SIGKILL))
	_ = runner.Wait()
	requireAllGone(t, pids, 3*time.Second)
}

func TestShellStopsReadingOutputHeldByAnEscapedProcess(t *testing.T) {
	dir := writeWorkflow(t, "setsid sh -c 'echo $$ > escaped; exec sleep 30' &\nwhile [ ! -s escaped ]; do sleep 0.01; done\necho done\n")
	start := time.Now()
	out, err := runDir(context.Background(), t, dir, &Env{ShellGrace: 200 * time.Millisecond})
	data, rerr := os.ReadFile(filepath.Join(dir, "escaped"))
	require.NoError(t, rerr)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(t, perr)
	defer syscall.Kill(pid, syscall.SIGKILL)
	require.NoError(t, err, out)
	assert.Less(t, time.Since(start), 10*time.Second, "not held until the escaped process ends")
	assert.Contains(t, out, "+wf+a: done\n")
	assert.Contains(t, out, "still holds its output open; stopped reading")
	assert.True(t, alive(pid), "a process that left the group is not followed (documented)")
}

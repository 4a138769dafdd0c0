package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startKillable starts bin with args in env, in its own process group, and
// waits for its first stdout line (a dev-server's "listening on"); the
// group is killed with SIGKILL when t ends.
func startKillable(t *testing.T, env []string, bin string, args ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan(), "%v printed nothing; stderr: %s", args, stderr.String())
	// taken before the drain starts: its next Scan replaces the text (a
	// loaded CI run once saw the second line here)
	line := sc.Text()
	go func() { // keep draining
		for sc.Scan() {
		}
	}()
	return cmd, line, &stderr
}

// TestDevServerDataDirIsLocked: a second dev-server on one --data directory
// is refused (exit 1, one line naming the directory) instead of handing out
// the job ids the first one hands out; after the first is killed with
// SIGKILL the directory is free again (the kernel drops the lock).
func TestDevServerDataDirIsLocked(t *testing.T) {
	bin := buildTdctl(t)
	data := filepath.Join(t.TempDir(), "emu")
	env := testEnv(t, bin, "http://127.0.0.1:1")
	first, line, _ := startKillable(t, env, bin, "dev-server", "--addr", "127.0.0.1:0", "--data", data)
	require.True(t, strings.HasPrefix(line, "listening on "), line)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "dev-server", "--addr", "127.0.0.1:0", "--data", data)
	second.Env = env
	var out, stderr bytes.Buffer
	second.Stdout, second.Stderr = &out, &stderr
	err := second.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the second dev-server must refuse at once; stdout: %s", out.String())
	assert.Equal(t, 1, ee.ExitCode(), "stderr: %s", stderr.String())
	assert.Empty(t, out.String(), "the second dev-server never listened")
	assert.Equal(t, "--data "+data+" is in use by another dev-server: stop that one or give another --data directory\n", stderr.String())

	require.NoError(t, syscall.Kill(-first.Process.Pid, syscall.SIGKILL))
	_ = first.Wait()
	_, line, _ = startKillable(t, env, bin, "dev-server", "--addr", "127.0.0.1:0", "--data", data)
	assert.True(t, strings.HasPrefix(line, "listening on "), "a lock left by kill -9 does not block: %s", line)
}

// TestKilledWorkflowRunIsListed kills `workflow run` with SIGKILL while its
// second task runs: `workflow logs` still shows the run, the first task's
// success, the second as interrupted, and the first task's log.
func TestKilledWorkflowRunIsListed(t *testing.T) {
	bin := buildTdctl(t)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	env := append(testEnv(t, bin, "http://127.0.0.1:1"), "TDCTL_RUNS_DIR="+runs)
	dig := filepath.Join(dir, "killed.dig")
	require.NoError(t, os.WriteFile(dig, []byte("+first:\n  echo>: first done\n+second:\n  sh>: echo started; sleep 60\n"), 0o644))

	cmd, _, stderr := startKillable(t, env, bin, "workflow", "run", dig)
	// the second task has started once its log line went to stdout (read
	// by startKillable) and the record says so
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile(filepath.Join(runs, latestRun(runs), "summary.json"))
		return strings.Contains(string(data), "+killed+second")
	}, 20*time.Second, 50*time.Millisecond, "stderr: %s", stderr)
	// and its script has printed its line into the task's log (the record
	// is written when the task starts, before the script runs)
	require.Eventually(t, func() bool {
		logs, _ := filepath.Glob(filepath.Join(runs, latestRun(runs), "tasks", "*second*.log"))
		for _, l := range logs {
			if data, _ := os.ReadFile(l); strings.Contains(string(data), "started") {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "stderr: %s", stderr)
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	_ = cmd.Wait()

	out, errOut, code := runBin(t, env, bin, "workflow", "logs")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^\+killed\+first\s+success\s`, out)
	assert.Regexp(t, `(?m)^\+killed\+second\s+interrupted\s`, out)
	out, errOut, code = runBin(t, env, bin, "workflow", "logs", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var sum struct{ State, Error string }
	require.NoError(t, json.Unmarshal([]byte(out), &sum), out)
	assert.Equal(t, "interrupted", sum.State)
	assert.Regexp(t, `^the run's process \(pid \d+\) ended before the run did \(killed\?\)$`, sum.Error)

	out, errOut, code = runBin(t, env, bin, "workflow", "logs", "--task", "+first")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "first done\n", out)
	out, errOut, code = runBin(t, env, bin, "workflow", "logs", "--task", "+second")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "started\n", out)
}

// latestRun is the newest run directory under runs ("" when none).
func latestRun(runs string) string {
	entries, _ := os.ReadDir(runs)
	if len(entries) == 0 {
		return ""
	}
	return entries[len(entries)-1].Name()
}

package main

import (
	"bufio"
	"bytes"
	"context"
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
	go func() { // keep draining
		for sc.Scan() {
		}
	}()
	return cmd, sc.Text(), &stderr
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

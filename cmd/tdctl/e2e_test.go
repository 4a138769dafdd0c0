package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

// buildTdctl builds the binary the way a user would, with the version
// stamped, into a temporary directory.
func buildTdctl(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "tdctl")
	cmd := exec.Command("go", "build", "-ldflags",
		"-s -w -X github.com/tdctl/tdctl/internal/cli/build.Version=v9.9.9-e2e", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// startDevServer runs `tdctl dev-server --addr 127.0.0.1:0` and returns the
// base URL it printed.
func startDevServer(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"dev-server", "--addr", "127.0.0.1:0"}, extra...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("dev-server exited %d after Ctrl-C (want 0); stderr: %s", ee.ExitCode(), stderr.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan(), "dev-server printed nothing; stderr: %s", stderr.String())
	first := sc.Text()
	base, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line %q", first)
	require.True(t, sc.Scan())
	assert.Equal(t, "export TD_API_SERVER="+base+" TD_API_KEY=dev", sc.Text())
	go func() { // keep draining
		for sc.Scan() {
		}
	}()
	return base
}

func testEnv(t *testing.T, bin, base string) []string {
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TD_") || strings.HasPrefix(k, "TDCTL_") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"TDCTL="+bin, "TD_API_SERVER="+base, "TD_API_KEY=1/e2e-secret-key")
}

// TestEndToEndScript runs testdata/e2e.sh: every command as a process
// against the dev-server, outputs and exit codes checked by the script.
func TestEndToEndScript(t *testing.T) {
	bin := buildTdctl(t)
	base := startDevServer(t, bin, "--running-for", "200ms")

	cmd := exec.Command("bash", "testdata/e2e.sh")
	cmd.Env = testEnv(t, bin, base)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "e2e.sh:\n%s", out)
	assert.Contains(t, string(out), "e2e OK")
	assert.NotContains(t, string(out), "e2e-secret-key")

	v, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(v), "tdctl v9.9.9-e2e "), "version stamped via -ldflags: %q", v)
}

// TestInterruptExitCode sends SIGINT to `job wait` on a long job: exit 130,
// the job keeps running; with --kill-on-interrupt it is killed.
func TestInterruptExitCode(t *testing.T) {
	bin := buildTdctl(t)
	base := startDevServer(t, bin, "--running-for", "1h")
	env := testEnv(t, bin, base)

	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return strings.TrimSpace(o.String()), e.String(), code
	}
	interrupt := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var e bytes.Buffer
		cmd.Stderr = &e
		require.NoError(t, cmd.Start())
		time.Sleep(700 * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		err := cmd.Wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		return e.String(), ee.ExitCode()
	}

	job, _, code := run("query", "-d", "sample_datasets", "SELECT 1")
	require.Equal(t, 0, code)
	stderr, code := interrupt("job", "wait", job, "--poll-interval", "100ms")
	assert.Equal(t, 130, code, stderr)
	assert.Contains(t, stderr, "keeps running")
	st, _, _ := run("job", "status", job)
	assert.Equal(t, "running", st, "an interrupt kills nothing by default")

	_, _, code = run("job", "num-records", job)
	assert.Equal(t, 5, code, "a running job has no record count yet")
	_, stderr, code = run("job", "wait", job, "--timeout", "300ms", "--poll-interval", "100ms")
	assert.Equal(t, 4, code, stderr)

	stderr, code = interrupt("job", "wait", job, "--poll-interval", "100ms", "--kill-on-interrupt")
	assert.Equal(t, 130, code, stderr)
	assert.Contains(t, stderr, "killed job "+job)
	st, _, _ = run("job", "status", job)
	assert.Equal(t, "killed", st)
}

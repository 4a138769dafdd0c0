package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildTdctl builds tdctl and tdctl-full the way a release does, with the
// version stamped, side by side in a temporary directory, and returns
// tdctl's path.
// The tests of this package share one build.
func buildTdctl(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "tdctl-e2e-*")
		for _, b := range [][2]string{{"tdctl", "."}, {"tdctl-full", "../tdctl-full"}} {
			if built.err != nil {
				return
			}
			cmd := exec.Command("go", "build", "-ldflags",
				"-s -w -X github.com/tdctl/tdctl/internal/cli/build.Version=v9.9.9-e2e", "-o", filepath.Join(built.dir, b[0]), b[1])
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go build %s: %w: %s", b[1], err, out)
			}
		}
	})
	require.NoError(t, built.err)
	return filepath.Join(built.dir, "tdctl")
}

var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
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

// runBin runs bin with args in env and returns its stdout, stderr and exit
// code.
func runBin(t *testing.T, env []string, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return o.String(), e.String(), 0
}

// TestEndToEndScript runs testdata/e2e.sh: every command as a process
// against the dev-server, outputs and exit codes checked by the script.
func TestEndToEndScript(t *testing.T) {
	bin := buildTdctl(t)
	base := startDevServer(t, bin, "--running-for", "200ms")
	slow := startDevServer(t, bin, "--running-for", "1h")

	cmd := exec.Command("bash", "testdata/e2e.sh")
	cmd.Env = append(testEnv(t, bin, base), "SLOW_SERVER="+slow)
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
		o, e, code := runBin(t, env, bin, args...)
		return strings.TrimSpace(o), e, code
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

// TestDispatch checks how tdctl hands the commands it does not link to
// tdctl-full: the command line and streams unchanged, tdctl-full's exit
// code, a clear error naming the fix when tdctl-full is missing, and a
// warning when the two come from different releases.
func TestDispatch(t *testing.T) {
	bin := buildTdctl(t)
	dir := filepath.Dir(bin)
	run := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		return runBin(t, append(testEnv(t, bin, "http://127.0.0.1:1"), env...), bin, args...)
	}

	t.Run("the command line reaches tdctl-full unchanged, its exit code comes back", func(t *testing.T) {
		fake := filepath.Join(t.TempDir(), "fake-full")
		require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n"+
			`printf '%s\n' "$@"; echo "marker=$TDCTL_DISPATCH_VERSION"; echo from-stderr >&2; exit 7`+"\n"), 0o755))
		stdout, stderr, code := run([]string{"TDCTL_FULL=" + fake},
			"--debug", "--apikey", "1/k", "workflow", "run", "a b.dig", "--param", "x=1")
		assert.Equal(t, 7, code)
		assert.Equal(t, "--debug\n--apikey\n1/k\nworkflow\nrun\na b.dig\n--param\nx=1\nmarker=v9.9.9-e2e\n", stdout)
		assert.Equal(t, "from-stderr\n", stderr)
	})

	t.Run("core commands never start tdctl-full", func(t *testing.T) {
		stdout, _, code := run([]string{"TDCTL_FULL=/nonexistent/tdctl-full"}, "version")
		assert.Equal(t, 0, code)
		assert.True(t, strings.HasPrefix(stdout, "tdctl v9.9.9-e2e "), stdout)
	})

	t.Run("tdctl-full missing: exit 1 and how to install it", func(t *testing.T) {
		alone := filepath.Join(t.TempDir(), "tdctl")
		data, err := os.ReadFile(bin)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(alone, data, 0o755))
		cmd := exec.Command(alone, "param", "list")
		cmd.Env = append(testEnv(t, alone, "http://127.0.0.1:1"), "PATH=/usr/bin:/bin")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 1, ee.ExitCode())
		assert.Contains(t, string(out), "tdctl param runs in tdctl-full, which is not beside tdctl ("+filepath.Dir(alone)+") or on PATH")
		assert.Contains(t, string(out), "go install github.com/tdctl/tdctl/cmd/...@latest")

		_, stderr, code := run([]string{"TDCTL_FULL=" + filepath.Join(dir, "nope")}, "param", "list")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "TDCTL_FULL="+filepath.Join(dir, "nope")+": not an executable file")
	})

	t.Run("a tdctl-full that is really tdctl is refused, not run in a loop", func(t *testing.T) {
		_, stderr, code := run([]string{"TDCTL_FULL=" + bin}, "param", "list")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "is not the full binary")
	})

	t.Run("different releases: a warning, and the marker is not inherited", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(dir, "tdctl-full"), "version")
		cmd.Env = append(testEnv(t, bin, "http://127.0.0.1:1"), "TDCTL_DISPATCH_VERSION=v1.0.0")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		require.NoError(t, cmd.Run())
		assert.Equal(t, "warning: tdctl v1.0.0 is running tdctl-full v9.9.9-e2e: install both from the same release\n", e.String())

		// A workflow's sh> task running tdctl-full again sees no marker.
		wf := filepath.Join(t.TempDir(), "env.dig")
		require.NoError(t, os.WriteFile(wf, []byte("+env:\n  sh>: echo \"marker=[$TDCTL_DISPATCH_VERSION]\"\n"), 0o644))
		stdout, stderr, code := run(nil, "workflow", "run", wf, "--runs-dir", filepath.Join(t.TempDir(), "runs"))
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout+stderr, "marker=[]")
	})
}

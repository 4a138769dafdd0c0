package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
)

// signalled starts bin with args, sends sigs (the first after wait, each
// next one 300 ms later) and returns its stderr, exit code and how long it
// took after the last signal.
func signalled(t *testing.T, env []string, wait time.Duration, sigs []syscall.Signal, bin string, args ...string) (string, int, time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var e bytes.Buffer
	cmd.Stderr = &e
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	time.Sleep(wait)
	var last time.Time
	for i, s := range sigs {
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		require.NoError(t, cmd.Process.Signal(s))
		last = time.Now()
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%v still running 30 s after %v; stderr: %s", args, sigs, e.String())
	}
	took := time.Since(last)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return e.String(), ee.ExitCode(), took
	}
	require.NoError(t, err)
	return e.String(), 0, took
}

// TestSIGHUPIsAnInterrupt: a hangup (the terminal closed, the ssh session
// dropped) stops a command like Ctrl-C and SIGTERM: exit 130, and
// --kill-on-interrupt kills the job.
func TestSIGHUPIsAnInterrupt(t *testing.T) {
	bin := buildTdctl(t)
	base := startDevServer(t, bin, "--running-for", "1h")
	env := testEnv(t, bin, base)
	job, _, code := runBin(t, env, bin, "query", "-d", "sample_datasets", "SELECT 1")
	require.Equal(t, 0, code)
	job = strings.TrimSpace(job)

	stderr, code, _ := signalled(t, env, 700*time.Millisecond, []syscall.Signal{syscall.SIGHUP},
		bin, "job", "wait", job, "--poll-interval", "100ms", "--kill-on-interrupt")
	assert.Equal(t, 130, code, stderr)
	assert.Contains(t, stderr, "killed job "+job)
	st, _, _ := runBin(t, env, bin, "job", "status", job)
	assert.Equal(t, "killed", strings.TrimSpace(st))
}

// TestSIGHUPStopsAWorkflow: tdctl-full (workflow run) on SIGHUP stops its
// sh> task's whole process group and exits 130, with the run on record.
func TestSIGHUPStopsAWorkflow(t *testing.T) {
	bin := buildTdctl(t)
	env := testEnv(t, bin, "http://127.0.0.1:1")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	wf := filepath.Join(dir, "sleep.dig")
	require.NoError(t, os.WriteFile(wf, []byte("+sleep:\n  sh>: sleep 60 & echo $! > "+pidFile+"; wait\n"), 0o644))
	runs := filepath.Join(dir, "runs")

	stderr, code, _ := signalled(t, env, 1500*time.Millisecond, []syscall.Signal{syscall.SIGHUP},
		bin, "workflow", "run", wf, "--runs-dir", runs)
	assert.Equal(t, 130, code, stderr)
	pid, err := os.ReadFile(pidFile)
	require.NoError(t, err, "the task started: %s", stderr)
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return syscall.Kill(n, 0) != nil }, 5*time.Second, 50*time.Millisecond,
		"the task's child (pid %d) outlived the run", n)
	entries, err := os.ReadDir(runs)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the interrupted run is on record")
}

// TestSecondSignalEndsTheProcess: while a command cleans up after a first
// signal (here: killing the job, on a server that never answers the kill),
// a second one ends it at once with exit 130 and one line saying so.
func TestSecondSignalEndsTheProcess(t *testing.T) {
	bin := buildTdctl(t)
	base := startDevServer(t, bin, "--running-for", "1h")
	target, err := url.Parse(base)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v3/job/kill/") {
			select { // the kill never gets an answer
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(hang) // before Close, which waits for the handlers
	env := testEnv(t, bin, srv.URL)
	job, _, code := runBin(t, env, bin, "query", "-d", "sample_datasets", "SELECT 1")
	require.Equal(t, 0, code)
	job = strings.TrimSpace(job)

	for _, sigs := range [][]syscall.Signal{{syscall.SIGINT, syscall.SIGINT}, {syscall.SIGTERM, syscall.SIGHUP}} {
		stderr, code, took := signalled(t, env, 700*time.Millisecond, sigs,
			bin, "job", "wait", job, "--poll-interval", "100ms", "--kill-on-interrupt")
		assert.Equal(t, 130, code, stderr)
		assert.Less(t, took, 3*time.Second, "the second signal ended it: %s", stderr)
		assert.Regexp(t, `tdctl: (interrupted|hangup) again: exiting now, without waiting for the clean-up\n$`, stderr)
	}
}

// TestInputsGiveWayToSignals: a FIFO as td.conf no longer holds tdctl
// (SIGTERM ends it with 130), and /dev/zero on stdin is refused at the
// 64 MiB cap instead of read until memory runs out.
func TestInputsGiveWayToSignals(t *testing.T) {
	bin := buildTdctl(t)
	env := testEnv(t, bin, "http://127.0.0.1:1")
	var home string
	for _, kv := range env {
		if h, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = h
		}
	}
	conf := filepath.Join(home, ".td", "td.conf")
	require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o700))
	require.NoError(t, syscall.Mkfifo(conf, 0o600))
	defer os.Remove(conf)

	stderr, code, took := signalled(t, env, 500*time.Millisecond, []syscall.Signal{syscall.SIGTERM}, bin, "job", "list")
	assert.Equal(t, 130, code, stderr)
	assert.Less(t, took, 3*time.Second)
	require.NoError(t, os.Remove(conf))

	zero, err := os.Open("/dev/zero")
	require.NoError(t, err)
	defer zero.Close()
	cmd := exec.Command(bin, "query", "-d", "db", "-")
	cmd.Env, cmd.Stdin = env, zero
	start := time.Now()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Equal(t, "the query on stdin is larger than 64 MiB: give a smaller input\n", string(out))
	assert.Less(t, time.Since(start), 10*time.Second)
}

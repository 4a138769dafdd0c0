package cli

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/iostreams"
)

// runCancelled runs args with a context cancelled after 300 ms (Ctrl-C)
// and fails the test when the command is still blocked 5 s later.
func runCancelled(t *testing.T, e *env, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.ctx = ctx
	defer func() { e.ctx = context.Background() }()
	time.AfterFunc(300*time.Millisecond, cancel)
	done := make(chan result, 1)
	go func() { done <- e.run(args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("%v still blocked 5 s after the interrupt", args)
		return result{}
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	t.Cleanup(func() { // a reader still waiting in open(2) gets its writer, and EOF
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
}

// TestBlockingReadsAreInterruptible: an input that never ends or never
// opens (a pipe nobody closes, a FIFO with no writer) gives way to Ctrl-C
// (exit 130) instead of holding tdctl.
func TestBlockingReadsAreInterruptible(t *testing.T) {
	e := newEnv(t, fast())
	job := e.issue("SELECT 1 AS a")
	e.waitOK(job)

	t.Run("a FIFO as td.conf", func(t *testing.T) {
		f := e.fork(t)
		mkfifo(t, filepath.Join(f.home, ".td", "td.conf"))
		r := runCancelled(t, f, "job", "list")
		assert.Equal(t, 130, r.code, r.stderr)
	})
	t.Run("a FIFO as config.yaml", func(t *testing.T) {
		f := e.fork(t)
		mkfifo(t, filepath.Join(f.vars["XDG_CONFIG_HOME"], "tdctl", "config.yaml"))
		r := runCancelled(t, f, "job", "list")
		assert.Equal(t, 130, r.code, r.stderr)
	})
	t.Run("--settings @FIFO", func(t *testing.T) {
		f := e.fork(t)
		fifo := filepath.Join(t.TempDir(), "settings.json")
		mkfifo(t, fifo)
		r := runCancelled(t, f, "job", "export", job, "--connection", "x", "--settings", "@"+fifo)
		assert.Equal(t, 130, r.code, r.stderr)
	})
	t.Run("query - from a pipe that never ends", func(t *testing.T) {
		f := e.fork(t)
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		defer pw.Close()
		defer pr.Close()
		_, err = pw.WriteString("SELECT ")
		require.NoError(t, err)
		f.outFile = func(ios *iostreams.IOStreams) { ios.In = pr }
		r := runCancelled(t, f, "query", "-d", "sample_datasets", "-")
		assert.Equal(t, 130, r.code, r.stderr)
	})
	t.Run("param import FIFO", func(t *testing.T) {
		f := e.fork(t)
		dir := t.TempDir()
		fifo := filepath.Join(dir, "params.json")
		mkfifo(t, fifo)
		r := runCancelled(t, f, "param", "import", fifo, "--store", "sqlite://"+filepath.Join(dir, "p.db"))
		assert.Equal(t, 130, r.code, r.stderr)
	})
	t.Run("workflow run --secrets FIFO", func(t *testing.T) {
		f := e.fork(t)
		dir := t.TempDir()
		fifo := filepath.Join(dir, "secrets.yaml")
		mkfifo(t, fifo)
		dig := filepath.Join(dir, "a.dig")
		require.NoError(t, os.WriteFile(dig, []byte("+a:\n  echo>: hi\n"), 0o644))
		r := runCancelled(t, f, "workflow", "run", dig, "--secrets", fifo)
		assert.Equal(t, 130, r.code, r.stderr)
	})
}

//go:build unix

package app

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
)

// TestHandleSignals: the first stop signal cancels the command, SIGPIPE
// does nothing, the second stop signal exits 130 after removing the
// registered temporary files.
func TestHandleSignals(t *testing.T) {
	tmp := filepath.Join(t.TempDir(), ".out.csv.tdctl-1")
	require.NoError(t, os.WriteFile(tmp, []byte("partial"), 0o600))
	defer cmdutil.RemoveOnForcedExit(tmp)()

	cancelled, exited := make(chan struct{}), make(chan int, 1)
	ready, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	go handleSignals(func() { close(cancelled) }, ready, done, func(code int) { exited <- code })
	<-ready

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGPIPE))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP did not cancel the command")
	}
	assert.FileExists(t, tmp, "the first signal leaves the clean-up to the command")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case code := <-exited:
		assert.Equal(t, 130, code)
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not end the process")
	}
	assert.NoFileExists(t, tmp)
}

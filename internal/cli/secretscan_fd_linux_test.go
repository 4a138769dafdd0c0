//go:build linux

package cli

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureProcessOutput points the process's file descriptors 1 and 2 at a
// temporary file until the returned function is called, which restores them
// and returns what was written there. It catches what never goes through
// the factory's IOStreams: klog (client-go's logger writes to os.Stderr),
// the log package's default logger, a stray fmt.Print, a credential
// plugin's stderr. Nothing may assert or log through t between the two
// calls: with -v the testing package would write into the capture.
func captureProcessOutput(t *testing.T) (stop func() string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "fd12-*")
	require.NoError(t, err)
	var saved [2]int
	for i, fd := range []int{1, 2} {
		saved[i], err = syscall.Dup(fd)
		require.NoError(t, err)
	}
	for _, fd := range []int{1, 2} {
		require.NoError(t, syscall.Dup3(int(f.Fd()), fd, 0))
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		for i, fd := range []int{1, 2} {
			_ = syscall.Dup3(saved[i], fd, 0)
			_ = syscall.Close(saved[i])
		}
	}
	t.Cleanup(restore) // a require failing in between must not keep them
	return func() string {
		restore()
		b, err := os.ReadFile(f.Name())
		_ = f.Close()
		require.NoError(t, err)
		return string(b)
	}
}

// The capture the secret scan relies on sees every way a secret could reach
// the terminal without the IOStreams, and leakCheck reports it.
func TestSecretScanCaptureSeesFD1And2(t *testing.T) {
	stop := captureProcessOutput(t)
	fmt.Fprintln(os.Stderr, "os.Stderr "+scanPassword)
	fmt.Fprintln(os.Stdout, "os.Stdout "+scanPassword)
	log.Print("log.Print " + scanPassword)
	cmd := exec.Command("/bin/sh", "-c", `echo "child $0" >&2`, scanPassword)
	cmd.Stderr = os.Stderr // as client-go does for a credential plugin
	runErr := cmd.Run()
	got := stop()
	require.NoError(t, runErr)
	for _, want := range []string{"os.Stderr ", "os.Stdout ", "log.Print ", "child "} {
		assert.Contains(t, got, want+scanPassword)
	}
	l := &leakCheck{secrets: []string{scanKey, scanPassword}}
	l.add("fds 1 and 2 of the process", got)
	leaks := l.leaks()
	require.Len(t, leaks, 1)
	assert.Contains(t, leaks[0], "leaks secret #1 (4 times)")
	assert.NotContains(t, leaks[0], scanPassword, "the report hides the secret")
	assert.Contains(t, leaks[0], "<SECRET#1>")
}

//go:build !linux

package cli

import "testing"

// captureProcessOutput captures file descriptors 1 and 2 on Linux only
// (secretscan_fd_linux_test.go); elsewhere it captures nothing.
func captureProcessOutput(t *testing.T) (stop func() string) {
	t.Helper()
	return func() string { return "" }
}

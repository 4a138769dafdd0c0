//go:build unix

package workflow

import (
	"errors"
	"syscall"
)

// processAlive tells whether a process with this pid exists (signal 0
// checks without sending anything; EPERM means it exists as another user).
// A pid reused by an unrelated process reads as alive.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

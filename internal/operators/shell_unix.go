//go:build unix

package operators

import (
	"os/exec"
	"syscall"
)

const shellPath = "/bin/sh"

// ownProcessGroup starts cmd in a process group of its own, and makes
// cancelling send SIGTERM to the whole group: the script and everything it
// started.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
}

//go:build !linux

package kubeapiserver

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttrs does nothing here: process groups and Pdeathsig are
// Linux-only, and the harness is only run on Linux.
func setProcAttrs(*exec.Cmd) {}

// signalGroup signals the child itself.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	if sig == syscall.SIGKILL {
		_ = cmd.Process.Kill()
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
}

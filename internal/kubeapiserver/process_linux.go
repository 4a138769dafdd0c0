//go:build linux

package kubeapiserver

import (
	"os/exec"
	"syscall"
)

// setProcAttrs puts the child in its own process group (so stop can signal
// everything it started) and asks the kernel to SIGKILL it if the test
// binary dies without running its cleanups (panic, timeout, kill -9).
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to the child's whole process group.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	// A negative pid addresses the process group; ESRCH (already gone) is fine.
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

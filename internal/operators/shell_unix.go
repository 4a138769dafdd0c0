//go:build unix

package operators

import (
	"os"
	"os/exec"
	"syscall"
)

const shellPath = "/bin/sh"

var sigTerm = syscall.SIGTERM

// processGroup is a script's process group. Its leader is a guard: a tiny
// sh that ignores SIGTERM and blocks reading a pipe whose only write end
// this process holds. When this process dies — however, SIGKILL included —
// the kernel closes the pipe, the read ends and the guard kills its whole
// group (kill -9 0). The guard also keeps the group id in use until the
// task is over, so signalling -pgid can never reach an unrelated group
// that got the same number.
type processGroup struct {
	guard *exec.Cmd
	hold  *os.File // the guard pipe's write end, closed when the task ends
	pgid  int
}

const guardScript = `trap '' TERM INT HUP; read x; kill -9 0`

// startGroup starts the guard, then cmd in the guard's process group.
func startGroup(cmd *exec.Cmd) (*processGroup, error) {
	r, w, err := os.Pipe() // close-on-exec: only the guard gets r
	if err != nil {
		return nil, err
	}
	guard := exec.Command(shellPath, "-c", guardScript)
	guard.Stdin = r
	guard.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = guard.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, err
	}
	g := &processGroup{guard: guard, hold: w, pgid: guard.Process.Pid}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: g.pgid}
	if err := cmd.Start(); err != nil {
		g.kill()
		g.wait()
		return nil, err
	}
	return g, nil
}

// signal sends sig to every process of the group (the guard ignores
// SIGTERM).
func (g *processGroup) signal(sig syscall.Signal) { syscall.Kill(-g.pgid, sig) }

// kill sends SIGKILL to the whole group, the guard included.
func (g *processGroup) kill() { g.signal(syscall.SIGKILL) }

// wait reaps the guard once the group is killed.
func (g *processGroup) wait() {
	g.guard.Wait()
	g.hold.Close()
}

//go:build !unix

package operators

import (
	"os"
	"os/exec"
)

// shellPath is the sh found on PATH (on Windows, e.g. Git for Windows').
const shellPath = "sh"

var sigTerm = os.Kill

// processGroup is the shell alone here: no process groups, so the
// script's children are not followed.
type processGroup struct{ cmd *exec.Cmd }

func startGroup(cmd *exec.Cmd) (*processGroup, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &processGroup{cmd: cmd}, nil
}

func (g *processGroup) signal(os.Signal) { g.cmd.Process.Kill() }
func (g *processGroup) kill()            { g.cmd.Process.Kill() }
func (g *processGroup) wait()            {}

//go:build !unix

package operators

import "os/exec"

// shellPath is the sh found on PATH (on Windows, e.g. Git for Windows').
const shellPath = "sh"

// ownProcessGroup keeps exec's default: cancelling kills the shell only.
func ownProcessGroup(*exec.Cmd) {}

//go:build !unix

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// execve runs path as a child with this process's streams and returns its
// exit code. Ctrl-C reaches the child through the console; tdctl only
// waits for it.
func execve(_ context.Context, path string, args, env []string) (int, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	return 0, nil
}

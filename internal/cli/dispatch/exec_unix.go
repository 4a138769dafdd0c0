//go:build unix

package dispatch

import (
	"context"
	"fmt"
	"syscall"
)

// execve replaces this process with path; it returns only when that fails.
func execve(_ context.Context, path string, args, env []string) (int, error) {
	err := syscall.Exec(path, append([]string{path}, args...), env)
	return 0, fmt.Errorf("exec: %w", err)
}

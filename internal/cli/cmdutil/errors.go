// Package cmdutil holds what every tdctl command shares: the typed errors
// that Main maps to exit codes, flag helpers and the run context.
package cmdutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// Exit codes. They are documented in `tdctl --help` and docs/cli.md; app
// is the only place that maps errors to them (app.ExitCode).
const (
	ExitOK          = 0   // success
	ExitUsage       = 1   // bad flags, arguments, configuration or local input
	ExitAPI         = 2   // the API (or the network to it) failed: auth, not found, 5xx...
	ExitJobFailed   = 3   // a job ended in error or killed
	ExitTimeout     = 4   // --timeout passed before the job finished
	ExitNotFinished = 5   // the job has not finished yet (job num-records without --wait)
	ExitInterrupted = 130 // Ctrl-C / SIGTERM
)

// ExitCoder is an error that carries its exit code. app.ExitCode asks the
// outermost one in an error's chain (errors.As); an error from a package
// that knows nothing of the CLI (the td SDK) is mapped in app's table
// instead.
type ExitCoder interface {
	error
	ExitCode() int
}

// FlagError is a usage error: bad flags, arguments or configuration.
type FlagError struct{ err error }

// FlagErrorf returns a usage error.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

// NewFlagError wraps err as a usage error.
func NewFlagError(err error) error {
	if err == nil {
		return nil
	}
	return &FlagError{err: err}
}

func (e *FlagError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *FlagError) Unwrap() error { return e.err }

// ExitCode is 1.
func (e *FlagError) ExitCode() int { return ExitUsage }

// ErrSilent ends a run with exit code 1 after the command already printed
// what went wrong.
var ErrSilent error = &codedError{"silent error", ExitUsage}

// ErrCancel is returned when the user interrupted the run (exit 130).
var ErrCancel error = &codedError{"interrupted", ExitInterrupted}

// ErrNotFinished matches errors reporting that a job has not finished yet
// (exit 5).
var ErrNotFinished error = &codedError{"job not finished", ExitNotFinished}

// codedError is a sentinel with its exit code.
type codedError struct {
	msg  string
	code int
}

func (e *codedError) Error() string { return e.msg }

// ExitCode is the sentinel's exit code.
func (e *codedError) ExitCode() int { return e.code }

// NotFinishedError says which job is still running and how to wait for it.
type NotFinishedError struct {
	JobID  string
	Status string
	Hint   string
}

func (e *NotFinishedError) Error() string {
	s := fmt.Sprintf("job %s is %s: it has not finished yet", e.JobID, e.Status)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrNotFinished) true.
func (e *NotFinishedError) Is(target error) bool { return target == ErrNotFinished }

// ExitCode is 5.
func (e *NotFinishedError) ExitCode() int { return ExitNotFinished }

// ConfigError is a configuration problem (a missing API key, an unreadable
// config file): exit code 1 like a usage error, but its message already
// names the fix, so no "see --help" hint is added.
type ConfigError struct{ err error }

// NewConfigError wraps err as a configuration error.
func NewConfigError(err error) error {
	if err == nil {
		return nil
	}
	return &ConfigError{err: err}
}

func (e *ConfigError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *ConfigError) Unwrap() error { return e.err }

// ExitCode is 1.
func (e *ConfigError) ExitCode() int { return ExitUsage }

// ScriptExitError ends `tdctl k8s run` with the script's own exit code.
// Only that command returns it, so a script's code never replaces the
// documented exit 3 of a failed workflow task.
type ScriptExitError struct {
	Code int
	Err  error
}

func (e *ScriptExitError) Error() string { return e.Err.Error() }

// Unwrap returns the k8sexec error.
func (e *ScriptExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit code Main uses.
func (e *ScriptExitError) ExitCode() int { return e.Code }

// StoreError is a failure of the param store itself: the server cannot be
// reached or refused the login, the table or keys are not in digdag's
// layout, a query failed. tdctl exits 2 on it, as on an API error. Err's
// message must already have any password masked.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return e.Err.Error() }

// Unwrap returns the paramstore error (errors.Is(err, paramstore.ErrUnavailable)...).
func (e *StoreError) Unwrap() error { return e.Err }

// ExitCode is the exit code of a store failure: 2, like an API error.
func (e *StoreError) ExitCode() int { return ExitAPI }

// PathCause returns the cause inside a *fs.PathError ("no such file or
// directory"), so that a message can name the path the user gave rather
// than one tdctl derived from it (a temporary file, a parent directory);
// ok is false, and err returned as it is, for any other error.
func PathCause(err error) (cause error, ok bool) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err, true
	}
	return err, false
}

// forced holds the temporary files to remove when a second signal ends
// the process at once (see app.Main).
var forced struct {
	sync.Mutex
	paths map[string]struct{}
}

// RemoveOnForcedExit registers a temporary file that a second Ctrl-C,
// SIGTERM or SIGHUP, which ends the process without waiting for the
// command's own clean-up, must still remove. The returned function
// unregisters it (call it once the file is renamed into place or
// removed).
func RemoveOnForcedExit(path string) (unregister func()) {
	forced.Lock()
	defer forced.Unlock()
	if forced.paths == nil {
		forced.paths = map[string]struct{}{}
	}
	forced.paths[path] = struct{}{}
	return func() {
		forced.Lock()
		defer forced.Unlock()
		delete(forced.paths, path)
	}
}

// ForcedExit removes the files registered with RemoveOnForcedExit; app
// calls it just before it ends the process on a second signal.
func ForcedExit() {
	forced.Lock()
	defer forced.Unlock()
	for p := range forced.paths {
		os.Remove(p)
	}
	forced.paths = nil
}

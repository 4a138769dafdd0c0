// Package app runs a tdctl command tree: Main builds it, runs it, prints
// any error as one line on stderr and maps it to an exit code — the only
// place where errors become exit codes. Both binaries use it: tdctl with
// its core tree (root.NewCmdCore) and tdctl-full with every command.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/build"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/dispatch"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/td"
)

// Builder returns the command tree for a command line (see
// root.NewCmdRoot: only the command that args runs is built in full).
type Builder func(f *factory.Factory, args []string) *cobra.Command

// Options tune Main for one binary.
type Options struct {
	// WaitForSignals makes the command wait until the signal handlers are
	// installed. A binary that starts other programs needs it (tdctl-full:
	// sh> tasks, pods' log streams): until then SIGPIPE is ignored, and a
	// child would inherit that.
	WaitForSignals bool
}

// Main runs the command tree newRoot builds with the process's arguments
// and streams and returns the exit code.
//
// Signals: Ctrl-C and SIGTERM cancel the command's context (exit 130; a
// second one is ignored while the command cleans up), and a write to a
// closed stdout fails with EPIPE, which is success for us, instead of
// killing the process. signal.Notify hands every signal to a thread it
// starts first, about 1 ms on a small VM — as long as the rest of tdctl's
// own start-up — so it runs beside the command; SIGPIPE is ignored at once
// (a plain sigaction) to cover the moments before.
func Main(newRoot Builder, o Options) int {
	td.Version = build.Version
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
		close(ready)
		for {
			select {
			case s := <-ch:
				if s != syscall.SIGPIPE {
					cancel()
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	if o.WaitForSignals {
		<-ready
	}
	ios := iostreams.System()
	dispatch.CheckVersion(ios.ErrOut, os.Getenv, os.Unsetenv)
	return Run(ctx, factory.New(ios), newRoot, os.Args[1:])
}

// Run executes one command line with the given factory and returns the exit
// code. Tests call it with iostreams.Test streams. A command line for a
// command that lives in tdctl-full (a dispatch stub of the tree) runs that
// binary instead.
func Run(ctx context.Context, f *factory.Factory, newRoot Builder, args []string) int {
	cmd := newRoot(f, args)
	if stub := dispatch.Target(cmd, args); stub != nil {
		return dispatch.Exec(ctx, f, stub.Name(), args)
	}
	cmd.SetArgs(args)
	ran, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return cmdutil.ExitOK
	}
	code := ExitCode(ctx, err)
	if code == cmdutil.ExitOK {
		return code
	}
	msg := cmdutil.Redact(cmdutil.Escape(strings.TrimSpace(err.Error())))
	if code == cmdutil.ExitUsage && ran != nil && isUsageError(err) {
		msg += fmt.Sprintf(" (see '%s --help')", ran.CommandPath())
	}
	if !errors.Is(err, cmdutil.ErrSilent) {
		fmt.Fprintln(f.IOStreams.ErrOut, msg)
	}
	return code
}

func isUsageError(err error) bool {
	var cfe *cmdutil.ConfigError
	if errors.As(err, &cfe) {
		return false
	}
	var fe *cmdutil.FlagError
	return errors.As(err, &fe) || strings.HasPrefix(err.Error(), "unknown command") ||
		strings.Contains(err.Error(), "arg(s)") || strings.HasPrefix(err.Error(), "unknown flag")
}

// ExitCode maps an error to tdctl's documented exit codes (see root.Help).
func ExitCode(ctx context.Context, err error) int {
	var script *cmdutil.ScriptExitError // `k8s run` exits with the script's code
	switch {
	case errors.As(err, &script):
		return script.ExitCode()
	case err == nil:
		return cmdutil.ExitOK
	case errors.Is(err, syscall.EPIPE):
		return cmdutil.ExitOK
	case errors.Is(err, cmdutil.ErrCancel),
		errors.Is(err, context.Canceled) && ctx != nil && ctx.Err() != nil:
		return cmdutil.ExitInterrupted
	case errors.Is(err, td.ErrWaitTimeout), errors.Is(err, context.DeadlineExceeded):
		return cmdutil.ExitTimeout
	case errors.Is(err, td.ErrJobFailed):
		return cmdutil.ExitJobFailed
	case errors.Is(err, cmdutil.ErrNotFinished):
		return cmdutil.ExitNotFinished
	}
	var fe *cmdutil.FlagError
	var cfe *cmdutil.ConfigError
	if errors.As(err, &fe) || errors.As(err, &cfe) {
		return cmdutil.ExitUsage
	}
	var ae *td.APIError
	if errors.As(err, &ae) || errors.Is(err, td.ErrNetwork) || errors.As(err, new(*cmdutil.StoreError)) {
		return cmdutil.ExitAPI
	}
	// The td SDK reports transport failures (connection refused, TLS, a
	// broken answer) as "td: METHOD PATH: ..." without a typed error.
	if strings.HasPrefix(err.Error(), "td: ") || strings.Contains(err.Error(), ": td: ") {
		return cmdutil.ExitAPI
	}
	var ce interface{ Unwrap() []error }
	if errors.As(err, &ce) {
		for _, e := range ce.Unwrap() {
			if c := ExitCode(ctx, e); c == cmdutil.ExitAPI {
				return c
			}
		}
	}
	return cmdutil.ExitUsage
}

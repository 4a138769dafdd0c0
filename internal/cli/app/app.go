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

// Main runs the command tree newRoot builds with the process's arguments
// and streams and returns the exit code.
func Main(newRoot func(*factory.Factory) *cobra.Command) int {
	td.Version = build.Version
	// A closed stdout pipe must make writes fail with EPIPE (success for us)
	// instead of killing the process with SIGPIPE.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ios := iostreams.System()
	dispatch.CheckVersion(ios.ErrOut, os.Getenv, os.Unsetenv)
	return Run(ctx, factory.New(ios), newRoot, os.Args[1:])
}

// Run executes one command line with the given factory and returns the exit
// code. Tests call it with iostreams.Test streams. A command line for a
// command that lives in tdctl-full (a dispatch stub of the tree) runs that
// binary instead.
func Run(ctx context.Context, f *factory.Factory, newRoot func(*factory.Factory) *cobra.Command, args []string) int {
	cmd := newRoot(f)
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
	msg := td.Redact(strings.TrimSpace(err.Error()))
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

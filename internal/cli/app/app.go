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
// Signals: Ctrl-C (SIGINT), SIGTERM and SIGHUP cancel the command's
// context, so it stops, cleans up (kills jobs with --kill-on-interrupt,
// removes temporary files, writes the run record, stops sh> tasks) and
// exits 130. A second one while it cleans up ends the process at once,
// with one line on stderr and exit 130, after removing the temporary files
// registered with cmdutil.RemoveOnForcedExit. A write to a closed stdout
// fails with EPIPE, which is success for us, instead of killing the
// process. signal.Notify hands every signal to a thread it starts first,
// about 1 ms on a small VM — as long as the rest of tdctl's own start-up —
// so it runs beside the command; SIGPIPE is ignored at once (a plain
// sigaction) to cover the moments before.
func Main(newRoot Builder, o Options) int {
	td.Version = build.Version
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	go handleSignals(cancel, ready, done, func(code int) { os.Exit(code) })
	if o.WaitForSignals {
		<-ready
	}
	ios := iostreams.System()
	dispatch.CheckVersion(ios.ErrOut, os.Getenv, os.Unsetenv)
	return Run(ctx, factory.New(ios), newRoot, os.Args[1:])
}

// stopSignals are the signals that stop a command: Ctrl-C, kill's
// default, and the terminal going away.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// handleSignals cancels the command on the first stop signal and exits
// the process on the second, until done is closed.
func handleSignals(cancel func(), ready, done chan struct{}, exit func(int)) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, append(stopSignals, syscall.SIGPIPE)...)
	close(ready)
	stopping := false
	for {
		select {
		case s := <-ch:
			switch {
			case s == syscall.SIGPIPE:
			case !stopping:
				stopping = true
				cancel()
			default:
				fmt.Fprintf(os.Stderr, "tdctl: %s again: exiting now, without waiting for the clean-up\n", signalName(s))
				cmdutil.ForcedExit()
				exit(cmdutil.ExitInterrupted)
				return
			}
		case <-done:
			return
		}
	}
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "interrupted"
	case syscall.SIGTERM:
		return "terminated"
	case syscall.SIGHUP:
		return "hangup"
	}
	return s.String()
}

// Run executes one command line with the given factory and returns the exit
// code. Tests call it with iostreams.Test streams. A command line for a
// command that lives in tdctl-full (a dispatch stub of the tree) runs that
// binary instead.
func Run(ctx context.Context, f *factory.Factory, newRoot Builder, args []string) int {
	if f.Context == nil {
		f.Context = ctx
	}
	cmd := newRoot(f, args)
	if stub := dispatch.Target(cmd, args); stub != nil {
		return dispatch.Exec(ctx, f, stub.Name(), args)
	}
	cmd.SetArgs(args)
	ran, err := cmd.ExecuteContextC(ctx)
	if err != nil && ran == cmd && !errors.As(err, new(cmdutil.ExitCoder)) {
		// cobra reports an unknown top-level command from Command.Find,
		// as a plain error; every other error of the root command (its
		// flags) is typed by its FlagErrorFunc.
		if _, _, ferr := cmd.Find(args); ferr != nil {
			err = cmdutil.NewFlagError(err)
		}
	}
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

// isUsageError reports whether err is about how the command was called,
// so that its message ends with a pointer to the command's help. A
// configuration error already names its fix.
func isUsageError(err error) bool {
	var fe *cmdutil.FlagError
	return errors.As(err, &fe) && !errors.As(err, new(*cmdutil.ConfigError))
}

// ExitCode maps an error to tdctl's documented exit codes (see root.Help),
// by one rule:
//
//  1. nil, and a write to a closed stdout (EPIPE), are success;
//  2. a context cancelled because the user interrupted the run (ctx done)
//     is 130;
//  3. the outermost error in the chain that implements
//     cmdutil.ExitCoder (ExitCode() int) decides: usage and configuration
//     errors, a param that is not set, a store failure, a failed
//     workflow, a script's own code...;
//  4. otherwise the first row of tdErrors the error matches: the td SDK
//     knows nothing of exit codes, so its types and sentinels are mapped
//     here, in one table;
//  5. anything else is 1 (bad input).
func ExitCode(ctx context.Context, err error) int {
	switch {
	case err == nil, errors.Is(err, syscall.EPIPE):
		return cmdutil.ExitOK
	case errors.Is(err, context.Canceled) && ctx != nil && ctx.Err() != nil:
		return cmdutil.ExitInterrupted
	}
	var ec cmdutil.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	for _, row := range tdErrors {
		if row.match(err) {
			return row.code
		}
	}
	return cmdutil.ExitUsage
}

// tdErrors maps the td SDK's errors to exit codes, first match wins. A
// deadline is the user's --timeout (the commands implement it as a context
// deadline); any other deadline (a store's connect timeout, an HTTP
// client's) reaches here typed, as a *td.NetError or a cmdutil.StoreError.
var tdErrors = []struct {
	match func(error) bool
	code  int
}{
	{is(td.ErrWaitTimeout), cmdutil.ExitTimeout},
	{is(td.ErrJobFailed), cmdutil.ExitJobFailed},
	{func(err error) bool { return errors.As(err, new(*td.APIError)) }, cmdutil.ExitAPI},
	{is(td.ErrUnauthorized), cmdutil.ExitAPI}, // the sentinels an *APIError matches,
	{is(td.ErrNotFound), cmdutil.ExitAPI},     // should the SDK return them on their own
	{is(td.ErrConflict), cmdutil.ExitAPI},
	{is(td.ErrInvalidRequest), cmdutil.ExitAPI},
	{is(td.ErrRateLimited), cmdutil.ExitAPI},
	{is(td.ErrServer), cmdutil.ExitAPI},
	{is(td.ErrNetwork), cmdutil.ExitAPI},
	{is(td.ErrTruncated), cmdutil.ExitAPI},
	{is(td.ErrProtocol), cmdutil.ExitAPI},          // an answer that cannot be used
	{is(td.ErrInvalidArgument), cmdutil.ExitUsage}, // refused before sending
	{is(context.DeadlineExceeded), cmdutil.ExitTimeout},
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

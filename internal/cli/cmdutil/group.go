package cmdutil

import (
	"strings"

	"github.com/spf13/cobra"
)

// MakeGroup makes cmd a command group: without arguments it prints its
// help; with an unknown subcommand it fails with a usage error (cobra would
// print the help and exit 0).
func MakeGroup(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return FlagErrorf("unknown command %q for %q", args[0], c.CommandPath())
		}
		return c.Help()
	}
	return cmd
}

// CommandWords returns the part of a command line that names the command to
// run: `help CMD ...` and cobra's completion requests (`__complete CMD ...`)
// are about CMD.
func CommandWords(args []string) []string {
	if len(args) > 0 {
		switch args[0] {
		case "help", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return args[1:]
		}
	}
	return args
}

// NoArgs is cobra.NoArgs as a usage error (exit 1, with the pointer to
// the command's help).
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// ExactArgs, MaximumNArgs and RangeArgs replace cobra's argument checks
// ("accepts 1 arg(s), received 0") with a usage error that shows the
// command's usage line, e.g. "missing argument: usage: tdctl job kill
// JOB_ID".
func ExactArgs(n int) cobra.PositionalArgs { return RangeArgs(n, n) }

// MaximumNArgs: see ExactArgs.
func MaximumNArgs(n int) cobra.PositionalArgs { return RangeArgs(0, n) }

// RangeArgs: see ExactArgs.
func RangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		usage := cmd.CommandPath()
		if _, rest, ok := strings.Cut(cmd.Use, " "); ok {
			usage += " " + rest
		}
		switch {
		case len(args) < min:
			return FlagErrorf("missing argument: usage: %s", usage)
		case len(args) > max:
			return FlagErrorf("too many arguments (%d given): usage: %s", len(args), usage)
		}
		return nil
	}
}

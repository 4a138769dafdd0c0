package cmdutil

import (
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

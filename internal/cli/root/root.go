// Package root assembles tdctl's command tree: the core commands (query,
// job, config, version, completion) and either the heavy ones (tdctl-full,
// see package cli) or stubs that hand them to tdctl-full (package dispatch).
package root

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/apicmd"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/completion"
	"github.com/tdctl/tdctl/internal/cli/configcmd"
	"github.com/tdctl/tdctl/internal/cli/connectioncmd"
	"github.com/tdctl/tdctl/internal/cli/dispatch"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/job"
	"github.com/tdctl/tdctl/internal/cli/query"
	"github.com/tdctl/tdctl/internal/cli/schedcmd"
	versioncmd "github.com/tdctl/tdctl/internal/cli/version"
)

// Help is the part of `tdctl --help` that documents behaviour every
// command shares.
const Help = `tdctl runs Treasure Data query jobs, waits for them, and exports or downloads
their results, from shell scripts and CI. The workflow runner, params, Kubernetes
and the emulator (workflow, param, k8s, dev-server, demo) live in tdctl-full,
shipped beside tdctl, which tdctl runs for them.

Try it without an account:
  tdctl dev-server            # prints an export line for TD_API_SERVER and TD_API_KEY

Configuration (first match wins; see 'tdctl config --help'):
  flags > TDCTL_* / TD_API_KEY, TD_API_SERVER > --profile > ~/.td/td.conf > tdctl config file

Output: a table on a terminal; tab-separated lines with RFC 3339 times when piped;
-o/--output table|tsv|csv|json|jsonl to choose. JSON field names are the API's
(snake_case). On 'query' and 'job result', -o is the output FILE and -f the format,
as in the Ruby td CLI. Progress bars appear on stderr only when it is a terminal.

Exit codes:
  0    success (also when stdout is a closed pipe, e.g. '| head')
  1    usage: bad flags or arguments, configuration (also a missing API key), local files
  2    API or auth error (including the network to the API), a param store failure
  3    a job ended in error or was killed
  4    timed out (--timeout)
  5    the job has not finished yet (job num-records / job result without --wait)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP); jobs keep running unless --kill-on-interrupt;
       a second signal ends tdctl at once, without waiting for its clean-up`

// LazyCommand is a top-level command. Its subtree is built only when a command
// line needs it (New); otherwise a placeholder with the same name and Short
// stands in, enough for help and completion of command names. Building the
// subtrees of every command on every run took 2–3 ms of tdctl's start-up
// (bench/startup), as long as the rest of its own start-up together.
type LazyCommand struct {
	Name  string
	Short string // the same as New's (TestTopLevelCommands keeps them equal)
	New   func(*factory.Factory) *cobra.Command
}

// Core lists tdctl's own top-level commands.
func Core() []LazyCommand {
	return []LazyCommand{
		{"query", "Issue a query job (and with -w wait for it and print its result)",
			func(f *factory.Factory) *cobra.Command { return query.NewCmdQuery(f, nil) }},
		{"job", "Inspect, wait for, kill and export query jobs", job.NewCmdJob},
		{"sched", schedcmd.Short, schedcmd.NewCmdSched},
		{"connection", connectioncmd.Short, connectioncmd.NewCmdConnection},
		{"api", apicmd.Short, func(f *factory.Factory) *cobra.Command { return apicmd.NewCmdAPI(f, nil) }},
		{"config", "Inspect tdctl's configuration", configcmd.NewCmdConfig},
		{"version", "Print tdctl's version", versioncmd.NewCmdVersion},
		{"completion", "Print a shell completion script", completion.NewCmdCompletion},
	}
}

// Stubs are the dispatch stubs (package dispatch) as LazyCommands.
func Stubs() []LazyCommand {
	var cmds []LazyCommand
	for _, c := range dispatch.Stubs() {
		cmds = append(cmds, LazyCommand{c.Name(), c.Short, func(*factory.Factory) *cobra.Command { return c }})
	}
	return cmds
}

// NewCmdCore returns the tree of the tdctl binary for the command line
// args: the core commands and dispatch stubs for the rest.
func NewCmdCore(f *factory.Factory, args []string) *cobra.Command {
	return NewCmdRoot(f, args, append(Core(), Stubs()...))
}

// NewCmdRoot returns the tdctl command with cmds as its subcommands: the
// one args runs (also through `help CMD` and `__complete CMD ...`) fully
// built, the others as placeholders. args nil builds every command.
func NewCmdRoot(f *factory.Factory, args []string, cmds []LazyCommand) *cobra.Command {
	cmd := newRoot(f)
	if args == nil {
		for _, c := range cmds {
			cmd.AddCommand(c.New(f))
		}
		return cmd
	}
	for _, c := range cmds {
		cmd.AddCommand(placeholder(c))
	}
	name := Selected(cmd, args)
	for _, c := range cmds {
		if c.Name != name {
			continue
		}
		for _, p := range cmd.Commands() {
			if p.Name() == name {
				cmd.RemoveCommand(p)
			}
		}
		cmd.AddCommand(c.New(f))
	}
	return cmd
}

// Selected is the top-level command that args reach in root's tree ("" for
// root itself or an unknown command).
func Selected(root *cobra.Command, args []string) string {
	c, _, err := root.Find(cmdutil.CommandWords(args))
	if err != nil || c == nil || c == root {
		return ""
	}
	for c.Parent() != root {
		c = c.Parent()
	}
	return c.Name()
}

func placeholder(c LazyCommand) *cobra.Command {
	return &cobra.Command{
		Use:                c.Name,
		Short:              c.Short,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("internal error: command %s was not built", c.Name)
		},
	}
}

func newRoot(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "tdctl <command> [flags]",
		Short:         "Treasure Data jobs from the command line",
		Long:          Help,
		Version:       versioncmd.String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	cmd.SetVersionTemplate("{{.Version}}\n")
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	cmd.SetIn(f.IOStreams.In)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return cmdutil.NewFlagError(err)
	})
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.Flags.APIKey, "apikey", "", "API key (prefer TD_API_KEY: flags show up in ps)")
	pf.StringVar(&f.Flags.Endpoint, "endpoint", "", "API endpoint: a URL, host, or site (us01, jp01, eu01, ap02, ap03)")
	pf.StringVar(&f.Flags.Profile, "profile", "", "profile of tdctl's config file to use (env TDCTL_PROFILE)")
	pf.StringVar(&f.Flags.ConfigFile, "config", "", "tdctl config file (env TDCTL_CONFIG; default $XDG_CONFIG_HOME/tdctl/config.yaml)")
	pf.BoolVar(&f.Flags.Debug, "debug", false, "log HTTP traffic to stderr, secrets redacted (env TDCTL_DEBUG=1)")

	return cmd
}

// Package root assembles tdctl's command tree: the core commands (query,
// job, config, version, completion) and either the heavy ones (tdctl-full,
// see package cli) or stubs that hand them to tdctl-full (package dispatch).
package root

import (
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/completion"
	"github.com/tdctl/tdctl/internal/cli/configcmd"
	"github.com/tdctl/tdctl/internal/cli/dispatch"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/job"
	"github.com/tdctl/tdctl/internal/cli/query"
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
  2    API or auth error (including the network to the API)
  3    a job ended in error or was killed
  4    timed out (--timeout)
  5    the job has not finished yet (job num-records / job result without --wait)
  130  interrupted (Ctrl-C); jobs keep running unless --kill-on-interrupt`

// NewCmdCore returns the tree of the tdctl binary: the core commands and
// dispatch stubs for the rest.
func NewCmdCore(f *factory.Factory) *cobra.Command {
	return NewCmdRoot(f, dispatch.Stubs()...)
}

// NewCmdRoot returns the tdctl command with the core subcommands and more.
func NewCmdRoot(f *factory.Factory, more ...*cobra.Command) *cobra.Command {
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

	cmd.AddCommand(
		query.NewCmdQuery(f, nil),
		job.NewCmdJob(f),
		configcmd.NewCmdConfig(f),
		versioncmd.NewCmdVersion(f),
		completion.NewCmdCompletion(f),
	)
	cmd.AddCommand(more...)
	return cmd
}

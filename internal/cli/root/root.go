// Package root assembles the tdctl command tree.
package root

import (
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/completion"
	"github.com/tdctl/tdctl/internal/cli/configcmd"
	"github.com/tdctl/tdctl/internal/cli/democmd"
	"github.com/tdctl/tdctl/internal/cli/devserver"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/job"
	"github.com/tdctl/tdctl/internal/cli/k8scmd"
	"github.com/tdctl/tdctl/internal/cli/paramcmd"
	"github.com/tdctl/tdctl/internal/cli/query"
	versioncmd "github.com/tdctl/tdctl/internal/cli/version"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd"
)

// Help is the part of `tdctl --help` that documents behaviour every
// command shares.
const Help = `tdctl runs Treasure Data query jobs, waits for them, and exports or downloads
their results — one static binary for shell scripts and CI.

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

// NewCmdRoot returns the tdctl command with every subcommand.
func NewCmdRoot(f *factory.Factory) *cobra.Command {
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
		devserver.NewCmdDevServer(f, nil),
		democmd.NewCmdDemo(f),
		workflowcmd.NewCmdWorkflow(f, nil),
		paramcmd.NewCmdParam(f),
		k8scmd.NewCmdK8s(f),
		versioncmd.NewCmdVersion(f),
		completion.NewCmdCompletion(f),
	)
	return cmd
}

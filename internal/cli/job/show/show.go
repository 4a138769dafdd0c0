// Package show implements `tdctl job show`.
package show

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// ShowOptions are the inputs of `job show`.
type ShowOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	JobID  string
	Format output.Format
}

// NewCmdShow returns `job show`. runF replaces the run function in tests.
func NewCmdShow(f *factory.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:   "show JOB_ID",
		Short: "Show everything about a job",
		Long: "Show a job's status, times, sizes, record count, result schema, query and (when it failed) its error output.\n\n" +
			"With -o json the fields are those of the TD API's job/show (snake_case); see docs/cli.md.",
		Example: "  tdctl job show 12345\n  tdctl job show 12345 -o json | jq .num_records",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JobID, opts.Ctx = args[0], cmd.Context()
			if err := shared.RequireID(opts.JobID); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return showRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func showRun(opts *ShowOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	job, err := c.Jobs.Show(opts.Ctx, opts.JobID)
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return p.JSON(shared.Sanitize(job))
	}
	return p.KeyValues(shared.ShowPairs(p, job))
}

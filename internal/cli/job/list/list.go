// Package list implements `tdctl job list`.
package list

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

// ListOptions are the inputs of `job list`.
type ListOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	Status   string
	Limit    int
	PageSize int
	Format   output.Format
}

var statuses = []string{td.StatusQueued, td.StatusRunning, td.StatusSuccess, td.StatusError}

// NewCmdList returns `job list`.
func NewCmdList(f *factory.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List jobs, newest first",
		Long: "List jobs, newest first, walking the API's pages until --limit jobs were printed\n" +
			"(--limit 0 lists every job).",
		Example: "  tdctl job list --status running\n  tdctl job list --limit 100 -o jsonl | jq -r 'select(.num_records == 0) | .job_id'",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if opts.Status != "" && !contains(statuses, opts.Status) {
				return cmdutil.FlagErrorf("invalid --status %q: use queued, running, success or error", opts.Status)
			}
			if opts.Limit < 0 {
				return cmdutil.FlagErrorf("--limit must be 0 (all) or more")
			}
			if opts.PageSize < 1 || opts.PageSize > 1000 {
				return cmdutil.FlagErrorf("--page-size must be between 1 and 1000")
			}
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Status, "status", "s", "", "only jobs in this state: queued, running, success or error")
	cmd.Flags().IntVarP(&opts.Limit, "limit", "l", 20, "print at most this many jobs (0 = all)")
	cmd.Flags().IntVar(&opts.PageSize, "page-size", td.DefaultPageSize, "jobs fetched per API call")
	_ = cmd.RegisterFlagCompletionFunc("status", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return statuses, cobra.ShellCompDirectiveNoFileComp
	})
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func listRun(opts *ListOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	var jobs []*td.Job
	var t *output.Table
	if !p.Structured() {
		t = p.Table(shared.ListHeaders...)
	}
	for j, err := range c.Jobs.All(opts.Ctx, &td.ListOptions{Status: opts.Status, Limit: opts.Limit, PageSize: opts.PageSize}) {
		if err != nil {
			return err
		}
		switch {
		case p.Format == output.FormatJSONL:
			// stream: one line per job as pages arrive
			if err := p.JSON(shared.Sanitize(j)); err != nil {
				return err
			}
		case p.Structured():
			jobs = append(jobs, shared.Sanitize(j))
		default:
			t.Row(shared.ListRow(p, j)...)
		}
	}
	switch {
	case p.Format == output.FormatJSONL:
		return nil
	case p.Structured():
		return output.JSONList(p, jobs)
	}
	return t.Render()
}

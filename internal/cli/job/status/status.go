// Package status implements `tdctl job status`.
package status

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// StatusOptions are the inputs of `job status`.
type StatusOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	JobID  string
	Format output.Format
}

// NewCmdStatus returns `job status`.
func NewCmdStatus(f *factory.Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:   "status JOB_ID",
		Short: "Print a job's status (queued, booting, running, success, error, killed)",
		Long: "Print a job's status. By default just the word, so scripts can write\n" +
			"  [ \"$(tdctl job status 12345)\" = success ]\n" +
			"-o table|csv|json|jsonl print the cheap status record (job_id, status, created_at, start_at, end_at,\n" +
			"duration, cpu_time, result_size, num_records).",
		Args: cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JobID, opts.Ctx = args[0], cmd.Context()
			if err := shared.RequireID(opts.JobID); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return statusRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func statusRun(opts *StatusOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	st, err := c.Jobs.Status(opts.Ctx, opts.JobID)
	if err != nil {
		return err
	}
	if opts.Format == output.FormatAuto {
		_, err := fmt.Fprintln(opts.IO.Out, st.Status)
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return p.JSON(st)
	}
	t := p.Table("job_id", "status", "created_at", "start_at", "end_at", "duration", "cpu_time", "result_size", "num_records")
	t.Row(st.JobID, st.Status, p.Time(&st.CreatedAt), p.Time(st.StartAt), p.Time(st.EndAt),
		output.Int(st.Duration), output.Int(st.CPUTime), output.Int(st.ResultSize), output.Int(st.NumRecords))
	return t.Render()
}

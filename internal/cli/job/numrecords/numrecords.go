// Package numrecords implements `tdctl job num-records`.
package numrecords

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/td"
)

// NumRecordsOptions are the inputs of `job num-records`.
type NumRecordsOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	JobID   string
	DoWait  bool
	Wait    shared.WaitFlags
	Require bool
}

// NewCmdNumRecords returns `job num-records`.
func NewCmdNumRecords(f *factory.Factory, runF func(*NumRecordsOptions) error) *cobra.Command {
	opts := &NumRecordsOptions{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:   "num-records JOB_ID",
		Short: "Print just the number of records a finished job produced",
		Long: "Print the job's num_records and nothing else, for scripts:\n\n" +
			"  n=$(tdctl job num-records \"$job\") || exit\n\n" +
			"A job that has not finished yet is an error with exit code 5 (pass --wait to wait for it).\n" +
			"A job that ended in error or was killed has no record count: exit code 3.",
		Args: cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JobID, opts.Ctx = args[0], cmd.Context()
			if err := shared.RequireID(opts.JobID); err != nil {
				return err
			}
			if err := opts.Wait.Validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return opts.Wait.Bound(opts.Ctx, "job "+opts.JobID, func(ctx context.Context) error {
				opts.Ctx = ctx
				return numRecordsRun(opts)
			})
		},
	}
	cmd.Flags().BoolVarP(&opts.DoWait, "wait", "w", false, "wait for the job to finish first")
	shared.AddWaitFlags(cmd, &opts.Wait)
	return cmd
}

func numRecordsRun(opts *NumRecordsOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if opts.DoWait {
		job, err := shared.Wait(opts.Ctx, opts.IO, c, opts.JobID, &opts.Wait)
		if err != nil {
			return err
		}
		return printCount(opts, job.ID, job.Status, job.NumRecords)
	}
	st, err := c.Jobs.Status(opts.Ctx, opts.JobID)
	if err != nil {
		return err
	}
	if !st.Finished() {
		return &cmdutil.NotFinishedError{JobID: opts.JobID, Status: st.Status, Hint: "pass --wait to wait for it"}
	}
	if st.Status != td.StatusSuccess {
		return &td.JobFailedError{JobID: opts.JobID, Status: st.Status}
	}
	return printCount(opts, st.JobID, st.Status, st.NumRecords)
}

func printCount(opts *NumRecordsOptions, id, status string, n *int64) error {
	if n == nil {
		return fmt.Errorf("job %s is %s but the API sent no num_records", id, status)
	}
	_, err := fmt.Fprintln(opts.IO.Out, *n)
	return err
}

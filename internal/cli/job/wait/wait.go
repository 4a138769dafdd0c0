// Package wait implements `tdctl job wait`.
package wait

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// WaitOptions are the inputs of `job wait`.
type WaitOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	JobID  string
	Wait   shared.WaitFlags
	Format output.Format
}

// NewCmdWait returns `job wait`.
func NewCmdWait(f *factory.Factory, runF func(*WaitOptions) error) *cobra.Command {
	opts := &WaitOptions{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:   "wait JOB_ID",
		Short: "Wait for a job to finish; fail unless it succeeded",
		Long: "Wait for a job to finish, polling its status (1s doubling to 30s). Exit 0 when it succeeded,\n" +
			"3 when it ended in error or was killed, 4 after --timeout, 130 when interrupted (the job keeps\n" +
			"running unless --kill-on-interrupt). Prints the finished job like `job show` on stdout.",
		Example: "  tdctl job wait 12345 --timeout 1h && tdctl job result 12345 -f csv -o out.csv",
		Args:    cmdutil.ExactArgs(1),
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
				return waitRun(opts)
			})
		},
	}
	shared.AddWaitFlags(cmd, &opts.Wait)
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func waitRun(opts *WaitOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	job, err := shared.Wait(opts.Ctx, opts.IO, c, opts.JobID, &opts.Wait)
	if job != nil && (err == nil || errors.Is(err, td.ErrJobFailed)) {
		p := output.New(opts.IO, opts.Format)
		var perr error
		if p.Structured() {
			perr = p.JSON(shared.Sanitize(job))
		} else {
			perr = p.KeyValues(shared.ShowPairs(p, job))
		}
		if err == nil {
			err = perr
		}
	}
	return err
}

// Package result implements `tdctl job result`.
package result

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/td"
)

// ResultOptions are the inputs of `job result`.
type ResultOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	JobID  string
	Result shared.ResultFlags
	DoWait bool
	Wait   shared.WaitFlags
}

// NewCmdResult returns `job result`.
func NewCmdResult(f *factory.Factory, runF func(*ResultOptions) error) *cobra.Command {
	opts := &ResultOptions{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:   "result JOB_ID",
		Short: "Print or download a finished job's result",
		Long: "Stream a finished job's result to stdout or to -o FILE.\n\n" +
			"Like `tdctl query` (and the Ruby td CLI), this command takes -f/--format for the format\n" +
			"(table, tsv, csv, json, jsonl, msgpack.gz) and -o/--output for the FILE to write.\n" +
			"json is an array of objects keyed by column name, jsonl one such object per line;\n" +
			"msgpack.gz is the API's raw result (gzip of one msgpack array per row).\n" +
			"A download cut mid-way resumes where it stopped.",
		Example: "  tdctl job result 12345 -f csv -c -o result.csv\n  tdctl job result 12345 -f jsonl | jq .code",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JobID, opts.Ctx = args[0], cmd.Context()
			if err := shared.RequireID(opts.JobID); err != nil {
				return err
			}
			if err := opts.Result.Validate(); err != nil {
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
				return resultRun(opts)
			})
		},
	}
	shared.AddResultFlags(cmd, &opts.Result)
	cmd.Flags().BoolVarP(&opts.DoWait, "wait", "w", false, "wait for the job to finish first")
	shared.AddWaitFlags(cmd, &opts.Wait)
	return cmd
}

func resultRun(opts *ResultOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	var job *td.Job
	if opts.DoWait {
		job, err = shared.Wait(opts.Ctx, opts.IO, c, opts.JobID, &opts.Wait)
	} else {
		job, err = c.Jobs.Show(opts.Ctx, opts.JobID)
	}
	if err != nil {
		return err
	}
	switch {
	case !job.Finished():
		return &cmdutil.NotFinishedError{JobID: job.ID, Status: job.Status, Hint: "pass --wait to wait for it"}
	case job.Status != td.StatusSuccess:
		fe := &td.JobFailedError{JobID: job.ID, Status: job.Status}
		if job.Debug != nil {
			fe.Stderr = job.Debug.Stderr
		}
		return fe
	}
	return shared.WriteResult(opts.Ctx, opts.IO, c, job, &opts.Result)
}

package workflowcmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd/remote"
	"github.com/tdctl/tdctl/workflow"
)

type logsOptions struct {
	*Options
	Run    string
	Task   string
	Follow bool
	// Remote shows a workflow server attempt's logs (a numeric RUN_ID).
	Remote func(ctx context.Context, id, task string, follow bool, format output.Format) error
}

func newLogsCmd(lo *logsOptions, runF func(*logsOptions) error) *cobra.Command {
	o := lo.Options
	cmd := &cobra.Command{
		Use:   "logs [RUN_ID | ATTEMPT_ID]",
		Short: "Show a run's summary, or one task's log with --task; or a server attempt's logs",
		Long: `Show the summary of a run (the latest when RUN_ID is omitted), or with --task NAME the
log of that task (NAME may be the full path +wf+group+task or its end, e.g. +task).

A numeric ATTEMPT_ID is an attempt on the workflow server ('workflow start'): its task logs
are printed, oldest first; --task then takes the start of a full task name (+wf+load, as
digdag log does); -f/--follow keeps printing them as they come until the attempt ends (then
exit 3 if it failed).

A run's record is written as its tasks start and end, so a run still going, or one whose
process was killed, can be shown too: the first has state running, the second interrupted
(its record says running but its process is gone), with its unfinished tasks interrupted.`,
		Example: "  tdctl workflow logs\n  tdctl workflow logs --task +show_num_records\n  tdctl workflow logs 20261125T210000Z-1a2b3c -o json",
		Args:    cmdutil.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				lo.Run = args[0]
			}
			lo.Ctx = cmd.Context()
			if runF != nil {
				return runF(lo)
			}
			if lo.Run != "" && lo.Remote != nil && remote.IsAttemptID(lo.Run) {
				return lo.Remote(lo.Ctx, lo.Run, lo.Task, lo.Follow, o.Format)
			}
			if lo.Follow {
				return cmdutil.FlagErrorf("--follow is for an attempt on the workflow server (a numeric ATTEMPT_ID); a local run's logs are complete once it ends")
			}
			return logsRun(lo)
		},
	}
	cmd.Flags().StringVar(&lo.Task, "task", "", "print this task's log")
	cmd.Flags().BoolVarP(&lo.Follow, "follow", "f", false, "with an ATTEMPT_ID: print the logs as they come until the attempt ends")
	cmd.Flags().StringVar(&o.RunsDir, "runs-dir", "", "where run logs are kept (env TDCTL_RUNS_DIR)")
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

// summaryLine is the line under a run's task table. A run still going and
// one whose process died (state interrupted: its record still said running)
// say so.
func summaryLine(sum *workflow.Summary) string {
	d := sum.Duration.Round(time.Millisecond)
	switch sum.State {
	case workflow.StateRunning:
		return fmt.Sprintf("run %s: running for %s so far, pid %d (logs: %s)", sum.RunID, d, sum.PID, sum.Dir)
	case workflow.StateInterrupted:
		return fmt.Sprintf("run %s: interrupted after %s: %s; tasks shown as interrupted did not finish (logs: %s)", sum.RunID, d, sum.Error, sum.Dir)
	}
	return fmt.Sprintf("run %s: %s in %s (logs: %s)", sum.RunID, sum.State, d, sum.Dir)
}

func logsRun(o *logsOptions) error {
	dir, err := o.runsDir()
	if err != nil {
		return err
	}
	runs := LocalRuns{Dir: dir}
	sum, err := runs.Run(o.Run)
	if err != nil {
		return cmdutil.NewFlagError(err)
	}
	if o.Task == "" {
		return printSummary(output.New(o.IO, o.Format), o.IO, sum)
	}
	recs := sum.FindTask(o.Task)
	if len(recs) == 0 {
		var names []string
		for _, t := range sum.Tasks {
			names = append(names, t.Path)
		}
		return cmdutil.FlagErrorf("run %s has no task %q; its tasks: %s", sum.RunID, o.Task, strings.Join(names, ", "))
	}
	for _, rec := range recs {
		if len(recs) > 1 {
			fmt.Fprintf(o.IO.Out, "==> %s (%s, %s) <==\n", rec.Path, rec.State, rec.Duration.Round(time.Millisecond))
		}
		f, _, err := runs.Log(rec, 0)
		if err != nil {
			return cmdutil.NewFlagError(fmt.Errorf("task log: %w", err))
		}
		_, err = io.Copy(o.IO.Out, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

package remote

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
)

// RetryOptions are the inputs of `workflow retry ATTEMPT_ID`.
type RetryOptions struct {
	*Options
	ID           string
	Name         string
	ResumeFrom   string
	All, Resume  bool
	Revision     string
	KeepRevision bool
	Params       []string
	ParamsFile   string
	Wait         bool
	Timeout      time.Duration
}

// NewCmdRetry returns `workflow retry ID`. A numeric ID is an attempt on
// the workflow server, retried here; any other ID is a local run, handed
// to local (nil: refused, naming the two forms).
func NewCmdRetry(o *Options, local func(cmd *cobra.Command, args []string) error, runF func(*RetryOptions) error) *cobra.Command {
	ro := &RetryOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "retry ID",
		Short: "Retry an attempt on the workflow server (a numeric id) or a local run",
		Long: `With a numeric ID — an attempt on the workflow server — start a new attempt of its session,
with its session time and params (-p/-P add to them), as digdag retry does:
  --resume              rerun only the tasks that did not succeed (the default)
  --resume-from +TASK   rerun from TASK on (a task's full name or its end, e.g. +load)
  --all                 rerun every task
The workflow definition is the project's latest revision unless --keep-revision (the
attempt's own) or --revision NAME; the attempt is named --name (default a random UUID).
--wait follows it as 'workflow start --wait' does (exit 3 on failure, 4 after --timeout).

Any other ID is a local run id (as 'workflow logs' lists them) and retries that run
locally.`,
		Example: "  tdctl workflow retry 1234 --resume-from +load --wait\n  tdctl workflow retry 1234 --all --keep-revision",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !IsAttemptID(args[0]) {
				if local == nil {
					return cmdutil.FlagErrorf("retry %q: not a workflow server attempt id (a number); retrying a local run is not available in this build", args[0])
				}
				return local(cmd, args)
			}
			ro.ID, ro.Ctx = args[0], cmd.Context()
			n := 0
			for _, b := range []bool{ro.All, ro.Resume, ro.ResumeFrom != ""} {
				if b {
					n++
				}
			}
			if n > 1 {
				return cmdutil.FlagErrorf("give one of --all, --resume and --resume-from")
			}
			if ro.KeepRevision && ro.Revision != "" {
				return cmdutil.FlagErrorf("give --keep-revision or --revision, not both")
			}
			if ro.Timeout != 0 && !ro.Wait {
				return cmdutil.FlagErrorf("--timeout needs --wait")
			}
			if runF != nil {
				return runF(ro)
			}
			return retryRun(ro)
		},
	}
	cmd.Flags().BoolVar(&ro.Resume, "resume", false, "rerun only the tasks that did not succeed (default)")
	cmd.Flags().StringVar(&ro.ResumeFrom, "resume-from", "", "rerun from this task on (+name)")
	cmd.Flags().BoolVar(&ro.All, "all", false, "rerun every task")
	cmd.Flags().StringVar(&ro.Name, "name", "", "the new attempt's retry name (default: a random UUID)")
	cmd.Flags().BoolVar(&ro.KeepRevision, "keep-revision", false, "run the attempt's own revision (default: the latest)")
	cmd.Flags().StringVar(&ro.Revision, "revision", "", "run this revision")
	cmd.Flags().BoolVar(&ro.Wait, "wait", false, "wait for the new attempt to end (exit 3 if it failed)")
	cmd.Flags().DurationVar(&ro.Timeout, "timeout", 0, "with --wait: give up after this long (exit 4)")
	addParamFlags(cmd, &ro.Params, &ro.ParamsFile)
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

func retryRun(o *RetryOptions) error {
	ps, err := params(o.Ctx, o.ParamsFile, o.Params)
	if err != nil {
		return err
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	ro := &digdag.RetryOptions{Name: o.Name, ResumeFrom: o.ResumeFrom, Failed: !o.All && o.ResumeFrom == "", Params: ps}
	switch {
	case o.KeepRevision:
	case o.Revision != "":
		ro.Revision = o.Revision
	default:
		ro.Revision = digdag.LatestRevision
	}
	a, err := c.Attempts.Retry(o.Ctx, o.ID, ro)
	if err != nil {
		return err
	}
	return started(o.Options, c, a, o.Wait, o.Timeout)
}

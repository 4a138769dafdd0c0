package remote

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
)

// RetryHelp is the part of `workflow retry`'s help about server attempts.
const RetryHelp = `With a numeric ID — an attempt on the workflow server ('workflow start') — the server
starts a new attempt of its session, with its session time and params (-p/-P add to them), as
digdag retry does: --resume (the default) reruns the tasks that did not succeed, --resume-from
+NAME reruns from +NAME on, --all reruns every task. The workflow definition is the project's
latest revision unless --keep-revision (the attempt's own) or --revision NAME; the attempt is
named --name (default a random UUID). --wait follows it as 'workflow start --wait' does (exit
3 if it failed, 4 after --timeout).`

// RetryFlags are the flags only a server attempt's retry takes.
type RetryFlags struct {
	Name         string
	Revision     string
	KeepRevision bool
	Wait         bool
	Timeout      time.Duration
}

// retryFlagNames are RetryFlags' flag names.
var retryFlagNames = []string{"name", "revision", "keep-revision", "wait", "timeout"}

// AddRetryFlags adds the server-only flags of `workflow retry` to fs.
func AddRetryFlags(fs *pflag.FlagSet) *RetryFlags {
	rf := &RetryFlags{}
	fs.StringVar(&rf.Name, "name", "", "with an attempt id: the new attempt's retry name (default: a random UUID)")
	fs.BoolVar(&rf.KeepRevision, "keep-revision", false, "with an attempt id: run the attempt's own revision (default: the latest)")
	fs.StringVar(&rf.Revision, "revision", "", "with an attempt id: run this revision")
	fs.BoolVar(&rf.Wait, "wait", false, "with an attempt id: wait for the new attempt to end (exit 3 if it failed)")
	fs.DurationVar(&rf.Timeout, "timeout", 0, "with --wait: give up after this long (exit 4)")
	return rf
}

// RefuseRetryFlags refuses the server-only flags on a local run's retry.
func RefuseRetryFlags(fs *pflag.FlagSet, run string) error {
	for _, n := range retryFlagNames {
		if fs.Changed(n) {
			return cmdutil.FlagErrorf("--%s is for an attempt on the workflow server (a numeric id); %s is a local run", n, run)
		}
	}
	return nil
}

// RetryOptions are the inputs of `workflow retry ATTEMPT_ID`.
type RetryOptions struct {
	*Options
	RetryFlags
	ID         string
	ResumeFrom string
	All        bool
	Params     []string
	ParamsFile string
}

// RetryRun retries a server attempt (the flags' checks done by the caller:
// one of --all/--resume/--resume-from).
func RetryRun(o *RetryOptions) error {
	if err := requireAttemptID(o.ID); err != nil {
		return err
	}
	if o.KeepRevision && o.Revision != "" {
		return cmdutil.FlagErrorf("give --keep-revision or --revision, not both")
	}
	if o.Timeout != 0 && !o.Wait {
		return cmdutil.FlagErrorf("--timeout needs --wait")
	}
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

package workflowcmd

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/config"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/internal/cli/paramcmd"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd/remote"
	"github.com/tdctl/tdctl/workflow"
)

// RunFlags are `digdag run`'s flags that `workflow run` takes, spelled as
// digdag spells them.
type RunFlags struct {
	Rerun          bool   // -a, --rerun, --all: every task runs (tdctl's default)
	Start          string // -s, --start +NAME
	Goal           string // -g, --goal +NAME
	End            string // -e, --end +NAME
	DryRun         bool   // -d, --dry-run
	ShowParams     bool   // -E, --show-params
	MaxTaskThreads int    // --max-task-threads N
}

// refusedRunFlags are `digdag run` flags tdctl has no equivalent for: they
// are accepted by the parser only to be refused with a line saying why.
var refusedRunFlags = map[string]string{
	"project":  "tdctl runs the .dig file given (its includes and query files are read next to it); cd to the project or give the file's path",
	"save":     "tdctl keeps every run's record under --runs-dir (env TDCTL_RUNS_DIR)",
	"no-save":  "tdctl always keeps the run's record (under --runs-dir); it is what workflow logs, ui and retry read",
	"task-log": "task logs are kept in the run's directory under --runs-dir; see tdctl workflow logs",
	"timezone": "a workflow's time zone is its timezone: key; session times are read in it",
}

func (f *RunFlags) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVarP(&f.Rerun, "rerun", "a", false, "run every task, even those that succeeded in the last run of this session (tdctl's default; digdag's -a)")
	fl.BoolVar(&f.Rerun, "all", false, "the same as --rerun")
	fl.StringVarP(&f.Start, "start", "s", "", "run +NAME and every task after it; tasks before it that succeeded in the last run of this session are restored, not run")
	fl.StringVarP(&f.Goal, "goal", "g", "", "run +NAME and its subtasks; tasks before it that succeeded in the last run of this session are restored, tasks after it are skipped")
	fl.StringVarP(&f.End, "end", "e", "", "skip +NAME and every task after it")
	fl.BoolVarP(&f.DryRun, "dry-run", "d", false, "evaluate every task and print what it would run; run nothing (no query, no script, no param store write) and keep no run record")
	fl.BoolVarP(&f.ShowParams, "show-params", "E", false, "print the params each task gets before it runs (with -d: -dE)")
	fl.IntVar(&f.MaxTaskThreads, "max-task-threads", 0, "run at most N operators at once (default 8)")
	for name := range refusedRunFlags {
		fl.String(name, "", "not supported")
		_ = fl.MarkHidden(name)
	}
	fl.Lookup("no-save").NoOptDefVal = "true"
}

// validate refuses the flag combinations digdag refuses, and the digdag
// flags tdctl does not have.
func (f *RunFlags) validate(cmd *cobra.Command) error {
	names := make([]string, 0, len(refusedRunFlags))
	for name := range refusedRunFlags {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if cmd.Flags().Changed(name) {
			return cmdutil.FlagErrorf("--%s is not supported: %s", name, refusedRunFlags[name])
		}
	}
	switch {
	case f.Start != "" && f.Goal != "":
		return cmdutil.FlagErrorf("--start and --goal cannot be used together: give one")
	case f.Goal != "" && f.End != "":
		return cmdutil.FlagErrorf("--goal and --end cannot be used together: give one")
	case f.Rerun && f.Start != "":
		return cmdutil.FlagErrorf("--rerun and --start cannot be used together: --rerun restores nothing")
	case f.Rerun && f.Goal != "":
		return cmdutil.FlagErrorf("--rerun and --goal cannot be used together: --rerun restores nothing")
	case f.MaxTaskThreads < 0:
		return cmdutil.FlagErrorf("--max-task-threads must be 1 or more")
	}
	return nil
}

// runArgs is FILE.dig; digdag's second argument (+TASK, a pattern that
// runs that part of the workflow only) is refused by name.
func runArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 2 && strings.HasPrefix(args[1], "+") {
		return cmdutil.FlagErrorf("the task argument %s (digdag run FILE +TASK) is not supported: use --start %s or --goal %s", args[1], args[1], args[1])
	}
	return cmdutil.ExactArgs(1)(cmd, args)
}

// run runs wf fresh, or, with --start, --goal or --end, as a new attempt
// of the last run of this workflow and session time (digdag's
// .digdag/status/<session>): the tasks the flags leave alone that
// succeeded there are restored, not run again.
func (f *RunFlags) run(ctx context.Context, r *workflow.Runner, wf *workflow.Workflow) (*workflow.Summary, error) {
	if f.Start == "" && f.Goal == "" && f.End == "" {
		return r.Run(ctx, wf)
	}
	for _, fl := range []struct{ name, val string }{{"--start", f.Start}, {"--goal", f.Goal}, {"--end", f.End}} {
		if fl.val == "" {
			continue
		}
		if _, err := workflow.FindTaskByName(wf, fl.val); err != nil {
			return nil, cmdutil.FlagErrorf("%s %s: %s", fl.name, fl.val, taskErr(err))
		}
	}
	prev, err := lastRunOf(r.RunsDir, wf, r.SessionTime)
	if err != nil {
		return nil, cmdutil.NewConfigError(err)
	}
	if prev != nil && r.Progress != nil {
		fmt.Fprintf(r.Progress, "resuming run %s (session %s)\n", prev.RunID, prev.SessionTime.In(wf.Location()).Format(time.RFC3339))
	}
	return r.Resume(ctx, wf, prev, workflow.ResumeOptions{All: f.Rerun, From: f.Start, Goal: f.Goal, End: f.End})
}

// taskErr is a FindTaskByName error without its file prefix.
func taskErr(err error) string {
	if e, ok := err.(*workflow.Error); ok {
		return e.Msg
	}
	return err.Error()
}

// lastRunOf is the newest run of wf (the same file) at session time st in
// runsDir, nil when there is none.
func lastRunOf(runsDir string, wf *workflow.Workflow, st time.Time) (*workflow.Summary, error) {
	ids, err := workflow.RunIDs(runsDir)
	if err != nil {
		return nil, fmt.Errorf("reading the runs in %s: %w", runsDir, err)
	}
	path, _ := filepath.Abs(wf.File)
	var last *workflow.Summary
	for _, id := range ids {
		s, err := workflow.LoadSummary(runsDir, id)
		if err != nil || s.DryRun {
			continue
		}
		if s.Workflow == wf.Name && (s.Path == "" || s.Path == path) && s.SessionTime.Equal(st) {
			// ids sort by their start second only: the start time tells
			// runs of the same second apart
			if last == nil || s.StartedAt.After(last.StartedAt) {
				last = s
			}
		}
	}
	return last, nil
}

// params are the run's params: the retried run's, then -P's, then -p's
// (each wins over the one before). Nested keys are flattened to dotted
// names, so a -p td.database=x replaces the file's td: {database: ...}.
func (o *Options) params() (map[string]any, error) {
	params := map[string]any{}
	for k, v := range o.baseParams {
		params[k] = v
	}
	if o.ParamsFile != "" {
		data, err := cmdutil.ReadFile(o.Ctx, o.ParamsFile, cmdutil.MaxConfigBytes, "-P "+o.ParamsFile)
		if err != nil {
			if o.Ctx != nil && o.Ctx.Err() != nil {
				return nil, err
			}
			return nil, cmdutil.NewFlagError(fmt.Errorf("-P: %w", err))
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil || (m == nil && strings.TrimSpace(string(data)) != "") {
			return nil, cmdutil.FlagErrorf("-P %s: not a YAML/JSON mapping of param names to values", o.ParamsFile)
		}
		setParams(params, flattenParams("", m, map[string]any{}))
	}
	for _, p := range o.Params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, cmdutil.FlagErrorf("-p %q: expected key=value", p)
		}
		setParams(params, map[string]any{strings.TrimSpace(k): v})
	}
	return params, nil
}

// setParams sets each of src in dst, dropping what it overrides: the
// same name, the names under it (a.b for a) and above it (a for a.b).
func setParams(dst, src map[string]any) {
	for k, v := range src {
		for old := range dst {
			if old == k || strings.HasPrefix(old, k+".") || strings.HasPrefix(k, old+".") {
				delete(dst, old)
			}
		}
		dst[k] = v
	}
}

// flattenParams turns nested mappings into dotted names; other values
// (lists, numbers, empty mappings) are kept as they are.
func flattenParams(prefix string, m, out map[string]any) map[string]any {
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flattenParams(name, sub, out)
			continue
		}
		out[name] = v
	}
	return out
}

type retryOptions struct {
	*Options
	Run        string
	All        bool
	Resume     bool
	ResumeFrom string
}

func newCmdRetry(o *Options, cfg func() (*config.Config, error), runF func(*retryOptions) error) *cobra.Command {
	ro := &retryOptions{Options: o}
	var sf *paramcmd.StoreFlags
	var rf *remote.RetryFlags
	cmd := &cobra.Command{
		Use:   "retry RUN_ID | ATTEMPT_ID",
		Short: "Run a failed run again, from where it failed (a local run, or an attempt on the workflow server)",
		Long: `Start a new attempt of a run (digdag retry): the tasks that succeeded in it are not run
again — what they stored (td.last_job_id, td.last_results, params a sh> or param_get> set) is
restored for the tasks after them — and the failed task and every task after it run. The new
attempt keeps the run's session time, session_id and session_uuid and its -p/-P params (give
-p/-P again to change them); it reads the workflow file as it is now.

--resume (the default) restores every task that succeeded; --resume-from +NAME runs +NAME and
every task after it again (all tasks before it must have succeeded); --all runs every task.
A task whose stored params held a secret is never restored: it runs again.

` + remote.RetryHelp,
		Example: `  tdctl workflow retry 20261125T210000Z-1a2b3c
  tdctl workflow retry 20261125T210000Z-1a2b3c --resume-from +load
  tdctl workflow retry latest --all`,
		Args: cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ro.Run, ro.Ctx = args[0], cmd.Context()
			n := 0
			for _, b := range []bool{ro.All, ro.Resume, ro.ResumeFrom != ""} {
				if b {
					n++
				}
			}
			if n > 1 {
				return cmdutil.FlagErrorf("--all, --resume and --resume-from cannot be used together: give one")
			}
			if remote.IsAttemptID(ro.Run) && o.Remote != nil && runF == nil {
				return retryRemote(cmd, ro, rf)
			}
			if err := remote.RefuseRetryFlags(cmd.Flags(), ro.Run); err != nil {
				return err
			}
			store, err := sf.Resolve(cmd)
			if err != nil {
				return err
			}
			ro.ParamStoreURL, ro.Site = store.URL, store.Site
			if runF != nil {
				return runF(ro)
			}
			return retryRun(ro)
		},
	}
	addCommonFlags(cmd, o)
	cmd.Flags().BoolVar(&ro.Resume, "resume", false, "restore every task that succeeded, run the others (the default)")
	cmd.Flags().BoolVar(&ro.All, "all", false, "run every task again, in the run's session")
	cmd.Flags().StringVar(&ro.ResumeFrom, "resume-from", "", "run +NAME and every task after it again; the tasks before it must have succeeded")
	sf = paramcmd.AddStoreFlags(cmd.Flags(), "param-store", cfg)
	cmd.Flags().StringVar(&o.RunsDir, "runs-dir", "", "where run logs are kept (env TDCTL_RUNS_DIR; default ~/.local/state/tdctl/runs)")
	rf = remote.AddRetryFlags(cmd.Flags())
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

// retryRemote retries an attempt on the workflow server (a numeric id):
// the flags of a local run (its param store, runs directory, secrets
// file) are refused rather than ignored.
func retryRemote(cmd *cobra.Command, ro *retryOptions, rf *remote.RetryFlags) error {
	for _, n := range []string{"param-store", "site", "runs-dir", "secrets"} {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			return cmdutil.FlagErrorf("--%s is for a local run; %s is an attempt on the workflow server", n, ro.Run)
		}
	}
	o := ro.Options.Remote()
	o.Ctx, o.Format = ro.Ctx, ro.Format
	return remote.RetryRun(&remote.RetryOptions{Options: o, RetryFlags: *rf, ID: ro.Run, ResumeFrom: ro.ResumeFrom, All: ro.All,
		Params: ro.Params, ParamsFile: ro.ParamsFile})
}

func retryRun(o *retryOptions) error {
	dir, err := o.runsDir()
	if err != nil {
		return err
	}
	prev, err := (LocalRuns{Dir: dir}).Run(o.Run)
	if err != nil {
		return cmdutil.NewFlagError(err)
	}
	if prev.State == workflow.StateRunning {
		return cmdutil.FlagErrorf("run %s is still running (pid %d): retry it when it has ended", prev.RunID, prev.PID)
	}
	o.File = prev.Path
	if o.File == "" {
		o.File = prev.File
	}
	o.baseParams = prev.Params
	wf, r, ps, err := prepare(o.Options)
	if err != nil {
		return err
	}
	defer ps.close()
	for _, name := range prev.ParamsWithheld {
		if _, ok := r.Params[name]; !ok {
			return cmdutil.FlagErrorf("run %s's param %s held a secret and was not recorded: give it again with -p %s=VALUE", prev.RunID, name, name)
		}
	}
	if o.ResumeFrom != "" {
		if _, err := workflow.FindTaskByName(wf, o.ResumeFrom); err != nil {
			return cmdutil.FlagErrorf("--resume-from %s: %s", o.ResumeFrom, taskErr(err))
		}
	}
	r.RunsDir = dir
	p, err := o.outputs(r, wf)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.IO.ErrOut, "retrying run %s (session %s)\n", prev.RunID, prev.SessionTime.In(wf.Location()).Format(time.RFC3339))
	sum, runErr := r.Resume(o.Ctx, wf, prev, workflow.ResumeOptions{All: o.All, From: o.ResumeFrom, Strict: o.ResumeFrom != "", KeepSession: true})
	if sum == nil && runErr != nil {
		if _, ok := runErr.(*workflow.RunError); !ok {
			return cmdutil.NewFlagError(runErr)
		}
	}
	return finishRun(o.Options, p, sum, runErr)
}

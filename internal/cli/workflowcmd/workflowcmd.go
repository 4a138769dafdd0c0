// Package workflowcmd implements `tdctl workflow run|check|logs|ui`: digdag
// .dig files run by the workflow package over the shared operators.
package workflowcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/config"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/internal/cli/paramcmd"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd/remote"
	"github.com/tdctl/tdctl/internal/operators"
	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// Options are the inputs of `workflow run` and `workflow check`.
type Options struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	// APIKey returns the configured API key ("" when none), for
	// ${secret:td.apikey}.
	APIKey func() string
	// ParamStore opens the param store (lazily: only when a task needs it).
	ParamStore func(ctx context.Context, url string, site int32) (operators.ParamStore, io.Closer, error)
	Getenv     func(string) string
	Ctx        context.Context

	File   string
	Params []string
	// ParamsFile is -P/--params-file: a YAML/JSON mapping of params (a -p
	// of the same name wins).
	ParamsFile string
	// baseParams are params under -P and -p: a retried run's own.
	baseParams  map[string]any
	SessionTime string
	// ParamStoreURL and Site are the store and site as resolved by
	// paramcmd.StoreFlags ("" = the default store).
	ParamStoreURL string
	Site          int32
	SecretsFile   string
	RunsDir       string
	Format        output.Format
	// JobPoll overrides the td> wait schedule (tests).
	JobPoll *td.WaitOptions

	// Resume holds digdag run's --rerun, --start, --goal, --end, --dry-run,
	// --show-params and --max-task-threads (see resume.go).
	Resume RunFlags

	// Remote returns the options of the workflow server's commands
	// (`workflow retry` of a numeric attempt id); nil: no server.
	Remote func() *remote.Options

	// PodRunner connects to the cluster of a sh> task with _k8s settings
	// (nil: its kubeconfig, see operators.Env).
	PodRunner func(kubeconfig, context string) (*k8sexec.Runner, error)
}

// NewCmdWorkflow returns `tdctl workflow` with run, check, logs and ui.
func NewCmdWorkflow(f *factory.Factory, deps func(*Options)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workflow <command>",
		Short: "Run digdag-style .dig workflows (td>, td_result_export>, param_get>, param_set>, sh>, echo>)",
		Long: `Run digdag-style .dig workflows locally: _export, +task groups run in order, ${...}
interpolation (params, td.last_job_id, td.last_job.num_records, secret:NAME and digdag's
built-ins: session_time and its forms, last_session_*/next_session_* from schedule:,
last_executed_session_*, session_id, attempt_id, task_name...), _parallel, for_each> with _do,
_error and _retry. timezone: is digdag's (Asia/Tokyo, UTC, +09:00); schedule: is checked and
gives last/next_session_*, but tdctl runs nothing on a schedule.

Secrets: ${secret:NAME} comes from TDCTL_SECRET_<NAME> (td.apikey → TDCTL_SECRET_TD_APIKEY),
then the --secrets file (YAML/JSON mapping), then, for td.apikey, the configured API key.
Secret values are masked in every log and output.

Params stored by a task are visible to the tasks after it. Parallel branches start from the
scope before the group and are merged in declaration order when all are done. Each for_each>
iteration has its own scope: a param_get> inside one binds the value for that iteration only.

Every task's output goes to its own log under the run directory; the run ends with a summary
(task, state, duration, job id, num_records, log). 'tdctl workflow logs' shows them again,
'tdctl workflow ui' as a web page. 'tdctl workflow retry RUN' runs a failed run again from the
task that failed, restoring what the tasks before it stored (digdag retry --resume).

On a workflow server (TD Workflow, any digdag server, tdctl dev-server): push sends a project
directory, start/attempts/attempt/logs ID/kill/retry ID/sessions/schedules/secrets drive it over
digdag's REST API. The server is --workflow-endpoint (TDCTL_WORKFLOW_ENDPOINT, a profile's
workflow_endpoint), else derived from the TD endpoint (us01: api-workflow.treasuredata.com).
logs and retry take a local run id, or a server attempt id (a number).`,
	}
	opts := func() *Options {
		o := &Options{IO: f.IOStreams, TDClient: f.TDClient, Getenv: f.Getenv, ParamStore: OpenParamStore}
		o.APIKey = func() string {
			cfg, err := f.Config()
			if err != nil || !cfg.APIKey.Set() {
				return ""
			}
			return cfg.APIKey.Value
		}
		if deps != nil {
			deps(o)
		}
		return o
	}
	logs := &logsOptions{Options: opts(), Remote: func(ctx context.Context, id, task string, follow bool, format output.Format) error {
		ro := remote.NewOptions(f)
		ro.Ctx, ro.Format = ctx, format
		return remote.LogsRun(&remote.LogsOptions{Options: ro, ID: id, Task: task, Follow: follow})
	}}
	retry := opts()
	retry.Remote = func() *remote.Options { return remote.NewOptions(f) }
	cmd.AddCommand(newCmdRun(opts(), f.Config, nil), newCmdRetry(retry, f.Config, nil), newCmdCheck(opts(), nil), newLogsCmd(logs, nil), newCmdUI(opts(), nil))
	// the workflow server's commands (package remote)
	remote.AddEndpointFlag(cmd, f)
	cmd.AddCommand(remote.Commands(func() *remote.Options { return remote.NewOptions(f) })...)
	return cmd
}

func addCommonFlags(cmd *cobra.Command, o *Options) {
	cmd.Flags().StringArrayVarP(&o.Params, "param", "p", nil, "set a param: -p key=value (repeatable; dotted keys like td.database=x)")
	cmd.Flags().StringVarP(&o.ParamsFile, "params-file", "P", "", "read params from a YAML/JSON mapping (nested keys are ${a.b}); -p wins over it")
	cmd.Flags().StringVar(&o.SecretsFile, "secrets", "", "YAML/JSON file of secret names to values")
}

func newCmdRun(o *Options, cfg func() (*config.Config, error), runF func(*Options) error) *cobra.Command {
	var sf *paramcmd.StoreFlags
	cmd := &cobra.Command{
		Use:   "run FILE.dig",
		Short: "Run a workflow",
		Example: `  tdctl workflow run examples/workflows/num_records.dig
  tdctl workflow run daily.dig -p td.database=www_access --param-store postgres://postgres@127.0.0.1/test
  tdctl workflow run export.dig --secrets ~/.config/tdctl/secrets.yaml -o json`,
		Args: runArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File, o.Ctx = args[0], cmd.Context()
			if err := o.Resume.validate(cmd); err != nil {
				return err
			}
			store, err := sf.Resolve(cmd)
			if err != nil {
				return err
			}
			o.ParamStoreURL, o.Site = store.URL, store.Site
			if runF != nil {
				return runF(o)
			}
			return Run(o)
		},
	}
	addCommonFlags(cmd, o)
	cmd.Flags().StringVarP(&o.SessionTime, "session-time", "t", "", `the run's session time: "yyyy-MM-dd" or "yyyy-MM-dd HH:mm:ss" in the workflow's timezone, RFC 3339, daily, hourly, schedule or last (default: the schedule's last session, else today's midnight)`)
	cmd.Flags().StringVar(&o.SessionTime, "session", "", "the same as --session-time (digdag run's name for it; -t too)")
	sf = paramcmd.AddStoreFlags(cmd.Flags(), "param-store", cfg)
	cmd.Flags().StringVar(&o.RunsDir, "runs-dir", "", "where run logs are kept (env TDCTL_RUNS_DIR; default ~/.local/state/tdctl/runs)")
	output.AddFormatFlag(cmd, &o.Format)
	o.Resume.addFlags(cmd)
	return cmd
}

func newCmdCheck(o *Options, runF func(*Options) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check FILE.dig",
		Short: "Parse a workflow and report every problem with file:line, running nothing",
		Args:  cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File, o.Ctx = args[0], cmd.Context()
			if runF != nil {
				return runF(o)
			}
			wf, r, _, err := prepare(o)
			if err != nil {
				return err
			}
			if err := r.Check(wf); err != nil {
				return cmdutil.NewConfigError(err)
			}
			fmt.Fprintf(o.IO.Out, "%s: ok (%d tasks)\n", o.File, countTasks(wf.Root))
			return nil
		},
	}
	addCommonFlags(cmd, o)
	return cmd
}

func countTasks(t *workflow.Task) int {
	n := 0
	if t.Operator != "" {
		n++
	}
	for _, c := range t.Children {
		n += countTasks(c)
	}
	if t.Do != nil {
		n += countTasks(t.Do)
	}
	if t.Error != nil {
		n += countTasks(t.Error)
	}
	return n
}

func (o *Options) getenv(k string) string {
	if o.Getenv == nil {
		return os.Getenv(k)
	}
	return o.Getenv(k)
}

// prepare parses the file and builds a runner; nothing connects yet (the
// param store opens on first use).
func prepare(o *Options) (*workflow.Workflow, *workflow.Runner, *lazyStore, error) {
	data, err := cmdutil.ReadFile(o.Ctx, o.File, cmdutil.MaxInputBytes, o.File)
	if err != nil {
		if o.Ctx != nil && o.Ctx.Err() != nil {
			return nil, nil, nil, err
		}
		if _, ok := cmdutil.PathCause(err); ok {
			err = fmt.Errorf("workflow: %w", err)
		}
		return nil, nil, nil, cmdutil.NewConfigError(err)
	}
	// a workflow with structural problems is still checked as far as it
	// was built: Check reports them with the rest, Run refuses it
	wf, err := workflow.ParsePartial(o.File, data)
	if wf == nil {
		return nil, nil, nil, cmdutil.NewConfigError(err)
	}
	params, err := o.params()
	if err != nil {
		return nil, nil, nil, err
	}
	file, err := loadSecretsFile(o.Ctx, o.SecretsFile)
	if err != nil {
		if o.Ctx != nil && o.Ctx.Err() != nil {
			return nil, nil, nil, err
		}
		return nil, nil, nil, cmdutil.NewFlagError(err)
	}
	for _, v := range file { // secrets the process knows, used or not
		cmdutil.AddSecrets(v)
	}
	secrets := &secretSource{getenv: o.getenv, file: file, apiKey: o.APIKey}
	ps := &lazyStore{o: o}
	env := &operators.Env{TD: o.TDClient, Wait: o.JobPoll, ParamStore: ps.get, PodRunner: o.PodRunner, TempFile: cmdutil.RemoveOnForcedExit}
	r := &workflow.Runner{Operators: operators.Operators(env), Secrets: secrets, Params: params, Warnings: o.IO.ErrOut,
		DryRun: o.Resume.DryRun, ShowParams: o.Resume.ShowParams, MaxParallel: o.Resume.MaxTaskThreads}
	return wf, r, ps, nil
}

// OpenParamStore opens the store at url (default: the embedded SQLite
// file) scoped to site, with the opener of `tdctl param`.
func OpenParamStore(ctx context.Context, url string, site int32) (operators.ParamStore, io.Closer, error) {
	if url == "" {
		var err error
		if url, err = paramcmd.DefaultStoreURL(); err != nil {
			return nil, nil, err
		}
	}
	s, err := paramcmd.OpenStore(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	return s.Site(site), s, nil
}

// lazyStore opens the param store on first use; parallel tasks share it.
type lazyStore struct {
	o      *Options
	mu     sync.Mutex
	store  operators.ParamStore
	closer io.Closer
	err    error
	done   bool
}

func (l *lazyStore) get() (operators.ParamStore, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return l.store, l.err
	}
	l.done = true
	if l.o.ParamStore == nil {
		l.err = errors.New("no param store configured")
		return nil, l.err
	}
	cmdutil.AddURLSecrets(l.o.ParamStoreURL) // masked in every output, whatever it holds
	l.store, l.closer, l.err = l.o.ParamStore(l.o.Ctx, l.o.ParamStoreURL, l.o.Site)
	return l.store, l.err
}

func (l *lazyStore) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closer != nil {
		l.closer.Close()
	}
}

// RunsDir is where run logs go: TDCTL_RUNS_DIR, $XDG_STATE_HOME/tdctl/runs,
// or ~/.local/state/tdctl/runs.
func RunsDir(getenv func(string) string) (string, error) {
	if d := getenv("TDCTL_RUNS_DIR"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tdctl", "runs"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a home directory for run logs: set TDCTL_RUNS_DIR or --runs-dir")
	}
	return filepath.Join(home, ".local", "state", "tdctl", "runs"), nil
}

// runsDir is --runs-dir, else RunsDir's default.
func (o *Options) runsDir() (string, error) {
	if o.RunsDir != "" {
		return o.RunsDir, nil
	}
	dir, err := RunsDir(o.getenv)
	return dir, cmdutil.NewConfigError(err)
}

// FailedError is a workflow whose task failed (exit code 3, like a failed job).
type FailedError struct {
	RunID string
	Err   error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("workflow failed (run %s): %v", e.RunID, e.Err)
}

// Is makes a failed workflow exit like a failed job.
func (e *FailedError) Is(target error) bool { return target == td.ErrJobFailed }

// Unwrap returns the task error.
func (e *FailedError) Unwrap() error { return e.Err }

// ExitCode is 3, whatever made the task fail.
func (e *FailedError) ExitCode() int { return cmdutil.ExitJobFailed }

// Run runs o.File with the options' dependencies (used by `workflow run`
// and `tdctl demo`).
func Run(o *Options) error {
	wf, r, ps, err := prepare(o)
	if err != nil {
		return err
	}
	defer ps.close()
	if r.RunsDir, err = o.runsDir(); err != nil {
		return err
	}
	// read in the workflow's timezone, as digdag run's --session
	if r.SessionTime, err = wf.ParseSessionTime(o.SessionTime, time.Now(), r.RunsDir); err != nil {
		return cmdutil.NewFlagError(err)
	}
	p, err := o.outputs(r, wf)
	if err != nil {
		return err
	}
	sum, runErr := o.Resume.run(o.Ctx, r, wf)
	return finishRun(o, p, sum, runErr)
}

// outputs points the runner's progress and task output at the streams
// (stdout is kept for the summary when it is JSON) and checks wf.
func (o *Options) outputs(r *workflow.Runner, wf *workflow.Workflow) (*output.Printer, error) {
	p := output.New(o.IO, o.Format)
	r.Progress = o.IO.ErrOut
	if p.Structured() {
		r.Output = o.IO.ErrOut // keep stdout for the JSON summary
	} else {
		r.Output = o.IO.Out
	}
	if err := r.Check(wf); err != nil {
		return nil, cmdutil.NewConfigError(err)
	}
	return p, nil
}

// finishRun prints a run's summary and turns its error into the exit.
func finishRun(o *Options, p *output.Printer, sum *workflow.Summary, runErr error) error {
	if sum == nil {
		return runErr
	}
	if err := printSummary(p, o.IO, sum); err != nil {
		return err
	}
	if runErr != nil {
		if o.Ctx.Err() != nil {
			return cmdutil.ErrCancel
		}
		return &FailedError{RunID: sum.RunID, Err: runErr}
	}
	return nil
}

func printSummary(p *output.Printer, ios *iostreams.IOStreams, sum *workflow.Summary) error {
	if p.Structured() {
		return p.JSON(sum)
	}
	t := p.Table("task", "state", "duration", "job_id", "num_records", "log")
	for _, rec := range sum.Tasks {
		t.Row(rec.Path, rec.State, rec.Duration.Round(time.Millisecond).String(), rec.JobID, output.Int(rec.NumRecords), rec.Log)
	}
	if p.Human() {
		fmt.Fprintf(ios.Out, "\n%s\n", summaryLine(sum))
	}
	return t.Render()
}

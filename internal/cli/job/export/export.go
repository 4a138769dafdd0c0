// Package export implements `tdctl job export`: export one finished job's
// result to one or more destinations.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// ExportOptions are the inputs of `job export`.
type ExportOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	JobID   string
	Targets []td.ExportTarget
	DoWait  bool
	Wait    shared.WaitFlags
	Format  output.Format
}

// Outcome is one target's line of output; its JSON names are stable.
type Outcome struct {
	Target      string `json:"target"` // redacted
	ExportJobID string `json:"export_job_id"`
	// Status is the export job's final status with --wait, "issued" without;
	// "not started" when no export job was made, "unknown" when its answer
	// was lost and it may exist (Error then says which job it may be).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// NewCmdExport returns `job export`.
func NewCmdExport(f *factory.Factory, runF func(*ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{IO: f.IOStreams, TDClient: f.TDClient}
	tl := &targetList{}
	var jobID string
	cmd := &cobra.Command{
		Use:   "export [JOB_ID] --result-url URL | --connection NAME|ID [--settings JSON|@FILE] ...",
		Short: "Export a finished job's result to one or more destinations",
		Long: `Export the result of a finished job (POST /v3/job/result_export). Each destination
starts its own export job; all of them run at the same time.

Destinations, as many as you like, in any mix:
  --result-url URL        a result URL: td://@/db/table, postgresql://user:pass@host/db/table,
                          mysql://..., s3://... (passwords are never printed)
  --connection NAME|ID    a saved connection, by name (looked up) or by numeric id,
    --settings JSON|@FILE   ...and its settings: the --settings that follows a --connection
                          belongs to it (at most one each; a connection without one gets {}).
                          @FILE reads the JSON from a file.

Without --wait, prints one line per destination with the export job's id and returns.
With --wait, waits for every export job and fails (exit 3) if any of them failed.

A lost answer never starts a second export: when the connection breaks or a gateway
answers 5xx after the export may have been created, tdctl looks the export job up and
reports it; it sends again only when no export job was started. When it cannot tell,
the status is "unknown" (exit 2) and the message names the export job that may be
running: check it before exporting again, or an append may be written twice.`,
		Example: `  tdctl job export --job-id 12345 --result-url 'td://@/analytics/daily?mode=replace'
  tdctl job export 12345 --wait \
    --result-url 'postgresql://etl:secret@db:5432/dw/daily?mode=replace' \
    --connection my_s3 --settings '{"bucket":"b","path":"/daily/"}' \
    --connection 42 --settings @sftp.json`,
		Args: cmdutil.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			switch {
			case len(args) == 1 && jobID != "" && args[0] != jobID:
				return cmdutil.FlagErrorf("two job ids given (%q and --job-id %q): give one", args[0], jobID)
			case len(args) == 1:
				jobID = args[0]
			case jobID == "":
				return cmdutil.FlagErrorf("which job? pass --job-id JOB_ID (or the id as an argument)")
			}
			flag := ""
			if len(args) == 0 {
				flag = "--job-id"
			}
			if err := shared.RequireIDOf(flag, jobID); err != nil {
				return err
			}
			opts.JobID = jobID
			if tl.err != nil {
				return cmdutil.NewFlagError(tl.err)
			}
			if err := tl.readFiles(opts.Ctx); err != nil {
				return err
			}
			if len(tl.targets) == 0 {
				return cmdutil.FlagErrorf("no destination: add --result-url URL or --connection NAME|ID [--settings JSON]")
			}
			opts.Targets = tl.targets
			if err := opts.Wait.Validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return opts.Wait.Bound(opts.Ctx, "the export of job "+opts.JobID, func(ctx context.Context) error {
				opts.Ctx = ctx
				return exportRun(opts)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&jobID, "job-id", "j", "", "the finished job whose result to export")
	fl.Var(&urlFlag{tl}, "result-url", "export to this result `URL` (repeatable)")
	fl.Var(&connFlag{tl}, "connection", "export through this saved connection, by `NAME|ID` (repeatable)")
	fl.Var(&settingsFlag{tl}, "settings", "`JSON|@FILE` settings of the --connection just before it")
	fl.BoolVarP(&opts.DoWait, "wait", "w", false, "wait for every export job; fail if any fails")
	shared.AddWaitFlags(cmd, &opts.Wait)
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// targetList collects destinations in command-line order; pflag calls Set
// in the order the flags appear, which is what pairs each --settings with
// the --connection before it.
//
// Set methods never fail: pflag would quote the raw value (which may hold a
// password) in its error. The first problem is kept in err, reported by
// RunE without the value.
type targetList struct {
	targets     []td.ExportTarget
	hasSettings []bool
	files       []settingsFile
	err         error
}

func (l *targetList) fail(flag string, err error) error {
	if l.err == nil {
		l.err = fmt.Errorf("%s #%d: %w", flag, len(l.targets)+1, err)
	}
	return nil
}

// failSettings records a bad --settings of the last --connection.
func (l *targetList) failSettings(err error) error {
	if l.err == nil {
		l.err = fmt.Errorf("--settings of %s: %w", l.targets[len(l.targets)-1], err)
	}
	return nil
}

type urlFlag struct{ l *targetList }

func (f *urlFlag) String() string { return "" }
func (f *urlFlag) Type() string   { return "URL" }
func (f *urlFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	cmdutil.AddURLSecrets(s) // masked in every output, whatever it holds
	if s == "" {
		return f.l.fail("--result-url", errors.New("empty result URL"))
	}
	if err := td.CheckResultURL(s); err != nil {
		return f.l.fail("--result-url", err)
	}
	f.l.targets = append(f.l.targets, td.ExportTarget{ResultURL: s})
	f.l.hasSettings = append(f.l.hasSettings, false)
	return nil
}

type connFlag struct{ l *targetList }

func (f *connFlag) String() string { return "" }
func (f *connFlag) Type() string   { return "NAME|ID" }
func (f *connFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return f.l.fail("--connection", errors.New("empty connection name"))
	}
	ct := &td.ConnectionTarget{Name: s, Settings: map[string]any{}}
	if id, err := strconv.ParseInt(s, 10, 64); err == nil {
		if id <= 0 {
			return f.l.fail("--connection", fmt.Errorf("connection id %d must be positive", id))
		}
		ct = &td.ConnectionTarget{ID: id, Settings: map[string]any{}}
	}
	f.l.targets = append(f.l.targets, td.ExportTarget{Connection: ct})
	f.l.hasSettings = append(f.l.hasSettings, false)
	return nil
}

type settingsFlag struct{ l *targetList }

func (f *settingsFlag) String() string { return "" }
func (f *settingsFlag) Type() string   { return "JSON|@FILE" }
func (f *settingsFlag) Set(s string) error {
	n := len(f.l.targets)
	if n == 0 || f.l.targets[n-1].Connection == nil {
		if f.l.err == nil {
			f.l.err = errors.New("--settings must follow the --connection it belongs to (a --result-url carries its options in the URL)")
		}
		return nil
	}
	if f.l.hasSettings[n-1] {
		return f.l.failSettings(errors.New("a second --settings: give each --connection one --settings"))
	}
	f.l.hasSettings[n-1] = true
	if name, ok := strings.CutPrefix(s, "@"); ok {
		// read in RunE, where the command's context can interrupt it
		f.l.files = append(f.l.files, settingsFile{target: n - 1, name: name})
		return nil
	}
	m, err := parseSettings([]byte(s))
	if err != nil {
		return f.l.failSettings(err)
	}
	f.l.targets[n-1].Connection.Settings = m
	return nil
}

// settingsFile is a --settings @FILE still to read.
type settingsFile struct {
	target int
	name   string
}

// readFiles reads the --settings @FILE values, at most
// cmdutil.MaxInputBytes each, stopping when ctx ends (a FIFO, /dev/zero).
func (l *targetList) readFiles(ctx context.Context) error {
	for _, sf := range l.files {
		t := l.targets[sf.target]
		data, err := cmdutil.ReadFile(ctx, sf.name, cmdutil.MaxInputBytes, "@"+sf.name)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			if cause, ok := cmdutil.PathCause(err); ok {
				err = fmt.Errorf("reading settings: %w", cause)
			}
			return cmdutil.NewFlagError(fmt.Errorf("--settings of %s: %w", t, err))
		}
		m, err := parseSettings(data)
		if err != nil {
			return cmdutil.NewFlagError(fmt.Errorf("--settings of %s: %w", t, err))
		}
		t.Connection.Settings = m
	}
	return nil
}

func parseSettings(data []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, fmt.Errorf("settings must be a JSON object such as {\"bucket\":\"b\",\"path\":\"/logs/\"} (%s)", errText(err))
	}
	return m, nil
}

func errText(err error) string {
	if err == nil {
		return "got null"
	}
	return err.Error()
}

func exportRun(opts *ExportOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	outcomes := make([]Outcome, len(opts.Targets))
	var runErr error
	if opts.DoWait {
		bar := output.NewSpinner(opts.IO, fmt.Sprintf("exporting job %s to %d destination(s)", opts.JobID, len(opts.Targets)))
		var mu sync.Mutex
		statuses := map[string]string{}
		res, err := c.Results.ExportAll(opts.Ctx, opts.JobID, opts.Targets, opts.Wait.Options(func(st *td.JobStatus) {
			mu.Lock()
			defer mu.Unlock()
			statuses[st.JobID] = st.Status
			bar.Describe(fmt.Sprintf("exporting job %s: %s", opts.JobID, summarize(statuses)))
		}))
		bar.Done()
		runErr = err
		var started []string
		for i, o := range res {
			outcomes[i] = Outcome{Target: cmdutil.Redact(o.Target.String()), ExportJobID: o.ExportJobID}
			switch {
			case o.Job != nil:
				outcomes[i].Status = o.Job.Status
			case o.ExportJobID != "":
				outcomes[i].Status = "unknown"
			default:
				outcomes[i].Status = notIssued(o.Err)
			}
			if o.Err != nil {
				outcomes[i].Error = cmdutil.Redact(o.Err.Error())
			}
			if o.ExportJobID != "" && (o.Job == nil || !o.Job.Finished()) {
				started = append(started, o.ExportJobID)
			}
		}
		if res == nil && err != nil {
			return err
		}
		if opts.Ctx.Err() != nil {
			perr := printOutcomes(opts, outcomes)
			return errors.Join(shared.Interrupted(opts.IO, c, &opts.Wait, started...), perr)
		}
	} else {
		var errs []error
		for i, t := range opts.Targets {
			id, err := c.Results.Export(opts.Ctx, opts.JobID, t)
			outcomes[i] = Outcome{Target: cmdutil.Redact(t.String()), ExportJobID: id, Status: "issued"}
			if err != nil {
				outcomes[i].Status = notIssued(err)
				outcomes[i].Error = cmdutil.Redact(err.Error())
				errs = append(errs, fmt.Errorf("export to %s: %w", t, err))
			}
		}
		runErr = errors.Join(errs...)
	}
	if err := printOutcomes(opts, outcomes); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// notIssued is the status of a target whose export returned no job id: "not
// started" only when that is certain; "unknown" when the answer was lost and
// the export job may exist (the error names it, if known).
func notIssued(err error) string {
	if errors.Is(err, td.ErrExportUncertain) {
		return "unknown"
	}
	return "not started"
}

func summarize(statuses map[string]string) string {
	count := map[string]int{}
	for _, s := range statuses {
		count[s]++
	}
	var parts []string
	for _, s := range []string{"queued", "booting", "running", "success", "error", "killed"} {
		if count[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

func printOutcomes(opts *ExportOptions, outcomes []Outcome) error {
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return output.JSONList(p, outcomes)
	}
	t := p.Table("export_job_id", "status", "target", "error")
	for _, o := range outcomes {
		t.Row(o.ExportJobID, o.Status, o.Target, o.Error)
	}
	return t.Render()
}

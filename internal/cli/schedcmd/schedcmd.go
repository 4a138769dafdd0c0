// Package schedcmd is the `tdctl sched` command group: TD's saved queries
// (schedules), with the nouns and flags of the Ruby td CLI's sched:*.
package schedcmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// Short is the group's one-line help.
const Short = "List, create, run and delete saved queries (schedules)"

// NewCmdSched returns the `sched` group.
func NewCmdSched(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sched",
		Aliases: []string{"schedule"},
		Short:   Short,
		Long: "Saved queries (TD's schedules): a query with its database, engine and result URL,\n" +
			"run by cron or on demand. The subcommands are those of the Ruby td CLI's sched:*.",
	}
	cmd.AddCommand(
		NewCmdList(f, nil),
		NewCmdShow(f, nil),
		NewCmdCreate(f, nil),
		NewCmdUpdate(f, nil),
		NewCmdDelete(f, nil),
		NewCmdRun(f, nil),
		NewCmdHistory(f, nil),
	)
	return cmdutil.MakeGroup(cmd)
}

// Options are the inputs every sched subcommand shares.
type Options struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context
	Format   output.Format

	Name string
	Args []string // every argument, NAME first
}

// --- list ----------------------------------------------------------------

// NewCmdList returns `sched list`.
func NewCmdList(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List saved queries",
		Example: "  tdctl sched list\n  tdctl sched list -o json | jq -r '.[].name'",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

var listHeaders = []string{"name", "cron", "timezone", "next_time", "delay", "priority", "type", "database", "result", "query"}

func listRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	all, err := c.Schedules.List(opts.Ctx)
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		for _, s := range all {
			sanitize(s)
		}
		return output.JSONList(p, all)
	}
	t := p.Table(listHeaders...)
	for _, s := range all {
		q := s.Query
		if p.Human() {
			q = output.Truncate(q, 50)
		}
		t.Row(s.Name, s.Cron, s.Timezone, p.Time(s.NextTime), strconv.Itoa(s.Delay), strconv.Itoa(s.Priority),
			s.Type, s.Database, cmdutil.Redact(s.Result), q)
	}
	return t.Render()
}

func sanitize(s *td.Schedule) { s.Result = cmdutil.Redact(s.Result) }

func pairs(p *output.Printer, s *td.Schedule) [][2]string {
	out := [][2]string{{"name", s.Name}}
	if s.ID != 0 {
		out = append(out, [2]string{"id", strconv.FormatInt(s.ID, 10)})
	}
	out = append(out, [][2]string{
		{"cron", s.Cron}, {"timezone", s.Timezone}, {"delay", strconv.Itoa(s.Delay)},
		{"next_time", p.Time(s.NextTime)}, {"type", s.Type}, {"database", s.Database},
		{"priority", strconv.Itoa(s.Priority)}, {"retry_limit", strconv.Itoa(s.RetryLimit)},
		{"result", cmdutil.Redact(s.Result)}, {"user_name", s.UserName}, {"created_at", p.Time(&s.CreatedAt)},
		{"query", s.Query},
	}...)
	return out
}

func printOne(opts *Options, s *td.Schedule) error {
	p := output.New(opts.IO, opts.Format)
	sanitize(s)
	if p.Structured() {
		return p.JSON(s)
	}
	return p.KeyValues(pairs(p, s))
}

// --- show ----------------------------------------------------------------

// NewCmdShow returns `sched show`.
func NewCmdShow(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a saved query",
		Example: "  tdctl sched show daily_report\n  tdctl sched show daily_report -o json | jq -r .query",
		Args:    cmdutil.ExactArgs(1),
		RunE: withName(opts, nil, bind(runF, opts), func(c *td.Client) error {
			s, err := c.Schedules.Get(opts.Ctx, opts.Name)
			if err != nil {
				return err
			}
			return printOne(opts, s)
		}),
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// withName is the RunE of a subcommand whose first argument is NAME: it
// checks the name, then check (the other inputs, may be nil), then hands
// over to runF (tests) when set, else to run with a client.
func withName(o *Options, check, runF func() error, run func(c *td.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		o.Ctx, o.Name, o.Args = cmd.Context(), args[0], args
		if err := requireName(o.Name); err != nil {
			return err
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		if runF != nil {
			return runF()
		}
		c, err := o.TDClient()
		if err != nil {
			return err
		}
		return run(c)
	}
}

// bind is runF for withName: nil stays nil.
func bind[T any](runF func(T) error, opts T) func() error {
	if runF == nil {
		return nil
	}
	return func() error { return runF(opts) }
}

// requireName refuses an empty or blank saved query name.
func requireName(name string) error {
	if strings.TrimSpace(name) == "" {
		return cmdutil.FlagErrorf("the saved query name is empty")
	}
	if strings.TrimSpace(name) != name {
		return cmdutil.FlagErrorf("invalid saved query name %q: strip the white space around it", name)
	}
	return nil
}

// --- create / update -----------------------------------------------------

// EditOptions are the inputs of `sched create` and `sched update`.
type EditOptions struct {
	Options
	Settings td.ScheduleOptions
}

// settingFlags are the Ruby td CLI's sched:create / sched:update flags.
type settingFlags struct {
	priority, retry, delay, queryFile, cron string
}

func addSettingFlags(cmd *cobra.Command, o *EditOptions, sf *settingFlags, update bool) {
	fl := cmd.Flags()
	fl.StringVarP(&o.Settings.Database, "database", "d", "", "database the query runs on")
	fl.StringVarP(&o.Settings.Timezone, "timezone", "t", "", "time zone of the cron schedule, e.g. UTC or Asia/Tokyo (default UTC)")
	fl.StringVarP(&sf.delay, "delay", "D", "", "run this many seconds after the cron time")
	fl.StringVarP(&o.Settings.Result, "result", "r", "", "write the result to this result `URL` (td://@/db/table, postgresql://..., s3://...)")
	fl.StringVarP(&o.Settings.Type, "type", "T", "", "engine: presto, trino or hive (default presto)")
	fl.StringVarP(&sf.priority, "priority", "P", "", "priority -2..2 or VERY_LOW, LOW, NORMAL, HIGH, VERY_HIGH")
	fl.StringVarP(&sf.retry, "retry", "R", "", "how often TD retries a failed run")
	fl.StringVarP(&sf.queryFile, "query", "q", "", "read the SQL from this `FILE` (- for stdin)")
	if update {
		fl.StringVarP(&sf.cron, "schedule", "s", "", "the cron schedule, e.g. '0 * * * *' or @daily")
		fl.StringVar(&o.Settings.Query, "sql", "", "the SQL (or -q FILE)")
	}
	_ = cmd.RegisterFlagCompletionFunc("type", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"presto", "trino", "hive"}, cobra.ShellCompDirectiveNoFileComp
	})
}

// read checks the setting flags and fills o.Settings.
func (sf *settingFlags) read(cmd *cobra.Command, o *EditOptions) error {
	st := &o.Settings
	if cmd.Flags().Changed("priority") {
		p, err := cmdutil.ParsePriority(sf.priority)
		if err != nil {
			return err
		}
		st.Priority = &p
	}
	for _, f := range []struct {
		name, flag, val string
		dst             **int
	}{{"retry", "-R/--retry", sf.retry, &st.RetryLimit}, {"delay", "-D/--delay", sf.delay, &st.Delay}} {
		if !cmd.Flags().Changed(f.name) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(f.val))
		if err != nil || n < 0 {
			return cmdutil.FlagErrorf("invalid %s %q: give a whole number >= 0", f.flag, f.val)
		}
		*f.dst = &n
	}
	switch st.Type = strings.ToLower(st.Type); st.Type {
	case "", "presto", "trino", "hive":
	default:
		return cmdutil.FlagErrorf("invalid -T/--type %q: use presto, trino or hive", st.Type)
	}
	if st.Timezone != "" {
		if _, err := time.LoadLocation(st.Timezone); err != nil {
			return cmdutil.FlagErrorf("invalid -t/--timezone %q: use an IANA name such as UTC or Asia/Tokyo", st.Timezone)
		}
	}
	if st.Result != "" {
		cmdutil.AddURLSecrets(st.Result)
		if err := td.CheckResultURL(st.Result); err != nil {
			return cmdutil.FlagErrorf("-r/--result: %v", err)
		}
	}
	if sf.queryFile != "" {
		if st.Query != "" {
			return cmdutil.FlagErrorf("give the SQL as an argument or with -q FILE, not both")
		}
		var b []byte
		var err error
		if sf.queryFile == "-" {
			b, err = cmdutil.ReadAll(o.Ctx, o.IO.In, cmdutil.MaxInputBytes, "the query on stdin")
		} else {
			b, err = cmdutil.ReadFile(o.Ctx, sf.queryFile, cmdutil.MaxInputBytes, "the query file "+sf.queryFile)
		}
		if cause, ok := cmdutil.PathCause(err); ok {
			return cmdutil.FlagErrorf("-q/--query %s: %v", sf.queryFile, cause)
		}
		if err != nil {
			return err
		}
		st.Query = string(b)
	}
	if cmd.Flags().Changed("schedule") {
		st.Cron = sf.cron
	}
	if (st.Query != "" || sf.queryFile != "") && strings.TrimSpace(st.Query) == "" {
		return cmdutil.FlagErrorf("the query is empty")
	}
	return nil
}

// NewCmdCreate returns `sched create`.
func NewCmdCreate(f *factory.Factory, runF func(*EditOptions) error) *cobra.Command {
	opts := &EditOptions{Options: Options{IO: f.IOStreams, TDClient: f.TDClient}}
	sf := &settingFlags{}
	cmd := &cobra.Command{
		Use:   "create NAME CRON [SQL]",
		Short: "Save a query, run on a cron schedule",
		Long: "Save a query as NAME, run by TD at the times of CRON (five fields, or @hourly, @daily...;\n" +
			"\"\" for a query run only on demand with 'tdctl sched run'). Give the SQL as an argument\n" +
			"or with -q FILE. TD_SCHEDULED_TIME() in the query is the time a run is for.",
		Example: "  tdctl sched create daily_pv '0 1 * * *' -d web -t Asia/Tokyo 'SELECT COUNT(1) FROM access'\n" +
			"  tdctl sched create hourly_sum @hourly -d web -q sum.sql -r 'td://@/web/summary?mode=replace'",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 || len(args) > 3 {
				return cmdutil.FlagErrorf("give NAME CRON and the SQL (or -q FILE); CRON \"\" saves a query run on demand only")
			}
			return nil
		},
	}
	cmd.RunE = withName(&opts.Options, func() error {
		opts.Settings.Cron = strings.TrimSpace(opts.Args[1])
		if len(opts.Args) == 3 {
			opts.Settings.Query = opts.Args[2]
		}
		if err := sf.read(cmd, opts); err != nil {
			return err
		}
		if strings.TrimSpace(opts.Settings.Query) == "" {
			return cmdutil.FlagErrorf("the query is missing: give the SQL as the third argument or with -q FILE")
		}
		if opts.Settings.Database == "" {
			return cmdutil.FlagErrorf("the database is missing: add -d DATABASE")
		}
		return nil
	}, bind(runF, opts), func(c *td.Client) error {
		s, err := c.Schedules.Create(opts.Ctx, opts.Name, &opts.Settings)
		if err != nil {
			return err
		}
		if s.Start != nil && opts.IO.IsStderrTTY() {
			fmt.Fprintf(opts.IO.ErrOut, "saved query %s created; first run at %s\n", s.Name, s.Start.UTC().Format(time.RFC3339))
		}
		return printOne(&opts.Options, s)
	})
	addSettingFlags(cmd, opts, sf, false)
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// NewCmdUpdate returns `sched update`.
func NewCmdUpdate(f *factory.Factory, runF func(*EditOptions) error) *cobra.Command {
	opts := &EditOptions{Options: Options{IO: f.IOStreams, TDClient: f.TDClient}}
	sf := &settingFlags{}
	cmd := &cobra.Command{
		Use:     "update NAME",
		Short:   "Change a saved query's settings",
		Long:    "Change what the flags give; the other settings stay as they are.",
		Example: "  tdctl sched update daily_pv -s '0 2 * * *' -P HIGH\n  tdctl sched update daily_pv -q daily_pv.sql",
		Args:    cmdutil.ExactArgs(1),
	}
	cmd.RunE = withName(&opts.Options, func() error {
		if cmd.Flags().NFlag() == 0 || (cmd.Flags().NFlag() == 1 && cmd.Flags().Changed("output")) {
			return cmdutil.FlagErrorf("nothing to change: give a setting such as -s CRON, -q FILE, -d DATABASE or -P PRIORITY")
		}
		return sf.read(cmd, opts)
	}, bind(runF, opts), func(c *td.Client) error {
		s, err := c.Schedules.Update(opts.Ctx, opts.Name, &opts.Settings)
		if err != nil {
			return err
		}
		return printOne(&opts.Options, s)
	})
	addSettingFlags(cmd, opts, sf, true)
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// --- delete --------------------------------------------------------------

// NewCmdDelete returns `sched delete`.
func NewCmdDelete(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a saved query (the jobs it ran are kept)",
		Example: "  tdctl sched delete daily_pv",
		Args:    cmdutil.ExactArgs(1),
		RunE: withName(opts, nil, bind(runF, opts), func(c *td.Client) error {
			s, err := c.Schedules.Delete(opts.Ctx, opts.Name)
			if err != nil {
				return err
			}
			p := output.New(opts.IO, opts.Format)
			if p.Structured() {
				sanitize(s)
				return p.JSON(s)
			}
			_, err = fmt.Fprintf(opts.IO.Out, "deleted %s\n", s.Name)
			return err
		}),
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// --- run -----------------------------------------------------------------

// RunOptions are the inputs of `sched run`.
type RunOptions struct {
	Options
	Time      time.Time
	Num       int
	DomainKey string
}

// NewCmdRun returns `sched run`.
func NewCmdRun(f *factory.Factory, runF func(*RunOptions) error) *cobra.Command {
	opts := &RunOptions{Options: Options{IO: f.IOStreams, TDClient: f.TDClient}}
	cmd := &cobra.Command{
		Use:   "run NAME TIME",
		Short: "Run a saved query for a time (its jobs' ids are printed)",
		Long: "Run saved query NAME now, as its run for TIME: TD_SCHEDULED_TIME() in the query is TIME.\n" +
			"TIME is RFC 3339 (2024-05-01T01:00:00Z), \"2024-05-01 01:00:00\" (UTC), 2024-05-01, unix\n" +
			"seconds, or now. With -n N, runs for the N cron times from TIME. Prints one job id a line;\n" +
			"wait for them with 'tdctl job wait'.",
		Example: "  tdctl sched run daily_pv 2024-05-01\n  tdctl sched run daily_pv '2024-05-01 00:00:00' -n 7 | xargs -n1 tdctl job wait",
		Args:    cmdutil.ExactArgs(2),
	}
	cmd.RunE = withName(&opts.Options, func() error {
		t, err := ParseRunTime(opts.Args[1], time.Now())
		if err != nil {
			return err
		}
		opts.Time = t
		if opts.Num < 1 || opts.Num > 1000 {
			return cmdutil.FlagErrorf("invalid -n/--num %d: give 1 to 1000 runs", opts.Num)
		}
		if opts.DomainKey != "" && opts.Num > 1 {
			return cmdutil.FlagErrorf("--domain-key names one run: it cannot be combined with -n %d", opts.Num)
		}
		return nil
	}, bind(runF, opts), func(c *td.Client) error {
		jobs, err := c.Schedules.Run(opts.Ctx, opts.Name, opts.Time, &td.RunOptions{Num: opts.Num, DomainKey: opts.DomainKey})
		if err != nil {
			return err
		}
		p := output.New(opts.IO, opts.Format)
		if p.Structured() {
			return output.JSONList(p, jobs)
		}
		if p.Human() {
			t := p.Table("job_id", "type", "scheduled_at")
			for _, j := range jobs {
				t.Row(j.ID, j.Type, p.Time(j.ScheduledAt))
			}
			return t.Render()
		}
		for _, j := range jobs {
			if _, err := fmt.Fprintln(opts.IO.Out, j.ID); err != nil {
				return err
			}
		}
		return nil
	})
	cmd.Flags().IntVarP(&opts.Num, "num", "n", 1, "run for this many cron times from TIME")
	cmd.Flags().StringVar(&opts.DomainKey, "domain-key", "", "idempotency key: running twice with the same key returns the first job")
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// ParseRunTime reads a run's TIME: RFC 3339, TD's "YYYY-MM-DD hh:mm:ss
// [UTC]", a date, unix seconds or "now" (now is given for tests).
func ParseRunTime(s string, now time.Time) (time.Time, error) {
	v := strings.TrimSpace(s)
	if strings.EqualFold(v, "now") {
		return now.UTC().Truncate(time.Second), nil
	}
	if v != "" && strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return time.Unix(n, 0).UTC(), nil
		}
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	if t, err := td.ParseTime(v); err == nil && v != "" {
		return t, nil
	}
	return time.Time{}, cmdutil.FlagErrorf("invalid TIME %q: use RFC 3339 (2024-05-01T01:00:00Z), \"2024-05-01 01:00:00\", 2024-05-01, unix seconds or now", s)
}

// --- history -------------------------------------------------------------

// HistoryOptions are the inputs of `sched history`.
type HistoryOptions struct {
	Options
	Limit, Skip int
}

// NewCmdHistory returns `sched history`.
func NewCmdHistory(f *factory.Factory, runF func(*HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{Options: Options{IO: f.IOStreams, TDClient: f.TDClient}}
	cmd := &cobra.Command{
		Use:     "history NAME",
		Short:   "List the jobs a saved query ran, newest first",
		Example: "  tdctl sched history daily_pv\n  tdctl sched history daily_pv -l 100 -o jsonl | jq -r 'select(.status==\"error\") | .job_id'",
		Args:    cmdutil.ExactArgs(1),
		RunE: withName(&opts.Options, func() error {
			if opts.Limit < 1 || opts.Limit > 1000 {
				return cmdutil.FlagErrorf("invalid -l/--limit %d: give 1 to 1000", opts.Limit)
			}
			if opts.Skip < 0 {
				return cmdutil.FlagErrorf("invalid -s/--skip %d: give 0 or more", opts.Skip)
			}
			return nil
		}, bind(runF, opts), func(c *td.Client) error { return historyRun(opts, c) }),
	}
	cmd.Flags().IntVarP(&opts.Limit, "limit", "l", 20, "print at most this many jobs")
	cmd.Flags().IntVarP(&opts.Skip, "skip", "s", 0, "skip this many of the newest jobs")
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func historyRun(opts *HistoryOptions, c *td.Client) error {
	hist, err := c.Schedules.History(opts.Ctx, opts.Name, &td.HistoryOptions{From: opts.Skip, Limit: opts.Limit})
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	for _, h := range hist {
		h.Job = *shared.Sanitize(&h.Job)
	}
	if p.Structured() {
		return output.JSONList(p, hist)
	}
	t := p.Table(append([]string{"scheduled_at"}, shared.ListHeaders...)...)
	for _, h := range hist {
		t.Row(append([]string{p.Time(h.ScheduledAt)}, shared.ListRow(p, &h.Job)...)...)
	}
	return t.Render()
}

// Package shared holds what the job commands (and query, export) share:
// waiting for jobs with progress and interrupt handling, and the job table
// and key/value layouts.
package shared

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// WaitFlags tune waiting for jobs.
type WaitFlags struct {
	// Timeout gives up (exit 4) after this long; 0 = no limit.
	Timeout time.Duration
	// KillOnInterrupt kills the job(s) being waited for on Ctrl-C/SIGTERM;
	// by default an interrupt stops waiting and leaves them running.
	KillOnInterrupt bool
	// PollInterval is the first poll delay (doubling to 30 s).
	PollInterval time.Duration
}

// AddWaitFlags registers --timeout, --kill-on-interrupt and --poll-interval.
func AddWaitFlags(cmd *cobra.Command, w *WaitFlags) {
	cmd.Flags().DurationVar(&w.Timeout, "timeout", 0, "give up after this long, e.g. 30m (exit code 4): it bounds the whole command, waits and downloads included; 0 = no limit")
	cmd.Flags().BoolVar(&w.KillOnInterrupt, "kill-on-interrupt", false, "kill the job(s) when interrupted (Ctrl-C); by default they keep running")
	cmd.Flags().DurationVar(&w.PollInterval, "poll-interval", time.Second, "first status poll delay; it doubles up to 30s")
}

// Validate checks the flag values.
func (w *WaitFlags) Validate() error {
	if w.Timeout < 0 {
		return cmdutil.FlagErrorf("--timeout must not be negative")
	}
	if w.PollInterval <= 0 {
		return cmdutil.FlagErrorf("--poll-interval must be positive, e.g. 1s")
	}
	return nil
}

// Options returns td wait options; onStatus may be nil.
func (w *WaitFlags) Options(onStatus func(*td.JobStatus)) *td.WaitOptions {
	maxDelay := 30 * time.Second
	if w.PollInterval > maxDelay {
		maxDelay = w.PollInterval
	}
	return &td.WaitOptions{MinDelay: w.PollInterval, MaxDelay: maxDelay, Timeout: w.Timeout, OnStatus: onStatus}
}

// Wait waits for one job with a spinner on a terminal stderr. On interrupt
// it kills the job when asked to, and returns an error matching
// cmdutil.ErrCancel.
func Wait(ctx context.Context, ios *iostreams.IOStreams, c *td.Client, id string, w *WaitFlags) (*td.Job, error) {
	p := output.NewSpinner(ios, "job "+id+": waiting")
	job, err := c.Jobs.Wait(ctx, id, w.Options(func(st *td.JobStatus) {
		p.Describe("job " + id + ": " + st.Status)
	}))
	p.Done()
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return job, Interrupted(ios, c, w, id)
	}
	if errors.Is(err, td.ErrWaitTimeout) || errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return job, &timeoutError{msg: fmt.Sprintf("job %s did not finish within --timeout %s; it keeps running", id, w.Timeout), err: err}
	}
	return job, err
}

// Bound runs run with ctx bounded by --timeout: the whole command — every
// request in flight, back-off sleeps, the wait and the download — ends when
// it passes, with an error matching context.DeadlineExceeded (exit 4) that
// says which --timeout passed. what names the work ("job 12345").
func (w *WaitFlags) Bound(ctx context.Context, what string, run func(context.Context) error) error {
	if w.Timeout <= 0 {
		return run(ctx)
	}
	tctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	err := run(tctx)
	var te *timeoutError
	if err != nil && !errors.As(err, &te) && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded) &&
		(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, td.ErrWaitTimeout)) {
		return &timeoutError{msg: fmt.Sprintf("%s did not finish within --timeout %s", what, w.Timeout), err: err}
	}
	return err
}

// timeoutError words a timeout for the CLI and still matches
// td.ErrWaitTimeout or context.DeadlineExceeded.
type timeoutError struct {
	msg string
	err error
}

func (e *timeoutError) Error() string { return e.msg }
func (e *timeoutError) Unwrap() error { return e.err }

// Interrupted handles an interrupt during a wait: it kills the given jobs
// with --kill-on-interrupt, says what happened on stderr, and returns an
// error matching cmdutil.ErrCancel.
func Interrupted(ios *iostreams.IOStreams, c *td.Client, w *WaitFlags, ids ...string) error {
	if !w.KillOnInterrupt {
		return fmt.Errorf("%w: stopped waiting; job %s keeps running (kill it with `tdctl job kill`, or pass --kill-on-interrupt)",
			cmdutil.ErrCancel, strings.Join(ids, ", "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Jobs.Kill(ctx, id); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("killing job %s: %w", id, err))
				mu.Unlock()
				return
			}
			mu.Lock()
			fmt.Fprintf(ios.ErrOut, "killed job %s\n", id)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", cmdutil.ErrCancel, errors.Join(errs...))
	}
	return fmt.Errorf("%w: killed job %s", cmdutil.ErrCancel, strings.Join(ids, ", "))
}

// ListHeaders are the columns of a job list (csv header names are the JSON
// field names).
var ListHeaders = []string{"job_id", "status", "type", "database", "created_at", "duration", "num_records", "query"}

// ListRow is one job as a list row.
func ListRow(p *output.Printer, j *td.Job) []string {
	q := j.Query
	if p.Human() {
		q = output.Truncate(q, 60)
	}
	return []string{j.ID, j.Status, j.Type, j.Database, p.Time(&j.CreatedAt), output.Int(j.Duration), output.Int(j.NumRecords), q}
}

// ShowPairs is one job as key/value pairs (names are the JSON field names).
func ShowPairs(p *output.Printer, j *td.Job) [][2]string {
	pairs := [][2]string{
		{"job_id", j.ID}, {"status", j.Status}, {"type", j.Type}, {"database", j.Database},
		{"user_name", j.UserName}, {"priority", fmt.Sprint(j.Priority)}, {"retry_limit", fmt.Sprint(j.RetryLimit)},
		{"created_at", p.Time(&j.CreatedAt)}, {"start_at", p.Time(j.StartAt)}, {"end_at", p.Time(j.EndAt)},
		{"duration", output.Int(j.Duration)}, {"cpu_time", output.Int(j.CPUTime)},
		{"result_size", output.Int(j.ResultSize)}, {"num_records", output.Int(j.NumRecords)},
		{"result", cmdutil.Redact(j.Result)}, {"url", cmdutil.Redact(j.URL)},
	}
	if len(j.Schema) > 0 {
		cols := make([]string, len(j.Schema))
		for i, c := range j.Schema {
			cols[i] = c.Name + ":" + c.Type
		}
		pairs = append(pairs, [2]string{"schema", strings.Join(cols, ", ")})
	}
	if j.LinkedResultExportJobID != "" {
		pairs = append(pairs, [2]string{"linked_result_export_job_id", j.LinkedResultExportJobID})
	}
	if j.ResultExportTargetJobID != "" {
		pairs = append(pairs, [2]string{"result_export_target_job_id", j.ResultExportTargetJobID})
	}
	pairs = append(pairs, [2]string{"query", j.Query})
	if j.Debug != nil && strings.TrimSpace(j.Debug.Stderr) != "" {
		pairs = append(pairs, [2]string{"debug.stderr", cmdutil.Redact(strings.TrimSpace(j.Debug.Stderr))})
	}
	return pairs
}

// RequireID validates a job id argument: decimal digits and nothing else.
// An id with white space around it (a line read from a file with CRLF
// ends keeps its \r) is refused, never trimmed: sent as it is, it would
// be answered with a 404 naming a job that seems to exist.
func RequireID(id string) error { return RequireIDOf("", id) }

// RequireIDOf is RequireID for an id given with a flag (e.g. "--job-id"),
// which the message names.
func RequireIDOf(flag, id string) error {
	of := ""
	if flag != "" {
		of = " of " + flag
	}
	if id == "" {
		return cmdutil.FlagErrorf("the job id%s is empty", of)
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			msg := fmt.Sprintf("invalid job id %q%s: job ids are numbers, e.g. 12345", id, of)
			if t := strings.TrimSpace(id); t != id && t != "" && RequireID(t) == nil {
				msg += "; strip the white space around it (a \\r comes from CRLF line ends)"
			}
			return cmdutil.FlagErrorf("%s", msg)
		}
	}
	return nil
}

// Sanitize returns a copy of j safe to print: the result URL and debug
// output go through cmdutil.Redact (td already redacts Result; this is the
// printer's own guarantee).
func Sanitize(j *td.Job) *td.Job {
	if j == nil {
		return nil
	}
	c := *j
	c.Result = cmdutil.Redact(c.Result)
	if c.Debug != nil {
		d := *c.Debug
		d.CmdOut = cmdutil.Redact(d.CmdOut)
		d.Stderr = cmdutil.Redact(d.Stderr)
		c.Debug = &d
	}
	return &c
}

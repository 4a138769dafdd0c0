package remote

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// StartOptions are the inputs of `workflow start`.
type StartOptions struct {
	*Options
	Project, Workflow string
	Session           string
	Revision          string
	Params            []string
	ParamsFile        string
	RetryName         string
	Wait              bool
	Timeout           time.Duration
}

func newCmdStart(o *Options, runF func(*StartOptions) error) *cobra.Command {
	so := &StartOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "start PROJECT WORKFLOW",
		Short: "Start a workflow of a pushed project on the workflow server",
		Long: `Start a session attempt of WORKFLOW in PROJECT, as digdag start does. --session picks the
session time: now (the default), hourly or daily (now truncated to the hour or the day in the
workflow's timezone), last or schedule (the last time the workflow's schedule: would have run),
"yyyy-MM-dd" or "yyyy-MM-dd HH:mm:ss" (in the workflow's timezone) or RFC 3339. A session
that exists already is refused (exit 2) with its attempt id: start it again with --retry NAME,
or use 'workflow retry'.

--wait follows the attempt until it ends: exit 3 when it ended in error or was killed, 4 after
--timeout (the attempt keeps running), 130 when interrupted (so does it).`,
		Example: `  tdctl workflow start examples num_records
  tdctl workflow start examples daily --session 2026-12-01 -p td.database=www --wait`,
		Args: cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Project, so.Workflow, so.Ctx = args[0], args[1], cmd.Context()
			if so.Timeout != 0 && !so.Wait {
				return cmdutil.FlagErrorf("--timeout needs --wait")
			}
			if runF != nil {
				return runF(so)
			}
			return startRun(so)
		},
	}
	cmd.Flags().StringVar(&so.Session, "session", "now", "session time: now, hourly, daily, last, yyyy-MM-dd[ HH:mm:ss] or RFC 3339")
	cmd.Flags().StringVar(&so.Revision, "revision", "", "start the workflow of this revision (default: the latest)")
	cmd.Flags().StringVar(&so.RetryName, "retry", "", "start a session that exists already again, as a retry attempt with this name")
	cmd.Flags().BoolVar(&so.Wait, "wait", false, "wait for the attempt to end (exit 3 if it failed)")
	cmd.Flags().DurationVar(&so.Timeout, "timeout", 0, "with --wait: give up after this long (exit 4)")
	addParamFlags(cmd, &so.Params, &so.ParamsFile)
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

// sessionTime turns --session into the session time, as digdag start
// does: now as it is, hourly/daily truncated in the workflow's timezone,
// a local date or time read in that zone, RFC 3339 as it is. last and
// schedule are the schedule's last session time, which the server works
// out (truncated_session_time, mode schedule): server is nil then.
func sessionTime(session, zone string, now time.Time) (t time.Time, server bool, err error) {
	loc, _, zerr := workflow.ParseZone(zone)
	if zerr != nil {
		loc = time.UTC
	}
	now = now.In(loc).Truncate(time.Second)
	switch session {
	case "", "now":
		return now, false, nil
	case "hourly":
		return time.Date(now.Year(), now.Month(), now.Day(), now.Hour(), 0, 0, 0, loc), false, nil
	case "daily":
		return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc), false, nil
	case "last", "schedule":
		return time.Time{}, true, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, session, loc); err == nil {
			return t, false, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, session); err == nil {
		return t, false, nil
	}
	return time.Time{}, false, cmdutil.FlagErrorf(`--session %q: give now, hourly, daily, last, "yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss" or an RFC 3339 time`, session)
}

func startRun(o *StartOptions) error {
	if _, _, err := sessionTime(o.Session, "UTC", o.Now()); err != nil {
		return err // a bad --session before any request
	}
	ps, err := params(o.Ctx, o.ParamsFile, o.Params)
	if err != nil {
		return err
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	proj, err := c.Projects.Get(o.Ctx, o.Project)
	if err != nil {
		return err
	}
	wf, err := c.Projects.Workflow(o.Ctx, proj.ID, o.Workflow, o.Revision)
	if err != nil {
		return err
	}
	at, server, err := sessionTime(o.Session, wf.Timezone, o.Now())
	if err != nil {
		return err
	}
	if server {
		st, err := c.Workflows.TruncatedSessionTime(o.Ctx, wf.ID, o.Now().UTC().Format("2006-01-02T15:04:05Z"), digdag.TruncateSchedule)
		if errors.Is(err, td.ErrNotFound) {
			return fmt.Errorf("--session %s: the workflow server cannot work out the schedule's last session (%w); give the session time", o.Session, err)
		}
		if err != nil {
			return err
		}
		at = st.SessionTime
	}
	a, err := c.Attempts.Start(o.Ctx, &digdag.StartRequest{WorkflowID: wf.ID, SessionTime: at, RetryAttemptName: o.RetryName, Params: ps})
	if err != nil {
		return err
	}
	return started(o.Options, c, a, o.Wait, o.Timeout)
}

// started reports a new attempt, and with wait follows it to its end.
func started(o *Options, c *digdag.Client, a *digdag.Attempt, waitFor bool, timeout time.Duration) error {
	p := printer(o.IO, o.Format)
	if p.Human() {
		fmt.Fprintf(o.IO.ErrOut, "started attempt %s of %s/%s (session %s, session time %s)\n",
			a.ID, a.Project.Name, a.Workflow.Name, a.SessionID, a.SessionTime.Format(time.RFC3339))
	}
	if waitFor {
		done, err := wait(o, c, a, timeout)
		if done != nil {
			a = done
		}
		if perr := printAttempt(o, a); perr != nil && err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
		return nil
	}
	if err := printAttempt(o, a); err != nil {
		return err
	}
	if p.Human() {
		fmt.Fprintf(o.IO.ErrOut, "follow it with: tdctl workflow attempt %s; tdctl workflow logs %s -f\n", a.ID, a.ID)
	}
	return nil
}

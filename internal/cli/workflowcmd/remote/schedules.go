package remote

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/workflow"
)

// SchedulesOptions are the inputs of `workflow schedules`.
type SchedulesOptions struct {
	*Options
	Project, Workflow string
	// Backfill is the id of the schedule to backfill ("" = list).
	Backfill    string
	From        string
	Count       int
	AttemptName string
	DryRun      bool
}

func newCmdSchedules(o *Options, runF func(*SchedulesOptions) error) *cobra.Command {
	so := &SchedulesOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List the schedules on the workflow server, or backfill one",
		Long: `List the schedules of the pushed projects (a workflow with schedule: in its latest revision
has one): next run time and next session time.

--backfill SCHEDULE_ID --from TIME starts the sessions the schedule would have run from TIME
on (up to now, or --count of them), as digdag backfill does: TIME is "yyyy-MM-dd[ HH:mm:ss]"
in the workflow's timezone or RFC 3339; every attempt is named --attempt-name (default a
random UUID); --dry-run lists them without starting any.`,
		Example: "  tdctl workflow schedules --project examples\n  tdctl workflow schedules --backfill 3 --from 2026-12-01 --dry-run",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Ctx = cmd.Context()
			if so.Backfill == "" {
				for _, f := range []string{"from", "count", "attempt-name", "dry-run"} {
					if cmd.Flags().Changed(f) {
						return cmdutil.FlagErrorf("--%s needs --backfill SCHEDULE_ID", f)
					}
				}
			} else {
				if so.Project != "" || so.Workflow != "" {
					return cmdutil.FlagErrorf("--backfill takes a schedule id; --project and --workflow only filter the list")
				}
				if !IsAttemptID(so.Backfill) {
					return cmdutil.FlagErrorf("--backfill %q: schedule ids are numbers (see 'tdctl workflow schedules')", so.Backfill)
				}
				if so.From == "" {
					return cmdutil.FlagErrorf("--backfill needs --from TIME")
				}
				if so.Count < 0 {
					return cmdutil.FlagErrorf("--count %d: give a positive number", so.Count)
				}
			}
			if so.Workflow != "" && so.Project == "" {
				return cmdutil.FlagErrorf("--workflow needs --project")
			}
			if runF != nil {
				return runF(so)
			}
			if so.Backfill != "" {
				return backfillRun(so)
			}
			return schedulesRun(so)
		},
	}
	cmd.Flags().StringVar(&so.Project, "project", "", "only this project's schedules")
	cmd.Flags().StringVar(&so.Workflow, "workflow", "", "only this workflow's schedule (with --project)")
	cmd.Flags().StringVar(&so.Backfill, "backfill", "", "backfill the schedule with this id")
	cmd.Flags().StringVar(&so.From, "from", "", "with --backfill: the first session time")
	cmd.Flags().IntVar(&so.Count, "count", 0, "with --backfill: at most this many sessions")
	cmd.Flags().StringVar(&so.AttemptName, "attempt-name", "", "with --backfill: the attempts' retry name (default: a random UUID)")
	cmd.Flags().BoolVar(&so.DryRun, "dry-run", false, "with --backfill: list the sessions, start none")
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

func schedulesRun(o *SchedulesOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var ss []*digdag.Schedule
	if o.Project != "" {
		proj, err := c.Projects.Get(o.Ctx, o.Project)
		if err != nil {
			return err
		}
		if ss, err = c.Projects.Schedules(o.Ctx, proj.ID, o.Workflow); err != nil {
			return err
		}
	} else if ss, err = c.Schedules.List(o.Ctx); err != nil {
		return err
	}
	p := printer(o.IO, o.Format)
	if p.Structured() {
		return output.JSONList(p, ss)
	}
	t := p.Table("schedule_id", "project", "workflow", "next_run_time", "next_session_time", "disabled_at")
	for _, s := range ss {
		t.Row(s.ID, s.Project.Name, s.Workflow.Name, p.Time(&s.NextRunTime), s.NextScheduleTime.Format("2006-01-02T15:04:05-07:00"), p.Time(s.DisabledAt))
	}
	return t.Render()
}

// backfillFrom reads --from: RFC 3339, or a local time in zone.
func backfillFrom(s, zone string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	loc, _, err := workflow.ParseZone(zone)
	if err != nil {
		loc = time.UTC
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, cmdutil.FlagErrorf(`--from %q: give "yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss" (in the workflow's timezone) or an RFC 3339 time`, s)
}

func backfillRun(o *SchedulesOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	sc, err := c.Schedules.Get(o.Ctx, o.Backfill)
	if err != nil {
		return err
	}
	zone := "UTC"
	if wf, err := c.Workflows.Get(o.Ctx, sc.Workflow.ID); err == nil {
		zone = wf.Timezone
	} else {
		return err
	}
	from, err := backfillFrom(o.From, zone)
	if err != nil {
		return err
	}
	name := o.AttemptName
	if name == "" {
		name = uuid.NewString()
	}
	req := &digdag.BackfillRequest{FromTime: from, DryRun: o.DryRun, AttemptName: name}
	if o.Count > 0 {
		req.Count = &o.Count
	}
	as, err := c.Schedules.Backfill(o.Ctx, o.Backfill, req)
	if err != nil {
		return err
	}
	p := printer(o.IO, o.Format)
	if p.Structured() {
		return output.JSONList(p, as)
	}
	if p.Human() {
		verb := "started"
		if o.DryRun {
			verb = "would start (dry run)"
		}
		fmt.Fprintf(o.IO.ErrOut, "backfill of %s/%s %s %d sessions, attempt name %s\n", sc.Project.Name, sc.Workflow.Name, verb, len(as), name)
	}
	t := p.Table("attempt_id", "session_time", "status")
	for _, a := range as {
		t.Row(a.ID, a.SessionTime.Format("2006-01-02T15:04:05-07:00"), a.State())
	}
	return t.Render()
}

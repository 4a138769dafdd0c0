package remote

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
)

// AttemptsOptions are the inputs of `workflow attempts`.
type AttemptsOptions struct {
	*Options
	Project, Workflow string
	IncludeRetried    bool
	Limit             int
}

func newCmdAttempts(o *Options, runF func(*AttemptsOptions) error) *cobra.Command {
	ao := &AttemptsOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "attempts",
		Short: "List attempts on the workflow server, newest first",
		Long: `List session attempts on the workflow server, newest first: each session's last attempt,
or all of them with --include-retried.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ao.Ctx = cmd.Context()
			if ao.Workflow != "" && ao.Project == "" {
				return cmdutil.FlagErrorf("--workflow needs --project")
			}
			if ao.Limit < 0 || ao.Limit > 1000 {
				return cmdutil.FlagErrorf("--limit %d: give 1 to 1000", ao.Limit)
			}
			if runF != nil {
				return runF(ao)
			}
			return attemptsRun(ao)
		},
	}
	cmd.Flags().StringVar(&ao.Project, "project", "", "only this project's attempts")
	cmd.Flags().StringVar(&ao.Workflow, "workflow", "", "only this workflow's attempts (with --project)")
	cmd.Flags().BoolVar(&ao.IncludeRetried, "include-retried", false, "every attempt of a session, not only its last")
	cmd.Flags().IntVar(&ao.Limit, "limit", 0, "at most this many (default: the server's page, 100 on digdag)")
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

func attemptsRun(o *AttemptsOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	as, err := c.Attempts.List(o.Ctx, &digdag.ListOptions{Project: o.Project, Workflow: o.Workflow, IncludeRetried: o.IncludeRetried, PageSize: o.Limit})
	if err != nil {
		return err
	}
	p := printer(o.IO, o.Format)
	if p.Structured() {
		return output.JSONList(p, as)
	}
	t := p.Table("attempt_id", "session_id", "project", "workflow", "session_time", "retry_name", "status", "created_at", "finished_at")
	for _, a := range as {
		t.Row(a.ID, a.SessionID, a.Project.Name, a.Workflow.Name, a.SessionTime.Format("2006-01-02T15:04:05-07:00"),
			a.RetryAttemptName, a.State(), p.Time(&a.CreatedAt), p.Time(a.FinishedAt))
	}
	return t.Render()
}

// AttemptOptions are the inputs of `workflow attempt`.
type AttemptOptions struct {
	*Options
	ID string
}

func newCmdAttempt(o *Options, runF func(*AttemptOptions) error) *cobra.Command {
	ao := &AttemptOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "attempt ATTEMPT_ID",
		Short: "Show an attempt on the workflow server and its tasks",
		Long: `Show an attempt and its tasks: state, start and last update, and for td> tasks the job id
and num_records they stored (td.last_job). -o json gives {"attempt": ..., "tasks": [...]}
with digdag's fields.`,
		Args: cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ao.ID, ao.Ctx = args[0], cmd.Context()
			if err := requireAttemptID(ao.ID); err != nil {
				return err
			}
			if runF != nil {
				return runF(ao)
			}
			return attemptRun(ao)
		},
	}
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

func requireAttemptID(id string) error {
	if !IsAttemptID(id) {
		return cmdutil.FlagErrorf("attempt id %q: the server's attempt ids are numbers", id)
	}
	return nil
}

// tdJob is the job a td> task stored: td.last_job.id (or the older
// td.last_job_id) and td.last_job.num_records.
func tdJob(t *digdag.Task) (jobID, numRecords string) {
	td, _ := t.StoreParams["td"].(map[string]any)
	if td == nil {
		return "", ""
	}
	str := func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case nil:
			return ""
		}
		return fmt.Sprint(v)
	}
	jobID = str(td["last_job_id"])
	if last, ok := td["last_job"].(map[string]any); ok {
		if id := str(last["id"]); id != "" {
			jobID = id
		}
		numRecords = str(last["num_records"])
	}
	return jobID, numRecords
}

func attemptRun(o *AttemptOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	a, err := c.Attempts.Get(o.Ctx, o.ID)
	if err != nil {
		return err
	}
	tasks, err := c.Attempts.Tasks(o.Ctx, o.ID)
	if err != nil {
		return err
	}
	p := printer(o.IO, o.Format)
	if p.Structured() {
		if tasks == nil {
			tasks = []*digdag.Task{}
		}
		return p.JSON(struct {
			Attempt *digdag.Attempt `json:"attempt"`
			Tasks   []*digdag.Task  `json:"tasks"`
		}{a, tasks})
	}
	if p.Human() {
		if err := p.KeyValues(attemptPairs(p, a)); err != nil {
			return err
		}
		fmt.Fprintln(o.IO.Out)
	}
	t := p.Table("task", "state", "started_at", "updated_at", "job_id", "num_records")
	for _, tk := range tasks {
		job, n := tdJob(tk)
		t.Row(tk.FullName, tk.State, p.Time(tk.StartedAt), p.Time(&tk.UpdatedAt), job, n)
	}
	return t.Render()
}

// KillOptions are the inputs of `workflow kill`.
type KillOptions struct {
	*Options
	ID string
}

func newCmdKill(o *Options, runF func(*KillOptions) error) *cobra.Command {
	ko := &KillOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "kill ATTEMPT_ID",
		Short: "Kill an attempt on the workflow server",
		Long: `Ask the workflow server to kill a running attempt; its running tasks are cancelled and the
attempt ends killed. An attempt that is done already is refused (exit 2).`,
		Args: cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ko.ID, ko.Ctx = args[0], cmd.Context()
			if err := requireAttemptID(ko.ID); err != nil {
				return err
			}
			if runF != nil {
				return runF(ko)
			}
			c, err := ko.Client()
			if err != nil {
				return err
			}
			if err := c.Attempts.Kill(ko.Ctx, ko.ID); err != nil {
				return err
			}
			_, err = fmt.Fprintf(ko.IO.Out, "kill requested for attempt %s\n", ko.ID)
			return err
		},
	}
	return cmd
}

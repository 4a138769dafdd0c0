package remote

import (
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
)

// SessionsOptions are the inputs of `workflow sessions`.
type SessionsOptions struct {
	*Options
	Project, Workflow string
	Limit             int
}

func newCmdSessions(o *Options, runF func(*SessionsOptions) error) *cobra.Command {
	so := &SessionsOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List sessions on the workflow server, newest first, with their last attempt",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Ctx = cmd.Context()
			if so.Workflow != "" && so.Project == "" {
				return cmdutil.FlagErrorf("--workflow needs --project")
			}
			if so.Limit < 0 || so.Limit > 1000 {
				return cmdutil.FlagErrorf("--limit %d: give 1 to 1000", so.Limit)
			}
			if runF != nil {
				return runF(so)
			}
			return sessionsRun(so)
		},
	}
	cmd.Flags().StringVar(&so.Project, "project", "", "only this project's sessions")
	cmd.Flags().StringVar(&so.Workflow, "workflow", "", "only this workflow's sessions (with --project)")
	cmd.Flags().IntVar(&so.Limit, "limit", 0, "at most this many (default: the server's page)")
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

func sessionsRun(o *SessionsOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var ss []*digdag.Session
	if o.Project != "" {
		proj, err := c.Projects.Get(o.Ctx, o.Project)
		if err != nil {
			return err
		}
		ss, err = c.Projects.Sessions(o.Ctx, proj.ID, o.Workflow, "", o.Limit)
		if err != nil {
			return err
		}
	} else if ss, err = c.Sessions.List(o.Ctx, "", o.Limit); err != nil {
		return err
	}
	p := printer(o.IO, o.Format)
	if p.Structured() {
		return output.JSONList(p, ss)
	}
	t := p.Table("session_id", "project", "workflow", "session_time", "last_attempt", "status", "created_at", "finished_at")
	for _, s := range ss {
		id, status, created, finished := "", "", "", ""
		if la := s.LastAttempt; la != nil {
			a := digdag.Attempt{Done: la.Done, Success: la.Success, CancelRequested: la.CancelRequested}
			id, status, created, finished = la.ID, a.State(), p.Time(&la.CreatedAt), p.Time(la.FinishedAt)
		}
		t.Row(s.ID, s.Project.Name, s.Workflow.Name, s.SessionTime.Format("2006-01-02T15:04:05-07:00"), id, status, created, finished)
	}
	return t.Render()
}

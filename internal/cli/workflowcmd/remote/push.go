package remote

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
)

// PushOptions are the inputs of `workflow push`.
type PushOptions struct {
	*Options
	Dir          string
	Project      string
	Revision     string
	ScheduleFrom string
}

func newCmdPush(o *Options, runF func(*PushOptions) error) *cobra.Command {
	po := &PushOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "push DIR",
		Short: "Push a project directory to the workflow server (TD Workflow or digdag)",
		Long: `Pack DIR as digdag push does — every file but those whose name starts with a dot and
those matched by DIR/.digdagignore (gitignore syntax): the .dig files, queries, scripts —
and upload it as a new revision of the project (named after DIR unless --project). Prints
the project id and the revision; schedule: in the .dig files starts running on the server.`,
		Example: "  tdctl workflow push examples/workflows --project examples\n  tdctl workflow push . --revision v1.2",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			po.Dir, po.Ctx = args[0], cmd.Context()
			if runF != nil {
				return runF(po)
			}
			return pushRun(po)
		},
	}
	cmd.Flags().StringVar(&po.Project, "project", "", "project name (default: DIR's name)")
	cmd.Flags().StringVarP(&po.Revision, "revision", "r", "", "revision name (default: a random UUID, as digdag push)")
	cmd.Flags().StringVar(&po.ScheduleFrom, "schedule-from", "", "start the schedules from this time (RFC 3339) instead of now")
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

func pushRun(o *PushOptions) error {
	var from time.Time
	if o.ScheduleFrom != "" {
		t, err := time.Parse(time.RFC3339, o.ScheduleFrom)
		if err != nil {
			return cmdutil.FlagErrorf("--schedule-from %q: give an RFC 3339 time such as 2026-12-01T00:00:00Z", o.ScheduleFrom)
		}
		from = t
	}
	name := o.Project
	if name == "" {
		abs, err := filepath.Abs(o.Dir)
		if err != nil {
			return cmdutil.NewFlagError(err)
		}
		name = filepath.Base(abs)
	}
	arc, files, err := digdag.Archive(o.Dir)
	if err != nil {
		return cmdutil.NewFlagError(err)
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	proj, err := c.Projects.Push(o.Ctx, name, o.Revision, arc, &digdag.PushOptions{ScheduleFrom: from})
	if err != nil {
		return err
	}
	p := printer(o.IO, o.Format)
	switch {
	case p.Structured():
		return p.JSON(proj)
	case p.Human():
		_, err = fmt.Fprintf(o.IO.Out, "pushed %d files as project %s (id %s), revision %s\n", len(files), proj.Name, proj.ID, proj.Revision)
		return err
	}
	t := p.Table("project_id", "project", "revision")
	t.Row(proj.ID, proj.Name, proj.Revision)
	return t.Render()
}

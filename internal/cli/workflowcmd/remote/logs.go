package remote

import (
	"fmt"
	"io"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
)

// LogsOptions are the inputs of `workflow logs ATTEMPT_ID` (the workflow
// group's logs command hands a numeric id here).
type LogsOptions struct {
	*Options
	ID     string
	Task   string
	Follow bool
}

// LogsRun writes an attempt's task logs to stdout, oldest file first, each
// under a "== task (file)" line when stdout is a terminal; with
// Follow it keeps polling until the attempt is done, and exits 3 if it
// failed.
func LogsRun(o *LogsOptions) error {
	if err := requireAttemptID(o.ID); err != nil {
		return err
	}
	if o.Format != output.FormatAuto {
		return cmdutil.FlagErrorf("-o is for a local run's summary; an attempt's logs are text")
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	fo := &digdag.FollowOptions{Task: o.Task, Poll: o.Poll}
	if o.IO.IsStdoutTTY() {
		fo.Each = func(f *digdag.LogFile, w io.Writer) {
			fmt.Fprintf(w, "== %s (%s)\n", f.TaskName, f.FileName)
		}
	}
	if !o.Follow {
		return c.Logs.Write(o.Ctx, o.ID, o.IO.Out, fo)
	}
	a, err := c.Logs.Follow(o.Ctx, o.ID, o.IO.Out, fo)
	if err != nil {
		return err
	}
	if a.State() != "success" {
		return &digdag.AttemptFailedError{Attempt: a}
	}
	return nil
}

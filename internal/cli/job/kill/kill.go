// Package kill implements `tdctl job kill`.
package kill

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// KillOptions are the inputs of `job kill`.
type KillOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	JobID  string
	Format output.Format
}

// killed is the JSON answer of `job kill -o json`.
type killed struct {
	JobID        string `json:"job_id"`
	FormerStatus string `json:"former_status"`
}

// NewCmdKill returns `job kill`.
func NewCmdKill(f *factory.Factory, runF func(*KillOptions) error) *cobra.Command {
	opts := &KillOptions{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:   "kill JOB_ID",
		Short: "Kill a job",
		Long:  "Ask the API to kill a job. Prints the job's status before the kill (-o json: {job_id, former_status}).",
		Args:  cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JobID, opts.Ctx = args[0], cmd.Context()
			if err := shared.RequireID(opts.JobID); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return killRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func killRun(opts *KillOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	former, err := c.Jobs.Kill(opts.Ctx, opts.JobID)
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	switch {
	case p.Structured():
		return p.JSON(killed{opts.JobID, former})
	case p.Human():
		_, err = fmt.Fprintf(opts.IO.Out, "killed job %s (it was %s)\n", opts.JobID, former)
		return err
	}
	t := p.Table("job_id", "former_status")
	t.Row(opts.JobID, former)
	return t.Render()
}

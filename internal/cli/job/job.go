// Package job is the `tdctl job` command group.
package job

import (
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"

	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/job/export"
	"github.com/tdctl/tdctl/internal/cli/job/kill"
	"github.com/tdctl/tdctl/internal/cli/job/list"
	"github.com/tdctl/tdctl/internal/cli/job/numrecords"
	"github.com/tdctl/tdctl/internal/cli/job/result"
	"github.com/tdctl/tdctl/internal/cli/job/show"
	"github.com/tdctl/tdctl/internal/cli/job/status"
	"github.com/tdctl/tdctl/internal/cli/job/wait"
)

// NewCmdJob returns the `job` group.
func NewCmdJob(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Inspect, wait for, kill and export query jobs",
	}
	cmd.AddCommand(
		show.NewCmdShow(f, nil),
		status.NewCmdStatus(f, nil),
		list.NewCmdList(f, nil),
		kill.NewCmdKill(f, nil),
		wait.NewCmdWait(f, nil),
		result.NewCmdResult(f, nil),
		numrecords.NewCmdNumRecords(f, nil),
		export.NewCmdExport(f, nil),
	)
	return cmdutil.MakeGroup(cmd)
}

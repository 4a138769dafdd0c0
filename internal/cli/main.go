// Package cli assembles tdctl-full: the core command tree of package root
// plus the commands that need the workflow runner, the param stores,
// Kubernetes or the TD API emulator. cmd/tdctl-full runs Main; the tdctl
// binary links none of this and hands those commands to tdctl-full (see
// package dispatch). Tests run command lines in-process with Run.
package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/app"
	"github.com/tdctl/tdctl/internal/cli/democmd"
	"github.com/tdctl/tdctl/internal/cli/devserver"
	"github.com/tdctl/tdctl/internal/cli/dispatch"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/k8scmd"
	"github.com/tdctl/tdctl/internal/cli/paramcmd"
	"github.com/tdctl/tdctl/internal/cli/root"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd"
)

// Commands are tdctl-full's top-level commands: tdctl's own and those
// that tdctl hands to tdctl-full (dispatch.Commands, same names and help).
func Commands() []root.LazyCommand {
	news := map[string]func(*factory.Factory) *cobra.Command{
		"demo":       democmd.NewCmdDemo,
		"dev-server": func(f *factory.Factory) *cobra.Command { return devserver.NewCmdDevServer(f, nil) },
		"k8s":        k8scmd.NewCmdK8s,
		"param":      paramcmd.NewCmdParam,
		"workflow":   func(f *factory.Factory) *cobra.Command { return workflowcmd.NewCmdWorkflow(f, nil) },
	}
	cmds := root.Core()
	for _, c := range dispatch.Commands {
		cmds = append(cmds, root.LazyCommand{Name: c.Name, Short: c.Short, New: news[c.Name]})
	}
	return cmds
}

// NewCmdRoot returns tdctl-full's tree for the command line args (nil:
// every command built).
func NewCmdRoot(f *factory.Factory, args []string) *cobra.Command {
	return root.NewCmdRoot(f, args, Commands())
}

// Main runs tdctl-full with the process's arguments and streams and
// returns the exit code.
func Main() int { return app.Main(NewCmdRoot, app.Options{WaitForSignals: true}) }

// Run executes one command line on the full tree with the given factory
// and returns the exit code. Tests call it with iostreams.Test streams.
func Run(ctx context.Context, f *factory.Factory, args []string) int {
	return app.Run(ctx, f, NewCmdRoot, args)
}

// ExitCode maps an error to tdctl's documented exit codes (see root.Help).
func ExitCode(ctx context.Context, err error) int { return app.ExitCode(ctx, err) }

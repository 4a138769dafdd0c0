// Package completion implements `tdctl completion bash|zsh|fish`.
package completion

import (
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
)

// NewCmdCompletion returns `completion`.
func NewCmdCompletion(f *factory.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: "Print a completion script for your shell. For example:\n\n" +
			"  bash:  source <(tdctl completion bash)   # or save it under /etc/bash_completion.d/\n" +
			"  zsh:   tdctl completion zsh > \"${fpath[1]}/_tdctl\"\n" +
			"  fish:  tdctl completion fish > ~/.config/fish/completions/tdctl.fish",
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.FlagErrorf("name one shell: bash, zsh or fish")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), f.IOStreams.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return cmdutil.FlagErrorf("unsupported shell %q: use bash, zsh or fish", args[0])
		},
	}
}

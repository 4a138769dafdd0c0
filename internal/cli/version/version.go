// Package version implements `tdctl version`. It needs nothing from the
// Factory but the output stream, so it loads no configuration.
package version

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/build"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
)

// NewCmdVersion returns `version`.
func NewCmdVersion(f *factory.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print tdctl's version",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(f.IOStreams.Out, String())
			return err
		},
	}
}

// String is the one-line version: "tdctl v1.2.3 (abc1234, 2025-01-02T03:04:05Z) go1.26 linux/amd64".
func String() string {
	s := "tdctl " + build.Version
	switch {
	case build.Commit != "" && build.Date != "":
		s += " (" + build.Commit + ", " + build.Date + ")"
	case build.Commit != "":
		s += " (" + build.Commit + ")"
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

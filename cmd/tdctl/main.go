// Command tdctl runs Treasure Data query jobs, waits for them, and exports
// or downloads their results. See `tdctl --help` and docs/cli.md.
//
// It links only what those commands need, so that it starts fast; the
// workflow runner, params, Kubernetes and the emulator are in tdctl-full
// (cmd/tdctl-full), which tdctl runs for those commands (why and how:
// docs/design.md).
package main

import (
	"os"

	"github.com/tdctl/tdctl/internal/cli/app"
	"github.com/tdctl/tdctl/internal/cli/root"
)

func main() { os.Exit(app.Main(root.NewCmdCore, app.Options{})) }

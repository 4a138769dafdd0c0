// Command tdctl runs Treasure Data query jobs, waits for them, and exports
// or downloads their results. See `tdctl --help` and docs/cli.md.
package main

import (
	"os"

	"github.com/tdctl/tdctl/internal/cli"
)

func main() { os.Exit(cli.Main()) }

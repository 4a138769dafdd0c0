// Command tdctl-full is tdctl with every command linked in: besides the
// core commands (query, job, config...) it runs .dig workflows, reads and
// writes params (SQLite, PostgreSQL, Redis), runs scripts in Kubernetes
// pods and serves the TD API emulator. The tdctl binary runs it for those
// commands; it also works on its own, e.g.
//
//	go run ./cmd/tdctl-full demo
package main

import (
	"os"

	"github.com/tdctl/tdctl/internal/cli"
)

func main() { os.Exit(cli.Main()) }

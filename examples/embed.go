// Package examples holds the example .dig workflows (runnable with `tdctl
// workflow run`, with their queries and job.sh), embedded for `tdctl demo`.
// The td SDK's runnable examples are in td/example_test.go.
package examples

import "embed"

// Workflows is the workflows/ directory.
//
//go:embed workflows
var Workflows embed.FS

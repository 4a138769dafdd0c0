// Package examples holds runnable examples: .dig workflows (the seed
// workflows of the project, runnable with `tdctl workflow run`) and Go
// programs using the td SDK. The workflows are embedded for `tdctl demo`.
package examples

import "embed"

// Workflows is the workflows/ directory.
//
//go:embed workflows
var Workflows embed.FS

package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tdctl/tdctl/internal/cli/dispatch"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/root"
)

// TestCoreTreeMatchesFull keeps tdctl's help honest: the tdctl binary
// lists exactly tdctl-full's commands, with the same one-line help, and
// every command it does not link is a dispatch stub.
func TestCoreTreeMatchesFull(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := factory.New(ios)
	full := map[string]string{}
	for _, c := range NewCmdRoot(f).Commands() {
		full[c.Name()] = c.Short
	}
	core := map[string]string{}
	for _, c := range root.NewCmdCore(f).Commands() {
		core[c.Name()] = c.Short
	}
	assert.Equal(t, full, core)

	stubs := map[string]bool{}
	for _, c := range dispatch.Commands {
		stubs[c.Name] = true
		assert.Equal(t, full[c.Name], c.Short, "dispatch.Commands' Short for %s", c.Name)
	}
	for _, c := range root.NewCmdCore(f).Commands() {
		isStub := dispatch.Target(c.Root(), []string{c.Name()}) != nil
		assert.Equal(t, stubs[c.Name()], isStub, "%s", c.Name())
	}
}

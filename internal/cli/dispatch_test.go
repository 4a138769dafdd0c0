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
	for _, c := range NewCmdRoot(f, nil).Commands() {
		full[c.Name()] = c.Short
	}
	core := map[string]string{}
	for _, c := range root.NewCmdCore(f, nil).Commands() {
		core[c.Name()] = c.Short
	}
	assert.Equal(t, full, core)

	stubs := map[string]bool{}
	for _, c := range dispatch.Commands {
		stubs[c.Name] = true
		assert.Equal(t, full[c.Name], c.Short, "dispatch.Commands' Short for %s", c.Name)
	}
	for _, c := range root.NewCmdCore(f, nil).Commands() {
		isStub := dispatch.Target(c.Root(), []string{c.Name()}) != nil
		assert.Equal(t, stubs[c.Name()], isStub, "%s", c.Name())
	}
}

// TestTopLevelCommands keeps the placeholders that stand in for unbuilt
// commands (help, completion of names) true to the commands they stand for,
// and checks that a command line builds the command it runs and nothing
// else.
func TestTopLevelCommands(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := factory.New(ios)
	for _, c := range Commands() {
		built := c.New(f)
		assert.Equal(t, c.Name, built.Name())
		assert.Equal(t, c.Short, built.Short, "root.LazyCommand %s's Short", c.Name)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "show", "1"}, "job"},
		{[]string{"--debug", "query", "-d", "db", "SELECT 1"}, "query"},
		{[]string{"help", "workflow"}, "workflow"},
		{[]string{"__complete", "param", "g"}, "param"},
		{[]string{"--help"}, ""},
		{[]string{"__complete", "j"}, ""},
		{[]string{"nope"}, ""},
	} {
		tree := NewCmdRoot(f, tc.args)
		var full []string
		for _, c := range tree.Commands() {
			if c.HasSubCommands() || c.Flags().HasFlags() {
				full = append(full, c.Name())
			}
		}
		if tc.want == "" {
			assert.Empty(t, full, "%q", tc.args)
		} else {
			assert.Equal(t, []string{tc.want}, full, "%q", tc.args)
		}
		assert.Len(t, tree.Commands(), len(Commands()), "every command is listed")
	}
}

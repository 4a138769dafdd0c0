// Package dispatch keeps the tdctl binary small. The commands that need the
// heavy parts — the workflow runner, the param stores (SQLite, pgx,
// go-redis), Kubernetes (client-go) and the TD API emulator — live in a
// second binary, tdctl-full, shipped beside tdctl in every release archive.
// tdctl lists them in its help as stubs and hands any command line that
// reaches one to tdctl-full unchanged, as git hands `git foo` to git-foo.
//
// Go runs every linked package's initialisers at start-up, whether the
// command uses them or not; linking those parts into tdctl made every
// `tdctl job num-records` start 2.7× slower than a bare cobra+viper
// program (bench/startup; the budget and the numbers: docs/design.md).
//
// tdctl-full is found, in order: at $TDCTL_FULL; beside the running tdctl
// (symlinks resolved); on $PATH. It holds every command, so it also works
// on its own.
package dispatch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/build"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
)

// Binary is the name of the companion binary (plus ".exe" on Windows).
const Binary = "tdctl-full"

// PathEnv names an explicit path to tdctl-full.
const PathEnv = "TDCTL_FULL"

// versionEnv tells tdctl-full which tdctl version handed it the command,
// so that it can warn when the two come from different releases.
const versionEnv = "TDCTL_DISPATCH_VERSION"

const annotation = "tdctl/dispatch"

// FullCommand is a command that lives in tdctl-full.
type FullCommand struct{ Name, Short string }

// Commands are the commands tdctl hands to tdctl-full. Their Short texts
// are the real commands' (a test in package cli keeps them equal).
var Commands = []FullCommand{
	{"demo", "Run the main job end to end with no account: query, num_records, export, params"},
	{"dev-server", "Serve a local TD API emulator to try tdctl without an account"},
	{"k8s", "Run scripts in Kubernetes pods with limits and the cloud metadata API blocked"},
	{"param", "Read and write the params workflows keep between runs (param_get> / param_set>)"},
	{"workflow", "Run digdag-style .dig workflows (td>, td_result_export>, param_get>, param_set>, sh>, echo>)"},
}

// Stubs returns one placeholder command per entry of Commands, for the
// tdctl tree: they show in help and completion; app.Run hands any command
// line that reaches one to tdctl-full before cobra runs it.
func Stubs() []*cobra.Command {
	var cmds []*cobra.Command
	for _, c := range Commands {
		cmds = append(cmds, &cobra.Command{
			Use:                c.Name,
			Short:              c.Short,
			Long:               c.Short + ".\n\nThis command is part of " + Binary + ", which tdctl runs for it.",
			Annotations:        map[string]string{annotation: "true"},
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return cmdutil.NewConfigError(fmt.Errorf("tdctl %s runs in %s: run it as '%s %s'", c.Name, Binary, Binary, c.Name))
			},
		})
	}
	return cmds
}

// Target returns the stub that the command line args reaches in root's
// tree — also through `help CMD` and shell completion (`__complete CMD
// ...`) — or nil when args name a command of root's own.
func Target(root *cobra.Command, args []string) *cobra.Command {
	c, _, err := root.Find(cmdutil.CommandWords(args))
	if err != nil {
		return nil
	}
	for ; c != nil; c = c.Parent() {
		if c.Annotations[annotation] != "" {
			return c
		}
	}
	return nil
}

// dispatched is set in a process that tdctl started (see CheckVersion).
var dispatched bool

// CheckVersion, called first thing by every tdctl binary, notices that tdctl
// handed this process its command line: it warns on w when the two binaries
// are from different releases, and removes the marker from the environment
// so that programs this process starts (a workflow's sh> tasks calling
// tdctl) do not inherit it.
func CheckVersion(w io.Writer, getenv func(string) string, unsetenv func(string) error) {
	v := getenv(versionEnv)
	if v == "" {
		return
	}
	dispatched = true
	_ = unsetenv(versionEnv)
	if v != build.Version {
		fmt.Fprintf(w, "warning: tdctl %s is running %s %s: install both from the same release\n", v, Binary, build.Version)
	}
}

// NotFoundError says that tdctl-full could not be found and how to install it.
type NotFoundError struct {
	Command string // the command that needs it
	Dir     string // where tdctl looked beside itself ("" if unknown)
}

func (e *NotFoundError) Error() string {
	where := "beside tdctl"
	if e.Dir != "" {
		where += " (" + e.Dir + ")"
	}
	return fmt.Sprintf("tdctl %s runs in %s, which is not %s or on PATH: install both binaries from the same release archive, "+
		"or run 'go install github.com/tdctl/tdctl/cmd/...@latest'; set %s if it lives elsewhere",
		e.Command, Binary, where, PathEnv)
}

// Companion finds tdctl-full for command (named in the error).
func Companion(getenv func(string) string, command string) (string, error) {
	if p := getenv(PathEnv); p != "" {
		if !executable(p) {
			return "", cmdutil.NewConfigError(fmt.Errorf("%s=%s: not an executable file", PathEnv, p))
		}
		return p, nil
	}
	name := Binary
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	dir := ""
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir = filepath.Dir(exe)
		if p := filepath.Join(dir, name); executable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", cmdutil.NewConfigError(&NotFoundError{Command: command, Dir: dir})
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && (runtime.GOOS == "windows" || st.Mode().Perm()&0o111 != 0)
}

// execProcess runs path with args in place of this process where the OS
// allows it (exec_unix.go) and returns the exit code; tests replace it.
var execProcess = execve

// Exec runs tdctl-full with the command line args (unchanged) and returns
// its exit code. On Unix tdctl-full replaces this process, so signals,
// streams and the exit code are its own; elsewhere it runs as a child and
// Exec waits for it.
func Exec(ctx context.Context, f *factory.Factory, command string, args []string) int {
	path, err := Companion(f.Getenv, command)
	if err == nil && dispatched {
		err = cmdutil.NewConfigError(fmt.Errorf("%s (%s) handed %q back to tdctl: it is not the full binary; reinstall it", Binary, path, command))
	}
	if err != nil {
		fmt.Fprintln(f.IOStreams.ErrOut, err)
		return cmdutil.ExitUsage
	}
	env := append(os.Environ(), versionEnv+"="+build.Version)
	code, err := execProcess(ctx, path, args, env)
	if err != nil {
		fmt.Fprintf(f.IOStreams.ErrOut, "tdctl %s: run %s: %v\n", command, path, err)
		return cmdutil.ExitUsage
	}
	return code
}

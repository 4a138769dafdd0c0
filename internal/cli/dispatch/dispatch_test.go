package dispatch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/build"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
)

// tree is a root like tdctl's: global flags, a core command, the stubs.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "tdctl"}
	root.PersistentFlags().String("apikey", "", "")
	root.PersistentFlags().Bool("debug", false, "")
	job := &cobra.Command{Use: "job"}
	job.AddCommand(&cobra.Command{Use: "show", Run: func(*cobra.Command, []string) {}})
	root.AddCommand(job)
	root.AddCommand(Stubs()...)
	return root
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"workflow", "run", "x.dig"}, "workflow"},
		{[]string{"param"}, "param"},
		{[]string{"--debug", "k8s", "run", "--image", "i"}, "k8s"},
		{[]string{"--apikey", "1/k", "dev-server", "--addr", ":0"}, "dev-server"},
		{[]string{"--apikey=1/k", "demo"}, "demo"},
		{[]string{"help", "workflow"}, "workflow"},
		{[]string{"__complete", "param", "g"}, "param"},
		{[]string{"__completeNoDesc", "workflow", ""}, "workflow"},
		{[]string{"job", "show", "1"}, ""},
		{[]string{"--apikey", "workflow", "job", "show"}, ""}, // "workflow" is the flag's value
		{[]string{"__complete", "wor"}, ""},                   // tdctl completes the names itself
		{[]string{"help"}, ""},
		{[]string{"nope"}, ""},
		{nil, ""},
	} {
		got := ""
		if c := Target(tree(), tc.args); c != nil {
			got = c.Name()
		}
		assert.Equal(t, tc.want, got, "%q", tc.args)
	}
}

func TestExec(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "tdctl-full")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755))
	var gotPath string
	var gotArgs, gotEnv []string
	execProcess = func(_ context.Context, path string, args, env []string) (int, error) {
		gotPath, gotArgs, gotEnv = path, args, env
		return 3, nil
	}
	t.Cleanup(func() { execProcess = execve })

	ios, _, _, errOut := iostreams.Test()
	f := &factory.Factory{IOStreams: ios, Getenv: func(k string) string {
		if k == PathEnv {
			return fake
		}
		return ""
	}}
	args := []string{"--debug", "workflow", "run", "a b.dig"}
	assert.Equal(t, 3, Exec(context.Background(), f, "workflow", args), "tdctl-full's exit code")
	assert.Equal(t, fake, gotPath)
	assert.Equal(t, args, gotArgs, "the command line goes unchanged")
	assert.Contains(t, gotEnv, versionEnv+"="+build.Version)
	assert.Empty(t, errOut.String())
}

func TestCompanionNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ios, _, _, errOut := iostreams.Test()
	f := &factory.Factory{IOStreams: ios, Getenv: func(string) string { return "" }}
	execProcess = func(context.Context, string, []string, []string) (int, error) {
		t.Fatal("nothing may run")
		return 0, nil
	}
	t.Cleanup(func() { execProcess = execve })
	assert.Equal(t, 1, Exec(context.Background(), f, "param", []string{"param", "list"}))
	assert.Contains(t, errOut.String(), "tdctl param runs in tdctl-full, which is not beside tdctl (")
	assert.Contains(t, errOut.String(), "set TDCTL_FULL if it lives elsewhere")
}

func TestCompanionOnPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, Binary)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", dir)
	got, err := Companion(func(string) string { return "" }, "k8s")
	require.NoError(t, err)
	assert.Equal(t, p, got)

	// Not executable: not a candidate.
	require.NoError(t, os.Chmod(p, 0o644))
	_, err = Companion(func(string) string { return "" }, "k8s")
	var nf *NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "k8s", nf.Command)
}

func TestCheckVersion(t *testing.T) {
	t.Cleanup(func() { dispatched = false })
	env := map[string]string{versionEnv: "v0.0.1"}
	var w bytes.Buffer
	CheckVersion(&w, func(k string) string { return env[k] }, func(k string) error { delete(env, k); return nil })
	assert.Equal(t, "warning: tdctl v0.0.1 is running tdctl-full "+build.Version+": install both from the same release\n", w.String())
	assert.Empty(t, env, "the marker is not passed on")
	assert.True(t, dispatched)

	dispatched = false
	w.Reset()
	env[versionEnv] = build.Version
	CheckVersion(&w, func(k string) string { return env[k] }, func(k string) error { delete(env, k); return nil })
	assert.Empty(t, w.String(), "same release: no warning")

	dispatched = false
	CheckVersion(&w, func(string) string { return "" }, func(string) error { t.Fatal("not dispatched"); return nil })
	assert.False(t, dispatched)
}

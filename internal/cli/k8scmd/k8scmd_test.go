package k8scmd

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/k8sexec"
)

func TestCompleteValidates(t *testing.T) {
	o := &RunOptions{}
	require.ErrorContains(t, o.complete([]string{"echo"}), "--image is required")
	o = &RunOptions{Script: "echo hi"}
	o.Spec.Image = "alpine"
	require.ErrorContains(t, o.complete([]string{"echo"}), "not both")
	o = &RunOptions{Env: []string{"A=1", "B=x=y"}, SecretEnv: []string{"TD_API_KEY=td-secrets/apikey"}}
	o.Spec.Image = "alpine"
	require.NoError(t, o.complete([]string{"sh", "-c", "env"}))
	assert.Equal(t, []string{"sh", "-c", "env"}, o.Spec.Command)
	assert.Equal(t, map[string]string{"A": "1", "B": "x=y"}, o.Spec.Env)
	assert.Equal(t, k8sexec.SecretKeyRef{Name: "td-secrets", Key: "apikey"}, o.Spec.SecretEnv["TD_API_KEY"])
	o = &RunOptions{SecretEnv: []string{"K=nokey"}}
	o.Spec.Image = "alpine"
	require.ErrorContains(t, o.complete(nil), "NAME=SECRET/KEY")
}

// --run-as-user sets Spec.RunAsUser only when given: absent is nil (the
// default uid), 0 is root.
func TestRunAsUserFlag(t *testing.T) {
	parse := func(t *testing.T, args ...string) *k8sexec.Spec {
		t.Helper()
		ios, _, _, _ := iostreams.Test()
		var got *RunOptions
		cmd := newCmdRun(factory.New(ios), func(o *RunOptions) error { got = o; return nil })
		cmd.SetArgs(append([]string{"--image", "alpine"}, append(args, "--", "id", "-u")...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		require.NoError(t, cmd.Execute())
		require.NotNil(t, got)
		return &got.Spec
	}
	assert.Nil(t, parse(t).RunAsUser, "no flag: the default non-root uid")
	spec := parse(t, "--run-as-user", "0")
	require.NotNil(t, spec.RunAsUser)
	assert.Equal(t, int64(0), *spec.RunAsUser)
	spec = parse(t, "--run-as-user=1000")
	require.NotNil(t, spec.RunAsUser)
	assert.Equal(t, int64(1000), *spec.RunAsUser)

	err := specFlagError((&k8sexec.Spec{Image: "alpine", RunAsUser: spec.RunAsUser}).Validate())
	require.NoError(t, err)
	minus := int64(-1)
	err = specFlagError((&k8sexec.Spec{Image: "alpine", RunAsUser: &minus}).Validate())
	var fe *cmdutil.FlagError
	require.ErrorAs(t, err, &fe)
	assert.EqualError(t, err, "--run-as-user: -1 is negative; give a uid above 0, 0 to run as root, or leave it unset for 65532")
}

func TestMapErrorExitCodes(t *testing.T) {
	ctx := context.Background()
	assert.NoError(t, MapError(ctx, k8sexec.Result{ExitCode: 0}, nil))

	var se *ScriptExitError
	err := MapError(ctx, k8sexec.Result{ExitCode: 7}, &k8sexec.ExitError{})
	require.True(t, errors.As(err, &se))
	assert.Equal(t, 7, se.ExitCode(), "the script's own exit code")

	err = MapError(ctx, k8sexec.Result{ExitCode: 137, Reason: "Evicted"}, k8sexec.ErrEvicted)
	require.True(t, errors.As(err, &se))
	assert.Equal(t, 137, se.ExitCode())

	err = MapError(ctx, k8sexec.Result{ExitCode: -1}, k8sexec.ErrImagePull)
	require.True(t, errors.As(err, &se))
	assert.Equal(t, cmdutil.ExitAPI, se.ExitCode(), "the pod never ran")

	err = MapError(ctx, k8sexec.Result{ExitCode: -1}, k8sexec.ErrDeadlineExceeded)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, MapError(cctx, k8sexec.Result{ExitCode: -1}, context.Canceled), cmdutil.ErrCancel)
}

// A run that never created its pod (the cluster is unreachable) ends with
// the error alone: no "pod ns/name: failed (exit code -1)" line.
func TestRunUnreachableClusterPrintsNoPodLine(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: "t"}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]
current-context: x
`), 0o600))
	ios, _, _, errOut := iostreams.Test()
	o := &RunOptions{IO: ios, Ctx: context.Background(), Kubeconfig: kc,
		NewRunner: func(kubeconfig, kctx string) (*k8sexec.Runner, error) {
			return k8sexec.NewRunnerFromKubeconfig(kubeconfig, kctx)
		}}
	o.Spec.Image = "alpine"
	require.NoError(t, o.complete([]string{"true"}))
	err := runRun(o)
	var se *ScriptExitError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, cmdutil.ExitAPI, se.ExitCode())
	assert.NotContains(t, errOut.String(), "exit code -1")
	assert.NotContains(t, errOut.String(), "pod default/")
}

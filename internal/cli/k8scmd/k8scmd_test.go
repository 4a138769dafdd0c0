package k8scmd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
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

package kubeapiserver

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// isolate points every lookup at empty directories.
func isolate(t *testing.T) (cache string) {
	t.Helper()
	cache = t.TempDir()
	t.Setenv(EnvCacheDir, cache)
	t.Setenv(EnvKubeAPIServer, "")
	t.Setenv(EnvEtcd, "")
	t.Setenv("PATH", t.TempDir())
	return cache
}

func writeExe(t *testing.T, path string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	return path
}

func TestFindBinariesNothingInstalled(t *testing.T) {
	cache := isolate(t)
	_, err := FindBinaries()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNotFound), "want ErrNotFound, got %v", err)
	assert.Contains(t, err.Error(), "kube-apiserver "+KubernetesVersion)
	assert.Contains(t, err.Error(), "etcd (Debian package etcd-server)")
	assert.Contains(t, err.Error(), cache)
	assert.Contains(t, err.Error(), "bash .ci/k8s-e2e-setup.sh")
}

func TestFindBinariesOnlyEtcdMissing(t *testing.T) {
	cache := isolate(t)
	writeExe(t, filepath.Join(cache, "kube-apiserver-"+KubernetesVersion))
	_, err := FindBinaries()
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "etcd")
	assert.NotContains(t, err.Error(), "kube-apiserver "+KubernetesVersion+" and")
}

func TestFindBinariesOrder(t *testing.T) {
	cache := isolate(t)
	pathDir := t.TempDir()
	t.Setenv("PATH", pathDir)
	pathAPI := writeExe(t, filepath.Join(pathDir, "kube-apiserver"))
	pathEtcd := writeExe(t, filepath.Join(pathDir, "etcd"))

	b, err := FindBinaries()
	require.NoError(t, err)
	assert.Equal(t, Binaries{KubeAPIServer: pathAPI, Etcd: pathEtcd}, b, "PATH is the last resort")

	cacheAPI := writeExe(t, filepath.Join(cache, "kube-apiserver-"+KubernetesVersion))
	b, err = FindBinaries()
	require.NoError(t, err)
	assert.Equal(t, cacheAPI, b.KubeAPIServer, "the cache dir beats PATH")

	other := t.TempDir()
	fileAPI := writeExe(t, filepath.Join(other, "apiserver-from-env-file"))
	env := "# comment\nexport TDCTL_KUBE_APISERVER=" + fileAPI + "\nTDCTL_ETCD='" + pathEtcd + "'\n"
	require.NoError(t, os.WriteFile(filepath.Join(cache, "env"), []byte(env), 0o644))
	b, err = FindBinaries()
	require.NoError(t, err)
	assert.Equal(t, Binaries{KubeAPIServer: fileAPI, Etcd: pathEtcd}, b, "the env file beats the cache dir")

	envAPI := writeExe(t, filepath.Join(other, "apiserver-from-env"))
	t.Setenv(EnvKubeAPIServer, envAPI)
	b, err = FindBinaries()
	require.NoError(t, err)
	assert.Equal(t, envAPI, b.KubeAPIServer, "the variable beats everything")
}

func TestFindBinariesNamedButMissingIsAnError(t *testing.T) {
	isolate(t)
	t.Setenv(EnvEtcd, "/nonexistent/etcd")
	_, err := FindBinaries()
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrNotFound), "a wrong explicit path must fail, not skip: %v", err)
	assert.Contains(t, err.Error(), "$TDCTL_ETCD=/nonexistent/etcd")

	t.Setenv(EnvEtcd, t.TempDir())
	_, err = FindBinaries()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is a directory")
}

func TestFindBinariesStaleEnvFile(t *testing.T) {
	cache := isolate(t)
	require.NoError(t, os.WriteFile(filepath.Join(cache, "env"),
		[]byte("export TDCTL_KUBE_APISERVER=/gone/kube-apiserver\n"), 0o644))
	_, err := FindBinaries()
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrNotFound))
	assert.Contains(t, err.Error(), filepath.Join(cache, "env"))

	require.NoError(t, os.WriteFile(filepath.Join(cache, "env"), []byte("garbage\n"), 0o644))
	_, err = FindBinaries()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "want KEY=VALUE")
}

func TestStartSkipsWithoutBinaries(t *testing.T) {
	isolate(t)
	t.Setenv(EnvRequire, "")
	var skipped bool
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		StartCluster(t)
		t.Error("StartCluster returned without binaries")
	})
	assert.True(t, skipped, "StartCluster must skip when the binaries are missing")
}

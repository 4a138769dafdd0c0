package kubeapiserver

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// KubernetesVersion is the kube-apiserver version the harness is built for;
// it matches the client-go v0.37.2 that tdctl links.
const KubernetesVersion = "v1.37.2"

// Environment variables the harness reads.
const (
	// EnvKubeAPIServer names a kube-apiserver binary to use.
	EnvKubeAPIServer = "TDCTL_KUBE_APISERVER"
	// EnvEtcd names an etcd binary to use.
	EnvEtcd = "TDCTL_ETCD"
	// EnvCacheDir overrides the cache directory (default: the user cache
	// directory + "/tdctl-e2e", e.g. ~/.cache/tdctl-e2e).
	EnvCacheDir = "TDCTL_E2E_CACHE"
	// EnvRequire, when set to "1" or "true", makes missing binaries fail the
	// test instead of skipping it.
	EnvRequire = "TDCTL_K8S_E2E_REQUIRE"
)

// setupHint tells the reader how to get the binaries.
const setupHint = "run `bash .ci/k8s-e2e-setup.sh` from the repository root " +
	"(it installs Debian's etcd-server and builds kube-apiserver " + KubernetesVersion +
	" from the Go module proxy into the cache directory)"

// Binaries are the paths of the two programs a cluster needs.
type Binaries struct {
	KubeAPIServer string
	Etcd          string
}

// ErrNotFound is returned (wrapped) by FindBinaries when a binary is simply
// absent (the harness skips); any other error is a misconfiguration (the
// harness fails).
var ErrNotFound = errors.New("not found")

// CacheDir returns the directory where .ci/k8s-e2e-setup.sh puts the
// kube-apiserver build and its env file: $TDCTL_E2E_CACHE, else the user
// cache directory ($XDG_CACHE_HOME or ~/.cache) + "/tdctl-e2e".
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set %s or HOME): %w", EnvCacheDir, err)
	}
	return filepath.Join(base, "tdctl-e2e"), nil
}

// FindBinaries locates kube-apiserver and etcd, in this order: the
// environment variables TDCTL_KUBE_APISERVER / TDCTL_ETCD, the env file
// <cache dir>/env written by .ci/k8s-e2e-setup.sh, the cache directory
// itself (kube-apiserver-v1.37.2, etcd), then PATH. A path that is named
// explicitly (variable or env file) but is not an executable file is an
// error; a binary found nowhere is reported with errors.Is(err, ErrNotFound).
func FindBinaries() (Binaries, error) {
	cache, cacheErr := CacheDir()
	fileVars := map[string]string{}
	if cacheErr == nil {
		vars, err := readEnvFile(filepath.Join(cache, "env"))
		if err != nil {
			return Binaries{}, err
		}
		fileVars = vars
	}
	var b Binaries
	var missing []string
	for _, want := range []struct {
		dst                           *string
		env, cacheName, pathName, how string
	}{
		{&b.KubeAPIServer, EnvKubeAPIServer, "kube-apiserver-" + KubernetesVersion, "kube-apiserver",
			"kube-apiserver " + KubernetesVersion},
		{&b.Etcd, EnvEtcd, "etcd", "etcd", "etcd (Debian package etcd-server)"},
	} {
		p, err := findOne(want.env, fileVars[want.env], cache, want.cacheName, want.pathName)
		if errors.Is(err, ErrNotFound) {
			missing = append(missing, want.how)
			continue
		}
		if err != nil {
			return Binaries{}, err
		}
		*want.dst = p
	}
	if len(missing) > 0 {
		where := "$" + EnvKubeAPIServer + "/$" + EnvEtcd + ", "
		if cacheErr == nil {
			where += cache + ", "
		}
		return b, fmt.Errorf("%w: %s (looked in %sPATH); %s",
			ErrNotFound, strings.Join(missing, " and "), where, setupHint)
	}
	return b, nil
}

func findOne(envName, fileValue, cache, cacheName, pathName string) (string, error) {
	if p := os.Getenv(envName); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %w; unset it or %s", envName, p, err, setupHint)
		}
		return p, nil
	}
	if fileValue != "" {
		if err := checkExecutable(fileValue); err != nil {
			return "", fmt.Errorf("%s=%s in %s: %w; %s", envName, fileValue,
				filepath.Join(cache, "env"), err, setupHint)
		}
		return fileValue, nil
	}
	if cache != "" {
		p := filepath.Join(cache, cacheName)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(pathName); err == nil {
		return p, nil
	}
	return "", ErrNotFound
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory, not a program")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("is not executable")
	}
	return nil
}

// readEnvFile reads KEY=VALUE lines (optionally prefixed with "export ",
// values optionally single- or double-quoted); a missing file is no error.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE, got %q; delete the file and %s", path, n, line, setupHint)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars, sc.Err()
}

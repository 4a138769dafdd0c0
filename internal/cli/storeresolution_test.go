package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStoreResolutionIsOne: `param` and `workflow run` resolve the param
// store and site the same way — flag, environment, profile, default.
func TestStoreResolutionIsOne(t *testing.T) {
	e, _, _ := wfEnv(t)
	dir := t.TempDir()
	dig := filepath.Join(dir, "set.dig")
	require.NoError(t, os.WriteFile(dig, []byte("+s:\n  param_set>: {k: from_workflow}\n"), 0o644))
	envStore := "sqlite://" + filepath.Join(dir, "env.db")
	e.vars["TDCTL_PARAM_STORE"] = envStore

	t.Run("--site 0 beats TDCTL_SITE in workflow run as in param", func(t *testing.T) {
		e.vars["TDCTL_SITE"] = "5"
		defer delete(e.vars, "TDCTL_SITE")
		r := e.run("workflow", "run", dig, "--site", "0")
		require.Equal(t, 0, r.code, r.stderr)
		r = e.run("param", "get", "k", "--site", "0")
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "from_workflow\n", r.stdout)
		r = e.run("param", "get", "k")
		assert.Equal(t, 1, r.code, "site 5 (TDCTL_SITE) holds nothing: %s", r.stdout)
	})

	t.Run("a bad TDCTL_SITE is refused by both, with one message", func(t *testing.T) {
		e.vars["TDCTL_SITE"] = "3abc"
		defer delete(e.vars, "TDCTL_SITE")
		for _, args := range [][]string{{"workflow", "run", dig}, {"param", "get", "k"}} {
			r := e.run(args...)
			assert.Equal(t, 1, r.code, "%v", args)
			assert.Equal(t, `TDCTL_SITE="3abc" is not a site id: give an integer such as 0 (digdag's site_id)`+"\n", r.stderr, "%v", args)
		}
	})

	t.Run("a profile's param_store and site, below flags and environment", func(t *testing.T) {
		profStore := "sqlite://" + filepath.Join(dir, "profile.db")
		cfg := filepath.Join(e.vars["XDG_CONFIG_HOME"], "tdctl", "config.yaml")
		require.NoError(t, os.MkdirAll(filepath.Dir(cfg), 0o700))
		require.NoError(t, os.WriteFile(cfg, []byte("profiles:\n  default:\n    param_store: "+profStore+"\n    site: 7\n"), 0o600))
		defer os.Remove(cfg)
		delete(e.vars, "TDCTL_PARAM_STORE")
		defer func() { e.vars["TDCTL_PARAM_STORE"] = envStore }()

		r := e.run("workflow", "run", dig)
		require.Equal(t, 0, r.code, r.stderr)
		r = e.run("param", "get", "k", "--store", profStore, "--site", "7")
		assert.Equal(t, "from_workflow\n", r.stdout, r.stderr)
		r = e.run("param", "get", "k")
		assert.Equal(t, "from_workflow\n", r.stdout, "param reads the profile too: %s", r.stderr)

		e.vars["TDCTL_SITE"] = "8"
		r = e.run("param", "get", "k")
		delete(e.vars, "TDCTL_SITE")
		assert.Equal(t, 1, r.code, "the environment beats the profile")

		require.NoError(t, os.WriteFile(cfg, []byte("profiles:\n  default:\n    site: x7\n"), 0o600))
		r = e.run("workflow", "run", dig)
		assert.Equal(t, 1, r.code)
		assert.Equal(t, `site "x7" (`+cfg+` profile default) is not a site id: give an integer such as 0 (digdag's site_id)`+"\n", r.stderr)
	})
}

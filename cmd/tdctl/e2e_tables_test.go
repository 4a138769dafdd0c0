package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTableSwapExample runs examples/workflows/table_swap.dig as a user
// would: td_ddl>, td>, td_wait_table> and, from sh>, `tdctl table swap`
// against the dev-server, twice (a second run rebuilds and swaps again).
func TestTableSwapExample(t *testing.T) {
	bin := buildTdctl(t)
	base := startDevServer(t, bin)
	env := testEnv(t, bin, base)
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
		}
	}
	home := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	env = append(env, "TDCTL_RUNS_DIR="+filepath.Join(home, "runs"))
	dig, err := filepath.Abs("../../examples/workflows/table_swap.dig")
	require.NoError(t, err)
	for run := 0; run < 2; run++ {
		out, stderr, code := runBin(t, env, bin, "workflow", "run", dig)
		require.Equal(t, 0, code, "run %d:\n%s\n%s", run, out, stderr)
		// www_access has four status codes: the swapped-in table has a row each
		assert.Contains(t, out, "daily_codes has 4 rows", "run %d", run)
	}
	tables, _, code := runBin(t, env, bin, "table", "list", "swap_demo")
	require.Equal(t, 0, code)
	assert.Regexp(t, regexp.MustCompile(`(?m)^swap_demo\tdaily_codes\tlog\t4\t`), tables)
	assert.NotContains(t, tables, "daily_codes_staging", "the old version was dropped")
}

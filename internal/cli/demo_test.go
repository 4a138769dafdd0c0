package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's first command: the demo runs with no account and no
// configuration, and a second run reads the param the first stored.
func TestDemoRunsTwiceAndKeepsTheParam(t *testing.T) {
	home := t.TempDir()
	e := &env{t: t, home: home, ctx: t.Context(), vars: map[string]string{"XDG_CONFIG_HOME": filepath.Join(home, ".config")}}
	data := filepath.Join(t.TempDir(), "demo")

	r := e.run("demo", "--data", data)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stderr, "TD API emulator listening on http://127.0.0.1:")
	m := regexp.MustCompile(`\+demo\+show_num_records: job \d+ returned (\d+) rows \(previous run stored \[\]\)`).FindStringSubmatch(r.stdout)
	require.Len(t, m, 2, r.stdout)
	assert.Regexp(t, `(?m)^\+demo\+query\tsuccess\t`, r.stdout)
	files, _ := filepath.Glob(filepath.Join(data, "emulator", "s3", "demo_bucket", "exports", "*", "*.csv"))
	assert.Len(t, files, 1, "the connection export wrote a CSV file")
	_, err := os.Stat(filepath.Join(data, "params.db"))
	require.NoError(t, err, "params live in the embedded SQLite store")

	r = e.run("demo", "--data", data)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "(previous run stored ["+m[1]+"])", "the second run reads what the first stored")
}

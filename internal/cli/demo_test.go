package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
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

// Two demos on one --data directory would share the emulator's job ids: the
// second is refused with one line.
func TestDemoDataDirInUse(t *testing.T) {
	data := t.TempDir()
	held, err := emulator.New(emulator.Options{DataDir: filepath.Join(data, "emulator")})
	require.NoError(t, err)
	defer held.Close()
	e := newEnv(t, fast())
	r := e.run("demo", "--data", data)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Equal(t, "another tdctl demo is using "+data+": wait for it to end or pass another --data DIR\n", r.stderr)
}

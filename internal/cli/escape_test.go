package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// User data that holds control characters or bytes that are not UTF-8 is
// escaped wherever it is echoed (issue 20: `param list` printed a key
// holding ESC[31m raw, recolouring the terminal); JSON keeps it exact.
func TestEchoedDataIsEscaped(t *testing.T) {
	e := newEnv(t, fast())
	store := "sqlite://" + filepath.Join(t.TempDir(), "p.db")
	key := "k\x1b[31mred\u202e\a"
	r := e.run("param", "set", key, "v\x1b[2Jx", "--store", store)
	require.Equal(t, 0, r.code, r.stderr)

	for _, tty := range []bool{false, true} {
		e.tty = tty
		for _, f := range []string{"", "tsv", "csv", "table"} {
			args := []string{"param", "list", "--store", store}
			if f != "" {
				args = append(args, "-o", f)
			}
			r = e.run(args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.NotContains(t, r.stdout, "\x1b", "%v (tty %v): %q", args, tty, r.stdout)
			assert.NotContains(t, r.stdout, "\u202e", "%v", args)
			assert.NotContains(t, r.stdout, "\a", "%v", args)
			assert.Contains(t, r.stdout, `k\x1b[31mred\u202e\a`, "%v: the key, escaped", args)
			assert.Contains(t, r.stdout, `v\x1b[2Jx`, "%v: the value, escaped", args)
		}
	}
	e.tty = false
	r = e.run("param", "list", "--store", store, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"k\u001b[31mred`+"\u202e"+`\u0007"`, "JSON keeps the key exact (JSON-escaped)")

	// errors: the one line on stderr escapes what it echoes
	for _, args := range [][]string{
		{"param", "get", key + "y", "--store", store},
		{"param", "delete", key + "x", "--store", store},
		{"workflow", "logs", "\x1b[2Jrun"},
		{"job", "show", "1\x1b[2J"},
		{"query", "-d", "db\x1b[2J", "-T", "x\x1b[2J", "select 1"},
		{"param", "get", "k", "--store", "mysql://x\x1b[2J\xff"},
	} {
		r = e.run(args...)
		assert.NotEqual(t, 0, r.code, "%q", args)
		assert.NotContains(t, r.stderr, "\x1b", "%q: %q", args, r.stderr)
		assert.NotContains(t, r.stderr, "\xff", "%q: %q", args, r.stderr)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "%q: one line: %q", args, r.stderr)
	}
}

package workflow

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aliasBomb is a "billion laughs" .dig: levels anchors, each a list of nine
// aliases of the one before, so the last expands to 9^levels strings.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("_export:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		prev := "*l" + string(rune('0'+i-1))
		b.WriteString("  l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 8) + prev + "]\n")
	}
	b.WriteString("+t:\n  echo>: ${l0}\n")
	return b.String()
}

func TestRecursiveAliasIsRefused(t *testing.T) {
	for name, src := range map[string]string{
		"mapping":        "_export: &x {y: *x}\n+a:\n  echo>: hi\n",
		"list":           "+a:\n  echo>: hi\n  _export:\n    v: &l\n      - 1\n      - *l\n",
		"task in itself": "+a: &t\n  echo>: hi\n  +b: *t\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("r.dig", []byte(src))
			require.Error(t, err)
			assert.Regexp(t, `^r\.dig:\d+: YAML alias \*[a-z] is inside the value of its own anchor &[a-z] \(line \d+\): a recursive alias has no end; write the value out$`, err.Error())
		})
	}
	_, err := Parse("r.dig", []byte("_export: &x {y: *x}\n+a:\n  echo>: hi\n"))
	assert.EqualError(t, err, "r.dig:1: YAML alias *x is inside the value of its own anchor &x (line 1): a recursive alias has no end; write the value out")
}

func TestAliasBombIsRefusedAtOnce(t *testing.T) {
	src := aliasBomb(9) // 9^10 strings once expanded, from under 600 bytes
	require.Less(t, len(src), 600)
	start := time.Now()
	_, err := Parse("bomb.dig", []byte(src))
	require.Error(t, err)
	assert.Regexp(t, `^bomb\.dig:\d+: YAML aliases add more than 100000 nodes to this document: write the values out or use fewer nested aliases$`, err.Error())
	assert.Less(t, time.Since(start), 2*time.Second)

	// nesting: two lists 6,000 deep as written (YAML allows 10,000), the
	// second holding an alias of the first
	deep := "_export:\n  a: &a " + strings.Repeat("[", 6000) + "1" + strings.Repeat("]", 6000) +
		"\n  b: " + strings.Repeat("[", 6000) + "*a" + strings.Repeat("]", 6000) + "\n+t:\n  echo>: hi\n"
	_, err = Parse("deep.dig", []byte(deep))
	require.Error(t, err)
	assert.Regexp(t, `^deep\.dig:\d+: YAML aliases nest this document deeper than 10000 levels`, err.Error())
}

func TestAliasesWithinLimitsStillWork(t *testing.T) {
	// four levels of the bomb: 9^5 = 59,049 strings, under MaxNodes
	wf := parse(t, aliasBomb(4))
	var out bytes.Buffer
	r := newRunner(t, &out)
	require.NoError(t, r.Check(wf))

	// a file big as written (no alias) is not refused: MaxNodes bounds what
	// aliases add
	big := "_export:\n  big: [" + strings.Repeat("1, ", 2*MaxNodes) + "1]\n+a:\n  echo>: hi\n"
	_, err := Parse("big.dig", []byte(big))
	require.NoError(t, err)

	wf = parse(t, "_export:\n  base: &base {database: db, engine: presto}\n  td: *base\n+a:\n  echo>: ${td.database} ${td.engine}\n+b:\n  echo>: ${base.database}\n")
	out.Reset()
	r = newRunner(t, &out)
	sum, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, StateSuccess, sum.State)
	assert.Equal(t, "+test+a: db presto\n+test+b: db\n", out.String())
}

func TestAliasedTaskAndDirectives(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, "_export: &env\n  who: world\n+a: &t\n  echo>: hello ${who}\n+b: *t\n+c:\n  _export: *env\n  echo>: bye ${who}\n")
	sum, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	assert.Equal(t, StateSuccess, sum.State)
	assert.Equal(t, "+test+a: hello world\n+test+b: hello world\n+test+c: bye world\n", out.String())
}

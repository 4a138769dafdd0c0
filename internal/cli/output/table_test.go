package output

import (
	"strings"
	"testing"

	"github.com/mattn/go-runewidth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/iostreams"
)

func renderTable(t *testing.T, width int, rows ...[]string) string {
	t.Helper()
	ios, _, out, _ := iostreams.Test()
	ios.SetTerminalWidth(width)
	p := &Printer{IO: ios, Format: FormatTable}
	tb := p.Table("id", "status", "query")
	for _, r := range rows {
		tb.Row(r...)
	}
	require.NoError(t, tb.Render())
	return out.String()
}

func TestTableTerminalAlignsByDisplayWidth(t *testing.T) {
	got := renderTable(t, 0,
		[]string{"1", "success", "select 1"},
		[]string{"22", "running", "SELECT '日本語' AS a"},
		[]string{"333", "", "multi\nline\tquery"},
	)
	assert.Equal(t, ""+
		"ID   STATUS   QUERY\n"+
		"1    success  select 1\n"+
		"22   running  SELECT '日本語' AS a\n"+
		"333           multi line query\n", got)
}

func TestTableTerminalFitsTheTerminalWidth(t *testing.T) {
	long := "SELECT 日本語のクエリ FROM www_access WHERE x = 1 AND a long tail"
	got := renderTable(t, 40, []string{"1", "success", long}, []string{"22", "running", "select 1"})
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		assert.LessOrEqual(t, runewidth.StringWidth(l), 40, "line %q", l)
		assert.Equal(t, strings.TrimRight(l, " "), l, "no trailing spaces")
	}
	// Only the widest column is cut, and the cut is marked.
	assert.True(t, strings.HasPrefix(lines[1], "1   success  SELECT 日本語"), lines[1])
	assert.True(t, strings.HasSuffix(lines[1], "…"), lines[1])
	assert.Equal(t, 40, runewidth.StringWidth(lines[1]))
	assert.Equal(t, "22  running  select 1", lines[2])
}

func TestTableTerminalNeverCutsBelowHeaders(t *testing.T) {
	got := renderTable(t, 5, []string{"1", "success", "select 1"})
	assert.Equal(t, ""+
		"ID  STATUS  QUERY\n"+
		"1   succe…  sele…\n", got)
}

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMELayoutMatchesTheTree: every path the README's Layout table
// names exists, and every top-level directory and every internal/ package
// has a row.
func TestREADMELayoutMatchesTheTree(t *testing.T) {
	const root = "../.."
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	readme := string(data)
	start := strings.Index(readme, "\n## Layout\n")
	require.NotEqual(t, -1, start, "README.md has a ## Layout section")
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end != -1 {
		section = section[:end+3]
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(first, -1) {
			p := strings.TrimSuffix(m[1], "/")
			listed[p] = true
			_, err := os.Stat(filepath.Join(root, p))
			assert.NoError(t, err, "the Layout table names %s", m[1])
		}
	}
	var want []string
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() && e.Name() != ".git" {
			want = append(want, e.Name())
		}
	}
	internal, err := os.ReadDir(filepath.Join(root, "internal"))
	require.NoError(t, err)
	for _, e := range internal {
		if e.IsDir() && e.Name() != "cli" {
			want = append(want, "internal/"+e.Name())
		}
	}
	for _, p := range want {
		found := listed[p]
		for l := range listed {
			found = found || strings.HasPrefix(l, p+"/")
		}
		assert.True(t, found, "README's Layout table has no row for %s/", p)
	}
}

package td

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A column type TD does not have is refused before anything is sent
// (`tdctl schema add db t a:nosuchtype` exited 0; found by review).
func TestParseColumnsTypes(t *testing.T) {
	for _, ok := range []string{"a:string", "a:LONG", "a:array<string>", "a:map<string, array<long>>", "a:boolean"} {
		_, err := ParseColumns([]string{ok})
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{"a:nosuchtype", "a:array<nope>", "a:map<string>", "a:array<string"} {
		_, err := ParseColumns([]string{bad})
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "unknown type", bad)
	}
}

package cmdutil

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":            "plain text",
		"tab\tand\nnewline":     "tab\tand\nnewline",
		"日本語 ｶﾅ, café, emoji 🙂": "日本語 ｶﾅ, café, emoji 🙂",
		"non\u00a0breaking":     "non\u00a0breaking",
		"\x1b[31mred\x1b[0m":    `\x1b[31mred\x1b[0m`,
		"123\r":                 `123\r`,
		"bell\a":                `bell\a`,
		"\xff\xfe":              `\xff\xfe`,
		"a\x00b":                `a\x00b`,
		"c1\u009b":              `c1\u009b`,
		"bidi\u202eevil":        `bidi\u202eevil`,
		"del\x7f":               `del\x7f`,
		`back\slash`:            `back\slash`,
	} {
		assert.Equal(t, want, Escape(in), "%q", in)
	}
}

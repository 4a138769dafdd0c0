package cmdutil

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape makes user data safe to echo on a terminal: every control
// character (ESC, CR, BEL, the C1 set, bidi overrides and other format
// characters) becomes its Go escape (\x1b, \r, \u202e) and every byte that
// is not UTF-8 becomes \xNN, as strconv.Quote writes them; everything
// else — text in any script, spaces, tabs and newlines — is left as it
// is, unquoted. Errors and listings pass user data through it, so a key
// holding "\x1b[31m" cannot recolour the terminal or hide text.
func Escape(s string) string {
	if strings.IndexFunc(s, needsEscape) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&0xf, 16))
		case needsEscape(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return r != '\n' && r != '\t' && !unicode.IsGraphic(r)
}

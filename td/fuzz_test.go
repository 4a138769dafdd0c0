package td

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRedact: for any URL with a password, the password never survives
// redaction, and redaction never panics.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"mysql://u:p@h/db/t", "td://1/abc@/db/t", "postgresql://a:b%40c@h:5432/d/t?mode=replace", "x", "TD1 key", `{"password":"x"}`} {
		f.Add(s, "s3cr3tpass")
	}
	f.Fuzz(func(t *testing.T, s, pw string) {
		_ = Redact(s)
		// any printable password without white space or quotes, as users
		// paste them (unescaped / and @ included)
		if len(pw) < 4 || strings.ContainsAny(pw, " \t\r\n\"'<>") || strings.Contains(pw, Mask) {
			return
		}
		for _, r := range pw {
			if r < 0x21 || r > 0x7e {
				return
			}
		}
		u := "postgresql://user:" + pw + "@host/db/table"
		if got := Redact("export to " + u + " failed"); strings.Contains(got, pw) {
			t.Fatalf("password survived: %q", got)
		}
	})
}

// FuzzErrorBody: any error body decodes without panicking.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"error":"x","message":"y"}`, `{"details":{"conflicts_with":12}}`, `not json`, `{"error":1}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseErrorBody(b)
		ParseSchema(string(b))
	})
}

// FuzzRows: arbitrary (possibly gzip) input never panics or hangs the row
// reader, and reading ends in EOF or an error.
func FuzzRows(f *testing.F) {
	f.Add(msgpackGz(f, [][]any{{int64(1), "a"}, {nil, 2.5}}))
	f.Add([]byte("\x1f\x8b\x08\x00garbage"))
	f.Add(gzipBytes(f, []byte{0x92, 0x01}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rr, err := NewRowReader(bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		defer rr.Close()
		for i := 0; i < 100000; i++ {
			if _, err := rr.Next(); err != nil {
				return
			}
		}
	})
}

package td

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The fast path of Redact changes nothing: on strings built from pieces
// of every pattern (and none), Redact gives what the patterns alone give.
func TestRedactFastPathIsExact(t *testing.T) {
	pieces := []string{"://", "%3A%2F%2F", "%3a", "%2f", "%40", "TD1 ", "td1\t", "Td", "1", "api", "_", "key", "KEY", "Apikey", "pass", "Word", "wd",
		"PWD", "Secret", "SECRET", "tok", "En", "access_key_id", "secret_access_key", "sslPassword", "=", ":", ": ", "\"", "'", "@", "/", " ", "x", "ab12",
		"${secret:", "}", "&", ";", ",", "s3", "postgres", "td", "user", "\n", "\t", "\u017f", "\u212a", "é"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for n := rng.IntN(12); n >= 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		if got, want := Redact(s), redactAll(s); got != want {
			t.Fatalf("Redact(%q) = %q, the patterns give %q", s, got, want)
		}
	}
	for _, s := range []string{"/tmp/runs/20261206T110504Z-10d590/tasks/0001-wf_a.log", "+wf+group_01+task_0042", "hello world"} {
		if mayHoldSecret(s) {
			t.Errorf("%q takes the slow path", s)
		}
	}
}

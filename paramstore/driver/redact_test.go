package driver

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSecretsAndScrub(t *testing.T) {
	for raw, want := range map[string][]string{
		"postgres://u:pw1@h/db":                     {"pw1"},
		"postgres://u:p%40ss@h/db":                  {"p@ss"},
		"postgres://u@h/db?password=qp":             {"qp"},
		"redis://:pw2@h:x/0":                        {"pw2"},
		"postgres://h:5432/db?application_name=a@b": nil,
	} {
		got := Secrets(raw)
		for _, w := range want {
			assert.Contains(t, got, w, raw)
			assert.NotContains(t, RedactURL(raw), w, raw)
		}
		if want == nil {
			assert.Empty(t, got, raw)
			assert.Equal(t, raw, RedactURL(raw))
		}
	}
	assert.Equal(t, "a xxxxx b xxxxx", Scrub("a p@ss b p%40ss", []string{"p@ss"}))
}

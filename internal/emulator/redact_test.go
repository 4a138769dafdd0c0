package emulator

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql://user:pa55@host:5432/db/t":             "postgresql://user:***@host:5432/db/t",
		"failed mysql://root:s3cr3t@db/x?ssl=true and more": "failed mysql://root:***@db/x?ssl=true and more",
		"td://1234/abcdef@/db/table":                        "td://***@/db/table",
		"host=h user=u password=hunter2 dbname=d":           "host=h user=u password=*** dbname=d",
		"td://@/db/table":                                   "td://@/db/table",
		"s3://AKIA:wJalr/XUtn@bucket/p":                     "s3://AKIA:***@bucket/p",
		"no secrets here: postgresql://user@host/db/t":      "no secrets here: postgresql://user@host/db/t",
	} {
		assert.Equal(t, want, redact(in), in)
	}
	assert.Equal(t, "msg *** and postgresql://u:***@h/d", scrub("msg hunter2 and postgresql://u:hunter2@h/d", "hunter2"))

	u, err := parseResultURL("td://1234/abcdef@/db/table?mode=replace")
	require.NoError(t, err)
	assert.Equal(t, "1234/abcdef", u.User.Username())
	assert.Equal(t, "/db/table", u.Path)
	assert.Equal(t, "replace", u.Query().Get("mode"))
	assert.NotContains(t, redactURL(u), "abcdef")
	pu, _ := url.Parse("postgresql://u:pw@h:1/d/t")
	assert.Equal(t, "postgresql://u:***@h:1/d/t", redactURL(pu))
}

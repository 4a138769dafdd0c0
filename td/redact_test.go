package td

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"mysql://user:s3cr3t@host/db/t":                      "mysql://user:***@host/db/t",
		"postgresql://u:p%40ss@h:5432/db/t?mode=replace":     "postgresql://u:***@h:5432/db/t?mode=replace",
		"td://1/abcdef@/db/table":                            "td://***@/db/table",
		"td://@/db/table":                                    "td://@/db/table",
		"Authorization: TD1 1/abcdef":                        "Authorization: TD1 ***",
		"host=h user=u password=hunter2 dbname=x":            "host=h user=u password=*** dbname=x",
		`{"password":"hunter2","bucket":"b"}`:                `{"password":"***","bucket":"b"}`,
		"https://api.treasuredata.com/v3/job/show/1":         "https://api.treasuredata.com/v3/job/show/1",
		"result=postgresql%3A%2F%2Fu%3Ahunter2%40h%2Fdb%2Ft": "result=postgresql%3A%2F%2Fu%3A***%40h%2Fdb%2Ft",
		"s3://AKIAXXX:secretkey@bucket/path":                 "s3://AKIAXXX:***@bucket/path",
		"no secrets here":                                    "no secrets here",
		"redis://:onlypass@127.0.0.1:6379/0":                 "redis://:***@127.0.0.1:6379/0",
	}
	for in, want := range cases {
		assert.Equal(t, want, Redact(in), in)
	}
	// idempotent
	assert.Equal(t, "mysql://user:***@host/db", Redact(Redact("mysql://user:pw@host/db")))
}

func TestRedactorMasksKnownKey(t *testing.T) {
	r := redactor{secrets: []string{"1/abcdefSECRET"}}
	assert.Equal(t, "key is ***", r.redact("key is 1/abcdefSECRET"))
}

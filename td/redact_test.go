package td

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

	// the key names and quotings found missing by review: secret_key=,
	// SecretAccessKey=, private_key, single quotes (a Python dict printed
	// by a script, a shell assignment)
	for in, want := range map[string]string{
		"secret_key=wJalrXUtnFEMI/K7MDENG":            "secret_key=***",
		"SecretAccessKey=wJalrXUtnFEMI/K7MDENG x":     "SecretAccessKey=*** x",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG": "AWS_SECRET_ACCESS_KEY=***",
		`{"secretKey": "abc def"}`:                    `{"secretKey": "***"}`,
		`{'password': 'hunter2', 'bucket': 'b'}`:      `{'password': '***', 'bucket': 'b'}`,
		`{'private_key':'-----BEGIN x'}`:              `{'private_key':'***'}`,
		`password='a b c' next`:                       `password='***' next`,
		`export PASSWORD='hunter2'`:                   `export PASSWORD='***'`,
		"private_key: \"k\"":                          "private_key: \"***\"",
		"${secret:pg.secret_key} stays a reference":   "${secret:pg.secret_key} stays a reference",
		"the secretary: bob":                          "the secretary: bob",
	} {
		assert.Equal(t, want, Redact(in), in)
	}
}

func TestRedactorMasksKnownKey(t *testing.T) {
	r := newRedactor("1/abcdefSECRET")
	assert.Equal(t, "key is ***", r.redact("key is 1/abcdefSECRET"))
	assert.Equal(t, "escaped ***", r.redact("escaped 1%2FabcdefSECRET"))
}

// Masking never eats words that are not secrets: "password: dial tcp" is
// prose (a Redis error read "password: *** tcp"), ${secret:NAME} a
// reference.
func TestRedactKeepsWords(t *testing.T) {
	for _, s := range []string{
		"check that Redis runs there and the URL's host, port and password: dial tcp 127.0.0.1:1: connect: connection refused",
		"secret: not set",
		"echo ${secret:td.apikey} and ${secret:db.password}",
		"the token: expired",
		"PWD=/home/u OLDPWD=/tmp", // environment lines sh> prints
	} {
		assert.Equal(t, s, Redact(s))
	}
	for in, want := range map[string]string{
		"password:hunter2 rest":      "password:*** rest",
		`password: "hunter2" rest`:   `password: "***" rest`,
		"password = hunter2 rest":    "password = *** rest",
		"x?apikey=abc&y=1":           "x?apikey=***&y=1",
		"secret:abc ${secret:n} end": "secret:*** ${secret:n} end",
		`password="a b c" rest`:      `password="***" rest`,
		`db_password: "x \" y" rest`: `db_password: "***" rest`,
		"PGPASSWORD=hunter2":         "PGPASSWORD=***",
		"MYSQL_PWD=hunter2":          "MYSQL_PWD=***",
		`{"pwd":"hunter2"}`:          `{"pwd":"***"}`,
		"Uid=u;Pwd=hunter2;":         "Uid=u;Pwd=***;",
	} {
		assert.Equal(t, want, Redact(in), in)
	}
}

// A password with a space or other characters net/url refuses, as
// written or percent-encoded, is found by URLSecrets and masked by value;
// RedactURL masks any password of a URL given alone.
func TestSecretsOddPasswords(t *testing.T) {
	for _, pw := range []string{"pa ss word", "pa%20ss", "p@ss/w?rd", "p\"q'uote", "日本語パス", "tab\there"} {
		u := "postgresql://user:" + pw + "@127.0.0.1:5432/db/t"
		got := URLSecrets(u)
		assert.Contains(t, got, pw, "%q", u)
		var s Secrets
		s.Add(got...)
		for _, text := range []string{
			"export to " + u + " failed",
			`form="result=\"` + u + `\""`,
			"query=" + url.QueryEscape(u),
			strconv.Quote(u),
		} {
			out := s.Redact(text)
			assert.NotContains(t, out, pw, "%q", text)
			if dec, err := url.PathUnescape(pw); err == nil {
				assert.NotContains(t, out, dec, "%q", text)
			}
		}
		assert.Equal(t, "postgresql://user:***@127.0.0.1:5432/db/t", RedactURL(u))
	}
	assert.Equal(t, "https://api.treasuredata.com/v3", RedactURL("https://api.treasuredata.com/v3"))
	assert.Equal(t, "td://***@/db/t", RedactURL("td://1/key with space@/db/t"))
	assert.Contains(t, URLSecrets("td://1/abcdef@/db/t"), "1/abcdef")
	assert.Contains(t, URLSecrets("mysql://h/db?password=hunter%202"), "hunter 2")
}

// WithSecrets shares a set with the client: values added after the
// client was made are masked in its errors too, and the client's API key
// joins the set.
func TestWithSecrets(t *testing.T) {
	var s Secrets
	c, err := NewClient("1/clientkeyXYZ", WithSecrets(&s))
	require.NoError(t, err)
	s.Add("later-secret-value")
	assert.Equal(t, "a *** b ***", c.Redact("a later-secret-value b 1/clientkeyXYZ"))
	assert.Equal(t, "key ***", s.Redact("key 1/clientkeyXYZ"))
	c.AddSecrets("added via client")
	assert.Equal(t, "x ***", s.Redact("x added%20via%20client"))
}

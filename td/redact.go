package td

import (
	"regexp"
	"strings"
	"sync"
)

// Mask replaces a secret in redacted text.
const Mask = "***"

// The patterns compile on first use, not at program start (every tdctl run
// would pay for them).
var rx = sync.OnceValue(func() *redactRegexps {
	return &redactRegexps{
		// scheme://user:password@host → scheme://user:***@host. The password
		// runs to the last @ of the token, so one holding / or @ (S3 secret
		// keys often hold /) is masked whole; the user may hold @ too.
		urlPassword: regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/"'<>]*):([^\s"'<>]*)@`),
		// the same, percent-encoded: scheme%3A%2F%2Fuser%3Apass%40host
		escURLPassword: regexp.MustCompile(`(?i)([A-Za-z][A-Za-z0-9+.\-]*%3A%2F%2F[^\s%/&]*)%3A([^\s&]*)%40`),
		// td://APIKEY@/db/table: the user part of a td URL is an API key.
		tdURLUser: regexp.MustCompile(`(?i)(td://)([^\s@"'<>]+)@`),
		// Authorization: TD1 <key>, and the bare "TD1 <key>" form.
		td1: regexp.MustCompile(`(?i)(TD1\s+)[^\s"',]+`),
		// apikey=..., password=..., secret=... in query strings, DSNs and forms.
		kvSecret: regexp.MustCompile(`(?i)((?:api_?key|apikey|password|passwd|pwd|secret|token|access_key_id|secret_access_key|sslpassword)\s*[=:]\s*"?)([^\s&;"',}]+)`),
		// JSON "password": "..." and friends.
		jsonSecret: regexp.MustCompile(`(?i)("(?:api_?key|apikey|password|passwd|secret|token|secret_access_key|access_key_id)"\s*:\s*")((?:[^"\\]|\\.)*)(")`),
	}
})

type redactRegexps struct {
	urlPassword, escURLPassword, tdURLUser, td1, kvSecret, jsonSecret *regexp.Regexp
}

// Redact masks secrets in s: passwords in URLs (scheme://user:pass@host),
// the API key in td:// result URLs (td://KEY@/db/table), "TD1 <key>"
// authorization values, and password/apikey/secret/token values in
// key=value or JSON form. It is the one redaction used by every error, log
// line and printer in tdctl.
func Redact(s string) string {
	if s == "" {
		return s
	}
	r := rx()
	s = r.tdURLUser.ReplaceAllString(s, "${1}"+Mask+"@")
	s = r.urlPassword.ReplaceAllStringFunc(s, func(m string) string {
		sub := r.urlPassword.FindStringSubmatch(m)
		if sub[2] == Mask {
			return m
		}
		return sub[1] + ":" + Mask + "@"
	})
	s = r.escURLPassword.ReplaceAllString(s, "${1}%3A"+Mask+"%40")
	s = r.td1.ReplaceAllString(s, "${1}"+Mask)
	s = r.jsonSecret.ReplaceAllString(s, "${1}"+Mask+"${3}")
	s = r.kvSecret.ReplaceAllString(s, "${1}"+Mask)
	return s
}

// redactor masks known secret values (such as the client's API key) wherever
// they appear, then applies Redact.
type redactor struct {
	secrets []string
}

func (r redactor) redact(s string) string {
	for _, sec := range r.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return Redact(s)
}

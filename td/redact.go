package td

import (
	"regexp"
	"strings"
)

// Mask replaces a secret in redacted text.
const Mask = "***"

var (
	// scheme://user:password@host → scheme://user:***@host
	urlPasswordRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@"'<>]*):([^\s@/"'<>]*)@`)
	// td://APIKEY@/db/table: the user part of a td URL is an API key.
	tdURLUserRe = regexp.MustCompile(`(?i)(td://)([^\s@"'<>]+)@`)
	// the same, percent-encoded: scheme%3A%2F%2Fuser%3Apass%40host
	escURLPasswordRe = regexp.MustCompile(`(?i)([A-Za-z][A-Za-z0-9+.\-]*%3A%2F%2F[^\s%@/&]*)%3A([^\s@/&]*?)%40`)
	// Authorization: TD1 <key>, and the bare "TD1 <key>" form.
	td1Re = regexp.MustCompile(`(?i)(TD1\s+)[^\s"',]+`)
	// apikey=..., password=..., secret=... in query strings, DSNs and forms.
	kvSecretRe = regexp.MustCompile(`(?i)((?:api_?key|apikey|password|passwd|pwd|secret|token|access_key_id|secret_access_key|sslpassword)\s*[=:]\s*"?)([^\s&;"',}]+)`)
	// JSON "password": "..." and friends.
	jsonSecretRe = regexp.MustCompile(`(?i)("(?:api_?key|apikey|password|passwd|secret|token|secret_access_key|access_key_id)"\s*:\s*")((?:[^"\\]|\\.)*)(")`)
)

// Redact masks secrets in s: passwords in URLs (scheme://user:pass@host),
// the API key in td:// result URLs (td://KEY@/db/table), "TD1 <key>"
// authorization values, and password/apikey/secret/token values in
// key=value or JSON form. It is the one redaction used by every error, log
// line and printer in tdctl.
func Redact(s string) string {
	if s == "" {
		return s
	}
	s = tdURLUserRe.ReplaceAllString(s, "${1}"+Mask+"@")
	s = urlPasswordRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := urlPasswordRe.FindStringSubmatch(m)
		if sub[2] == Mask {
			return m
		}
		return sub[1] + ":" + Mask + "@"
	})
	s = escURLPasswordRe.ReplaceAllString(s, "${1}%3A"+Mask+"%40")
	s = td1Re.ReplaceAllString(s, "${1}"+Mask)
	s = jsonSecretRe.ReplaceAllString(s, "${1}"+Mask+"${3}")
	s = kvSecretRe.ReplaceAllString(s, "${1}"+Mask)
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

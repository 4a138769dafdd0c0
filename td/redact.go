package td

import (
	"net/url"
	"regexp"
	"sort"
	"strconv"
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
		// apikey=..., password=..., secret=... in query strings, DSNs and
		// forms; "password:x" and `password: "x"` too, but not
		// "password: dial tcp ...": a colon followed by a space and a bare
		// word is prose ("check the host, port and password: dial tcp"),
		// and masking it ate words. ${secret:NAME} is a reference, kept.
		// "pwd" only after _ ; ? or & (MYSQL_PWD=, ;Pwd= in a DSN): PWD=
		// and OLDPWD= in an environment are directories.
		kvSecret: regexp.MustCompile(`(?i)(\$\{)?((?:` + kvKeys + `)(?:\s*=\s*["']?|:\s*["']|:))([^\s&;"',}]+)`),
		// The same keys with a double-quoted value: masked to the closing
		// quote, spaces and all (password="a b").
		kvQuoted: regexp.MustCompile(`(?i)(\$\{)?((?:` + kvKeys + `)\s*[=:]\s*")((?:[^"\\]|\\.)*)`),
		// The same keys with a single-quoted value (password='a b').
		kvSingle: regexp.MustCompile(`(?i)(\$\{)?((?:` + kvKeys + `)\s*[=:]\s*')((?:[^'\\]|\\.)*)`),
		// Python-style {'password': '...'} (a dict printed by a script).
		singleSecret: regexp.MustCompile(`(?i)('(?:` + jsonKeys + `)'\s*:\s*')((?:[^'\\]|\\.)*)(')`),
		// JSON "password": "..." and friends.
		jsonSecret: regexp.MustCompile(`(?i)("(?:` + jsonKeys + `)"\s*:\s*")((?:[^"\\]|\\.)*)(")`),
	}
})

type redactRegexps struct {
	urlPassword, escURLPassword, tdURLUser, td1, kvSecret, kvQuoted, kvSingle, jsonSecret, singleSecret *regexp.Regexp
}

// The key names whose values Redact masks. kvKeys: in key=value and
// key: "value" forms ("pwd" only after _ ; ? or &: PWD= and OLDPWD= in an
// environment are directories); secret covers secret_key, secretKey,
// SecretAccessKey and secret_access_key. jsonKeys: as quoted keys.
const (
	kvKeys   = `api_?key|apikey|password|passwd|[_;?&]pwd|secret(?:_?access)?(?:_?key)?|token|access_key_id|sslpassword|private_?key`
	jsonKeys = `api_?key|apikey|password|passwd|pwd|secret(?:_?access)?(?:_?key)?|token|access_key_id|sslpassword|private_?key`
)

// Redact masks secrets in s: passwords in URLs (scheme://user:pass@host),
// the API key in td:// result URLs (td://KEY@/db/table), "TD1 <key>"
// authorization values, and password/apikey/secret/token values in
// key=value or JSON form. It is the one redaction used by every error, log
// line and printer in tdctl.
func Redact(s string) string {
	if s == "" || !mayHoldSecret(s) {
		return s
	}
	return redactAll(s)
}

// redactAll applies every pattern of Redact.
func redactAll(s string) string {
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
	s = r.singleSecret.ReplaceAllString(s, "${1}"+Mask+"${3}")
	for _, re := range []*regexp.Regexp{r.kvQuoted, r.kvSingle, r.kvSecret} {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatch(m)
			if sub[1] != "" { // ${secret:NAME}
				return m
			}
			return sub[2] + Mask
		})
	}
	return s
}

// Secrets is a set of secret values masked wherever they appear, as
// written and in the forms they take inside URLs, query strings and quoted
// strings (percent- and backslash-escaped). A Client masks its API key and
// the values of the set given with WithSecrets or AddSecrets in every
// error, log line and job field it returns; a program can share one set
// between its clients and its own output. Values shorter than 4 bytes are
// ignored: masking them everywhere would eat ordinary words (Redact still
// masks them where their place shows them to be secrets, as in
// scheme://user:pw@host). The zero value is an empty set; it is safe for
// concurrent use.
type Secrets struct {
	mu   sync.RWMutex
	vals []string // every form, longest first
}

// Add adds secret values to the set.
func (s *Secrets) Add(vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range vals {
		if len(v) < 4 {
			continue
		}
		forms := []string{v, url.QueryEscape(v), url.PathEscape(v), strings.TrimPrefix(url.UserPassword("", v).String(), ":")}
		if q := strconv.Quote(v); len(q) > 2 {
			forms = append(forms, q[1:len(q)-1])
		}
		for _, f := range forms {
			if len(f) >= 4 && !contains(s.vals, f) {
				s.vals = append(s.vals, f)
				changed = true
			}
		}
	}
	if changed { // longest first, so a secret holding another is masked whole
		sort.SliceStable(s.vals, func(i, j int) bool { return len(s.vals[i]) > len(s.vals[j]) })
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Redact masks every value of the set in str, then applies the package's
// Redact. A nil set only applies Redact.
func (s *Secrets) Redact(str string) string {
	if s != nil && str != "" {
		s.mu.RLock()
		for _, v := range s.vals {
			str = strings.ReplaceAll(str, v, Mask)
		}
		s.mu.RUnlock()
	}
	return Redact(str)
}

// URLSecrets returns the secrets a URL carries: its password (as written
// and decoded), the API key of a td:// URL, and password= query values.
// It reads URLs that net/url refuses, too (a password holding a space or
// an unescaped /, ? or @), so that they can be masked by value.
func URLSecrets(raw string) []string {
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, v)
		if dec, err := url.PathUnescape(v); err == nil && dec != v {
			out = append(out, dec)
		}
	}
	if u, err := url.Parse(raw); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		if strings.EqualFold(u.Scheme, "td") && u.User != nil {
			add(u.User.Username())
		}
		for k, vs := range u.Query() {
			if strings.Contains(strings.ToLower(k), "password") || strings.EqualFold(k, "apikey") || strings.EqualFold(k, "secret") {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	for _, userinfo := range urlUserinfos(raw) {
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			add(pw)
			// a parser that ends the authority at the first / ? or #
			// reads the part before it as a port or host, and may echo it
			if i := strings.IndexAny(pw, "/?#"); i > 0 {
				add(pw[:i])
			}
		} else if strings.HasPrefix(strings.ToLower(raw), "td://") {
			add(userinfo)
		}
	}
	return out
}

// urlUserinfos returns the user[:password] of scheme://user:password@host
// read as text: everything up to the last @ before the query, and, when it
// differs, up to the last @ of all (a password may hold @, /, ? and #, and
// only the host after it tells where it ends).
func urlUserinfos(raw string) []string {
	i := strings.Index(raw, "://")
	if i <= 0 {
		return nil
	}
	rest := raw[i+3:]
	var out []string
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		if at := strings.LastIndex(rest[:j], "@"); at >= 0 {
			out = append(out, rest[:at])
		}
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 && (len(out) == 0 || out[0] != rest[:at]) {
		out = append(out, rest[:at])
	}
	return out
}

// RedactURL masks the password (or a td:// URL's API key) of one URL given
// alone — a configured endpoint, a store URL — whatever characters it
// holds, which Redact, made for URLs inside text, cannot know; then it
// applies Redact.
func RedactURL(raw string) string {
	if all := urlUserinfos(raw); len(all) > 0 {
		userinfo := all[len(all)-1] // the widest reading
		start := strings.Index(raw, "://") + 3
		masked := userinfo
		if user, _, ok := strings.Cut(userinfo, ":"); ok {
			masked = user + ":" + Mask
		} else if strings.HasPrefix(strings.ToLower(raw), "td://") && userinfo != "" {
			masked = Mask
		}
		raw = raw[:start] + masked + raw[start+len(userinfo):]
	}
	return Redact(raw)
}

// WithSecrets makes the client mask the values of s (those added later
// too) wherever it masks its API key: in errors, log lines and the job
// fields it returns. The client adds its API key to s. Use it to share
// one set between clients and the program's own output.
func WithSecrets(s *Secrets) Option {
	return func(c *Client) error {
		if s == nil {
			return nil
		}
		s.Add(c.red.s.snapshot()...)
		c.red.s = s
		return nil
	}
}

// AddSecrets adds values for the client to mask from now on, such as the
// ${secret:...} values a workflow puts in a query or a result URL's
// password; see Secrets.
func (c *Client) AddSecrets(vals ...string) { c.red.s.Add(vals...) }

func (s *Secrets) snapshot() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.vals...)
}

// redactor masks the client's secrets (its API key first of all) wherever
// they appear, then applies Redact. Copies (in errors) share the set.
type redactor struct {
	s *Secrets
}

func newRedactor(apiKey string) redactor {
	s := &Secrets{}
	s.Add(apiKey)
	return redactor{s: s}
}

func (r redactor) redact(s string) string { return r.s.Redact(s) }

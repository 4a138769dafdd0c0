package emulator

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
)

var (
	// scheme://user:password@ → scheme://user:***@
	reURLPassword = lazyRE(`([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^@\s]*@`)
	// td://APIKEY@ → td://***@
	reTDKey = lazyRE(`(?i)(td://)[^@\s]+@`)
	// password=... in DSNs
	reDSNPassword = lazyRE(`(?i)(password=)[^\s&]+`)
)

// redact hides passwords and API keys that may appear in s: URL passwords,
// the key of td://KEY@ URLs and password= DSN fields.
func redact(s string) string {
	s = reURLPassword().ReplaceAllString(s, "$1:***@")
	s = reTDKey().ReplaceAllString(s, "$1***@")
	s = reDSNPassword().ReplaceAllString(s, "$1***")
	return s
}

// redactURL renders u for a message, without its password (or, for td://,
// without its API key).
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	const mark = "REDACTEDxSECRET"
	c := *u
	if c.User != nil {
		if strings.EqualFold(c.Scheme, "td") {
			if c.User.Username() != "" {
				c.User = url.User(mark)
			}
		} else if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), mark)
		}
	}
	return strings.Replace(c.String(), mark, "***", 1)
}

// scrub removes secret from msg (a driver error may quote it) and redacts
// URL passwords.
func scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	return redact(msg)
}

// lazyRE compiles a pattern on first use: the emulator is linked into every
// tdctl binary (dev-server, demo), and every run would pay for compiling
// its patterns at start-up.
func lazyRE(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

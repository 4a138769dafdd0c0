package driver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Secrets returns the secrets a store URL carries: the password of its
// user info and any `password` query parameter. It works on URLs that do
// not parse, so that a parse error can still be scrubbed.
func Secrets(raw string) []string {
	var out []string
	if u, err := url.Parse(raw); err == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
		for _, p := range u.Query()["password"] {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	// Textual fallback, for URLs that do not parse:
	// scheme://user:PASSWORD@host..., user info ending at the last '@'
	// before the query.
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if j := strings.IndexAny(rest, "?#"); j >= 0 {
			rest = rest[:j]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 && c+1 < at {
				out = append(out, rest[c+1:at])
			}
		}
	}
	if i := strings.Index(raw, "password="); i >= 0 {
		p := raw[i+len("password="):]
		if j := strings.IndexAny(p, "&# "); j >= 0 {
			p = p[:j]
		}
		if p != "" {
			out = append(out, p)
			if dec, err := url.QueryUnescape(p); err == nil && dec != p {
				out = append(out, dec)
			}
		}
	}
	return out
}

// Scrub replaces every secret in s with "xxxxx".
func Scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
			if esc := url.QueryEscape(sec); esc != sec {
				s = strings.ReplaceAll(s, esc, "xxxxx")
			}
			if esc := url.PathEscape(sec); esc != sec {
				s = strings.ReplaceAll(s, esc, "xxxxx")
			}
		}
	}
	return s
}

// RedactURL returns raw with its secrets replaced by "xxxxx", for
// messages.
func RedactURL(raw string) string { return Scrub(raw, Secrets(raw)) }

// OpenError builds an error for a failed open: kind (ErrBadURL,
// ErrUnavailable, ErrSchema) for errors.Is, the message and, when given,
// the cause's text, all scrubbed of the URL's secrets. The cause itself is
// not kept in the chain (its text may hold a secret); a context error is.
func OpenError(kind error, rawURL string, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		msg += ": " + oneLine(cause.Error())
	}
	msg = Scrub(msg, Secrets(rawURL))
	e := &openError{msg: msg, kinds: []error{kind}}
	switch {
	case errors.Is(cause, context.Canceled):
		e.kinds = append(e.kinds, context.Canceled)
	case errors.Is(cause, context.DeadlineExceeded):
		e.kinds = append(e.kinds, context.DeadlineExceeded)
	}
	return e
}

// oneLine folds a multi-line driver error (pgx lists each address it
// tried on a line of its own) into one line, each distinct line once.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(parts, l) {
			parts = append(parts, strings.TrimSuffix(l, ":"))
		}
	}
	return strings.Join(parts, ": ")
}

type openError struct {
	msg   string
	kinds []error
}

func (e *openError) Error() string   { return e.msg }
func (e *openError) Unwrap() []error { return e.kinds }

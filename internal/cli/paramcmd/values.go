package paramcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tdctl/tdctl/paramstore"
)

// parseValue is VALUE as `param set` stores it: its JSON when it parses as
// JSON, otherwise (or with asString) the string itself.
func parseValue(s string, asString bool) json.RawMessage {
	if !asString {
		if t := bytes.TrimSpace([]byte(s)); len(t) > 0 && json.Valid(t) {
			return json.RawMessage(t)
		}
	}
	return paramstore.String(s)
}

// isString reports whether a JSON value is a string.
func isString(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '"'
}

// compact is a JSON value without insignificant whitespace.
func compact(raw json.RawMessage) (string, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", fmt.Errorf("%w: not a JSON value", paramstore.ErrInvalid)
	}
	return b.String(), nil
}

// kind names a value's JSON type for messages.
func kind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "empty"
	}
	switch t[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// sameValue reports whether two JSON values are the same param value:
// strings by content, other values by their compact text (as
// paramstore compares them).
func sameValue(a, b json.RawMessage) bool {
	if isString(a) != isString(b) {
		return false
	}
	if isString(a) {
		var x, y string
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && x == y
	}
	x, err1 := compact(a)
	y, err2 := compact(b)
	return err1 == nil && err2 == nil && x == y
}

// fmtTTL writes a lifetime the way people say it: 90d, 24h, 1h30m, 90s.
func fmtTTL(d time.Duration) string {
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

package k8sexec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SetParamPrefix starts an output line that sets params. A script prints
// either form on a line of its own (stdout or stderr):
//
//	::set-param key=value
//	::set-param {"key": "text", "count": 42, "tags": ["a", "b"]}
//
// The rules, the same for a local sh> and a pod (internal/operators uses
// this parser for both):
//   - The line is ours when, after optional leading spaces or tabs, it
//     starts with "::set-param" followed by a space. Any other line is
//     ordinary output, including "::set-parameter x=1" and
//     "::set-param\tx=1".
//   - Trailing spaces, tabs and a CR (CRLF output) are not part of the line.
//   - key=value: the key is everything before the first "=", the value
//     everything after it, both without surrounding spaces; the value is
//     kept as a string. Use the JSON form for a value with surrounding
//     spaces or a non-string type.
//   - {...}: one JSON object; every member is set, with its JSON type.
//     "::set-param {}" sets nothing.
//   - A key is non-empty and holds no space or control character.
//   - Anything else after "::set-param " (no "=", text after the object,
//     a bare "::set-param") is malformed: a *ParamError naming the line.
//
// A later line overrides an earlier one for the same key. The lines still
// appear in the log.
const SetParamPrefix = "::set-param "

// MaxSetParamLine is the longest output line read for ::set-param; a
// longer line is output only.
const MaxSetParamLine = 8 << 20

// ParamError is a ::set-param line that cannot be read. Run reports it
// after the pod succeeded, with the params of the other lines in Result.
type ParamError struct {
	Line   string // the line, cut to 200 bytes at a character boundary
	Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("bad ::set-param line %q: %s", e.Line, e.Reason)
}

// ParseSetParam reads one output line (with or without its newline). ok is
// false when the line is not a set-param line (see SetParamPrefix); err is
// a *ParamError when it is one but malformed. Values are JSON (a key=value
// value as a JSON string), ready for paramstore's Site.Set.
func ParseSetParam(line string) (params map[string]json.RawMessage, ok bool, err error) {
	line = strings.TrimRight(line, " \t\r\n")
	rest, found := strings.CutPrefix(strings.TrimLeft(line, " \t"), strings.TrimSpace(SetParamPrefix))
	if !found {
		return nil, false, nil
	}
	bad := func(reason string) (map[string]json.RawMessage, bool, error) {
		return nil, true, &ParamError{Line: truncate(line, 200), Reason: reason}
	}
	if rest == "" {
		return bad(`nothing to set: expected "::set-param key=value" or "::set-param {...}"`)
	}
	if rest[0] != ' ' {
		return nil, false, nil // e.g. "::set-parameter": not ours
	}
	rest = strings.TrimLeft(rest, " \t")
	if strings.HasPrefix(rest, "{") {
		var m map[string]json.RawMessage
		dec := json.NewDecoder(strings.NewReader(rest))
		if err := dec.Decode(&m); err != nil {
			return bad("not a JSON object: " + err.Error())
		}
		if dec.InputOffset() != int64(len(rest)) {
			return bad("text after the JSON object")
		}
		for k, v := range m {
			if reason := badKey(k); reason != "" {
				return bad(reason)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return bad(err.Error())
			}
			m[k] = buf.Bytes()
		}
		if m == nil { // "::set-param null" is not an object
			return bad("not a JSON object")
		}
		return m, true, nil
	}
	k, v, found := strings.Cut(rest, "=")
	k = strings.TrimRight(k, " \t")
	if !found {
		return bad(`expected "::set-param key=value" or "::set-param {...}"`)
	}
	if reason := badKey(k); reason != "" {
		return bad(reason)
	}
	raw, err := json.Marshal(strings.TrimLeft(v, " \t"))
	if err != nil {
		return bad(err.Error())
	}
	return map[string]json.RawMessage{k: raw}, true, nil
}

// badKey says what is wrong with a param name ("" when nothing).
func badKey(k string) string {
	if k == "" {
		return "empty key"
	}
	for _, r := range k {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("key %q holds a space or control character", truncate(k, 60))
		}
	}
	return ""
}

// truncate cuts s to at most n bytes at a character boundary, marking the
// cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

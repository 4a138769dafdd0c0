package k8sexec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// SetParamPrefix starts a log line that sets output params. A script prints
// either form on its own line (stdout or stderr):
//
//	::set-param key=value
//	::set-param {"key": "text", "count": 42, "tags": ["a", "b"]}
//
// In the key=value form the value is everything after the first "=", kept
// as a string (surrounding spaces of the key are trimmed, the value is kept
// as printed). The JSON form sets every member of one object and keeps the
// JSON types. Values come back in Result.Params as JSON (a string value as
// a JSON string), ready for paramstore's Site.Set. A later line overrides an
// earlier one for the same key. Leading spaces before "::set-param" are
// ignored; the lines still appear in the log.
const SetParamPrefix = "::set-param "

// ParamError is a ::set-param line that cannot be read. Run reports it
// after the pod succeeded, with the params of the other lines in Result.
type ParamError struct {
	Line   string
	Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("bad ::set-param line %q: %s", truncate(e.Line, 200), e.Reason)
}

// ParseSetParam reads one log line. ok is false when the line is not a
// set-param line; err is a *ParamError when it is one but malformed.
func ParseSetParam(line string) (params map[string]json.RawMessage, ok bool, err error) {
	line = strings.TrimRight(line, "\r\n")
	rest, found := strings.CutPrefix(strings.TrimLeft(line, " \t"), strings.TrimSpace(SetParamPrefix))
	if !found {
		return nil, false, nil
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return nil, false, nil // e.g. "::set-parameter", not ours
	}
	rest = strings.TrimLeft(rest, " \t")
	if strings.HasPrefix(rest, "{") {
		var m map[string]json.RawMessage
		dec := json.NewDecoder(strings.NewReader(strings.TrimSpace(rest)))
		if err := dec.Decode(&m); err != nil {
			return nil, true, &ParamError{Line: line, Reason: "not a JSON object: " + err.Error()}
		}
		if dec.More() {
			return nil, true, &ParamError{Line: line, Reason: "text after the JSON object"}
		}
		if len(m) == 0 {
			return nil, true, &ParamError{Line: line, Reason: "the JSON object is empty"}
		}
		for k, v := range m {
			if strings.TrimSpace(k) == "" {
				return nil, true, &ParamError{Line: line, Reason: "empty key"}
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return nil, true, &ParamError{Line: line, Reason: err.Error()}
			}
			m[k] = buf.Bytes()
		}
		return m, true, nil
	}
	k, v, found := strings.Cut(rest, "=")
	k = strings.TrimSpace(k)
	if !found || k == "" {
		return nil, true, &ParamError{Line: line, Reason: `expected "::set-param key=value" or "::set-param {...}"`}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, true, &ParamError{Line: line, Reason: err.Error()}
	}
	return map[string]json.RawMessage{k: raw}, true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

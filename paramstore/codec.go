package paramstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tdctl/tdctl/paramstore/driver"
)

const columnPrefix = `{"value":`

// encode turns a JSON value into its stored form. Strings are written as
// digdag writes them (value_type 0, {"value":"..."} escaped as Jackson
// escapes); any other JSON value keeps its exact text (whitespace removed,
// numbers untouched) under value_type 2.
func encode(raw json.RawMessage) (driver.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return driver.Value{}, fmt.Errorf("%w: the value is empty; give a JSON value such as \"text\", 3 or {\"a\": 1}", ErrInvalid)
	}
	if !json.Valid(raw) {
		return driver.Value{}, fmt.Errorf("%w: the value is not valid JSON (a string needs double quotes: \"text\")", ErrInvalid)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return driver.Value{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return driver.Value{Type: driver.TypeString, Column: encodeStringColumn(s)}, nil
	}
	var b bytes.Buffer
	b.Grow(len(columnPrefix) + len(raw) + 1)
	b.WriteString(columnPrefix)
	if err := json.Compact(&b, raw); err != nil {
		return driver.Value{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	b.WriteByte('}')
	return driver.Value{Type: driver.TypeJSON, Column: b.String()}, nil
}

// encodeStringColumn is digdag's value column for a string.
func encodeStringColumn(s string) string {
	b := make([]byte, 0, len(columnPrefix)+len(s)+3)
	b = append(b, columnPrefix...)
	b = appendJacksonString(b, s)
	b = append(b, '}')
	return string(b)
}

const upperHex = "0123456789ABCDEF"

// appendJacksonString appends s as a JSON string the way Jackson's default
// ObjectMapper writes it (and so the way digdag writes params): only '"',
// '\\' and control characters are escaped; \b \t \n \f \r get short
// escapes, other control characters \u00XX with upper-case hex; everything
// else, including '<', '>', '&', '/', DEL and non-ASCII, is written as is.
// Invalid UTF-8 becomes U+FFFD.
func appendJacksonString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\uFFFD"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// errCorrupt is wrapped by decode errors: a stored value that is not in
// digdag's layout.
var errCorrupt = errors.New("stored value is not in digdag's layout")

// decode returns the JSON value of a stored param.
func decode(v driver.Value) (json.RawMessage, error) {
	switch v.Type {
	case driver.TypeString, driver.TypeJSON, driver.TypeDigdagArray:
	default:
		return nil, fmt.Errorf("%w: value_type %d is unknown (tdctl reads 0 = string, 1 and 2 = JSON)", ErrSchema, v.Type)
	}
	c := v.Column
	var inner []byte
	// Fast path: exactly {"value":X}, as digdag and tdctl write it.
	if len(c) > len(columnPrefix)+1 && c[:len(columnPrefix)] == columnPrefix && c[len(c)-1] == '}' {
		inner = []byte(c[len(columnPrefix) : len(c)-1])
		if len(inner) == 0 || isSpace(inner[0]) || isSpace(inner[len(inner)-1]) || !json.Valid(inner) {
			inner = nil
		}
	}
	if inner == nil {
		var w struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal([]byte(c), &w); err != nil || len(w.Value) == 0 {
			return nil, fmt.Errorf("%w: %w: want {\"value\": ...}, got %.60q", ErrSchema, errCorrupt, c)
		}
		inner = bytes.TrimSpace(w.Value)
	}
	if v.Type == driver.TypeString && inner[0] != '"' {
		return nil, fmt.Errorf("%w: %w: value_type 0 (string) holds %.60s", ErrSchema, errCorrupt, inner)
	}
	return json.RawMessage(inner), nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Text returns the text digdag (and tdctl's workflow runner) interpolates
// for a JSON value in ${...}: a string's content, a number's digits as
// stored, true/false, "" for null, and compact JSON for arrays and objects.
func Text(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || !json.Valid(v) {
		return "", fmt.Errorf("%w: not a JSON value", ErrInvalid)
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case 'n':
		return "", nil
	case '{', '[':
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	return string(v), nil
}

// String returns s as a JSON string value, for Set.
func String(s string) json.RawMessage {
	return json.RawMessage(appendJacksonString(nil, s))
}

// Int returns n as a JSON number value, for Set.
func Int(n int64) json.RawMessage {
	return json.RawMessage(strconv.AppendInt(nil, n, 10))
}

package paramstore

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore/driver"
)

// The value column must be byte-identical to what digdag's Jackson
// ObjectMapper writes for a HashMap{"value": s}.
func TestEncodeStringsAsJackson(t *testing.T) {
	for in, want := range map[string]string{
		"":                     `{"value":""}`,
		"2026-11-24T21:00:00Z": `{"value":"2026-11-24T21:00:00Z"}`,
		`a"b\c/d`:              `{"value":"a\"b\\c/d"}`,
		"\b\t\n\f\r":           `{"value":"\b\t\n\f\r"}`,
		"\x00\x01\x1f":         `{"value":"\u0000\u0001\u001F"}`,
		"\x7f<>&'":             "{\"value\":\"\x7f<>&'\"}",
		"é日本😀\u2028\u2029":     "{\"value\":\"é日本😀\u2028\u2029\"}",
		"bad\xffutf8":          "{\"value\":\"bad\uFFFDutf8\"}",
	} {
		raw := String(in)
		v, err := encode(raw)
		require.NoError(t, err, "%q", in)
		assert.Equal(t, driver.TypeString, v.Type)
		assert.Equal(t, want, v.Column, "%q", in)
		back, err := decode(v)
		require.NoError(t, err)
		var s string
		require.NoError(t, json.Unmarshal(back, &s))
		if in != "bad\xffutf8" {
			assert.Equal(t, in, s)
		}
	}
	// A string given with Go's escaping (\u003c) is stored as Jackson's.
	v, err := encode(json.RawMessage(`"\u003ca\u0026b\u003e"`))
	require.NoError(t, err)
	assert.Equal(t, `{"value":"<a&b>"}`, v.Column)
}

func TestEncodeJSON(t *testing.T) {
	v, err := encode(json.RawMessage(" {\"b\" : [1, 2.50, 1e400],\n \"a\": null} "))
	require.NoError(t, err)
	assert.Equal(t, driver.Value{Type: driver.TypeJSON, Column: `{"value":{"b":[1,2.50,1e400],"a":null}}`}, v)
	for _, bad := range []string{"", " ", "x", `"open`, "{", "1 2", "01"} {
		_, err := encode(json.RawMessage(bad))
		assert.ErrorIs(t, err, ErrInvalid, "%q", bad)
	}
}

func TestDecode(t *testing.T) {
	for col, want := range map[driver.Value]string{
		{Type: 0, Column: `{"value":"x"}`}:                  `"x"`,
		{Type: 0, Column: `{"value": "x"}`}:                 `"x"`,
		{Type: 0, Column: "{\n \"value\" : \"x\"\n}"}:       `"x"`,
		{Type: 2, Column: `{"value":{"a":1},"b":{}}`}:       `{"a":1}`,
		{Type: 1, Column: `{"value":[1,2]}`}:                `[1,2]`,
		{Type: 2, Column: `{"value":12345678901234567890}`}: `12345678901234567890`,
	} {
		got, err := decode(col)
		require.NoError(t, err, col.Column)
		assert.Equal(t, want, string(got))
	}
	for _, bad := range []driver.Value{
		{Type: 0, Column: `{"value":1}`},
		{Type: 0, Column: `"x"`},
		{Type: 0, Column: `{"other":"x"}`},
		{Type: 2, Column: `not json`},
		{Type: 3, Column: `{"value":"x"}`},
	} {
		_, err := decode(bad)
		assert.ErrorIs(t, err, ErrSchema, "%v", bad)
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		`"a\nb"`:                  "a\nb",
		`""`:                      "",
		`null`:                    "",
		`12345678901234567890.50`: "12345678901234567890.50",
		`true`:                    "true",
		` [1, "a"] `:              `[1,"a"]`,
		`{"k": {"x": 1}}`:         `{"k":{"x":1}}`,
	} {
		got, err := Text(json.RawMessage(in))
		require.NoError(t, err)
		assert.Equal(t, want, got, in)
	}
	_, err := Text(json.RawMessage(`nope`))
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, `-42`, string(Int(-42)))
}

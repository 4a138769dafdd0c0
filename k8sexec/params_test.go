package k8sexec_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/k8sexec"
)

func TestParseSetParam(t *testing.T) {
	cases := []struct {
		line   string
		ok     bool
		params map[string]string // key -> raw JSON
		err    string
	}{
		{line: "hello", ok: false},
		{line: "::set-parameter x=1", ok: false},
		{line: "echo ::set-param x=1", ok: false},
		{line: "::set-param last_executed_time=2026-11-24T21:00:00Z", ok: true, params: map[string]string{"last_executed_time": `"2026-11-24T21:00:00Z"`}},
		{line: "  ::set-param  key = a=b c  \r\n", ok: true, params: map[string]string{"key": `" a=b c  "`}},
		{line: "::set-param empty=", ok: true, params: map[string]string{"empty": `""`}},
		{line: `::set-param quote=say "hi"`, ok: true, params: map[string]string{"quote": `"say \"hi\""`}},
		{line: `::set-param {"n": 12345678901234567890, "s": "x", "b": false, "o": {"a": [1, 2]}, "z": null}`, ok: true,
			params: map[string]string{"n": "12345678901234567890", "s": `"x"`, "b": "false", "o": `{"a":[1,2]}`, "z": "null"}},
		{line: "::set-param {not json", ok: true, err: "not a JSON object"},
		{line: `::set-param {"a": 1} trailing`, ok: true, err: "text after the JSON object"},
		{line: `::set-param {}`, ok: true, err: "empty"},
		{line: `::set-param {" ": 1}`, ok: true, err: "empty key"},
		{line: `::set-param [1, 2]`, ok: true, err: "expected"},
		{line: "::set-param novalue", ok: true, err: `expected "::set-param key=value"`},
		{line: "::set-param =v", ok: true, err: "expected"},
		{line: "::set-param", ok: true, err: "expected"},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			got, ok, err := k8sexec.ParseSetParam(tc.line)
			assert.Equal(t, tc.ok, ok)
			if tc.err != "" {
				var pe *k8sexec.ParamError
				require.ErrorAs(t, err, &pe)
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			if tc.params == nil {
				assert.Nil(t, got)
				return
			}
			want := map[string]json.RawMessage{}
			for k, v := range tc.params {
				want[k] = json.RawMessage(v)
			}
			assert.Equal(t, want, got)
			for _, v := range got {
				assert.True(t, json.Valid(v), "%s is JSON, ready for paramstore", v)
			}
		})
	}
}

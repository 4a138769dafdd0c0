// Package setparamtest holds the table of ::set-param lines that both
// paths of sh> are tested with: a local script (internal/operators) and a
// pod's log (k8sexec). Both use k8sexec.ParseSetParam; the table makes sure
// no path adds rules of its own on the way (trimming, line splitting,
// turning values into params).
package setparamtest

import "strings"

// Case is one output line and what it must do.
type Case struct {
	Name string
	Line string // printed as one line (without its newline)
	// Ours is false for a line that is ordinary output.
	Ours bool
	// Params are the params set, as raw JSON by key (nil: none).
	Params map[string]string
	// Err, when set, is a part of the error: the line is malformed.
	Err string
}

// Cases is the table.
var Cases = []Case{
	{Name: "plain output", Line: "hello"},
	{Name: "longer word is not ours", Line: "::set-parameter x=1"},
	{Name: "no space after the prefix", Line: "::set-param=x"},
	{Name: "tab after the prefix is not ours", Line: "::set-param\tx=1"},
	{Name: "not at the start", Line: "echo ::set-param x=1"},
	{Name: "key=value", Line: "::set-param last_executed_time=2026-11-24T21:00:00Z", Ours: true,
		Params: map[string]string{"last_executed_time": `"2026-11-24T21:00:00Z"`}},
	{Name: "spaces around key and value, CR and trailing spaces dropped", Line: "  ::set-param  key = a=b c  \r", Ours: true,
		Params: map[string]string{"key": `"a=b c"`}},
	{Name: "trailing tab dropped", Line: "::set-param k=v\t", Ours: true, Params: map[string]string{"k": `"v"`}},
	{Name: "empty value", Line: "::set-param empty=", Ours: true, Params: map[string]string{"empty": `""`}},
	{Name: "quotes kept", Line: `::set-param quote=say "hi"`, Ours: true, Params: map[string]string{"quote": `"say \"hi\""`}},
	{Name: "a number stays a string", Line: "::set-param n=42", Ours: true, Params: map[string]string{"n": `"42"`}},
	{Name: "JSON keeps types", Line: `::set-param {"n": 12345678901234567890, "s": "x", "b": false, "o": {"a": [1, 2]}, "z": null}`, Ours: true,
		Params: map[string]string{"n": "12345678901234567890", "s": `"x"`, "b": "false", "o": `{"a":[1,2]}`, "z": "null"}},
	{Name: "JSON with trailing spaces and CR", Line: "::set-param {\"t\": \"x \"}  \r", Ours: true, Params: map[string]string{"t": `"x "`}},
	{Name: "empty object sets nothing", Line: "::set-param {}", Ours: true},
	{Name: "empty object with trailing space", Line: "::set-param {} ", Ours: true},
	{Name: "bad JSON", Line: "::set-param {not json", Ours: true, Err: "not a JSON object"},
	{Name: "text after the object", Line: `::set-param {"a": 1} trailing`, Ours: true, Err: "text after the JSON object"},
	{Name: "blank JSON key", Line: `::set-param {" ": 1}`, Ours: true, Err: "holds a space"},
	{Name: "JSON list", Line: `::set-param [1, 2]`, Ours: true, Err: "expected"},
	{Name: "no =", Line: "::set-param novalue", Ours: true, Err: `expected "::set-param key=value"`},
	{Name: "no key", Line: "::set-param =v", Ours: true, Err: "empty key"},
	{Name: "space in key", Line: "::set-param my key=v", Ours: true, Err: `key "my key" holds a space`},
	{Name: "bare prefix", Line: "::set-param", Ours: true, Err: "nothing to set"},
	{Name: "bare prefix and spaces", Line: "::set-param   ", Ours: true, Err: "nothing to set"},
	{Name: "long malformed line is cut in the error", Line: "::set-param " + strings.Repeat("é", 300), Ours: true, Err: "...\": expected"},
}

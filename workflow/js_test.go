package workflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func render(t *testing.T, s string, scope Scope) string {
	t.Helper()
	out, err := EvalString(s, scope)
	require.NoError(t, err, s)
	return out
}

// Cases of digdag-core's ConfigEvalEngineTest (basic.dig, literal.dig,
// template.dig and their _expected files), in our own words.
func TestTemplateRulesLikeDigdag(t *testing.T) {
	scope := Scope{"timezone": "UTC", "nested": map[string]any{"value": "v"}, "v1": []any{int64(1), int64(2), int64(3), int64(4), int64(5)}}
	for in, want := range map[string]string{
		// basic.dig
		"${timezone}":            "UTC",
		"${timezone}${timezone}": "UTCUTC",
		"${nested.value}":        "v",
		// literal.dig: values render as JSON unless strings; null and undefined as ""
		"${1}":         "1",
		"${0.2}":       "0.2",
		`${"a"}`:       "a",
		"${[1]}":       "[1]",
		"${undefined}": "",
		"${null}":      "",
		"x${}y":        "xy",
		// template.dig: $$ renders as $ in the text around expressions
		"$":              "$",
		"$$":             "$",
		"p$$s":           "p$s",
		"p${1}s":         "p1s",
		"p${1}m$$m${2}s": "p1m$m2s",
		"}":              "}",
		// braces are counted, so an object literal is one expression
		"${JSON.stringify({a: 1})}": `{"a":1}`,
		"${ {a: {b: 2}}.a.b }":      "2",
		// testStringInteroperability / testExtendedSyntax
		`${"aaa".replaceAll("a", "A")}`:            "AAA",
		"${v1.map(function(item){return item*5})}": "[5,10,15,20,25]",
		"${v1.length}": "5",
		// ${word:...} is left to operators (and to shell's ${var:-x})
		"echo ${home:-/tmp}": "echo ${home:-/tmp}",
		// undefinedField: a member nothing defines renders ""
		"${timezone.no_such_field}": "",
		"[${nested.nope}]":          "[]",
	} {
		assert.Equal(t, want, render(t, in, scope), in)
	}
}

// ConfigEvalEngineTest.undefinedVariable and undefinedFieldAccess.
func TestTemplateErrorsLikeDigdag(t *testing.T) {
	scope := Scope{"timezone": "UTC"}
	_, err := EvalString("${no_such_var}", scope)
	var me *MissingError
	require.True(t, errors.As(err, &me), "%v", err)
	assert.Equal(t, "no_such_var", me.Name)

	_, err = EvalString("${no_such_var + 1}", scope)
	require.ErrorContains(t, err, "ReferenceError")
	require.ErrorContains(t, err, "no_such_var")
	assert.NotContains(t, err.Error(), "-p", "an expression is never suggested as a -p name")

	_, err = EvalString("${timezone.no_such_field.invalid_access}", scope)
	require.ErrorContains(t, err, "TypeError")
	require.ErrorContains(t, err, "invalid_access")

	// digdag keeps an unclosed ${ as text; tdctl refuses it
	for _, s := range []string{"${", "${v", "p${v", "${secret:x", "a ${JSON.stringify({a: 1)}"} {
		_, err = EvalString(s, scope)
		require.ErrorContains(t, err, "unclosed ${", s)
	}
	_, err = EvalString("${1 +}", scope)
	require.ErrorContains(t, err, "SyntaxError")
}

func TestSecretsInsideTemplates(t *testing.T) {
	secrets := SecretMap{"td.apikey": "k3y-value"}
	var used []string
	v, err := interp("key=${secret:${name}}!", Scope{"name": "td.apikey"}, secrets, func(s string) { used = append(used, s) })
	require.NoError(t, err)
	assert.Equal(t, "key=k3y-value!", v)
	assert.Equal(t, []string{"k3y-value"}, used, "reported for masking")

	// a param whose value looks like a secret reference is not resolved
	v, err = interp("${x}", Scope{"x": "${secret:td.apikey}"}, secrets, nil)
	require.NoError(t, err)
	assert.Equal(t, "${secret:td.apikey}", v)
}

func TestTemplateTypesAndCopies(t *testing.T) {
	scope := Scope{"list": []any{"b", "a"}, "n": int64(9007199254740993), "m": map[string]any{"k": "v"}}
	v, err := interp("${list}", scope, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []any{"b", "a"}, v)
	v, err = interp("${n}", scope, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(9007199254740993), v, "a param keeps its exact value")
	v, err = interp("${[1, 'x', {y: 2}]}", scope, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []any{int64(1), "x", map[string]any{"y": int64(2)}}, v)
	v, err = interp("${list.sort().join(',')}", scope, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "a,b", v)
	assert.Equal(t, []any{"b", "a"}, scope["list"], "an expression never changes the params")
	v, err = interp("${m.k + '<&>'}", scope, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "v<&>", v)
	// a key holding a dotted name (-p td.database=x) is seen by JavaScript too
	assert.Equal(t, "X", render(t, "${td.database.toUpperCase()}", Scope{"td.database": "x"}))
}

func TestEngineIsReusedAcrossExpressions(t *testing.T) {
	e := NewEngine()
	for i := 0; i < 3; i++ {
		v, err := e.template("${n * 2}", Scope{"n": int64(i)}, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, int64(i*2), v)
	}
	assert.Len(t, e.fns, 1, "one compiled function for the expression")
}

func TestCheckParsesExpressions(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, `
+a:
  echo>: ${moment(session_time).add(1, 'days').format('YYYYMMDD')} ${Math.max(1, 2)}
+b:
  echo>: ${moment(nope).format()}
+c:
  echo>: ${1 +}
+d:
  echo>: ${unclosed
+e:
  echo>: ${[1, 2].map(function(x){ return x * k })}
+f:
  echo>: "${JSON.stringify({a: session_date})} ${home:-x}"
`)
	err := r.Check(wf)
	require.Error(t, err)
	msg := err.Error()
	assert.NotContains(t, msg, "+test+a")
	assert.NotContains(t, msg, "+test+f")
	assert.Contains(t, msg, "test.dig:5: +test+b: param ${nope} is not defined")
	assert.Contains(t, msg, "test.dig:7: +test+c: cannot evaluate ${1 +}: SyntaxError")
	assert.Contains(t, msg, "test.dig:9: +test+d: unclosed ${")
	assert.Contains(t, msg, "test.dig:11: +test+e: param ${k} is not defined")
	assert.NotContains(t, msg, "${x}")
	assert.NotContains(t, msg, "moment()=")
	assert.NotContains(t, msg, "-p moment")
}

func TestRunEvaluatesJavaScript(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, `
timezone: Asia/Tokyo
+loop:
  for_each>:
    i: [1, 2]
  _do:
    echo>: "${i * 10} ${moment(session_time).add(i, 'days').format('YYYY-MM-DD')} ${JSON.stringify({i: i})}"
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	// session 2026-11-25T21:00Z is 2026-11-26 06:00 in Tokyo
	assert.Contains(t, out.String(), `10 2026-11-27 {"i":1}`)
	assert.Contains(t, out.String(), `20 2026-11-28 {"i":2}`)
}

// Parallel iterations share the run's one engine.
func TestParallelTasksShareTheEngine(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, `
+loop:
  for_each>:
    i: [1, 2, 3, 4, 5, 6, 7, 8]
  _parallel: true
  _do:
    echo>: "n${[i, i * i].join('-')} ${moment(session_time).add(i, 'hours').format('HH')}"
`)
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	for i := 1; i <= 8; i++ {
		assert.Contains(t, out.String(), fmt.Sprintf("n%d-%d %02d\n", i, i*i, (21+i)%24))
	}
}

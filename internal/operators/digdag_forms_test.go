package operators

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
	_ "github.com/tdctl/tdctl/paramstore/pgstore"
	_ "github.com/tdctl/tdctl/paramstore/redisstore"
	"github.com/tdctl/tdctl/workflow"
)

// checkWorkflow parses and checks a workflow with ops, as `workflow check`
// does.
func checkWorkflow(t *testing.T, dig string, files map[string]string, ops map[string]workflow.Operator) error {
	t.Helper()
	dir := writeProject(t, "wf.dig", dig, files)
	wf, err := workflow.ParseFile(filepath.Join(dir, "wf.dig"))
	if err != nil {
		return err
	}
	return (&workflow.Runner{Operators: ops, RunsDir: filepath.Join(dir, "runs")}).Check(wf)
}

// writeProject writes a project directory: dig as name, files beside it.
func writeProject(t *testing.T, name, dig string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(dig), 0o644))
	return dir
}

// parseProject writes a project (writeProject) and parses its wf.dig.
func parseProject(t *testing.T, dig string, files map[string]string) (*workflow.Workflow, string) {
	t.Helper()
	dir := writeProject(t, "wf.dig", dig, files)
	wf, err := workflow.ParseFile(filepath.Join(dir, "wf.dig"))
	require.NoError(t, err)
	return wf, dir
}

// digdag's docs (operators/param_set.md, operators/param_get.md) write the
// keys beside the operator; tdctl's nested mapping stays. A key the store
// lacks gives "" (ParamGetOperatorFactory stores "" for an absent record).
func TestParamFormsBesideTheOperator(t *testing.T) {
	s := &mapStore{m: map[string]json.RawMessage{}}
	_, out, err := runWorkflow(t, `
+set:
  param_set>:
  key1: value1
  key2: ${session_date_compact}
+set_nested:
  param_set>:
    key3: value3
+get:
  param_get>:
  key1: p1
  key2: p2
  key3: p3
  never_set: missing
+show:
  echo>: p1=${p1} p3=${p3} missing=[${missing}] p2=${p2}
`, paramOps(s), nil)
	require.NoError(t, err)
	assert.Regexp(t, `\+wf\+show: p1=value1 p3=value3 missing=\[\] p2=\d{8}\n`, out)
	assert.JSONEq(t, `"value1"`, string(s.m["key1"]))
}

func TestParamFormsBesideTheOperatorDotted(t *testing.T) {
	s := &mapStore{m: map[string]json.RawMessage{"key1": json.RawMessage(`"v"`)}}
	_, out, err := runWorkflow(t, `
+get:
  param_get>:
  key1: p1
  never_set: missing
+show:
  echo>: p1=${p1} missing=[${missing}]
`, paramOps(s), nil)
	require.NoError(t, err)
	assert.Contains(t, out, "+wf+show: p1=v missing=[]\n")
}

func TestParamFormsErrorsAtCheckTime(t *testing.T) {
	s := &mapStore{m: map[string]json.RawMessage{}}
	err := checkWorkflow(t, "+a:\n  param_set>:\n", nil, paramOps(s))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "param_set> needs at least one key")
	err = checkWorkflow(t, "+a:\n  param_get>:\n    k: x\n  k: y\n", nil, paramOps(s))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "key k is given both beside param_get> and under it")
	// the beside form defines its values for later tasks
	require.NoError(t, checkWorkflow(t, "+a:\n  param_get>:\n  k: got\n+b:\n  echo>: ${got}\n", nil, paramOps(s)))
}

// typedStore is a mapStore that says whether it keeps typed values.
type typedStore struct {
	mapStore
	typed bool
}

func (s *typedStore) TypedValues() bool { return s.typed }

// ParamSetOperatorFactory reads each value "as String": a number is
// written as its text, a null key is skipped, a list is refused.
func TestParamSetWritesDigdagStringsWhereDigdagReads(t *testing.T) {
	s := &typedStore{mapStore: mapStore{m: map[string]json.RawMessage{}}}
	_, _, err := runWorkflow(t, `
_export:
  n: 3
+set:
  param_set>:
  count: ${n}
  flag: true
  ratio: 1.50
  nothing: null
`, paramOps(s), nil)
	require.NoError(t, err)
	assert.Equal(t, `"3"`, string(s.m["count"]))
	assert.Equal(t, `"true"`, string(s.m["flag"]))
	assert.Equal(t, `"1.5"`, string(s.m["ratio"]), "YAML 1.50 is a float: Jackson writes 1.5")
	_, has := s.m["nothing"]
	assert.False(t, has, "digdag skips a null value")

	_, _, err = runWorkflow(t, "+set:\n  param_set>:\n  tags: [a, b]\n", paramOps(s), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "param_set> tags: a list or mapping cannot be stored where digdag reads the store")

	s.typed = true
	_, _, err = runWorkflow(t, "+set:\n  param_set>:\n  count: 3\n  tags: [a, b]\n", paramOps(s), nil)
	require.NoError(t, err)
	assert.Equal(t, `3`, string(s.m["count"]))
	assert.JSONEq(t, `["a","b"]`, string(s.m["tags"]))
}

// Item 9 on the real stores: what param_set> writes on PostgreSQL and
// Redis is the row digdag's PostgresqlParamServerClient /
// RedisParamServerClient write (value_type 0, the value as a string).
func TestParamSetOnSharedStoresIsReadableByDigdag(t *testing.T) {
	dig := "+set:\n  param_set>:\n  n: 42\n  s: hello\n"
	run := func(t *testing.T, url string, site int32) {
		store, err := paramstore.Open(t.Context(), url)
		paramstoretest.RequireServer(t, "store", err)
		t.Cleanup(func() { store.Close() })
		st := store.Site(site)
		_, _, err = runWorkflow(t, dig, paramOps(st), nil)
		require.NoError(t, err)
	}
	t.Run("postgres", func(t *testing.T) {
		schema := paramstoretest.FreshSchema(t, "opforms_test_")
		u := paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema)
		run(t, u, 0)
		conn, err := pgx.Connect(t.Context(), u)
		require.NoError(t, err)
		defer conn.Close(t.Context())
		var value string
		var vt int
		require.NoError(t, conn.QueryRow(t.Context(), "select value, value_type from params where key = 'n' and site_id = 0").Scan(&value, &vt))
		assert.Equal(t, `{"value":"42"}`, value)
		assert.Equal(t, 0, vt, "digdag's ValueType.STRING")

		// values=json keeps the type (value_type 2, tdctl's own)
		run(t, paramstoretest.WithQuery(u, "values=json"), 1)
		require.NoError(t, conn.QueryRow(t.Context(), "select value, value_type from params where key = 'n' and site_id = 1").Scan(&value, &vt))
		assert.Equal(t, `{"value":42}`, value)
		assert.Equal(t, 2, vt)
	})
	t.Run("redis", func(t *testing.T) {
		c := paramstoretest.RedisClient(t)
		site := paramstoretest.FreshRedisSite(t, c)
		run(t, paramstoretest.RedisURL(), site)
		raw, err := c.Get(t.Context(), fmt.Sprintf("%d:n", site)).Result()
		require.NoError(t, err)
		var v struct {
			ValueType int `json:"value_type"`
			Value     struct {
				Value any `json:"value"`
			} `json:"value"`
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &v))
		assert.Equal(t, 0, v.ValueType)
		assert.Equal(t, "42", v.Value.Value)
	})
}

// digdag's examples/shell_envvar.dig with tasks/shell_envvar.sh: every
// param is in the script's environment; a param of another task is not.
// Non-strings are JSON (ShOperatorFactory: value.toString() of a non-text
// JSON node).
func TestShellParamsAreEnvironment(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tasks"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", "shell_envvar.sh"),
		[]byte("#!/bin/sh\necho \"param1=$param1\"\necho \"param2=$param2\"\necho \"exported_var=$exported_var\"\n"), 0o755))
	file := filepath.Join(dir, "shell_envvar.dig")
	require.NoError(t, os.WriteFile(file, []byte(`timezone: UTC

+simple:
  sh>: ./tasks/shell_envvar.sh
  param1: "this is param1"

+export_to_child_tasks:
  _export:
    exported_var: "this is exported by +export_to_child_tasks task"

  +child_task_1:
    sh>: ./tasks/shell_envvar.sh

+simple2:
  sh>: ./tasks/shell_envvar.sh
  param2: "this is param2"

+typed:
  _export:
    n: 3
    m: {a: 1, b: [x, "<y>"]}
    ok: true
    "with.dot": skipped
  sh>: echo "n=$n m=$m ok=$ok td=[$td] sd=$session_date env=$E"
  _env:
    E: from_env
`), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	var out strings.Builder
	r := &workflow.Runner{Operators: Operators(nil), RunsDir: filepath.Join(dir, "runs"), Output: &out,
		SessionTime: mustTime(t, "2016-01-02T03:04:05Z")}
	_, err = r.Run(context.Background(), wf)
	require.NoError(t, err)
	o := out.String()
	assert.Contains(t, o, "+shell_envvar+simple: param1=this is param1\n")
	assert.Contains(t, o, "+shell_envvar+simple: param2=\n")
	assert.Contains(t, o, "+shell_envvar+simple: exported_var=\n")
	assert.Contains(t, o, "+shell_envvar+export_to_child_tasks+child_task_1: exported_var=this is exported by +export_to_child_tasks task\n")
	assert.Contains(t, o, "+shell_envvar+export_to_child_tasks+child_task_1: param1=\n")
	assert.Contains(t, o, "+shell_envvar+simple2: param2=this is param2\n")
	assert.Contains(t, o, `+shell_envvar+typed: n=3 m={"a":1,"b":["x","<y>"]} ok=true td=[] sd=2016-01-02 env=from_env`+"\n")
}

// docker: runs the script in a pod (TestPodDocker*); its settings tdctl
// does not read are refused, and so is _secrets.
func TestUnimplementedDirectivesRefused(t *testing.T) {
	ops := Operators(nil)
	require.NoError(t, checkWorkflow(t, "_export:\n  docker:\n    image: python:3\n+a:\n  sh>: echo hi\n", nil, ops))
	err := checkWorkflow(t, "+a:\n  sh>: echo hi\n  docker:\n    image: python:3\n    build: [x]\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "docker: build is a digdag setting tdctl does not support")
	err = checkWorkflow(t, "+a:\n  sh>: echo hi\n  _secrets:\n    x: y\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "_secrets is a digdag directive tdctl does not support")
}

// Every operator reports the keys it does not use, at check time.
func TestUnknownOperatorKeysAtCheckTime(t *testing.T) {
	ops := Operators(nil)
	err := checkWorkflow(t, "+q:\n  td>:\n    data: SELECT 1\n  databse: wfdb\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown td> key databse (did you mean database?)")

	err = checkWorkflow(t, "+q:\n  td>:\n    data: SELECT 1\n  database: wfdb\n  endpoint: api.example.com\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "endpoint is a digdag td> setting tdctl does not support")

	err = checkWorkflow(t, "+e:\n  td_result_export>:\n  job_id: 1\n  result_conection: x\n  result_url: td://@/db/t\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did you mean result_connection?")

	err = checkWorkflow(t, "+e:\n  echo>: hi\n  colour: red\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown echo> key colour")

	// a key the task's own ${...} uses is a param, as in digdag: fine
	require.NoError(t, checkWorkflow(t, "+q:\n  td>: q.sql\n  database: wfdb\n  my_table: t1\n", map[string]string{"q.sql": "SELECT * FROM ${my_table}"}, ops))
	// sh>: every key is an environment variable
	require.NoError(t, checkWorkflow(t, "+s:\n  sh>: echo $param1\n  param1: x\n", nil, ops))
}

func mustTime(t *testing.T, s string) (tm time.Time) {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return tm
}

// CommandOperators.collectEnvironmentVariables: an _env key that is no
// variable name is an error; a misspelt directive names the closest one.
func TestEnvKeysAndDirectivesChecked(t *testing.T) {
	ops := Operators(nil)
	err := checkWorkflow(t, "+a:\n  sh>: echo hi\n  _env:\n    my-var: x\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `_env key "my-var" is not a valid environment variable name`)
	err = checkWorkflow(t, "+a:\n  sh>: echo hi\n  _exprot:\n    x: 1\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown directive _exprot (did you mean _export?)")
}

// digdag's ParamSetPostgresqlIT.setValueToPostgresql and
// ParamGetPostgresqlIT (fixtures acceptance/params/set.dig and get.dig),
// on tdctl's PostgreSQL store: param_set> writes the rows digdag writes,
// and param_get> reads the rows digdag inserts.
func TestParamSetGetPostgresqlLikeDigdagIT(t *testing.T) {
	schema := paramstoretest.FreshSchema(t, "opforms_it_")
	u := paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema)
	store, err := paramstore.Open(t.Context(), u)
	paramstoretest.RequireServer(t, "PostgreSQL", err)
	defer store.Close()
	ops := paramOps(store.Site(0))
	_, _, err = runWorkflow(t, "timezone: UTC\n\n+param_set_test:\n  param_set>:\n  key1: value1\n  key2: value2\n", ops, nil)
	require.NoError(t, err)
	conn, err := pgx.Connect(t.Context(), u)
	require.NoError(t, err)
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), "select key, value, value_type from params order by key")
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var k, v string
		var vt int
		require.NoError(t, rows.Scan(&k, &v, &vt))
		got = append(got, fmt.Sprintf("%s %s %d", k, v, vt))
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{`key1 {"value":"value1"} 0`, `key2 {"value":"value2"} 0`}, got)

	_, err = conn.Exec(t.Context(), `update params set value = '{"value": "from digdag"}' where key = 'key1'`)
	require.NoError(t, err)
	_, out, err := runWorkflow(t, "timezone: UTC\n\n+param_get_test:\n  param_get>:\n  key1: next_key1\n  key2: next_key2\n\n+show_stored_param:\n  echo>: ${next_key1} ${next_key2}\n", ops, nil)
	require.NoError(t, err)
	assert.Contains(t, out, "+wf+show_stored_param: from digdag value2\n")
}

// A param too big for one environment variable (store_last_results: all
// of many rows) is left out with a line in the log, instead of failing the
// exec with "argument list too long".
func TestShellHugeParamLeftOutOfEnvironment(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	_, out, err := runWorkflow(t, "+a:\n  sh>: echo \"small=$small big=[$big]\"\n  small: s\n  big: "+big+"\n", Operators(nil), nil)
	require.NoError(t, err)
	assert.Contains(t, out, "+wf+a: small=s big=[]\n")
	assert.Contains(t, out, "param big is not in the script's environment: its value is 204800 bytes")
}

// ShOperatorFactory: shell: [interpreter, args...] runs the script file
// with it (here bash, whose $BASH_VERSION plain sh lacks).
func TestShellShellSetting(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	_, out, err := runWorkflow(t, "+a:\n  sh>: 'echo \"bash=[$BASH_VERSION] $0\"'\n  shell: [bash, -e]\n+b:\n  sh>: echo \"[$BASH_VERSION]\"\n", Operators(nil), nil)
	require.NoError(t, err)
	assert.Regexp(t, `\+wf\+a: bash=\[\d[^\]]*\] \S*tdctl-sh-\d+\.sh\n`, out)
	assert.Contains(t, out, "+wf+b: []\n")
	err = checkWorkflow(t, "+a:\n  sh>: echo\n  shell: []\n", nil, Operators(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shell must be a list such as [bash]")
}

// digdag's ShIT.verifyEnvVars (fixture acceptance/sh/env.dig): _env takes
// exported params, -p params and secrets; -p params and _export are
// variables of their own too (a mapping as JSON).
func TestShellEnvLikeDigdagShIT(t *testing.T) {
	dir := t.TempDir()
	outfile := filepath.Join(dir, "out.txt")
	file := filepath.Join(dir, "workflow.dig")
	require.NoError(t, os.WriteFile(file, []byte(`_export:
  my_params:
    a: exported
    b: 1

+run:
  sh>: echo $VAR_A $VAR_B $VAR_C $VAR_D $VAR_E > $outfile; echo "$my_params" >> $outfile
  _env:
    VAR_A: ${my_params.a}
    VAR_B: ${my_params.b}
    VAR_C: ${cmd}
    VAR_D: ${secret:my_secrets.d}
    VAR_E: ${secret:my_secrets.e}
`), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	r := &workflow.Runner{Operators: Operators(nil), RunsDir: filepath.Join(dir, "runs"),
		Params:  map[string]any{"cmd": "command-line", "outfile": outfile},
		Secrets: workflow.SecretMap{"my_secrets.d": "secret-shared", "my_secrets.e": "secret-only"}}
	_, err = r.Run(context.Background(), wf)
	require.NoError(t, err)
	data, err := os.ReadFile(outfile)
	require.NoError(t, err)
	assert.Equal(t, "exported 1 command-line secret-shared secret-only\n"+`{"a":"exported","b":1}`+"\n", string(data))
}

// digdag operators tdctl lacks are named as such; a typo gets the closest.
func TestDigdagOperatorsTdctlLacks(t *testing.T) {
	err := checkWorkflow(t, "+a:\n  rb>: Tasks.step1\n", nil, Operators(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rb> is a digdag operator tdctl does not support")
	err = checkWorkflow(t, "+a:\n  eho>: hi\n", nil, Operators(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown operator eho> (did you mean echo>?)")
}

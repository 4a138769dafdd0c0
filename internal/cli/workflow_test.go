package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
)

const pgPassword = "pg-secret-Pa55word"

func examplesDir(t *testing.T) string {
	dir, err := filepath.Abs("../../examples/workflows")
	require.NoError(t, err)
	return dir
}

// storeURLs returns a fresh param store of each backend: SQLite in a temp
// dir, PostgreSQL in its own schema, Redis (isolate it with
// paramstoretest.FreshRedisSite).
func storeURLs(t *testing.T) map[string]string {
	t.Helper()
	schema := paramstoretest.FreshSchema(t, "tdctl_wf_")
	paramstoretest.RedisClient(t) // fails now when Redis is down
	return map[string]string{
		"sqlite":   "sqlite://" + filepath.Join(t.TempDir(), "params.db"),
		"postgres": paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema),
		"redis":    paramstoretest.RedisURL(),
	}
}

func wfEnv(t *testing.T) (*env, *emulator.Server, string) {
	data := t.TempDir()
	srv, base := emulator.NewTestServer(t, emulator.Options{DataDir: data})
	home := t.TempDir()
	e := &env{t: t, base: base, home: home, ctx: context.Background(), vars: map[string]string{
		"TD_API_KEY":      testKey,
		"TD_API_SERVER":   base,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
		"TDCTL_RUNS_DIR":  filepath.Join(home, "runs"),
	}}
	return e, srv, data
}

func TestWorkflowNumRecords(t *testing.T) {
	e, _, _ := wfEnv(t)
	r := e.run("workflow", "run", filepath.Join(examplesDir(t), "num_records.dig"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "+num_records+show_num_records: 1\n", "echo ${td.last_job.num_records} prints 1")
	assert.Regexp(t, `(?m)^\+num_records\+run\tsuccess\t\S+\t\d+\t1\t\S+\.log$`, r.stdout, "summary: task, state, duration, job id, num_records, log")

	// the per-task log view
	r = e.run("workflow", "logs", "--task", "+show_num_records")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "1\n", r.stdout)
	r = e.run("workflow", "logs", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var sum struct {
		State string `json:"state"`
		Tasks []struct {
			Task       string `json:"task"`
			NumRecords *int64 `json:"num_records"`
		} `json:"tasks"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum))
	assert.Equal(t, "success", sum.State)
	require.Len(t, sum.Tasks, 2)
	assert.EqualValues(t, 1, *sum.Tasks[0].NumRecords)
}

// TestWorkflowResultExportExample runs examples/workflows/result_export.dig
// (digdag's td_result_export> form: connection names + settings, so the
// file runs unchanged on digdag) and the seed's result_url form, a tdctl
// extension, to a td table and to the real PostgreSQL with secrets.
func TestWorkflowResultExportExample(t *testing.T) {
	e, srv, data := wfEnv(t)
	srv.AddConnection("my_s3_connection", "s3://", nil)
	srv.AddConnection("my_td_connection", "td://@/", nil)
	e.vars["TDCTL_SECRET_PG_USER"] = "postgres"
	e.vars["TDCTL_SECRET_PG_PASSWORD"] = pgPassword
	e.vars["TDCTL_SECRET_PG_HOST"] = "127.0.0.1:5432"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, paramstoretest.PostgresURL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	t.Cleanup(func() { // conn is closed by then: drop with a connection of its own
		c, err := pgx.Connect(context.Background(), paramstoretest.PostgresURL())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, err = c.Exec(context.Background(), "DROP TABLE IF EXISTS code_counts")
		assert.NoError(t, err)
	})

	r := e.run("workflow", "run", filepath.Join(examplesDir(t), "result_export.dig"), "--session-time", "2026-11-25T21:00:00Z", "--debug")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	// result_connection: my_td_connection with database/table/mode settings
	rows, _, err := srv.TableRows("sample_datasets", "code_counts")
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	// the connection + settings exports wrote CSV files under the data dir
	var files []string
	filepath.Walk(data, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".csv") && strings.Contains(p, "my_bucket") {
			files = append(files, p)
		}
		return nil
	})
	assert.Len(t, files, 2, "td> result_connection and td_result_export> result_connection: %v", files)
	var found bool
	for _, f := range files {
		found = found || strings.Contains(filepath.ToSlash(f), "/exports/20261125/")
	}
	assert.True(t, found, "settings path interpolated with session_date_compact: %v", files)

	// the seed's result_url form
	r = e.run("workflow", "run", filepath.Join("testdata", "seed_url", "result_export_url.dig"), "--debug")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, pgPassword)
	// td://${secret:td.apikey}@/${td.database}/code_counts_url landed in the emulator
	urlRows, _, err := srv.TableRows("sample_datasets", "code_counts_url")
	require.NoError(t, err)
	assert.Equal(t, rows, urlRows)
	// postgresql:// landed in the real PostgreSQL table, same row count
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM code_counts").Scan(&n))
	assert.Equal(t, len(rows), n)
	// no secret in any task log either
	logs := filepath.Join(e.home, "runs")
	filepath.Walk(logs, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			assert.NotContains(t, string(b), pgPassword, p)
			assert.NotContains(t, string(b), testKey, p)
		}
		return nil
	})
}

func TestWorkflowDailyParamsOnEveryStore(t *testing.T) {
	for backend, url := range storeURLs(t) {
		t.Run(backend, func(t *testing.T) {
			e, _, _ := wfEnv(t)
			site := fmt.Sprint(paramstoretest.FreshRedisSite(t, paramstoretest.RedisClient(t)))
			args := []string{"workflow", "run", filepath.Join(examplesDir(t), "daily_params.dig"), "--param-store", url, "--site", site}
			r := e.run(append(args, "--session-time", "2026-11-24T21:00:00Z")...)
			require.Equal(t, 0, r.code, r.stdout+r.stderr)
			assert.Contains(t, r.stdout, "first run: no previous execution recorded")

			r = e.run(append(args, "--session-time", "2026-11-25T21:00:00Z")...)
			require.Equal(t, 0, r.code, r.stdout+r.stderr)
			assert.Contains(t, r.stdout, "previous run was the session of 2026-11-24T21:00:00+00:00", "the second run reads what the first stored")

			// the stored value is digdag's string type
			s, err := paramstore.Open(context.Background(), url)
			require.NoError(t, err)
			defer s.Close()
			var id int32
			fmt.Sscan(site, &id)
			v, err := s.Site(id).Get(context.Background(), "last_executed_time")
			require.NoError(t, err)
			assert.Equal(t, `"2026-11-25T21:00:00+00:00"`, string(v))
		})
	}
}

func TestWorkflowParallelForEachOnEveryStore(t *testing.T) {
	for backend, url := range storeURLs(t) {
		t.Run(backend, func(t *testing.T) {
			e, _, _ := wfEnv(t)
			site := paramstoretest.FreshRedisSite(t, paramstoretest.RedisClient(t))
			s, err := paramstore.Open(context.Background(), url)
			require.NoError(t, err)
			vals := map[string]json.RawMessage{"key": paramstore.String("K")}
			for i := 1; i <= 5; i++ {
				vals[fmt.Sprintf("value%d", i)] = paramstore.String(fmt.Sprintf("stored-%d", i))
			}
			require.NoError(t, s.Site(site).SetMany(context.Background(), vals))
			s.Close()

			r := e.run("workflow", "run", filepath.Join(examplesDir(t), "parallel_params.dig"), "--param-store", url, "--site", fmt.Sprint(site))
			require.Equal(t, 0, r.code, r.stdout+r.stderr)
			var shown []string
			for _, l := range strings.Split(r.stdout, "\n") {
				if _, v, ok := strings.Cut(l, "+show_value: "); ok {
					shown = append(shown, v)
				}
			}
			sort.Strings(shown)
			assert.Equal(t, []string{"value1 sees K", "value2 sees K", "value3 sees K", "value4 sees K", "value5 sees K"}, shown)
		})
	}
}

// examples/shell_envvar.dig is digdag's example of the same name; its
// output is digdag's: each task's own keys and _export are in the script's
// environment, and nothing else's.
func TestWorkflowShellEnvvarExample(t *testing.T) {
	e, _, _ := wfEnv(t)
	r := e.run("workflow", "run", filepath.Join(examplesDir(t), "shell_envvar.dig"))
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	for _, want := range []string{
		"+shell_envvar+simple: param1=this is param1\n",
		"+shell_envvar+simple: param2=\n",
		"+shell_envvar+simple: exported_var=\n",
		"+shell_envvar+export_to_child_tasks+child_task_1: param1=\n",
		"+shell_envvar+export_to_child_tasks+child_task_1: exported_var=this is exported by +export_to_child_tasks task\n",
		"+shell_envvar+export_to_child_tasks+child_task_2: exported_var=this is exported by +export_to_child_tasks task\n",
		"+shell_envvar+simple2: param1=\n",
		"+shell_envvar+simple2: param2=this is param2\n",
		"+shell_envvar+simple2: exported_var=\n",
	} {
		assert.Contains(t, r.stdout, want)
	}
}

// examples/python.dig: py> methods with arguments from params, a stored
// param, generated parallel subtasks and what they store.
func TestWorkflowPythonExample(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	e, _, _ := wfEnv(t)
	r := e.run("workflow", "run", filepath.Join(examplesDir(t), "python.dig"))
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Regexp(t, `\+python\+count: hello: 3 rows on \d{4}-\d{2}-\d{2}\n`, r.stdout)
	for i := range 3 {
		assert.Contains(t, r.stdout, fmt.Sprintf("+python+fan_out^sub+subtask%d: batch %d\n", i, i))
	}
	assert.Contains(t, r.stdout, "+python+report: done: 3 batches, the last stored 2\n", "parallel stores merge in declaration order")
}

func TestWorkflowCheckAndFailureExitCodes(t *testing.T) {
	e, _, _ := wfEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.dig")
	require.NoError(t, os.WriteFile(bad, []byte("+a:\n  echo>: ${nope}\n+b:\n  mystery>: x\n"), 0o644))
	r := e.run("workflow", "check", bad)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "bad.dig:2: +bad+a: param ${nope} is not defined")
	assert.Contains(t, r.stderr, "bad.dig:4: +bad+b: unknown operator mystery>")

	failing := filepath.Join(dir, "failing.dig")
	require.NoError(t, os.WriteFile(failing, []byte("+q:\n  td>:\n    data: SELECT no_such_column FROM www_access\n  database: sample_datasets\n+after:\n  echo>: never\n"), 0o644))
	r = e.run("workflow", "run", failing)
	assert.Equal(t, 3, r.code, "a failed task exits like a failed job")
	assert.Contains(t, r.stderr, "workflow failed")
	assert.NotContains(t, r.stdout, "never")
	assert.Regexp(t, `(?m)^\+failing\+q\terror\t`, r.stdout)
}

// issue 13 item 10: after an sh> task, `workflow check` still reports an
// undefined name, as a warning naming the sh> task (exit 0); `workflow run`
// prints it once and fails at the task when the script did not set it.
func TestWorkflowCheckWarnsAfterScript(t *testing.T) {
	e, _, _ := wfEnv(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "s.dig")
	require.NoError(t, os.WriteFile(f, []byte("+s:\n  sh>: echo hi\n+use:\n  echo>: ${typo}\n"), 0o644))
	r := e.run("workflow", "check", f)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "warning: "+f+":4: +s+use: ${typo} is not defined by _export, -p or a task before this one; it must come from ::set-param of +s+s")
	r = e.run("workflow", "run", f)
	assert.Equal(t, 3, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "warning: "), r.stderr)
	assert.Contains(t, r.stderr, "param ${typo} is not defined")
}

// examples/workflows/pg_http.dig: pg> reads from the test PostgreSQL and
// http> posts the figure to a loopback webhook, the secret Authorization
// header never shown (not even with --debug).
func TestWorkflowExamplePgHTTP(t *testing.T) {
	e, _, _ := wfEnv(t)
	const auth = "Bearer hook-SECRET-token"
	e.vars["TDCTL_SECRET_HTTP_AUTHORIZATION"] = auth
	var gotBody, gotAuth string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotAuth = string(b), r.Header.Get("Authorization")
		io.WriteString(w, "ok")
	}))
	defer hook.Close()
	r := e.run("workflow", "run", filepath.Join(examplesDir(t), "pg_http.dig"), "--session-time", "2026-11-25", "-p", "webhook="+hook.URL, "--debug")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "+pg_http+show: posted 3 rows for 2026-11-25, HTTP 200 ok\n")
	assert.JSONEq(t, `{"day":"2026-11-25","rows":3}`, gotBody)
	assert.Equal(t, auth, gotAuth)
	assert.NotContains(t, r.stdout+r.stderr, "hook-SECRET-token")
}

// examples/workflows/control_flow.dig: _background, _check, loop>,
// for_range>, if> and call>, run through the CLI.
func TestWorkflowControlFlowExample(t *testing.T) {
	e, _, _ := wfEnv(t)
	r := e.run("workflow", "run", filepath.Join(examplesDir(t), "control_flow.dig"))
	require.Equal(t, 0, r.code, r.stderr)
	for _, line := range []string{
		"+control_flow+batches^sub+loop-1: batch 1 of 2\n",
		"+control_flow+ranges^sub+range-from=18&to=25: rows 18 to 25 (slice 2)\n",
		"+control_flow+size^sub: a small day\n",
		"+control_flow+report^sub+report: processed 25 rows in 2 batches\n",
	} {
		assert.Contains(t, r.stdout, line)
	}
	assert.NotContains(t, r.stdout, "batch 2 of 2")
	r = e.run("workflow", "check", filepath.Join(examplesDir(t), "control_flow.dig"))
	require.Equal(t, 0, r.code, r.stderr)
}

package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

const testKey = "4242/cli-test-secret-key"

// env is one test run's environment and terminal state.
type env struct {
	t       *testing.T
	base    string
	vars    map[string]string
	home    string
	tty     bool // stdout and stderr are terminals
	stdin   string
	ctx     context.Context
	outFile func(*iostreams.IOStreams)
}

type result struct {
	code           int
	stdout, stderr string
}

func newEnv(t *testing.T, opts emulator.Options) *env {
	t.Helper()
	_, base := emulator.NewTestServer(t, opts)
	home := t.TempDir()
	return &env{t: t, base: base, home: home, ctx: context.Background(), vars: map[string]string{
		"TD_API_KEY":      testKey,
		"TD_API_SERVER":   base,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
	}}
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(e.stdin)
	ios.SetStdoutTTY(e.tty)
	ios.SetStderrTTY(e.tty)
	if e.outFile != nil {
		e.outFile(ios)
	}
	f := factory.New(ios)
	f.Getenv = func(k string) string { return e.vars[k] }
	f.HomeDir = e.home
	f.RetryPolicy = &td.RetryPolicy{MaxRetries: 1, MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}
	code := Run(e.ctx, f, args)
	r := result{code: code, stdout: out.String(), stderr: errOut.String()}
	for _, s := range []string{r.stdout, r.stderr} {
		assert.NotContains(e.t, s, testKey, "the API key leaked: %v", args)
		assert.NotContains(e.t, s, "cli-test-secret", "the API key leaked: %v", args)
	}
	return r
}

// issue runs a query without waiting and returns its job id.
func (e *env) issue(sql string) string {
	e.t.Helper()
	r := e.run("query", "-d", "sample_datasets", sql)
	require.Equal(e.t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	require.Regexp(e.t, `^\d+$`, id)
	return id
}

func (e *env) waitOK(id string) {
	e.t.Helper()
	r := e.run("job", "wait", id, "--poll-interval", "20ms", "-o", "json")
	require.Equal(e.t, 0, r.code, r.stderr)
}

func fast() emulator.Options { return emulator.Options{RunningFor: 50 * time.Millisecond} }

func TestQueryWaitPrintsResult(t *testing.T) {
	e := newEnv(t, fast())
	// piped: tab-separated, no header; progress never drawn
	r := e.run("query", "-d", "sample_datasets", "-w", "--poll-interval", "20ms", "SELECT 1 AS a, 'x y' AS b")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "1\tx y\n", r.stdout)
	assert.Regexp(t, `job \d+ issued on sample_datasets \(presto\)`, r.stderr)
	assert.Contains(t, r.stderr, "success: 1 records")
	assert.NotContains(t, r.stderr, "\r", "no progress bar when stderr is not a terminal")

	// terminal: a table with the column names, and progress on stderr
	e.tty = true
	r = e.run("query", "-d", "sample_datasets", "-w", "--poll-interval", "20ms", "SELECT 1 AS a, 'x y' AS b")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^\s*A\s+B\s*$`, r.stdout)
	assert.Regexp(t, `(?m)^\s*1\s+x y\s*$`, r.stdout)
	assert.Contains(t, r.stderr, "job ", "progress drawn on a terminal stderr")

	// SQL from stdin, -f csv -c -o FILE
	e.tty = false
	e.stdin = "SELECT 1 AS a, 2 AS b"
	file := filepath.Join(t.TempDir(), "out.csv")
	r = e.run("query", "-d", "sample_datasets", "-w", "--poll-interval", "20ms", "-f", "csv", "-c", "-o", file, "-")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "a,b\n1,2\n", string(b))
}

func TestQueryFormats(t *testing.T) {
	e := newEnv(t, fast())
	id := e.issue("SELECT 1 AS a, 'q' AS b UNION ALL SELECT 2, NULL")
	e.waitOK(id)
	cases := map[string]string{
		"json":  "[\n{\"a\":1,\"b\":\"q\"},\n{\"a\":2,\"b\":null}\n]\n",
		"jsonl": "{\"a\":1,\"b\":\"q\"}\n{\"a\":2,\"b\":null}\n",
		"tsv":   "1\tq\n2\t\n",
		"csv":   "1,q\n2,\n",
	}
	for f, want := range cases {
		r := e.run("job", "result", id, "-f", f)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, want, r.stdout, f)
	}
	// msgpack.gz is the raw result: decodable by td.NewRowReader
	r := e.run("job", "result", id, "-f", "msgpack.gz")
	require.Equal(t, 0, r.code, r.stderr)
	rr, err := td.NewRowReader(strings.NewReader(r.stdout), nil)
	require.NoError(t, err)
	n := 0
	for _, err := range rr.All() {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 2, n)
	// ...but never onto a terminal
	e.tty = true
	r = e.run("job", "result", id, "-f", "msgpack.gz")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "refusing to write binary")
}

func TestQueryWithoutWait(t *testing.T) {
	e := newEnv(t, fast())
	e.tty = true
	r := e.run("query", "-d", "sample_datasets", "--domain-key", "k-1", "-P", "-2", "SELECT 1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `^Job \d+ issued\. Wait for it with: tdctl job wait \d+\n$`, r.stdout)
	// the same domain key answers with the first job
	r2 := e.run("query", "-d", "sample_datasets", "--domain-key", "k-1", "SELECT 1")
	require.Equal(t, 0, r2.code, r2.stderr)
	assert.Contains(t, r2.stdout, "already issued with this domain key")

	e.tty = false
	id := e.issue("SELECT 1")
	r = e.run("job", "show", id, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var j map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &j))
	for _, k := range []string{"job_id", "type", "database", "status", "query", "created_at", "num_records", "priority", "result"} {
		assert.Contains(t, j, k, "stable JSON field %s", k)
	}
	assert.Equal(t, id, j["job_id"])
}

func TestJobShowStatusListKill(t *testing.T) {
	e := newEnv(t, fast())
	id := e.issue("SELECT 1 AS a")
	e.waitOK(id)

	r := e.run("job", "status", id)
	assert.Equal(t, "success\n", r.stdout)
	r = e.run("job", "status", id, "-o", "json")
	assert.Contains(t, r.stdout, `"num_records": 1`)

	r = e.run("job", "show", id)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "job_id\t"+id+"\n")
	assert.Regexp(t, `created_at\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`, r.stdout, "RFC 3339 when piped")
	e.tty = true
	r = e.run("job", "show", id)
	assert.Regexp(t, `created_at:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`, r.stdout)
	assert.Regexp(t, `num_records:\s+1\n`, r.stdout)

	// list: a table with a header on a terminal, tsv without one when piped
	e.tty = false
	id2 := e.issue("SELECT 2")
	e.waitOK(id2)
	e.tty = true
	r = e.run("job", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^\s*JOB_ID\s+STATUS\s+TYPE`, r.stdout)
	e.tty = false
	r = e.run("job", "list", "--limit", "1")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 1)
	assert.True(t, strings.HasPrefix(lines[0], id2+"\tsuccess\tpresto\tsample_datasets\t"), lines[0])
	r = e.run("job", "list", "--limit", "0", "--page-size", "1", "-o", "json")
	var jobs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &jobs))
	assert.Len(t, jobs, 2, "pages of one walked to the end")
	r = e.run("job", "list", "-o", "csv", "--status", "success")
	assert.True(t, strings.HasPrefix(r.stdout, "job_id,status,type,database,created_at,duration,num_records,query\n"), r.stdout)

	// kill a long-running job
	slow := newEnv(t, emulator.Options{RunningFor: time.Hour})
	sid := slow.issue("SELECT 1")
	r = slow.run("job", "kill", sid, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"job_id": "`+sid+`"`)
	assert.Equal(t, "killed\n", slow.run("job", "status", sid).stdout)
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t, fast())
	slow := newEnv(t, emulator.Options{RunningFor: time.Hour})
	running := slow.issue("SELECT 1")

	bad := e.issue("SELECT * FROM no_such_table")
	r := e.run("job", "wait", bad, "--poll-interval", "20ms")
	assert.Equal(t, 3, r.code, "failed job")
	assert.Contains(t, r.stderr, "ended with status error")

	r = slow.run("job", "wait", running, "--poll-interval", "20ms", "--timeout", "100ms")
	assert.Equal(t, 4, r.code, "timeout: %s", r.stderr)

	r = slow.run("job", "num-records", running)
	assert.Equal(t, 5, r.code)
	assert.Contains(t, r.stderr, "has not finished yet (pass --wait to wait for it)")
	r = slow.run("job", "result", running)
	assert.Equal(t, 5, r.code)

	r = e.run("job", "show", "99999999")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "404")

	r = e.run("job", "show")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "see 'tdctl job show --help'")
	r = e.run("nope")
	assert.Equal(t, 1, r.code)

	// interrupted: the context ends mid-wait
	ctx, cancel := context.WithCancel(context.Background())
	slow.ctx = ctx
	time.AfterFunc(150*time.Millisecond, cancel)
	r = slow.run("job", "wait", running, "--poll-interval", "20ms")
	assert.Equal(t, 130, r.code, r.stderr)
	assert.Contains(t, r.stderr, "keeps running")
	slow.ctx = context.Background()
	assert.Equal(t, "running\n", slow.run("job", "status", running).stdout)

	ctx, cancel = context.WithCancel(context.Background())
	slow.ctx = ctx
	time.AfterFunc(150*time.Millisecond, cancel)
	r = slow.run("query", "-d", "sample_datasets", "-w", "--poll-interval", "20ms", "--kill-on-interrupt", "SELECT 2")
	assert.Equal(t, 130, r.code, r.stderr)
	assert.Regexp(t, `killed job \d+`, r.stderr)
	slow.ctx = context.Background()
}

func TestNumRecords(t *testing.T) {
	e := newEnv(t, fast())
	id := e.issue("SELECT 1 AS a UNION ALL SELECT 2 UNION ALL SELECT 3")
	r := e.run("job", "num-records", id, "--wait", "--poll-interval", "20ms")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "3\n", r.stdout, "just the number")
	r = e.run("job", "num-records", id)
	assert.Equal(t, "3\n", r.stdout)
}

func TestExport(t *testing.T) {
	e := newEnv(t, fast())
	srv, base := emulator.NewTestServer(t, fast())
	e.base = base
	e.vars["TD_API_SERVER"] = base
	id := e.issue("SELECT 1 AS a, 2 AS b")
	e.waitOK(id)

	connID := srv.AddConnection("my_td", "td://@/sample_datasets/via_conn", nil)
	require.NotZero(t, connID)
	r := e.run("job", "export", "--job-id", id, "--wait", "--poll-interval", "20ms", "-o", "json",
		"--result-url", "td://@/sample_datasets/via_url?mode=replace",
		"--connection", "my_td", "--settings", `{"mode":"replace"}`)
	require.Equal(t, 0, r.code, r.stderr)
	var outs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &outs))
	require.Len(t, outs, 2)
	for _, o := range outs {
		assert.Equal(t, "success", o["status"])
		assert.Regexp(t, `^\d+$`, o["export_job_id"])
	}
	assert.Equal(t, "connection my_td", outs[1]["target"])
	for _, table := range []string{"via_url", "via_conn"} {
		rows, _, err := srv.TableRows("sample_datasets", table)
		require.NoError(t, err, table)
		assert.Equal(t, [][]any{{int64(1), int64(2)}}, rows, table)
	}

	// without --wait: the export job ids, one per line
	r = e.run("job", "export", id, "--result-url", "td://@/sample_datasets/nowait")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `^\d+\tissued\ttd://@/sample_datasets/nowait\t\n$`, r.stdout)

	// an unknown connection: API error (2); the password of a URL never shows
	r = e.run("job", "export", id, "--wait", "--poll-interval", "20ms",
		"--connection", "nope", "--result-url", "td://@/sample_datasets/ok2")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "connection nope")
}

func TestSecretsNeverPrinted(t *testing.T) {
	e := newEnv(t, fast())
	const pw = "s3cr3t-pa55"
	url := "postgresql://etl:" + pw + "@127.0.0.1:1/test/t"
	r := e.run("--debug", "query", "-d", "sample_datasets", "-r", url, "-w", "--poll-interval", "20ms", "SELECT 1")
	assert.Contains(t, r.stderr, "td request", "--debug traces HTTP")
	for _, s := range []string{r.stdout, r.stderr} {
		assert.NotContains(t, s, pw)
	}
	id := e.issue("SELECT 1")
	e.waitOK(id)
	r = e.run("--debug", "job", "export", id, "--wait", "--poll-interval", "20ms", "--result-url", url)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "td request")
	for _, s := range []string{r.stdout, r.stderr} {
		assert.NotContains(t, s, pw)
	}
	r = e.run("--debug", "job", "show", id, "-o", "json")
	assert.NotContains(t, r.stderr, pw)
}

func TestAuthError(t *testing.T) {
	e := newEnv(t, emulator.Options{APIKeys: []string{"1/the-right-key"}})
	r := e.run("job", "list")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "401")
	assert.Contains(t, r.stderr, "check the API key")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)
}

func TestNoAPIKey(t *testing.T) {
	e := newEnv(t, fast())
	delete(e.vars, "TD_API_KEY")
	r := e.run("job", "list")
	assert.Equal(t, 1, r.code)
	assert.True(t, strings.HasPrefix(r.stderr, "no API key: set TD_API_KEY"), r.stderr)
	r = e.run("version")
	assert.Equal(t, 0, r.code, "version needs no configuration")
}

func TestConfigShow(t *testing.T) {
	e := newEnv(t, fast())
	require.NoError(t, os.MkdirAll(filepath.Join(e.home, ".td"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(e.home, ".td", "td.conf"),
		[]byte("[account]\n  user = u@example.com\n  apikey = 9/tdconf-secret\n"), 0o600))
	r := e.run("config", "show")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "apikey\t4242/***\tenv TD_API_KEY\n")
	assert.Contains(t, r.stdout, "endpoint\t"+e.base+"\tenv TD_API_SERVER\n")
	assert.Contains(t, r.stdout, "user\tu@example.com\t"+filepath.Join(e.home, ".td", "td.conf")+"\n")
	assert.Contains(t, r.stdout, "workflow_endpoint\t\tnot set: derived from endpoint\n")
	e.vars["TDCTL_WORKFLOW_ENDPOINT"] = "https://digdag.example.com"
	r = e.run("config", "show")
	assert.Contains(t, r.stdout, "workflow_endpoint\thttps://digdag.example.com\tenv TDCTL_WORKFLOW_ENDPOINT\n")
	delete(e.vars, "TDCTL_WORKFLOW_ENDPOINT")

	delete(e.vars, "TD_API_KEY")
	r = e.run("config", "show", "-o", "json")
	assert.Contains(t, r.stdout, `"value": "9/***"`)
	assert.NotContains(t, r.stdout, "tdconf-secret")
	e.tty = true
	r = e.run("config", "show")
	assert.Regexp(t, `(?m)^\s*KEY\s+VALUE\s+SOURCE`, r.stdout)

	r = e.run("--profile", "nope", "config", "show")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `profile "nope"`)
}

// epipeWriter fails like a stdout whose reader went away (| head).
type epipeWriter struct{}

func (epipeWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

func TestClosedPipeIsSuccess(t *testing.T) {
	e := newEnv(t, fast())
	id := e.issue("SELECT 1")
	e.waitOK(id)
	e.outFile = func(ios *iostreams.IOStreams) { ios.Out = epipeWriter{} }
	for _, args := range [][]string{{"job", "list"}, {"job", "show", id}, {"job", "result", id}, {"job", "list", "-o", "jsonl"}} {
		r := e.run(args...)
		assert.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
		assert.Empty(t, r.stderr, args)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	e := newEnv(t, fast())
	r := e.run("version")
	assert.Regexp(t, `^tdctl \S+ go1\.\d+`, r.stdout)
	r = e.run("--version")
	assert.Regexp(t, `^tdctl `, r.stdout)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r = e.run("completion", sh)
		assert.Equal(t, 0, r.code)
		assert.Contains(t, r.stdout, "tdctl", sh)
	}
	r = e.run("completion", "tcsh")
	assert.Equal(t, 1, r.code)
	r = e.run("--help")
	assert.Contains(t, r.stdout, "Exit codes:")
	assert.Contains(t, r.stdout, "130  interrupted")
}

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
)

func TestSchedCommands(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	sql := filepath.Join(t.TempDir(), "q.sql")
	require.NoError(t, os.WriteFile(sql, []byte("SELECT TD_SCHEDULED_TIME() AS t"), 0o600))

	r := e.run("sched", "create", "daily", "0 1 * * *", "-d", "sample_datasets", "-q", sql, "-P", "HIGH",
		"-r", "postgresql://u:hunter2@db.example.com/d/t", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var created map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
	assert.Equal(t, 1.0, created["priority"])
	assert.NotContains(t, r.stdout, "hunter2")

	r = e.run("sched", "create", "adhoc", "", "-d", "sample_datasets", "SELECT TD_SCHEDULED_TIME() AS t")
	require.Equal(t, 0, r.code, r.stderr)

	r = e.run("sched", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "daily\t0 1 * * *\tUTC\t")
	assert.NotContains(t, r.stdout, "hunter2")

	r = e.run("sched", "show", "daily")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "query\tSELECT TD_SCHEDULED_TIME() AS t")
	r = e.run("sched", "show", "nope")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `no saved query named "nope"`)

	r = e.run("sched", "update", "daily", "-s", "@hourly")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "cron\t@hourly")

	r = e.run("sched", "run", "adhoc", "2024-05-01")
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	require.Regexp(t, `^\d+$`, id)
	e.waitOK(id)
	r = e.run("job", "result", id, "-f", "csv")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "1714521600", "TD_SCHEDULED_TIME() is the run's time")

	r = e.run("sched", "run", "adhoc", "2024-05-02 00:00:00", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"scheduled_at": "2024-05-02T00:00:00Z"`)

	r = e.run("sched", "history", "adhoc", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var hist []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hist))
	require.Len(t, hist, 2)
	assert.Equal(t, "2024-05-02T00:00:00Z", hist[0]["scheduled_at"])
	r = e.run("sched", "history", "adhoc", "-l", "1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"), r.stdout)

	r = e.run("sched", "delete", "adhoc")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "deleted adhoc\n", r.stdout)
	assert.Equal(t, 2, e.run("sched", "delete", "adhoc").code)
}

func TestSchedBadInput(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"sched", "create", "x", "@daily", "SELECT 1"}, "the database is missing: add -d DATABASE"},
		{[]string{"sched", "create", "x", "@daily", "-d", "db"}, "the query is missing"},
		{[]string{"sched", "create", "x"}, "give NAME CRON and the SQL"},
		{[]string{"sched", "create", "x", "@daily", "-d", "db", "-t", "Mars/Base", "SELECT 1"}, `invalid -t/--timezone "Mars/Base"`},
		{[]string{"sched", "create", "x", "@daily", "-d", "db", "-q", "/no/such.sql"}, "-q/--query /no/such.sql: no such file or directory"},
		{[]string{"sched", "create", "x", "@daily", "-d", "db", "-r", "mysql//u:pw@h/d/t", "SELECT 1"}, "-r/--result: not a result URL"},
		{[]string{"sched", "run", "x", "yesterday"}, `invalid TIME "yesterday"`},
		{[]string{"sched", "run", "x", "now", "-n", "0"}, "invalid -n/--num 0"},
		{[]string{"sched", "update", "x"}, "nothing to change"},
		{[]string{"sched", "history", "x", "-l", "0"}, "invalid -l/--limit 0"},
		{[]string{"sched", "show", " x"}, "strip the white space"},
		{[]string{"api"}, "give one PATH"},
		{[]string{"api", "https://evil.example.com/v3/job/list"}, "not a URL"},
		{[]string{"api", "/v3/job/list", "-f", "password"}, "invalid -f/--field (number 1): use key=value"},
		{[]string{"api", "-X", "FETCH", "/v3/job/list"}, `invalid -X/--method "FETCH"`},
		{[]string{"api", "--input", "/no/such.json", "-X", "POST", "/v3/x"}, "--input /no/such.json: no such file or directory"},
	} {
		r := e.run(c.args...)
		assert.Equal(t, 1, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.msg, "%v", c.args)
		assert.Equal(t, "", r.stdout, "%v", c.args)
	}
	r := e.run("sched", "create", "x", "@daily", "-d", "db", "-r", "mysql//u:hunter2@h/d/t", "SELECT 1")
	assert.NotContains(t, r.stderr, "hunter2")
}

func TestConnectionCommands(t *testing.T) {
	srv, base := emulator.NewTestServer(t, emulator.Options{})
	srv.AddConnection("warehouse", "postgresql://u:hunter2@db.example.com/d/t", nil)
	e := newEnv(t, emulator.Options{})
	e.vars["TD_API_SERVER"] = base
	r := e.run("connection", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "warehouse\tpostgresql://u:")
	assert.NotContains(t, r.stdout, "hunter2")
	r = e.run("connection", "show", "warehouse", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"id": 1`)
	assert.NotContains(t, r.stdout, "hunter2")
	r = e.run("connection", "show", "nope")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `no connection named "nope"`)
}

func TestAPICommand(t *testing.T) {
	srv, base := emulator.NewTestServer(t, emulator.Options{})
	e := newEnv(t, emulator.Options{})
	e.vars["TD_API_SERVER"] = base

	r := e.run("api", "v3/schedule/list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, `{"schedules":[]}`, r.stdout)

	// fields make a POST form; the answer is printed raw, passwords masked
	r = e.run("api", "/v3/schedule/create/s1", "-f", "database=sample_datasets", "-f", "query=SELECT 1",
		"-f", "result=postgresql://u:hunter2@db.example.com/d/t")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"name":"s1"`)
	assert.NotContains(t, r.stdout, "hunter2")

	// with -X GET fields go in the query string
	r = e.run("api", "-X", "GET", "/v3/job/list", "-f", "from=0", "-f", "to=0")
	require.Equal(t, 0, r.code, r.stderr)
	last := srv.Requests()[len(srv.Requests())-1]
	assert.Equal(t, "0", last.Query.Get("to"))

	// --debug names the -f fields but shows none of their values, in a
	// form or a query string: any of them may be a secret (found by review)
	for _, method := range []string{"POST", "GET"} {
		r = e.run("api", "-X", method, "/v3/job/list", "-f", "pw=hunter2xyz", "-f", "mysecretfield=hunter3xyz", "--debug")
		assert.NotContains(t, r.stdout+r.stderr, "hunter2xyz", method)
		assert.NotContains(t, r.stdout+r.stderr, "hunter3xyz", method)
		assert.Contains(t, r.stderr, "mysecretfield", method)
	}

	// a GET is retried within the budget; a POST is sent once
	srv.Faults().Add(emulator.Fault{Path: "/v3/schedule/list", Status: 503, Times: 1})
	r = e.run("api", "/v3/schedule/list")
	assert.Equal(t, 0, r.code, r.stderr)
	srv.Faults().Add(emulator.Fault{Path: "/v3/schedule/delete/", Status: 503, Times: 1})
	r = e.run("api", "-X", "POST", "/v3/schedule/delete/s1")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "503")

	// API errors exit 2 with the server's message
	r = e.run("api", "/v3/job/show/424242")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "job 424242 not found")
	assert.Equal(t, "", r.stdout)

	// --input sends a body (JSON here, to the v4 run of a saved query)
	body := filepath.Join(t.TempDir(), "b.json")
	require.NoError(t, os.WriteFile(body, []byte(`{"scheduled_time":"2024-01-01T00:00:00Z"}`), 0o600))
	r = e.run("api", "-X", "POST", "/v3/schedule/create/s2", "-f", "database=sample_datasets", "-f", "query=SELECT 1")
	require.Equal(t, 0, r.code, r.stderr)
	var created map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
	r = e.run("api", "--input", body, "/v4/queries/"+jsonNumber(created["id"])+"/jobs")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"id"`)
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

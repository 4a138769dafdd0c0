package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var reTDTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`)

func TestIssueShowStatusExactShapes(t *testing.T) {
	_, c := newEmu(t, Options{})
	r := c.post("/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1 AS a, 2 AS b"}})
	require.Equal(t, 200, r.status, "%s", r.body)
	issued := r.json(t)
	assert.Equal(t, sorted("job", "job_id", "database"), keysOf(issued))
	id := issued["job_id"].(string)
	assert.Equal(t, id, issued["job"])
	assert.Equal(t, "sample_datasets", issued["database"])

	show := c.wait(id)
	assert.Equal(t, showKeys, keysOf(show))
	assert.Equal(t, id, show["job_id"])
	assert.Equal(t, "presto", show["type"])
	assert.Equal(t, "success", show["status"])
	assert.Equal(t, "SELECT 1 AS a, 2 AS b", show["query"])
	assert.Equal(t, "user@example.com", show["user_name"])
	assert.Equal(t, float64(1), show["num_records"])
	assert.Equal(t, `[["a","bigint"],["b","bigint"]]`, show["hive_result_schema"])
	assert.Equal(t, "", show["result"])
	assert.Equal(t, float64(0), show["priority"])
	assert.Equal(t, float64(0), show["retry_limit"])
	assert.Nil(t, show["organization"])
	assert.Nil(t, show["result_export_target_job_id"])
	assert.Nil(t, show["linked_result_export_job_id"])
	assert.Nil(t, show["cpu_time"])
	assert.IsType(t, float64(0), show["duration"])
	assert.Greater(t, show["result_size"], float64(0))
	for _, k := range []string{"created_at", "updated_at", "start_at", "end_at"} {
		assert.Regexp(t, reTDTime, show[k], k)
	}
	assert.Contains(t, show["url"], "/jobs/"+id)
	debug, ok := show["debug"].(map[string]any)
	require.True(t, ok, "debug must be an object")
	assert.Equal(t, sorted("cmdout", "stderr"), keysOf(debug))
	assert.Equal(t, "", debug["stderr"])

	st := c.get("/v3/job/status/" + id).json(t)
	assert.Equal(t, statusKeys, keysOf(st))
	assert.Equal(t, id, st["job_id"])
	assert.Equal(t, float64(1), st["num_records"])
}

func TestLifecycleOnManualClock(t *testing.T) {
	clk := NewManualClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	s, c := newEmu(t, Options{Clock: clk, QueuedFor: 10 * time.Second, RunningFor: 20 * time.Second})
	id := c.issue("sample_datasets", "SELECT COUNT(1) AS n FROM www_access", nil)

	show := c.show(id)
	assert.Equal(t, "queued", show["status"])
	for _, k := range []string{"start_at", "end_at", "duration", "num_records", "result_size", "hive_result_schema"} {
		assert.Nil(t, show[k], "%s while queued", k)
	}
	assert.Equal(t, "2024-05-01 12:00:00 UTC", show["created_at"])
	// the result is not there yet
	assert.Equal(t, 422, c.get("/v3/job/result/"+id+"?format=json").status)

	clk.Advance(10 * time.Second)
	st := c.get("/v3/job/status/" + id).json(t)
	assert.Equal(t, "running", st["status"])
	assert.Equal(t, "2024-05-01 12:00:10 UTC", st["start_at"])
	for _, k := range []string{"end_at", "duration", "num_records", "result_size"} {
		assert.Nil(t, st[k], "%s while running", k)
	}
	running := c.get("/v3/job/list?status=running").json(t)
	require.Len(t, running["jobs"], 1)

	clk.Advance(19 * time.Second)
	assert.Equal(t, "running", c.show(id)["status"])
	clk.Advance(time.Second)
	show = c.show(id)
	assert.Equal(t, "success", show["status"])
	assert.Equal(t, "2024-05-01 12:00:30 UTC", show["end_at"])
	assert.Equal(t, float64(20), show["duration"])
	assert.Equal(t, float64(1), show["num_records"])
	assert.Equal(t, `[["n","bigint"]]`, show["hive_result_schema"])

	info, ok := s.Job(id)
	require.True(t, ok)
	assert.Equal(t, "success", info.Status)
	require.NotNil(t, info.NumRecords)
	assert.EqualValues(t, 1, *info.NumRecords)
	assert.Equal(t, time.Date(2024, 5, 1, 12, 0, 10, 0, time.UTC), info.StartAt)

	rows := c.get("/v3/job/result/" + id + "?format=json")
	require.Equal(t, 200, rows.status)
	assert.Equal(t, "[5000]\n", string(rows.body))
}

func TestJobsFinishInTheBackgroundWithRealClock(t *testing.T) {
	s, c := newEmu(t, Options{RunningFor: 50 * time.Millisecond})
	id := c.issue("sample_datasets", "SELECT 1 AS x", nil)
	// Nobody polls: the timer finishes the job.
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.jobs[mustID(t, id)].Status == "success"
	}, 10*time.Second, 10*time.Millisecond)
}

func mustID(t *testing.T, id string) int64 {
	n, ok := parseJobID(id)
	require.True(t, ok)
	return n
}

func TestIssueFormHandling(t *testing.T) {
	s, c := newEmu(t, Options{})
	id := c.issue("sample_datasets", "SELECT 1 AS a", url.Values{
		"priority": {"-1"}, "retry_limit": {"3"}, "type": {"presto"}, "unknown_field": {"x"},
		"engine_version": {"stable"}, "pool_name": {"p1"}, "scheduled_time": {"1700000000"},
	})
	show := c.wait(id)
	assert.Equal(t, float64(-1), show["priority"], "priority form string must come back as a JSON int")
	assert.Equal(t, float64(3), show["retry_limit"])
	info, _ := s.Job(id)
	assert.Equal(t, -1, info.Priority)
	assert.Equal(t, "stable", info.EngineVersion)
	assert.Equal(t, "p1", info.PoolName)
	assert.EqualValues(t, 1700000000, info.ScheduledTime)
	assert.Equal(t, []string{"x"}, info.Form["unknown_field"])

	for _, tc := range []struct {
		path   string
		form   url.Values
		status int
		msg    string
	}{
		{"/v3/job/issue/presto/no_such_db", url.Values{"query": {"SELECT 1"}}, 404, "no_such_db"},
		{"/v3/job/issue/spark/sample_datasets", url.Values{"query": {"SELECT 1"}}, 422, "hive, presto or trino"},
		{"/v3/job/issue/presto/sample_datasets", url.Values{}, 422, "query is required"},
		{"/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}, "priority": {"high"}}, 422, "priority"},
		{"/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}, "priority": {"3"}}, 422, "priority"},
		{"/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}, "retry_limit": {"-1"}}, 422, "retry_limit"},
		{"/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}, "result": {"td://@/a/b"}, "result_connection_id": {"1"}}, 422, "not both"},
		{"/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}, "result_connection_id": {"99"}}, 404, "connection not found"},
		{"/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}, "result": {"no scheme"}}, 422, "result URL"},
	} {
		r := c.post(tc.path, tc.form)
		assert.Equal(t, tc.status, r.status, "%s %v: %s", tc.path, tc.form, r.body)
		m := r.json(t)
		assert.Contains(t, m["error"], tc.msg)
		assert.Equal(t, m["error"], m["message"])
	}

	// All three engines run SQL; hive names strings "string".
	for typ, want := range map[string]string{"hive": `[["s","string"]]`, "trino": `[["s","varchar"]]`} {
		r := c.post("/v3/job/issue/"+typ+"/sample_datasets", url.Values{"query": {"SELECT 'x' AS s"}})
		require.Equal(t, 200, r.status)
		show := c.wait(r.json(t)["job_id"].(string))
		assert.Equal(t, typ, show["type"])
		assert.Equal(t, want, show["hive_result_schema"])
	}
}

func TestPercentEscapedPathsAndOddRequests(t *testing.T) {
	_, c := newEmu(t, Options{})
	// database name escaped (%5F is "_")
	r := c.post("/v3/job/issue/presto/sample%5Fdatasets", url.Values{"query": {"SELECT 1 AS a"}})
	require.Equal(t, 200, r.status, "%s", r.body)
	id := r.json(t)["job_id"].(string)
	c.wait(id)
	// escaped id
	esc := ""
	for _, ch := range id {
		esc += "%3" + string(ch)
	}
	assert.Equal(t, 200, c.get("/v3/job/show/"+esc).status)
	// "." escaped as %2E is a segment, not path cleaning (no redirect)
	r = c.get("/v3/job/show/%2E%2E")
	assert.Equal(t, 404, r.status)
	assert.Contains(t, r.json(t)["message"], "not found")
	// octet-stream GET
	r = c.do("GET", "/v3/job/show/"+id, nil, map[string]string{"Content-Type": "application/octet-stream"})
	assert.Equal(t, 200, r.status)
}

func TestSQLErrorEndsJobInError(t *testing.T) {
	_, c := newEmu(t, Options{})
	id := c.issue("sample_datasets", "SELECT nope FROM no_such_table", nil)
	show := c.wait(id)
	assert.Equal(t, "error", show["status"])
	assert.Contains(t, show["debug"].(map[string]any)["stderr"], "no_such_table")
	assert.Nil(t, show["hive_result_schema"])
	assert.Nil(t, show["num_records"])
	assert.Regexp(t, reTDTime, show["end_at"])
	assert.Equal(t, 422, c.get("/v3/job/result/"+id+"?format=json").status)

	id = c.issue("sample_datasets", "ATTACH DATABASE '/tmp/x' AS x", nil)
	assert.Contains(t, c.wait(id)["debug"].(map[string]any)["stderr"], "not supported")
}

func TestAuth(t *testing.T) {
	var sink logSink
	_, c := newEmu(t, Options{Logf: sink.logf})
	id := c.issue("sample_datasets", "SELECT 1", nil)
	for _, key := range []string{"", "wrong"} {
		cc := *c
		cc.key = key
		r := cc.get("/v3/job/show/" + id)
		assert.Equal(t, 401, r.status)
		m := r.json(t)
		assert.NotEmpty(t, m["error"])
		assert.Equal(t, m["error"], m["message"])
	}
	r := c.do("GET", "/v3/job/show/"+id, nil, map[string]string{"Authorization": "Bearer " + testKey})
	assert.Equal(t, 401, r.status)
	logs := sink.String()
	assert.Contains(t, logs, "GET /v3/job/show/"+id+" -> 401")
	assert.NotContains(t, logs, testKey)
	assert.NotContains(t, logs, "0123456789abcdef")

	// no APIKeys: any non-empty key
	_, open := NewTestServer(t, Options{})
	oc := &apiClient{t: t, base: open, key: "anything", hc: c.hc}
	assert.Equal(t, 200, oc.get("/v3/job/list").status)
	oc.key = ""
	assert.Equal(t, 401, oc.get("/v3/job/list").status)
}

func TestUnknownJobsRoutesAndMethods(t *testing.T) {
	_, c := newEmu(t, Options{})
	for _, r := range []resp{
		c.get("/v3/job/show/987654"),
		c.get("/v3/job/status/987654"),
		c.get("/v3/job/result/987654?format=msgpack.gz"),
		c.post("/v3/job/kill/987654", nil),
		c.post("/v3/job/result_export/987654", url.Values{"result": {"td://@/a/b"}}),
		c.get("/v3/job/show/abc"),
		c.get("/v3/nothing/here"),
		c.get("/v2/job/list"),
	} {
		assert.Equal(t, 404, r.status, "%s", r.body)
		m := r.json(t)
		assert.NotEmpty(t, m["error"])
		assert.NotEmpty(t, m["message"])
	}
	assert.Equal(t, 405, c.get("/v3/job/kill/1").status)
	assert.Equal(t, 405, c.post("/v3/job/show/1", nil).status)
}

func TestDomainKeyConflict(t *testing.T) {
	s, c := newEmu(t, Options{})
	form := url.Values{"query": {"SELECT 1 AS a"}, "domain_key": {"nightly-2024-05-01"}}
	r := c.post("/v3/job/issue/presto/sample_datasets", form)
	require.Equal(t, 200, r.status)
	id := r.json(t)["job_id"].(string)

	r = c.post("/v3/job/issue/presto/sample_datasets", form)
	assert.Equal(t, 409, r.status)
	m := r.json(t)
	assert.NotEmpty(t, m["error"])
	assert.NotEmpty(t, m["message"])
	assert.Equal(t, map[string]any{"conflicts_with": id}, m["details"])
	assert.Equal(t, 1, s.JobCount(), "a conflicting issue must not create a job")

	st := c.get("/v3/job/status_by_domain_key/nightly-2024-05-01")
	require.Equal(t, 200, st.status)
	sm := st.json(t)
	assert.Equal(t, statusKeys, keysOf(sm))
	assert.Equal(t, id, sm["job_id"])
	assert.Equal(t, 404, c.get("/v3/job/status_by_domain_key/other").status)
}

func TestListPagingAndFilter(t *testing.T) {
	_, c := newEmu(t, Options{})
	var ids []string
	for i := 0; i < 25; i++ {
		q := "SELECT 1 AS a"
		if i%5 == 0 {
			q = "SELECT broken"
		}
		ids = append(ids, c.issue("sample_datasets", q, nil))
	}
	for _, id := range ids {
		c.wait(id)
	}
	page := c.get("/v3/job/list").json(t)
	assert.Equal(t, sorted("jobs", "count", "from", "to"), keysOf(page))
	jobs := page["jobs"].([]any)
	require.Len(t, jobs, 20, "default page is 20")
	assert.Equal(t, ids[24], jobs[0].(map[string]any)["job_id"], "newest first")
	assert.Equal(t, listKeys(), keysOf(jobs[0].(map[string]any)))
	assert.Equal(t, float64(25), page["count"])

	page = c.get("/v3/job/list?from=20&to=24").json(t)
	jobs = page["jobs"].([]any)
	require.Len(t, jobs, 5, "to is inclusive")
	assert.Equal(t, ids[4], jobs[0].(map[string]any)["job_id"])
	assert.Equal(t, ids[0], jobs[4].(map[string]any)["job_id"])
	assert.Empty(t, c.get("/v3/job/list?from=25&to=30").json(t)["jobs"])

	errs := c.get("/v3/job/list?status=error").json(t)
	assert.Len(t, errs["jobs"], 5)
	for _, j := range errs["jobs"].([]any) {
		assert.Equal(t, "error", j.(map[string]any)["status"])
	}
	assert.Equal(t, 422, c.get("/v3/job/list?status=weird").status)
	assert.Equal(t, 422, c.get("/v3/job/list?from=x").status)
}

func TestKill(t *testing.T) {
	clk := NewManualClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	_, c := newEmu(t, Options{Clock: clk, QueuedFor: time.Second, RunningFor: time.Minute})
	id := c.issue("sample_datasets", "SELECT 1 AS a", nil)
	clk.Advance(2 * time.Second)

	// empty chunked body
	r := c.do("POST", "/v3/job/kill/"+id, nil, map[string]string{"Transfer-Encoding": "chunked"})
	require.Equal(t, 200, r.status, "%s", r.body)
	m := r.json(t)
	assert.Equal(t, sorted("job_id", "former_status"), keysOf(m))
	assert.Equal(t, id, m["job_id"])
	assert.Equal(t, "running", m["former_status"])
	show := c.show(id)
	assert.Equal(t, "killed", show["status"])
	assert.Nil(t, show["num_records"])
	assert.Regexp(t, reTDTime, show["end_at"])
	clk.Advance(time.Hour)
	assert.Equal(t, "killed", c.show(id)["status"], "a killed job stays killed")
	assert.Equal(t, 422, c.get("/v3/job/result/"+id+"?format=json").status)

	// queued job
	id2 := c.issue("sample_datasets", "SELECT 1 AS a", nil)
	assert.Equal(t, "queued", c.post("/v3/job/kill/"+id2, nil).json(t)["former_status"])
	assert.Nil(t, c.show(id2)["start_at"])
	assert.Equal(t, float64(0), c.show(id2)["duration"])

	// finished job: answered, unchanged
	id3 := c.issue("sample_datasets", "SELECT 1 AS a", nil)
	clk.Advance(2 * time.Minute)
	assert.Equal(t, "success", c.post("/v3/job/kill/"+id3, nil).json(t)["former_status"])
	assert.Equal(t, "success", c.show(id3)["status"])
}

func TestGzipJSONButNeverErrorsOrResults(t *testing.T) {
	_, c := newEmu(t, Options{})
	id := c.issue("sample_datasets", "SELECT 1 AS a", nil)
	c.wait(id)
	gz := map[string]string{"Accept-Encoding": "gzip"}
	r := c.do("GET", "/v3/job/show/"+id, nil, gz)
	assert.Equal(t, 200, r.status)
	assert.Equal(t, "gzip", r.header.Get("Content-Encoding"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(gunzip(t, r.body), &m))
	assert.Equal(t, id, m["job_id"])

	r = c.do("GET", "/v3/job/show/424242", nil, gz)
	assert.Equal(t, 404, r.status)
	assert.Empty(t, r.header.Get("Content-Encoding"))
	assert.Contains(t, r.json(t)["error"], "not found")

	r = c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, gz)
	assert.Equal(t, 200, r.status)
	assert.Empty(t, r.header.Get("Content-Encoding"), "msgpack.gz must be a plain body")
	assert.Equal(t, [][]any{{int64(1)}}, decodeMsgpackGz(t, r.body))
}

func TestRequestsRecordFormsWithoutAuthorization(t *testing.T) {
	s, c := newEmu(t, Options{})
	c.issue("sample_datasets", "SELECT 1 AS a", url.Values{"priority": {"-2"}, "domain_key": {"k1"}})
	reqs := s.Requests()
	require.NotEmpty(t, reqs)
	r := reqs[0]
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/v3/job/issue/presto/sample_datasets", r.Path)
	assert.Equal(t, "-2", r.Form.Get("priority"))
	assert.Equal(t, "k1", r.Form.Get("domain_key"))
	assert.Empty(t, r.Header.Get("Authorization"))
	assert.NotEmpty(t, r.Header.Get("Content-Type"))
}

func TestSampleDatasetsAndTDFunctions(t *testing.T) {
	_, c := newEmu(t, Options{})
	q := func(sql string) string {
		id := c.issue("sample_datasets", sql, nil)
		show := c.wait(id)
		require.Equal(t, "success", show["status"], "%v", show["debug"])
		return string(c.get("/v3/job/result/" + id + "?format=csv").body)
	}
	assert.Equal(t, "5000\n", q("SELECT COUNT(1) FROM www_access"))
	assert.Equal(t, "5000\n", q("SELECT COUNT(1) FROM nasdaq"))
	assert.Equal(t, "20\n", q("SELECT COUNT(DISTINCT symbol) FROM nasdaq"))
	first := q("SELECT * FROM www_access ORDER BY time LIMIT 3")
	assert.Equal(t, first, q("SELECT * FROM www_access ORDER BY time LIMIT 3"), "deterministic")
	assert.Equal(t, "1\n", q("SELECT TD_TIME_RANGE(1412121600, '2014-10-01', '2014-10-02')"))
	assert.Equal(t, "0\n", q("SELECT TD_TIME_RANGE(1412121600, '2014-10-01 10:00:00', NULL, 'JST')"))
	assert.Equal(t, "1\n", q("SELECT TD_TIME_RANGE(1412121600, '2014-10-01 08:00:00', NULL, 'JST')"))
	assert.Equal(t, "1\n", q("SELECT TD_TIME_RANGE(1412121600, NULL, '2014-10-02')"))
	assert.Equal(t, "2014-10-01 09:00:00\n", q("SELECT TD_TIME_FORMAT(1412121600, 'yyyy-MM-dd HH:mm:ss', 'JST')"))
	assert.Equal(t, "1412121600\n", q("SELECT TD_TIME_PARSE('2014-10-01')"))
	n := q("SELECT COUNT(1) FROM www_access WHERE TD_TIME_RANGE(time, '2014-10-01', '2014-10-02')")
	assert.NotEqual(t, "0\n", n)
	assert.NotEqual(t, "5000\n", n)
}

func TestDatabaseAndTableList(t *testing.T) {
	s, c := newEmu(t, Options{})
	require.NoError(t, s.CreateDatabase("analytics"))
	require.Error(t, s.CreateDatabase("bad/name"))
	dbs := c.get("/v3/database/list").json(t)["databases"].([]any)
	var names []string
	for _, d := range dbs {
		names = append(names, d.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"analytics", "sample_datasets"}, names)
	tl := c.get("/v3/table/list/sample_datasets").json(t)
	tables := tl["tables"].([]any)
	require.Len(t, tables, 2)
	nasdaq := tables[0].(map[string]any)
	assert.Equal(t, "nasdaq", nasdaq["name"])
	assert.Equal(t, float64(5000), nasdaq["count"])
	// time is implicit in TD tables: never part of the schema
	assert.Equal(t, `[["symbol","string"],["open","double"],["volume","long"],["high","double"],["low","double"],["close","double"]]`, nasdaq["schema"])
	www := tables[1].(map[string]any)
	assert.Equal(t, `[["user","string"],["host","string"],["path","string"],["referer","string"],["code","long"],["agent","string"],["size","long"],["method","string"]]`, www["schema"])
	assert.Equal(t, 404, c.get("/v3/table/list/nope").status)

	// a query in analytics can read sample_datasets.www_access
	id := c.issue("analytics", "SELECT COUNT(1) AS n FROM sample_datasets.www_access", nil)
	assert.Equal(t, float64(1), c.wait(id)["num_records"])
	assert.Equal(t, "[5000]\n", string(c.get("/v3/job/result/"+id+"?format=json").body))
}

func TestPostWithoutContentTypeIsReadAsForm(t *testing.T) {
	_, c := newEmu(t, Options{})
	req, err := http.NewRequest("POST", c.base+"/v3/job/issue/presto/sample_datasets", strings.NewReader("query=SELECT+7+AS+n"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "TD1 "+testKey)
	res, err := c.hc.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	show := c.wait(m["job_id"].(string))
	assert.Equal(t, float64(1), show["num_records"])
}

func TestWritingQueriesRunToo(t *testing.T) {
	s, c := newEmu(t, Options{})
	require.NoError(t, s.CreateDatabase("scratch"))
	show := c.wait(c.issue("scratch", "CREATE TABLE t AS SELECT code FROM sample_datasets.www_access WHERE code = 500", nil))
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	assert.Equal(t, float64(0), show["num_records"])
	assert.Equal(t, "[]", show["hive_result_schema"])
	show = c.wait(c.issue("scratch", "INSERT INTO t VALUES (501)", nil))
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	rows, cols, err := s.TableRows("scratch", "t")
	require.NoError(t, err)
	assert.Equal(t, "code", cols[0].Name)
	assert.Equal(t, []any{int64(501)}, rows[len(rows)-1])
	assert.Greater(t, len(rows), 1)
}

package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A strict decoder in the manner of td-client-go's (its schemas in
// api_schedule.go and api_result.go, and validateAndCoerce): an unknown key
// fails, a missing key fails unless optional, null fails unless optional,
// and an optional *time* key that is absent fails too (its default is no
// string). Types: "s" string, "i" integer (a JSON number), "f" number,
// "t" time string (RFC 3339 or TD's form), "j" a string holding JSON.
type goOpt struct{ kind string }

type goList struct{ elem map[string]any }

func goCheck(path string, v any, spec any) error {
	opt := false
	if o, ok := spec.(goOpt); ok {
		opt, spec = true, o.kind
	}
	if v == nil {
		if opt {
			return nil
		}
		return fmt.Errorf("%s may not be null", path)
	}
	switch sp := spec.(type) {
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", path, v)
		}
		for k := range m {
			if _, ok := sp[k]; !ok {
				return fmt.Errorf("unknown key %s under %s", k, path)
			}
		}
		for k, ks := range sp {
			kv, ok := m[k]
			if !ok {
				o, isOpt := ks.(goOpt)
				if !isOpt {
					return fmt.Errorf("missing key %s under %s", k, path)
				}
				if o.kind == "t" {
					return fmt.Errorf("optional time %s missing under %s (the Go client's default is no string)", k, path)
				}
				continue
			}
			if err := goCheck(path+"/"+k, kv, ks); err != nil {
				return err
			}
		}
	case goList:
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", path, v)
		}
		for i, e := range l {
			if err := goCheck(fmt.Sprintf("%s[%d]", path, i), e, sp.elem); err != nil {
				return err
			}
		}
	case string:
		switch sp {
		case "s", "t", "j":
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("type mismatch (%T != string) for %s", v, path)
			}
			if sp == "t" {
				if s == "" && !opt {
					return fmt.Errorf("%s may not be empty", path)
				}
				if s != "" {
					if _, err := time.Parse(time.RFC3339, s); err != nil {
						if _, err := time.Parse("2006-01-02 15:04:05 MST", s); err != nil {
							return fmt.Errorf("invalid time string %s for %s", s, path)
						}
					}
				}
			}
			if sp == "j" {
				var x []any
				if err := json.Unmarshal([]byte(s), &x); err != nil {
					return fmt.Errorf("%s: not embedded JSON: %v", path, err)
				}
			}
		case "i", "f":
			if _, ok := v.(float64); !ok {
				return fmt.Errorf("type mismatch (%T != number) for %s", v, path)
			}
		}
	}
	return nil
}

// The schemas td-client-go checks the schedule and result answers against.
var (
	goScheduleResult = map[string]any{
		"id": "i", "name": "s", "cron": goOpt{"s"}, "timezone": "s", "delay": "i", "created_at": "t",
		"type": "s", "query": "s", "database": "s", "user_name": "s", "priority": "i", "retry_limit": "i",
		"result": goOpt{"s"}, "start": goOpt{"s"},
	}
	goScheduleList = map[string]any{"schedules": goList{map[string]any{
		"name": "s", "cron": goOpt{"s"}, "timezone": "s", "delay": "i", "created_at": "t", "type": "s",
		"query": "s", "database": goOpt{"s"}, "user_name": "s", "priority": "i", "retry_limit": "i",
		"result": goOpt{"s"}, "next_time": goOpt{"s"},
	}}}
	goScheduleDelete = map[string]any{
		"name": "s", "cron": goOpt{"s"}, "timezone": "s", "delay": "i", "created_at": "t", "type": "s",
		"query": "s", "database": "s", "user_name": "s",
	}
	goScheduleRun = map[string]any{"jobs": goList{map[string]any{
		"job_id": "i", "scheduled_at": goOpt{"t"}, "type": "s",
	}}}
	goScheduleHistory = map[string]any{
		"history": goList{map[string]any{
			"job_id": "s", "type": goOpt{"s"}, "database": "s", "status": "s", "query": "s",
			"start_at": goOpt{"t"}, "end_at": goOpt{"t"}, "scheduled_at": goOpt{"t"}, "created_at": "t",
			"updated_at": "t", "duration": goOpt{"f"}, "cpu_time": goOpt{"f"}, "result_size": goOpt{"i"},
			"num_records": goOpt{"i"}, "user_name": "s", "result": goOpt{"s"}, "url": "s",
			"hive_result_schema": goOpt{"j"}, "organization": goOpt{"s"}, "priority": "i", "retry_limit": "i",
		}},
		"count": goOpt{"i"}, "to": goOpt{"i"}, "from": goOpt{"i"},
	}
	goResultList = map[string]any{"results": goList{map[string]any{"name": "s", "organization": "s", "url": "s"}}}
)

func TestGoCheckIsStrict(t *testing.T) {
	// the checker itself must fail where td-client-go fails
	assert.Error(t, goCheck("/", map[string]any{"jobs": []any{map[string]any{"job_id": "1", "type": "presto", "scheduled_at": nil}}}, goScheduleRun), "string job_id")
	assert.Error(t, goCheck("/", map[string]any{"results": []any{map[string]any{"name": "a", "url": "u", "organization": nil}}}, goResultList), "null organization")
	assert.Error(t, goCheck("/", map[string]any{"jobs": []any{map[string]any{"job_id": 1.0, "type": "presto"}}}, goScheduleRun), "absent optional time")
	assert.Error(t, goCheck("/", map[string]any{"schedules": []any{}, "x": 1.0}, goScheduleList), "unknown key")
	assert.NoError(t, goCheck("/", map[string]any{"jobs": []any{map[string]any{"job_id": 1.0, "type": "presto", "scheduled_at": nil}}}, goScheduleRun))
}

// rubyKeys are the keys td-client-ruby reads (lib/td/client/api/schedule.rb,
// result.rb): they must be there.
func requireKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		_, ok := m[k]
		assert.True(t, ok, "td-client-ruby reads %q: missing from %v", k, keysOf(m))
	}
}

func TestSchedulesShapesAndRuns(t *testing.T) {
	s, c := newEmu(t, Options{})
	s.AddConnection("pg_out", "postgresql://u:hunter2@localhost:5432/db/t", nil)

	create := c.post("/v3/schedule/create/daily_count", url.Values{
		"database": {"sample_datasets"}, "query": {"SELECT TD_SCHEDULED_TIME() AS t, count(1) AS n FROM nasdaq"},
		"cron": {"0 0 * * *"}, "timezone": {"UTC"}, "priority": {"1"}, "retry_limit": {"2"},
	})
	require.Equal(t, 200, create.status, "%s", create.body)
	secret := c.post("/v3/schedule/create/to_pg", url.Values{"database": {"sample_datasets"}, "query": {"SELECT 1"},
		"result": {"postgresql://u:hunter2@localhost:5432/db/t"}})
	require.Equal(t, 200, secret.status, "%s", secret.body)
	require.NotContains(t, string(secret.body), "hunter2")
	require.NoError(t, goCheck("/", secret.json(t), goScheduleResult))
	cm := create.json(t)
	require.NoError(t, goCheck("/", cm, goScheduleResult))
	requireKeys(t, cm, "start")
	assert.Equal(t, 1.0, cm["priority"])

	dup := c.post("/v3/schedule/create/daily_count", url.Values{"database": {"sample_datasets"}, "query": {"SELECT 1"}})
	assert.Equal(t, 409, dup.status)

	noCron := c.post("/v3/schedule/create/adhoc", url.Values{"database": {"sample_datasets"}, "query": {"SELECT 1 AS a"}})
	require.Equal(t, 200, noCron.status, "%s", noCron.body)
	require.NoError(t, goCheck("/", noCron.json(t), goScheduleResult))
	assert.Nil(t, noCron.json(t)["cron"])

	for _, bad := range []url.Values{
		{"database": {"sample_datasets"}},
		{"query": {"SELECT 1"}},
		{"database": {"sample_datasets"}, "query": {"SELECT 1"}, "cron": {"61 * * * *"}},
		{"database": {"sample_datasets"}, "query": {"SELECT 1"}, "timezone": {"Mars/Base"}},
		{"database": {"sample_datasets"}, "query": {"SELECT 1"}, "type": {"pig"}},
	} {
		r := c.post("/v3/schedule/create/bad", bad)
		assert.Equal(t, 422, r.status, "%v: %s", bad, r.body)
	}

	list := c.get("/v3/schedule/list")
	require.Equal(t, 200, list.status)
	lm := list.json(t)
	require.NoError(t, goCheck("/", lm, goScheduleList))
	scheds := lm["schedules"].([]any)
	require.Len(t, scheds, 3)
	assert.NotContains(t, string(list.body), "hunter2")
	first := scheds[1].(map[string]any)
	assert.Equal(t, "daily_count", first["name"])
	requireKeys(t, first, "name", "cron", "query", "database", "result", "timezone", "delay", "next_time", "priority", "retry_limit")
	assert.NotNil(t, first["next_time"])

	up := c.post("/v3/schedule/update/daily_count", url.Values{"priority": {"-1"}})
	require.Equal(t, 200, up.status, "%s", up.body)
	require.NoError(t, goCheck("/", up.json(t), goScheduleResult))
	assert.Equal(t, -1.0, up.json(t)["priority"])
	assert.Equal(t, "0 0 * * *", up.json(t)["cron"], "update keeps what it is not given")
	assert.Equal(t, 404, c.post("/v3/schedule/update/nope", url.Values{"priority": {"1"}}).status)

	// run for a time: real jobs with the saved query, TD_SCHEDULED_TIME() read as that time
	at := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	run := c.post(fmt.Sprintf("/v3/schedule/run/adhoc/%d", at.Unix()), url.Values{"num": {"1"}})
	require.Equal(t, 200, run.status, "%s", run.body)
	rm := run.json(t)
	require.NoError(t, goCheck("/", rm, goScheduleRun))
	jobs := rm["jobs"].([]any)
	require.Len(t, jobs, 1)
	requireKeys(t, jobs[0].(map[string]any), "job_id", "scheduled_at", "type")
	id := fmt.Sprint(int64(jobs[0].(map[string]any)["job_id"].(float64)))
	sh := c.wait(id)
	assert.Equal(t, "success", sh["status"], "%v", sh["debug"])
	assert.Equal(t, "SELECT 1 AS a", sh["query"])

	// num runs for the cron times from the given one
	run3 := c.post(fmt.Sprintf("/v3/schedule/run/daily_count/%d", at.Unix()), url.Values{"num": {"3"}})
	require.Equal(t, 200, run3.status, "%s", run3.body)
	require.NoError(t, goCheck("/", run3.json(t), goScheduleRun))
	var times []string
	for _, j := range run3.json(t)["jobs"].([]any) {
		times = append(times, j.(map[string]any)["scheduled_at"].(string))
		c.wait(fmt.Sprint(int64(j.(map[string]any)["job_id"].(float64))))
	}
	assert.Equal(t, []string{"2024-03-01 00:00:00 UTC", "2024-03-02 00:00:00 UTC", "2024-03-03 00:00:00 UTC"}, times)

	// a domain key names one run
	kr := c.post(fmt.Sprintf("/v3/schedule/run/adhoc/%d", at.Unix()), url.Values{"domain_key": {"k1"}})
	require.Equal(t, 200, kr.status, "%s", kr.body)
	again := c.post(fmt.Sprintf("/v3/schedule/run/adhoc/%d", at.Unix()), url.Values{"domain_key": {"k1"}})
	assert.Equal(t, 409, again.status)
	assert.Contains(t, string(again.body), "conflicts_with")

	hist := c.get("/v3/schedule/history/daily_count?from=0&to=9")
	require.Equal(t, 200, hist.status)
	hm := hist.json(t)
	require.NoError(t, goCheck("/", hm, goScheduleHistory))
	entries := hm["history"].([]any)
	require.Len(t, entries, 3)
	newest := entries[0].(map[string]any)
	requireKeys(t, newest, "job_id", "type", "database", "status", "query", "start_at", "end_at", "scheduled_at", "result", "priority", "retry_limit", "duration", "num_records")
	assert.Equal(t, "2024-03-03 00:00:00 UTC", newest["scheduled_at"])
	assert.Equal(t, "success", newest["status"], "%v", newest)
	assert.NotContains(t, string(hist.body), "hunter2")
	// the run's result holds TD_SCHEDULED_TIME() as that time
	rows := decodeMsgpackGz(t, c.get("/v3/job/result/"+newest["job_id"].(string)+"?format=msgpack.gz").body)
	require.Len(t, rows, 1)
	assert.EqualValues(t, time.Date(2024, 3, 3, 0, 0, 0, 0, time.UTC).Unix(), rows[0][0])

	assert.Equal(t, 404, c.get("/v3/schedule/history/nope").status)
	assert.Equal(t, 404, c.post("/v3/schedule/run/nope/0", nil).status)

	del := c.post("/v3/schedule/delete/adhoc", nil)
	require.Equal(t, 200, del.status, "%s", del.body)
	require.NoError(t, goCheck("/", del.json(t), goScheduleDelete))
	requireKeys(t, del.json(t), "cron", "query")
	assert.Equal(t, 404, c.post("/v3/schedule/delete/adhoc", nil).status)

	rl := c.get("/v3/result/list")
	require.Equal(t, 200, rl.status)
	require.NoError(t, goCheck("/", rl.json(t), goResultList))
	assert.NotContains(t, string(rl.body), "hunter2")
	assert.Contains(t, string(rl.body), "pg_out")
}

func TestSavedQueryRunByID(t *testing.T) {
	_, c := newEmu(t, Options{})
	cr := c.post("/v3/schedule/create/q", url.Values{"database": {"sample_datasets"}, "query": {"SELECT TD_SCHEDULED_TIME() AS t"}})
	require.Equal(t, 200, cr.status, "%s", cr.body)
	id := int64(cr.json(t)["id"].(float64))
	body := `{"scheduled_time":"2024-01-02T03:04:05Z","domain_key":"dk"}`
	r := c.do("POST", fmt.Sprintf("/v4/queries/%d/jobs", id), nil, map[string]string{"Content-Type": "application/json"})
	assert.Equal(t, 400, r.status, "no body: %s", r.body)
	r = c.doBody("POST", fmt.Sprintf("/v4/queries/%d/jobs", id), body)
	require.Equal(t, 200, r.status, "%s", r.body)
	jobID := r.json(t)["id"].(string)
	c.wait(jobID)
	rows := decodeMsgpackGz(t, c.get("/v3/job/result/"+jobID+"?format=msgpack.gz").body)
	assert.EqualValues(t, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Unix(), rows[0][0])
	again := c.doBody("POST", fmt.Sprintf("/v4/queries/%d/jobs", id), body)
	assert.Equal(t, 409, again.status)
	assert.Equal(t, 404, c.doBody("POST", "/v4/queries/999/jobs", body).status)
}

// doBody sends a JSON body.
func (c *apiClient) doBody(method, path, body string) resp {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "TD1 "+c.key)
	res, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// Faults reach the new endpoints like the old ones: an error status, and a
// lagging replica's status in a saved query's history.
func TestScheduleFaults(t *testing.T) {
	s, c := newEmu(t, Options{})
	require.Equal(t, 200, c.post("/v3/schedule/create/q", url.Values{"database": {"sample_datasets"}, "query": {"SELECT 1"}}).status)
	r := c.post("/v3/schedule/run/q/0", nil)
	require.Equal(t, 200, r.status)
	c.wait(fmt.Sprint(int64(r.json(t)["jobs"].([]any)[0].(map[string]any)["job_id"].(float64))))

	s.Faults().Add(Fault{Path: "/v3/schedule/list", Status: 503, Times: 1})
	assert.Equal(t, 503, c.get("/v3/schedule/list").status)
	assert.Equal(t, 200, c.get("/v3/schedule/list").status)

	s.Faults().Add(Fault{Path: "/v3/schedule/history/", LagStatus: "running", Times: 1})
	h := c.get("/v3/schedule/history/q").json(t)
	e := h["history"].([]any)[0].(map[string]any)
	assert.Equal(t, "running", e["status"])
	assert.Nil(t, e["end_at"])
	require.NoError(t, goCheck("/", h, goScheduleHistory))

	s.Faults().Add(Fault{Path: "/v3/result/list", Status: 429, RetryAfter: "1", Times: 1})
	assert.Equal(t, 429, c.get("/v3/result/list").status)
	assert.True(t, strings.Contains(string(c.get("/v3/result/list").body), "results"))
}

// Saved queries survive a restart with DataDir; one whose result URL held
// a password was stored masked and refuses to run until it is updated.
func TestSchedulesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(Options{DataDir: dir})
	require.NoError(t, err)
	c1 := &apiClient{t: t, hc: http.DefaultClient, key: "k", base: startHTTP(t, s1)}
	require.Equal(t, 200, c1.post("/v3/schedule/create/plain", url.Values{"database": {"sample_datasets"}, "query": {"SELECT 1"}}).status)
	require.Equal(t, 200, c1.post("/v3/schedule/create/secret", url.Values{"database": {"sample_datasets"}, "query": {"SELECT 1"},
		"result": {"postgresql://u:hunter2@127.0.0.1:1/d/t"}}).status)
	r := c1.post("/v3/schedule/run/plain/0", nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	c1.wait(fmt.Sprint(int64(r.json(t)["jobs"].([]any)[0].(map[string]any)["job_id"].(float64))))
	require.NoError(t, s1.Close())
	files, err := filepath.Glob(filepath.Join(dir, "state.sqlite*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "hunter2", "passwords never go to disk: %s", f)
	}

	s2, err := New(Options{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { s2.Close() })
	c2 := &apiClient{t: t, hc: http.DefaultClient, key: "k", base: startHTTP(t, s2)}
	list := c2.get("/v3/schedule/list")
	assert.Len(t, list.json(t)["schedules"], 2)
	assert.Len(t, c2.get("/v3/schedule/history/plain").json(t)["history"], 1)
	r = c2.post("/v3/schedule/run/secret/0", nil)
	assert.Equal(t, 422, r.status)
	assert.Contains(t, string(r.body), "update it with the result URL again")
	require.Equal(t, 200, c2.post("/v3/schedule/update/secret", url.Values{"result": {""}}).status)
	assert.Equal(t, 200, c2.post("/v3/schedule/run/secret/0", nil).status)
}

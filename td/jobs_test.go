package td

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func intp(i int) *int { return &i }

func TestIssueSendsEveryField(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/issue/hive/www_access", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "POST")
		assert.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
		testForm(t, r, url.Values{
			"query":          {"SELECT 1"},
			"priority":       {"-2"},
			"retry_limit":    {"0"},
			"engine_version": {"stable"},
			"pool_name":      {"p1"},
			"domain_key":     {"k-1"},
			"result":         {"td://@/db/t"},
			"scheduled_time": {"1700000000"},
		})
		io.WriteString(w, `{"job":"12345","job_id":"12345","database":"www_access","new_field":{"x":1}}`)
	})
	st := time.Unix(1700000000, 0)
	j, err := c.Jobs.Issue(context.Background(), &IssueRequest{
		Type: "hive", Database: "www_access", Query: "SELECT 1", Priority: intp(-2), RetryLimit: intp(0),
		EngineVersion: "stable", PoolName: "p1", DomainKey: "k-1", Result: "td://@/db/t", ScheduledTime: &st,
	})
	require.NoError(t, err)
	assert.Equal(t, &IssuedJob{JobID: "12345", Database: "www_access", DomainKey: "k-1"}, j)
}

func TestIssueValidation(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		req  IssueRequest
		want string
	}{
		{IssueRequest{Query: "x"}, "database is required"},
		{IssueRequest{Database: "d"}, "query is required"},
		{IssueRequest{Database: "d", Query: "x", Type: "spark"}, "use presto, trino or hive"},
		{IssueRequest{Database: "d", Query: "x", Priority: intp(3)}, "-2 (very low) to 2"},
		{IssueRequest{Database: "d", Query: "x", Result: "td://@/a/b", ResultConnection: &ConnectionTarget{ID: 1}}, "not both"},
		{IssueRequest{Database: "d", Query: "x", Result: "mysql//u:Hunter2@h/db/t"}, "td: Issue: not a result URL: expected scheme://"},
	} {
		_, err := c.Jobs.Issue(ctx, &tc.req)
		require.ErrorContains(t, err, tc.want)
		assert.NotContains(t, err.Error(), "Hunter2")
		verr := tc.req.Validate()
		require.Error(t, verr)
		assert.Equal(t, "td: Issue: "+verr.Error(), err.Error(), "Issue refuses what Validate refuses, before sending")
	}
}

func TestIssueGeneratesDomainKeyAndConnection(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/connections/lookup", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "my_s3_connection", r.URL.Query().Get("name"))
		io.WriteString(w, `{"id":123,"name":"my_s3_connection","url":"s3://AK:SECRET@b"}`)
	})
	mux.HandleFunc("/v3/job/issue/presto/db", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		assert.Regexp(t, `^tdctl-[0-9a-f]{32}$`, r.PostForm.Get("domain_key"))
		assert.Equal(t, "123", r.PostForm.Get("result_connection_id"))
		var settings map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.PostForm.Get("result_connection_settings")), &settings))
		assert.Equal(t, map[string]any{"bucket": "my_bucket", "path": "/logs/"}, settings)
		_, hasPriority := r.PostForm["priority"]
		assert.False(t, hasPriority, "nil priority is not sent")
		io.WriteString(w, `{"job_id":77}`)
	})
	j, err := c.Jobs.Issue(context.Background(), &IssueRequest{Database: "db", Query: "select 1",
		ResultConnection: &ConnectionTarget{Name: "my_s3_connection", Settings: map[string]any{"bucket": "my_bucket", "path": "/logs/"}}})
	require.NoError(t, err)
	assert.Equal(t, "77", j.JobID, "numeric id decoded")
	assert.Equal(t, "db", j.Database)
}

// fakeIssuer behaves like the API's issue endpoint with domain_key
// idempotency, and can fail the first requests and lose a response.
type fakeIssuer struct {
	mu        sync.Mutex
	byKey     map[string]string
	jobs      int
	fail503   int
	loseAfter int // lose the response of this many successful creations
	calls     atomic.Int32
}

func (f *fakeIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail503 > 0 {
		f.fail503--
		w.WriteHeader(503)
		io.WriteString(w, `{"error":"Service Unavailable"}`)
		return
	}
	r.ParseForm()
	key := r.PostForm.Get("domain_key")
	if id, ok := f.byKey[key]; ok && key != "" {
		w.WriteHeader(409)
		fmt.Fprintf(w, `{"error":"Conflict","message":"domain key already used","details":{"conflicts_with":"%s"}}`, id)
		return
	}
	f.jobs++
	id := strconv.Itoa(1000 + f.jobs)
	f.byKey[key] = id
	if f.loseAfter > 0 {
		f.loseAfter--
		hj := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
		return
	}
	fmt.Fprintf(w, `{"job":"%s","job_id":"%s","database":"db"}`, id, id)
}

func TestIssueThroughFailuresMakesOneJob(t *testing.T) {
	c, mux := setup(t)
	f := &fakeIssuer{byKey: map[string]string{}, fail503: 2, loseAfter: 1}
	mux.Handle("/v3/job/issue/presto/db", f)
	j, err := c.Jobs.Issue(context.Background(), &IssueRequest{Database: "db", Query: "select 1"})
	require.NoError(t, err)
	assert.Equal(t, 1, f.jobs, "exactly one job created")
	assert.Equal(t, "1001", j.JobID)
	assert.True(t, j.Existing)
	assert.EqualValues(t, 4, f.calls.Load(), "503, 503, lost, 409")
}

func TestConflictResolvesToOriginalJob(t *testing.T) {
	c, mux := setup(t)
	f := &fakeIssuer{byKey: map[string]string{"nightly-2026-11-25": "555"}}
	mux.Handle("/v3/job/issue/presto/db", f)
	j, err := c.Jobs.Issue(context.Background(), &IssueRequest{Database: "db", Query: "select 1", DomainKey: "nightly-2026-11-25"})
	require.NoError(t, err)
	assert.Equal(t, &IssuedJob{JobID: "555", Database: "db", DomainKey: "nightly-2026-11-25", Existing: true}, j)
	assert.Equal(t, 0, f.jobs)
}

func TestConflictWithoutIDUsesStatusByDomainKey(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/issue/presto/db", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(409)
		io.WriteString(w, `{"error":"Conflict"}`)
	})
	mux.HandleFunc("/v3/job/status_by_domain_key/k%2F1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"job_id":"42","status":"running"}`)
	})
	j, err := c.Jobs.Issue(context.Background(), &IssueRequest{Database: "db", Query: "q", DomainKey: "k/1"})
	require.NoError(t, err)
	assert.Equal(t, "42", j.JobID)
}

func TestRetryAfterHonoured(t *testing.T) {
	c, mux := setup(t, WithRetryPolicy(RetryPolicy{MaxRetries: 2, MinWait: time.Millisecond, MaxWait: 10 * time.Second}))
	var n atomic.Int32
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":"Too Many Requests"}`)
			return
		}
		io.WriteString(w, `{"job_id":"1","status":"success"}`)
	})
	start := time.Now()
	_, err := c.Jobs.Status(context.Background(), "1")
	require.NoError(t, err)
	el := time.Since(start)
	assert.GreaterOrEqual(t, el, 1900*time.Millisecond)
	assert.Less(t, el, 3500*time.Millisecond)
}

func TestRetryAfterBeyondDeadlineFailsFast(t *testing.T) {
	c, mux := setup(t, WithRetryPolicy(RetryPolicy{MaxRetries: 2, MinWait: time.Millisecond, MaxWait: time.Minute}))
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(429)
		io.WriteString(w, `{"error":"Too Many Requests","message":"slow down"}`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Jobs.Status(ctx, "1")
	require.ErrorIs(t, err, ErrRateLimited)
	assert.Less(t, time.Since(start), time.Second)
	var apiErr *APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, 30*time.Second, apiErr.RetryAfter)
}

func TestGiveUpKeepsAPIMessage(t *testing.T) {
	c, mux := setup(t)
	var n atomic.Int32
	mux.HandleFunc("/v3/job/show/1", func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(502)
		io.WriteString(w, `{"error":"Bad Gateway","message":"upstream gone"}`)
	})
	_, err := c.Jobs.Show(context.Background(), "1")
	require.ErrorIs(t, err, ErrServer)
	assert.Contains(t, err.Error(), "upstream gone")
	assert.EqualValues(t, 4, n.Load(), "1 try + 3 retries")
}

// TestExportSentAgainOnlyWhenCertainlyNotStarted: an export answered 503
// is looked up (by its domain_key, then by the job's newest export) and sent
// again only while neither shows an export job; once the job's newest export
// changed, it is not sent again and the caller hears it may have started.
func TestExportSentAgainOnlyWhenCertainlyNotStarted(t *testing.T) {
	for _, started := range []bool{false, true} {
		c, mux := setup(t)
		var posts atomic.Int32
		mux.HandleFunc("/v3/job/result_export/1", func(w http.ResponseWriter, r *http.Request) {
			posts.Add(1)
			w.WriteHeader(503)
		})
		mux.HandleFunc("/v3/job/show/1", func(w http.ResponseWriter, r *http.Request) {
			linked := "null"
			if started && posts.Load() > 0 {
				linked = "2"
			}
			fmt.Fprintf(w, `{"job_id":"1","status":"success","linked_result_export_job_id":%s}`, linked)
		})
		var lookups atomic.Int32
		mux.HandleFunc("/v3/job/status_by_domain_key/", func(w http.ResponseWriter, r *http.Request) {
			lookups.Add(1)
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"not found"}`)
		})
		_, err := c.Results.Export(context.Background(), "1", ExportTarget{ResultURL: "td://@/db/t"})
		require.Error(t, err)
		if !started {
			assert.EqualValues(t, 4, posts.Load(), "1 try + 3 retries, each after a lookup found nothing")
			assert.EqualValues(t, 4, lookups.Load())
			assert.ErrorIs(t, err, ErrServer)
			assert.NotErrorIs(t, err, ErrExportUncertain)
			continue
		}
		assert.EqualValues(t, 1, posts.Load(), "an export of the job appeared: never sent again")
		var ue *ExportUncertainError
		require.ErrorAs(t, err, &ue)
		assert.Equal(t, "2", ue.Candidate)
		assert.ErrorIs(t, err, ErrServer, "it unwraps to the 503")
	}
}

func TestShowDecodesLeniently(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/show/12345", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"job_id":"12345","type":"presto","database":"sample_datasets","status":"success",
		"query":"SELECT 1 AS a, 2 AS b","url":"https://console/jobs/12345","user_name":"me","organization":null,
		"created_at":"2016-07-26 08:14:46 UTC","updated_at":"2016-07-26T08:15:00Z","start_at":"2016-07-26 08:14:47 +0000",
		"end_at":"2016-07-26 08:14:50 UTC","duration":4,"cpu_time":null,"result_size":"22","num_records":1,
		"priority":-1,"retry_limit":0,"result":"mysql://u:topsecret@h/db/t","hive_result_schema":"[[\"a\",\"bigint\"],[\"b\",\"bigint\"]]",
		"debug":{"cmdout":"ok","stderr":""},"linked_result_export_job_id":12346,"result_export_target_job_id":null,
		"some_future_field":[1,2,3]}`)
	})
	j, err := c.Jobs.Show(context.Background(), "12345")
	require.NoError(t, err)
	assert.Equal(t, "12345", j.ID)
	assert.Equal(t, -1, j.Priority)
	require.NotNil(t, j.NumRecords)
	assert.EqualValues(t, 1, *j.NumRecords)
	require.NotNil(t, j.ResultSize)
	assert.EqualValues(t, 22, *j.ResultSize)
	assert.Nil(t, j.CPUTime)
	assert.Equal(t, []Column{{"a", "bigint"}, {"b", "bigint"}}, j.Schema)
	assert.Equal(t, "mysql://u:***@h/db/t", j.Result)
	assert.Equal(t, "12346", j.LinkedResultExportJobID)
	assert.Equal(t, "", j.ResultExportTargetJobID)
	require.NotNil(t, j.StartAt)
	assert.Equal(t, time.Date(2016, 7, 26, 8, 14, 47, 0, time.UTC), *j.StartAt)
	assert.True(t, j.Finished())
}

func TestListAllWalksPages(t *testing.T) {
	c, mux := setup(t)
	total := 45
	var pages []string
	mux.HandleFunc("/v3/job/list", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		pages = append(pages, q.Get("from")+"-"+q.Get("to"))
		assert.Equal(t, "success", q.Get("status"))
		from, _ := strconv.Atoi(q.Get("from"))
		to, _ := strconv.Atoi(q.Get("to"))
		var jobs []map[string]any
		for i := from; i <= to && i < total; i++ {
			jobs = append(jobs, map[string]any{"job_id": strconv.Itoa(total - i), "status": "success"})
		}
		json.NewEncoder(w).Encode(map[string]any{"jobs": jobs, "count": total})
	})
	opts := &ListOptions{Status: "success", PageSize: 20}
	var ids []string
	for j, err := range c.Jobs.All(context.Background(), opts) {
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	assert.Len(t, ids, 45)
	assert.Equal(t, "45", ids[0])
	assert.Equal(t, "1", ids[44])
	assert.Equal(t, []string{"0-19", "20-39", "40-59", "45-64"}, pages, "walks until an empty page")
	assert.Equal(t, 0, opts.From, "caller's options untouched")
	n := 0
	for _, err := range c.Jobs.All(context.Background(), opts) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 45, n, "the sequence can be ranged again")

	ids = nil
	for j, err := range c.Jobs.All(context.Background(), &ListOptions{Status: "success", Limit: 5}) {
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	assert.Equal(t, []string{"45", "44", "43", "42", "41"}, ids)

	_, err := c.Jobs.List(context.Background(), &ListOptions{Status: "done"})
	require.ErrorContains(t, err, "unknown status")
}

func TestKill(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/kill/9", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "POST")
		io.WriteString(w, `{"job_id":"9","former_status":"running"}`)
	})
	former, err := c.Jobs.Kill(context.Background(), "9")
	require.NoError(t, err)
	assert.Equal(t, "running", former)
}

// statusSeq serves status answers from a sequence and show for the end.
func statusSeq(t *testing.T, mux *http.ServeMux, id string, seq []string, final string) *atomic.Int32 {
	var n atomic.Int32
	mux.HandleFunc("/v3/job/status/"+id, func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(seq) {
			i = len(seq) - 1
		}
		nr := "null"
		if Finished(seq[i]) {
			nr = "3"
		}
		fmt.Fprintf(w, `{"job_id":"%s","status":"%s","num_records":%s}`, id, seq[i], nr)
	})
	mux.HandleFunc("/v3/job/show/"+id, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, final)
	})
	return &n
}

func TestWaitSuccess(t *testing.T) {
	c, mux := setup(t)
	n := statusSeq(t, mux, "5", []string{"queued", "running", "running", "success"},
		`{"job_id":"5","status":"success","num_records":3,"debug":{"cmdout":"","stderr":""}}`)
	var seen []string
	j, err := c.Jobs.Wait(context.Background(), "5", &WaitOptions{MinDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond,
		OnStatus: func(s *JobStatus) { seen = append(seen, s.Status) }})
	require.NoError(t, err)
	assert.EqualValues(t, 3, *j.NumRecords)
	assert.EqualValues(t, 4, n.Load())
	assert.Equal(t, []string{"queued", "running", "running", "success"}, seen)
}

func TestWaitFailureCarriesStderr(t *testing.T) {
	c, mux := setup(t)
	statusSeq(t, mux, "6", []string{"running", "error"},
		`{"job_id":"6","status":"error","debug":{"cmdout":"","stderr":"line 1:8: Column 'nope' cannot be resolved"}}`)
	j, err := c.Jobs.Wait(context.Background(), "6", &WaitOptions{MinDelay: time.Millisecond})
	require.ErrorIs(t, err, ErrJobFailed)
	var fe *JobFailedError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "error", fe.Status)
	assert.Contains(t, err.Error(), "Column 'nope' cannot be resolved")
	assert.Equal(t, "error", j.Status)
}

func TestWaitTimeoutAndCancel(t *testing.T) {
	c, mux := setup(t)
	statusSeq(t, mux, "7", []string{"running"}, `{}`)
	_, err := c.Jobs.Wait(context.Background(), "7", &WaitOptions{MinDelay: 5 * time.Millisecond, Timeout: 30 * time.Millisecond})
	require.ErrorIs(t, err, ErrWaitTimeout)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = c.Jobs.Wait(ctx, "7", &WaitOptions{MinDelay: 5 * time.Millisecond})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

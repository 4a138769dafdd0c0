package emulator

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rawGet(t *testing.T, c *apiClient, path string, hdr map[string]string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "TD1 "+c.key)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.hc.Do(req)
}

func TestFaultStatusRetryAfterAndTimes(t *testing.T) {
	s, c := newEmu(t, Options{})
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/job/list", Times: 2, Status: 429, RetryAfter: "2"})
	for i := 0; i < 2; i++ {
		r := c.get("/v3/job/list")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "2", r.header.Get("Retry-After"))
		m := r.json(t)
		assert.Contains(t, m["error"], "injected")
		assert.Equal(t, m["error"], m["message"])
	}
	assert.Equal(t, 200, c.get("/v3/job/list").status, "Times bounds the fault")
	assert.Equal(t, 2, s.Faults().Hits())

	// method and path must both match; Times 0 = every request
	s.Faults().Add(Fault{Method: "POST", Path: "/v3/job/issue/", Status: 503, Body: "<html>bad gateway</html>"})
	assert.Equal(t, 200, c.get("/v3/job/list").status)
	for i := 0; i < 3; i++ {
		r := c.post("/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}})
		assert.Equal(t, 503, r.status)
		assert.Equal(t, "<html>bad gateway</html>", string(r.body))
	}
	assert.Equal(t, 0, s.JobCount())
	s.Faults().Reset()
	c.issue("sample_datasets", "SELECT 1", nil)
	assert.Equal(t, 1, s.JobCount())
}

func TestFaultLostResponseAfterHandler(t *testing.T) {
	s, c := newEmu(t, Options{})
	s.Faults().Add(Fault{Path: "/v3/job/issue/", Times: 1, AfterHandler: true})
	form := url.Values{"query": {"SELECT 1"}, "domain_key": {"lost-1"}}
	req, _ := http.NewRequest("POST", c.base+"/v3/job/issue/presto/sample_datasets", strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "TD1 "+testKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err := c.hc.Do(req)
	require.Error(t, err, "the response must be lost")
	assert.Equal(t, 1, s.JobCount(), "but the job was created")
	// a retry with the same domain_key conflicts and names the job
	r := c.post("/v3/job/issue/presto/sample_datasets", form)
	assert.Equal(t, 409, r.status)
	st := c.get("/v3/job/status_by_domain_key/lost-1").json(t)
	assert.Equal(t, r.json(t)["details"].(map[string]any)["conflicts_with"], st["job_id"])
}

func TestFaultResetAfterBytes(t *testing.T) {
	s, c := newEmu(t, Options{})
	id, err := s.AddFinishedJob(FinishedJob{Schema: bigSchema, Rows: bigRows(50000)})
	require.NoError(t, err)
	full := c.get("/v3/job/result/" + id + "?format=msgpack.gz")
	require.Greater(t, len(full.body), 100000)

	s.Faults().Add(Fault{Path: "/v3/job/result/", Times: 1, ResetAfterBytes: 40000})
	res, err := rawGet(t, c, "/v3/job/result/"+id+"?format=msgpack.gz", nil)
	require.NoError(t, err, "headers arrive")
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, strconv.Itoa(len(full.body)), res.Header.Get("Content-Length"))
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.Error(t, err, "the body must be cut")
	assert.Equal(t, 40000, len(got))
	assert.Equal(t, full.body[:40000], got)

	// resume where it stopped
	r := c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, map[string]string{"Range": "bytes=40000-", "If-Range": res.Header.Get("ETag")})
	require.Equal(t, 206, r.status)
	assert.Equal(t, full.body, append(got, r.body...))
}

func TestFaultTruncateGzip(t *testing.T) {
	s, c := newEmu(t, Options{})
	id, err := s.AddFinishedJob(FinishedJob{Schema: bigSchema, Rows: bigRows(20000)})
	require.NoError(t, err)
	full := c.get("/v3/job/result/" + id + "?format=msgpack.gz")
	s.Faults().Add(Fault{Path: "/v3/job/result/", Times: 1, TruncateGzip: true})
	r := c.get("/v3/job/result/" + id + "?format=msgpack.gz")
	require.Equal(t, 200, r.status)
	assert.Equal(t, len(full.body)/2, len(r.body))
	assert.Equal(t, strconv.Itoa(len(r.body)), r.header.Get("Content-Length"), "Content-Length is consistent with the short body")
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	require.NoError(t, err)
	_, err = io.ReadAll(zr)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the gzip stream is cut")
	assert.Equal(t, full.body, c.get("/v3/job/result/"+id+"?format=msgpack.gz").body, "next request is whole")
}

func TestFaultLatency(t *testing.T) {
	s, c := newEmu(t, Options{})
	s.Faults().Add(Fault{Path: "/v3/job/list", Latency: 200 * time.Millisecond})
	start := time.Now()
	assert.Equal(t, 200, c.get("/v3/job/list").status)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)

	// a client that gives up stops the wait
	cc := *c
	cc.hc = &http.Client{Timeout: 50 * time.Millisecond}
	s.Faults().Reset()
	s.Faults().Add(Fault{Latency: time.Hour})
	_, err := rawGet(t, &cc, "/v3/job/list", nil)
	assert.Error(t, err)
}

func TestFaultEmptyJSONAnswer(t *testing.T) {
	s, c := newEmu(t, Options{})
	id := c.issue("sample_datasets", "SELECT 1", nil)
	c.wait(id)
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/job/show/", Times: 1, Status: 200, Body: "{}"})
	r := c.get("/v3/job/show/" + id)
	assert.Equal(t, 200, r.status)
	assert.Equal(t, "{}", string(r.body))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, "success", c.get("/v3/job/show/" + id).json(t)["status"], "Times 1: the next answer is whole")
}

func TestFaultAfterHandlerWithStatus(t *testing.T) {
	s, c := newEmu(t, Options{})
	id := c.issue("sample_datasets", "SELECT 1", nil)
	c.wait(id)
	require.NoError(t, s.CreateDatabase("out"))
	s.Faults().Add(Fault{Method: "POST", Path: "/v3/job/result_export/", Times: 1, AfterHandler: true, Status: 504})
	r := c.post("/v3/job/result_export/"+id, url.Values{"result": {"td://@/out/t"}})
	assert.Equal(t, 504, r.status, "the gateway's answer")
	assert.Equal(t, 2, s.JobCount(), "but the export job was created")
	info, ok := s.Job(id)
	require.True(t, ok)
	assert.NotEmpty(t, info.LinkedResultExportJobID)
}

func TestFaultHang(t *testing.T) {
	s, c := newEmu(t, Options{})
	s.Faults().Add(Fault{Method: "POST", Path: "/v3/job/issue/", Times: 1, Hang: true, AfterHandler: true})
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/job/list", Times: 1, Hang: true})
	cc := *c
	cc.hc = &http.Client{Timeout: 150 * time.Millisecond}
	start := time.Now()
	_, err := rawGet(t, &cc, "/v3/job/list", nil)
	require.Error(t, err, "no answer comes")
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	req, _ := http.NewRequest("POST", c.base+"/v3/job/issue/presto/sample_datasets", strings.NewReader("query=SELECT+1"))
	req.Header.Set("Authorization", "TD1 "+testKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = cc.hc.Do(req)
	require.Error(t, err)
	assert.Equal(t, 1, s.JobCount(), "AfterHandler: the job exists though no answer came")
	assert.Equal(t, 200, c.get("/v3/job/list").status, "Times bounds the hang")
}

func TestFaultStall(t *testing.T) {
	s, c := newEmu(t, Options{})
	id, err := s.AddFinishedJob(FinishedJob{Schema: bigSchema, Rows: bigRows(20000)})
	require.NoError(t, err)
	full := c.get("/v3/job/result/" + id + "?format=msgpack.gz")

	// a stall shorter than the client's patience: a slow but whole body
	s.Faults().Add(Fault{Path: "/v3/job/result/", Times: 1, Stall: 100 * time.Millisecond, StallAfterBytes: 5000})
	start := time.Now()
	r := c.get("/v3/job/result/" + id + "?format=msgpack.gz")
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	assert.Equal(t, full.body, r.body)

	// a client that stops waiting mid-body: the first bytes came, then nothing
	s.Faults().Add(Fault{Path: "/v3/job/result/", Times: 1, Stall: time.Hour, StallAfterBytes: 5000})
	res, err := rawGet(t, c, "/v3/job/result/"+id+"?format=msgpack.gz", nil)
	require.NoError(t, err, "headers arrive")
	assert.Equal(t, 200, res.StatusCode)
	buf := make([]byte, 5000)
	_, err = io.ReadFull(res.Body, buf)
	require.NoError(t, err)
	assert.Equal(t, full.body[:5000], buf)
	got := make(chan error, 1)
	go func() { _, err := res.Body.Read(make([]byte, 1)); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("the body should stall, read returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	res.Body.Close() // hangs up: the stall ends
	<-got

	// a stall of a JSON answer after its headers
	s.Faults().Add(Fault{Path: "/v3/job/show/", Times: 1, Stall: 80 * time.Millisecond})
	start = time.Now()
	assert.Equal(t, id, c.get("/v3/job/show/" + id).json(t)["job_id"])
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
}

func TestFaultLagStatus(t *testing.T) {
	s, c := newEmu(t, Options{})
	id := c.issue("sample_datasets", "SELECT 1", nil)
	c.wait(id)
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/job/show/", Times: 1, LagStatus: "running"})
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/job/status/", Times: 1, LagStatus: "queued"})
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/job/list", Times: 1, LagStatus: "running"})
	show := c.get("/v3/job/show/" + id).json(t)
	assert.Equal(t, "running", show["status"])
	assert.Nil(t, show["end_at"])
	assert.Nil(t, show["num_records"])
	assert.Equal(t, id, show["job_id"], "the rest is the job's")
	st := c.get("/v3/job/status/" + id).json(t)
	assert.Equal(t, "queued", st["status"])
	list := c.get("/v3/job/list").json(t)
	assert.Equal(t, "running", list["jobs"].([]any)[0].(map[string]any)["status"])
	assert.Equal(t, "success", c.get("/v3/job/show/" + id).json(t)["status"], "caught up")

	// the answer stays gzip-encoded when asked for
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/job/show/", Times: 1, LagStatus: "running"})
	cc := *c
	cc.hc = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	r := cc.do("GET", "/v3/job/show/"+id, nil, map[string]string{"Accept-Encoding": "gzip"})
	assert.Equal(t, "gzip", r.header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"status":"running"`)
}

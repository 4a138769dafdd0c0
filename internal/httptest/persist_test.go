package httptest

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStateSurvivesRestartWithDataDir(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(Options{DataDir: dir})
	require.NoError(t, err)
	c1 := &apiClient{t: t, hc: http.DefaultClient, key: "k"}
	ts1 := startHTTP(t, s1)
	c1.base = ts1

	require.NoError(t, s1.CreateDatabase("keep"))
	cid := s1.AddConnection("saved", "td://@/keep/t", nil)
	id := c1.issue("sample_datasets", "SELECT symbol, close FROM nasdaq ORDER BY time, symbol LIMIT 7", url.Values{"domain_key": {"dk-1"}, "result": {"td://@/keep/t"}})
	show1 := c1.wait(id)
	require.Equal(t, "success", show1["status"])
	csv1 := c1.get("/v3/job/result/" + id + "?format=csv").body
	require.NoError(t, s1.Close())

	s2, err := New(Options{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { s2.Close() })
	c2 := &apiClient{t: t, hc: http.DefaultClient, key: "k", base: startHTTP(t, s2)}
	show2 := c2.show(id)
	delete(show1, "url")
	delete(show2, "url")
	assert.Equal(t, show1, show2)
	assert.Equal(t, csv1, c2.get("/v3/job/result/"+id+"?format=csv").body)
	rows, _, err := s2.TableRows("keep", "t")
	require.NoError(t, err)
	assert.Len(t, rows, 7)
	m := c2.get("/v3/connections/lookup?name=saved").json(t)
	assert.Equal(t, float64(cid), m["id"])
	// ids go on, domain keys still conflict
	id2 := c2.issue("sample_datasets", "SELECT 1", nil)
	assert.Greater(t, mustID(t, id2), mustID(t, id))
	r := c2.post("/v3/job/issue/presto/sample_datasets", url.Values{"query": {"SELECT 1"}, "domain_key": {"dk-1"}})
	assert.Equal(t, 409, r.status)
	assert.Equal(t, 2, s2.JobCount())
}

func TestUnfinishedJobResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	clk := NewManualClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	s1, err := New(Options{DataDir: dir, Clock: clk, QueuedFor: time.Minute})
	require.NoError(t, err)
	c1 := &apiClient{t: t, hc: http.DefaultClient, key: "k", base: startHTTP(t, s1)}
	id := c1.issue("sample_datasets", "SELECT 42 AS answer", nil)
	assert.Equal(t, "queued", c1.show(id)["status"])
	require.NoError(t, s1.Close())

	s2, err := New(Options{DataDir: dir, Clock: clk})
	require.NoError(t, err)
	t.Cleanup(func() { s2.Close() })
	c2 := &apiClient{t: t, hc: http.DefaultClient, key: "k", base: startHTTP(t, s2)}
	assert.Equal(t, "queued", c2.show(id)["status"], "the job keeps its own durations")
	clk.Advance(time.Minute)
	assert.Equal(t, "success", c2.show(id)["status"])
	assert.Equal(t, "[42]\n", string(c2.get("/v3/job/result/"+id+"?format=json").body))
}

func TestInMemoryStateIsRemovedOnClose(t *testing.T) {
	s, err := New(Options{})
	require.NoError(t, err)
	root := s.root
	assert.DirExists(t, root)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice is fine")
	assert.NoDirExists(t, root)
}

func startHTTP(t *testing.T, s *Server) string {
	t.Helper()
	srv := &http.Server{Handler: s}
	ln := listenLoopback(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

package emulator

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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

// state.sqlite is a plain file: the secrets of result URLs and connection
// settings are masked there, and an export that had not run when the
// server stopped fails after a restart instead of running with masked
// credentials.
func TestStateFileKeepsNoSecrets(t *testing.T) {
	dir := t.TempDir()
	clk := NewManualClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	s1, err := New(Options{DataDir: dir, Clock: clk, QueuedFor: time.Minute})
	require.NoError(t, err)
	c1 := &apiClient{t: t, hc: http.DefaultClient, key: "k", base: startHTTP(t, s1)}
	require.NoError(t, s1.CreateDatabase("keep"))
	s1.AddConnection("pg", "postgresql://u:ConnPassw0rd@127.0.0.1:1/db/t", map[string]any{"password": "SettingPassw0rd"})
	keyed := c1.issue("sample_datasets", "SELECT 1 AS a", url.Values{"result": {"td://1/ApiKeySecret9@/keep/t2"}})
	clk.Advance(time.Minute)
	assert.Equal(t, "success", c1.wait(keyed)["status"], "the td:// key is used while the server runs")
	// These two are still queued when the server stops.
	plain := c1.issue("sample_datasets", "SELECT 1 AS a", url.Values{"result": {"td://@/keep/t"}})
	secret := c1.issue("sample_datasets", "SELECT 1 AS a", url.Values{
		"result": {"postgresql://u:ResultPassw0rd@127.0.0.1:1/db/t"},
	})
	assert.Equal(t, "queued", c1.show(secret)["status"])
	require.NoError(t, s1.Close())

	raw, err := os.ReadFile(filepath.Join(dir, "state.sqlite"))
	require.NoError(t, err)
	for _, sec := range []string{"ConnPassw0rd", "SettingPassw0rd", "ResultPassw0rd", "ApiKeySecret9"} {
		assert.NotContains(t, string(raw), sec)
	}

	s2, err := New(Options{DataDir: dir, Clock: clk})
	require.NoError(t, err)
	t.Cleanup(func() { s2.Close() })
	c2 := &apiClient{t: t, hc: http.DefaultClient, key: "k", base: startHTTP(t, s2)}
	clk.Advance(time.Minute)
	got := c2.wait(secret)
	assert.Equal(t, "error", got["status"])
	debug, _ := c2.get("/v3/job/show/" + secret).json(t)["debug"].(map[string]any)
	assert.Contains(t, debug["stderr"], "credentials, which are not kept on disk")
	assert.Equal(t, "success", c2.wait(plain)["status"], "a target without credentials still runs after a restart")
	assert.Equal(t, "success", c2.show(keyed)["status"])
}

// Two emulators on one DataDir would both hand out the same job ids: the
// second is refused while the first runs, and may start once it is closed.
func TestDataDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(Options{DataDir: dir})
	require.NoError(t, err)
	_, err = New(Options{DataDir: dir})
	var inUse *DataDirInUseError
	require.ErrorAs(t, err, &inUse)
	assert.Equal(t, dir, inUse.Dir)
	require.NoError(t, s1.Close())

	s2, err := New(Options{DataDir: dir})
	require.NoError(t, err)
	require.NoError(t, s2.Close())
}

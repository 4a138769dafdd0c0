package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testKey = "1/0123456789abcdef0123456789abcdef"

// apiClient talks to the emulator with plain net/http.
type apiClient struct {
	t    testing.TB
	base string
	key  string
	hc   *http.Client
}

func newEmu(t testing.TB, opts Options) (*Server, *apiClient) {
	t.Helper()
	if opts.APIKeys == nil {
		opts.APIKeys = []string{testKey}
	}
	s, base := NewTestServer(t, opts)
	return s, &apiClient{t: t, base: base, key: testKey, hc: &http.Client{Timeout: 30 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (c *apiClient) do(method, path string, form url.Values, hdr map[string]string) resp {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	require.NoError(c.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "TD1 "+c.key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (c *apiClient) get(path string) resp { c.t.Helper(); return c.do("GET", path, nil, nil) }

func (c *apiClient) post(path string, form url.Values) resp {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return c.do("POST", path, form, nil)
}

// issue issues a presto query on db and returns the job id.
func (c *apiClient) issue(db, query string, extra url.Values) string {
	c.t.Helper()
	form := url.Values{"query": {query}}
	for k, v := range extra {
		form[k] = v
	}
	r := c.post("/v3/job/issue/presto/"+db, form)
	require.Equal(c.t, 200, r.status, "issue: %s", r.body)
	m := r.json(c.t)
	id, ok := m["job_id"].(string)
	require.True(c.t, ok, "job_id must be a string: %s", r.body)
	return id
}

func (c *apiClient) show(id string) map[string]any {
	c.t.Helper()
	r := c.get("/v3/job/show/" + id)
	require.Equal(c.t, 200, r.status, "show: %s", r.body)
	return r.json(c.t)
}

// wait polls status until the job finished (the emulator's default clock
// finishes jobs at once) and returns show.
func (c *apiClient) wait(id string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := c.get("/v3/job/status/" + id)
		require.Equal(c.t, 200, r.status, "status: %s", r.body)
		switch r.json(c.t)["status"] {
		case "success", "error", "killed":
			return c.show(id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("job %s did not finish", id)
	return nil
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(keys ...string) []string {
	out := append([]string(nil), keys...)
	sort.Strings(out)
	return out
}

var (
	statusKeys = sorted("job_id", "status", "created_at", "updated_at", "start_at", "end_at", "duration", "cpu_time", "result_size", "num_records")
	showKeys   = sorted("job_id", "type", "organization", "user_name", "database", "status", "query", "debug", "url", "duration",
		"created_at", "updated_at", "start_at", "end_at", "cpu_time", "result_size", "num_records", "result", "priority",
		"retry_limit", "hive_result_schema", "result_export_target_job_id", "linked_result_export_job_id")
)

func listKeys() []string {
	var out []string
	for _, k := range showKeys {
		if k != "debug" {
			out = append(out, k)
		}
	}
	return out
}

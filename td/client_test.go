package td

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testKey = "1/abcdef0123456789secretkey"

// setup returns a client pointed at a fresh mux. Retries wait 1 ms so tests
// stay fast.
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	all := append([]Option{WithEndpoint(srv.URL), WithRetryPolicy(RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond})}, opts...)
	c, err := NewClient(testKey, all...)
	require.NoError(t, err)
	return c, mux
}

func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	assert.Equal(t, want, r.Method)
}

func testForm(t *testing.T, r *http.Request, want url.Values) {
	t.Helper()
	require.NoError(t, r.ParseForm())
	for k, v := range want {
		assert.Equal(t, v, r.PostForm[k], "form field %s", k)
	}
}

func TestNewClientValidates(t *testing.T) {
	_, err := NewClient("")
	require.ErrorContains(t, err, "TD_API_KEY")
	_, err = NewClient("a b")
	require.Error(t, err)
	_, err = NewClient("k", WithEndpoint("ftp://x"))
	require.ErrorContains(t, err, "scheme")
	_, err = NewClient("k", WithRetryPolicy(RetryPolicy{MaxRetries: -1}))
	require.Error(t, err)
}

func TestResolveEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  DefaultEndpoint,
		"us01":                              DefaultEndpoint,
		"tokyo":                             "https://api.treasuredata.co.jp",
		"JP01":                              "https://api.treasuredata.co.jp",
		"eu01":                              "https://api.eu01.treasuredata.com",
		"ap02":                              "https://api.ap02.treasuredata.com",
		"ap03":                              "https://api.ap03.treasuredata.com",
		"api.treasuredata.co.jp":            "https://api.treasuredata.co.jp",
		"http://127.0.0.1:8080/":            "http://127.0.0.1:8080",
		"https://api.eu01.treasuredata.com": "https://api.eu01.treasuredata.com",
	} {
		got, err := ResolveEndpoint(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ResolveEndpoint("https://user:pw@host")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "pw")
}

// A bare word that is no site is refused at once with the list of sites;
// localhost and names with a dot, a port or a scheme are hosts.
func TestResolveEndpointUnknownSite(t *testing.T) {
	for _, in := range []string{"ap01", "us02", "treasuredata", "EU1"} {
		_, err := ResolveEndpoint(in)
		require.ErrorIs(t, err, ErrInvalidArgument, in)
		assert.Contains(t, err.Error(), "not a known site", in)
		assert.Contains(t, err.Error(), "us01, jp01, eu01, ap02, ap03", in)
	}
	for in, want := range map[string]string{
		"localhost":      "https://localhost",
		"LOCALHOST:8080": "https://LOCALHOST:8080",
		"myproxy:8443":   "https://myproxy:8443",
		"http://ap01":    "http://ap01",
		"api.example":    "https://api.example",
		"[::1]:80":       "https://[::1]:80",
	} {
		got, err := ResolveEndpoint(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

// A key Go's HTTP client would refuse on every attempt is refused at once,
// without quoting it.
func TestNewClientRefusesControlCharacters(t *testing.T) {
	for _, key := range []string{"1/abc\x01def", "1/abc\x7fdef", "1/abc\x1b[2Jdef"} {
		_, err := NewClient(key)
		require.ErrorIs(t, err, ErrInvalidArgument)
		assert.Contains(t, err.Error(), "control character")
		assert.NotContains(t, err.Error(), "abc")
	}
	_, err := NewClient("k", WithUserAgent("x\ny"))
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewClient("k", WithReadIdleTimeout(0))
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestHeadersAndUserAgent(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/status/7", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "TD1 "+testKey, r.Header.Get("Authorization"))
		assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "tdctl/"))
		io.WriteString(w, `{"job_id":"7","status":"running","created_at":"2016-07-26 08:14:46 UTC","num_records":null}`)
	})
	st, err := c.Jobs.Status(context.Background(), "7")
	require.NoError(t, err)
	assert.Equal(t, "running", st.Status)
	assert.Nil(t, st.NumRecords)
	assert.Equal(t, time.Date(2016, 7, 26, 8, 14, 46, 0, time.UTC), st.CreatedAt)
}

func TestPathSegmentsEscaped(t *testing.T) {
	c, mux := setup(t)
	var got string
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		io.WriteString(w, `{"job_id":"1","database":"a/b"}`)
	})
	_, err := c.Jobs.Issue(context.Background(), &IssueRequest{Database: "a/b c", Query: "select 1"})
	require.NoError(t, err)
	assert.Equal(t, "/v3/job/issue/presto/a%2Fb%20c", got)
}

func TestGzipJSONAnswer(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) {
		assert.Contains(t, r.Header.Get("Accept-Encoding"), "gzip")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gzipBytes(t, []byte(`{"job_id":1,"status":"success","num_records":0}`)))
	})
	st, err := c.Jobs.Status(context.Background(), "1")
	require.NoError(t, err)
	assert.Equal(t, "1", st.JobID)
	require.NotNil(t, st.NumRecords)
	assert.EqualValues(t, 0, *st.NumRecords, "0 records is distinct from not finished")
}

func TestDebugLogRedacts(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, mux := setup(t, WithLogger(logger))
	mux.HandleFunc("/v3/job/issue/presto/db", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"job_id":"5"}`)
	})
	_, err := c.Jobs.Issue(context.Background(), &IssueRequest{Database: "db", Query: "select 1", Result: "postgresql://u:hunter2pass@h/db/t"})
	require.NoError(t, err)
	out := buf.String()
	assert.Contains(t, out, "td request")
	assert.Contains(t, out, "status=200")
	assert.NotContains(t, out, testKey)
	assert.NotContains(t, out, "hunter2pass")
}

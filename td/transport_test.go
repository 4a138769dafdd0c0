package td

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingTransport counts the requests that leave the client.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func countingClient(t *testing.T, endpoint string, p RetryPolicy, opts ...Option) (*Client, *countingTransport) {
	t.Helper()
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	all := append([]Option{WithEndpoint(endpoint), WithRetryPolicy(p), WithHTTPClient(&http.Client{Transport: ct})}, opts...)
	c, err := NewClient(testKey, all...)
	require.NoError(t, err)
	return c, ct
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// A refused connection is tried maxRefusedRetries+1 times in all, with the
// policy's waits between — not once per layer that retries.
func TestRefusedConnectionGivesUpWithinTheBudget(t *testing.T) {
	p := RetryPolicy{MaxRetries: 5, MinWait: 100 * time.Millisecond, MaxWait: time.Second}
	c, ct := countingClient(t, "http://"+closedPort(t), p)
	start := time.Now()
	_, err := c.Jobs.List(context.Background(), nil)
	el := time.Since(start)
	require.ErrorIs(t, err, ErrNetwork)
	assert.Contains(t, err.Error(), "connection refused")
	assert.EqualValues(t, maxRefusedRetries+1, ct.n.Load(), "attempts")
	// waits of [50, 100] and [100, 200] ms
	assert.GreaterOrEqual(t, el, 150*time.Millisecond)
	assert.Less(t, el, time.Second)
}

// A host name that does not exist fails at once: one attempt, no wait.
func TestUnknownHostFailsAtOnce(t *testing.T) {
	p := RetryPolicy{MaxRetries: 5, MinWait: time.Second, MaxWait: 10 * time.Second}
	c, ct := countingClient(t, "http://no-such-host.invalid", p)
	start := time.Now()
	_, err := c.Jobs.Show(context.Background(), "1")
	require.ErrorIs(t, err, ErrNetwork)
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	assert.True(t, dnsErr.IsNotFound)
	assert.EqualValues(t, 1, ct.n.Load(), "attempts")
	assert.Less(t, time.Since(start), 900*time.Millisecond, "no back-off wait")
	assert.Regexp(t, `^td: GET /v3/job/show/1: dial tcp: lookup no-such-host.invalid.*: no such host$`, err.Error(), "the one-line shape of any network error")
}

// cutAfterHeaders answers 200 with a Content-Length it never delivers:
// the body stops after start.
func cutAfterHeaders(n *atomic.Int32, start string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		io.WriteString(w, start)
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
}

// An answer cut after its headers is re-read within the same budget the
// transport's retries of a 503 draw from: MaxRetries+1 requests in all,
// whichever layer retries.
func TestCutAnswersShareTheBudget(t *testing.T) {
	var n atomic.Int32
	cut := cutAfterHeaders(&n, `{"job_id":`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Load()%2 == 0 {
			n.Add(1)
			w.WriteHeader(503)
			return
		}
		cut(w, r)
	}))
	t.Cleanup(srv.Close)
	c, _ := countingClient(t, srv.URL, RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond})
	_, err := c.Jobs.Status(context.Background(), "1")
	require.ErrorIs(t, err, ErrNetwork)
	assert.Contains(t, err.Error(), "reading the answer")
	assert.EqualValues(t, 4, n.Load(), "1 try + 3 retries, whoever retries")
}

// A download whose every answer is cut before its first byte gives up
// after MaxRetries+1 requests, not after MaxResumes.
func TestDownloadCutsWithoutProgressShareTheBudget(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(cutAfterHeaders(&n, ""))
	t.Cleanup(srv.Close)
	c, _ := countingClient(t, srv.URL, RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond})
	_, err := c.Results.Download(context.Background(), "1", FormatCSV, io.Discard, nil)
	require.ErrorIs(t, err, ErrTruncated)
	require.ErrorIs(t, err, ErrNetwork)
	assert.EqualValues(t, 4, n.Load(), "1 try + 3 retries")
}

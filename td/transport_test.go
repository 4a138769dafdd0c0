package td

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/backoff"
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

// A refused connection is tried backoff.MaxRefusedRetries+1 times in all, with the
// policy's waits between — not once per layer that retries.
func TestRefusedConnectionGivesUpWithinTheBudget(t *testing.T) {
	p := RetryPolicy{MaxRetries: 5, MinWait: 100 * time.Millisecond, MaxWait: time.Second}
	c, ct := countingClient(t, "http://"+closedPort(t), p)
	start := time.Now()
	_, err := c.Jobs.List(context.Background(), nil)
	el := time.Since(start)
	require.ErrorIs(t, err, ErrNetwork)
	assert.Contains(t, err.Error(), "connection refused")
	assert.EqualValues(t, backoff.MaxRefusedRetries+1, ct.n.Load(), "attempts")
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

// stallServer accepts requests and answers none until the test ends; the
// first `answer` requests (if any) get ok.
func stallServer(t *testing.T, n *atomic.Int32, answerAfter int32, ok string) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > answerAfter {
			io.WriteString(w, ok)
			return
		}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv
}

// A server that accepts and never answers is detected by the read idle
// timeout and retried within the budget: here the second attempt answers.
func TestStalledAnswerIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := stallServer(t, &n, 1, `{"job_id":"1","status":"running"}`)
	c, _ := countingClient(t, srv.URL, RetryPolicy{MaxRetries: 2, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		WithReadIdleTimeout(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	st, err := c.Jobs.Status(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, "running", st.Status)
	assert.EqualValues(t, 2, n.Load())
	assert.Less(t, time.Since(start), 2*time.Second)
}

// When every attempt stalls the call ends after two idle timeouts (each
// costs a whole timeout; a silent server rarely heals) with a network error
// (exit 2), not context.DeadlineExceeded (exit 4 is the caller's deadline
// only).
func TestStalledServerIsANetworkTimeout(t *testing.T) {
	var n atomic.Int32
	srv := stallServer(t, &n, 1000, "")
	c, _ := countingClient(t, srv.URL, RetryPolicy{MaxRetries: 5, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		WithReadIdleTimeout(150*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Jobs.Status(ctx, "1")
	el := time.Since(start)
	require.ErrorIs(t, err, ErrNetwork)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	var ne *NetError
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	assert.Contains(t, err.Error(), "no answer from the server for 150ms (read idle timeout)")
	assert.EqualValues(t, backoff.MaxTimeoutRetries+1, n.Load())
	assert.Less(t, el, 2*time.Second)
}

// The caller's deadline bounds a request in flight: a stalled server and
// an idle timeout longer than the deadline end the call at the deadline,
// with context.DeadlineExceeded.
func TestCallerDeadlineBoundsARequestInFlight(t *testing.T) {
	var n atomic.Int32
	srv := stallServer(t, &n, 1000, "")
	c, _ := countingClient(t, srv.URL, RetryPolicy{MaxRetries: 5, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Jobs.Status(ctx, "1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
}

// A body that stalls mid-way is detected by the idle timeout: a JSON answer
// is re-read, a download resumed where it stopped.
func TestStalledBodyIsRetriedOrResumed(t *testing.T) {
	data := randomBytes(64<<10, 9)
	var n atomic.Int32
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) {
		body := `{"job_id":"1","status":"success"}`
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if n.Add(1) == 1 {
			io.WriteString(w, body[:10])
			w.(http.Flusher).Flush()
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, body)
	})
	var resultReqs atomic.Int32
	mux.HandleFunc("/v3/job/result/1", func(w http.ResponseWriter, r *http.Request) {
		if resultReqs.Add(1) == 1 {
			w.Header().Set("ETag", `"e"`)
			w.Header().Set("Content-Length", "65536")
			w.Write(data[:1000])
			w.(http.Flusher).Flush()
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		(&blobServer{t: t, data: data, etag: `"e"`}).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { close(done); srv.Close() })
	c, _ := countingClient(t, srv.URL, RetryPolicy{MaxRetries: 5, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond},
		WithReadIdleTimeout(150*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Jobs.Status(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, "success", st.Status)
	assert.EqualValues(t, 2, n.Load())

	var got bytes.Buffer
	info, err := c.Results.Download(ctx, "1", FormatCSV, &got, nil)
	require.NoError(t, err)
	assert.Equal(t, data, got.Bytes())
	assert.Equal(t, 1, info.Resumes)
}

// https spoken to an http port cannot heal: one attempt, a network error.
func TestHTTPSToHTTPPortIsNotRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	c, ct := countingClient(t, strings.Replace(srv.URL, "http://", "https://", 1), RetryPolicy{MaxRetries: 5, MinWait: 200 * time.Millisecond, MaxWait: time.Second})
	start := time.Now()
	_, err := c.Jobs.Status(context.Background(), "1")
	require.ErrorIs(t, err, ErrNetwork)
	assert.ErrorIs(t, err, http.ErrSchemeMismatch)
	assert.EqualValues(t, 1, ct.n.Load())
	assert.Less(t, time.Since(start), 150*time.Millisecond)
}

// A TLS server that is no TLS API (its record header is not TLS) is not
// retried either.
func TestTLSRecordHeaderErrorIsNotRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			conn.Close()
		}
	}()
	c, ct := countingClient(t, "https://"+l.Addr().String(), RetryPolicy{MaxRetries: 5, MinWait: 200 * time.Millisecond, MaxWait: time.Second})
	_, err = c.Jobs.Status(context.Background(), "1")
	require.ErrorIs(t, err, ErrNetwork)
	var rh tls.RecordHeaderError
	assert.ErrorAs(t, err, &rh)
	assert.EqualValues(t, 1, ct.n.Load())
}

// Answers that cannot be used are a *ProtocolError (ErrProtocol), not a
// bare string.
func TestUnusableAnswersAreProtocolErrors(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<html>proxy login</html>`)
	})
	mux.HandleFunc("/v3/job/status/2", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		io.WriteString(w, `not gzip at all`)
	})
	for _, id := range []string{"1", "2"} {
		_, err := c.Jobs.Status(context.Background(), id)
		require.ErrorIs(t, err, ErrProtocol, id)
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "/v3/job/status/"+id, pe.Path)
		assert.NotErrorIs(t, err, ErrNetwork)
	}
}

// A timeout of the network that Go reports as matching
// context.DeadlineExceeded (here the transport's header timeout; dial
// timeouts alike) is a NetError that does not: exit 4 is the caller's
// deadline alone.
func TestNetworkTimeoutIsNotTheCallersDeadline(t *testing.T) {
	var n atomic.Int32
	srv := stallServer(t, &n, 1000, "")
	c, err := NewClient(testKey, WithEndpoint(srv.URL),
		WithRetryPolicy(RetryPolicy{MaxRetries: 1, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}),
		WithHTTPClient(&http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 100 * time.Millisecond}}))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Jobs.Status(ctx, "1")
	require.ErrorIs(t, err, ErrNetwork)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	var ne *NetError
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	assert.Contains(t, err.Error(), "timeout awaiting response headers")
	assert.EqualValues(t, 2, n.Load(), "a network timeout is retried")
}

// The answer-path failures that were bare strings carry types too.
func TestAnswerFailuresAreTyped(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/issue/presto/db", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) })
	mux.HandleFunc("/v3/connections/lookup", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"name":"x"}`) })
	ctx := context.Background()
	_, err := c.Jobs.Issue(ctx, &IssueRequest{Database: "db", Query: "select 1"})
	require.ErrorIs(t, err, ErrProtocol)
	assert.Equal(t, "td: POST /v3/job/issue/presto/db: answer carried no job id", err.Error())
	_, err = c.Connections.Lookup(ctx, "x")
	require.ErrorIs(t, err, ErrProtocol)
	_, err = ParseSchema("not json")
	require.ErrorIs(t, err, ErrProtocol)
	_, err = NewRowReader(strings.NewReader("not gzip"), nil)
	require.ErrorIs(t, err, ErrProtocol)

	_, err = c.Connections.Lookup(ctx, " ")
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = ParseFormat("xml")
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = ResolveEndpoint("ftp://x")
	require.ErrorIs(t, err, ErrInvalidArgument)
}

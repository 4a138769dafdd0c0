package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	nethttptest "net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/td"
)

// stallingAPI answers job 1's show as finished, stalls every status call
// (accepts, never answers) and sends the first 1,000 bytes of the result
// (about 100 kB of msgpack.gz) before stalling.
func stallingAPI(t *testing.T) string {
	t.Helper()
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.NoCompression)
	require.NoError(t, err)
	zw.Write(bytes.Repeat([]byte("\x91\xa1x"), 33000)) // rows ["x"]
	require.NoError(t, zw.Close())
	size := strconv.Itoa(gz.Len())
	done := make(chan struct{})
	stall := func(r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v3/job/show/1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"job_id":"1","status":"success","type":"presto","database":"d","num_records":33000,"result_size":`+size+`,"hive_result_schema":"[[\"a\",\"varchar\"]]"}`)
	})
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) { stall(r) })
	mux.HandleFunc("/v3/job/result/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", size)
		w.Write(gz.Bytes()[:1000])
		w.(http.Flusher).Flush()
		stall(r)
	})
	srv := nethttptest.NewServer(mux)
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

// --timeout bounds the whole command: a status call that never answers,
// or a result body that stalls mid-way, ends at the --timeout with exit 4
// (the read idle timeout, 60 s by default, is far away).
func TestTimeoutBoundsRequestsInFlight(t *testing.T) {
	e := newEnv(t, fast())
	e.vars["TD_API_SERVER"] = stallingAPI(t)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"job", "wait", "1", "--timeout", "1s"}, "job 1 did not finish within --timeout 1s; it keeps running"},
		{[]string{"job", "result", "1", "-f", "csv", "--timeout", "1s"}, "job 1 did not finish within --timeout 1s"},
		{[]string{"job", "result", "1", "-f", "msgpack.gz", "--timeout", "1s"}, "job 1 did not finish within --timeout 1s"},
		{[]string{"job", "result", "1", "--wait", "--timeout", "1s"}, "job 1 did not finish within --timeout 1s; it keeps running"},
		{[]string{"job", "num-records", "1", "--wait", "--timeout", "1s"}, "job 1 did not finish within --timeout 1s; it keeps running"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			start := time.Now()
			r := e.run(c.args...)
			el := time.Since(start)
			assert.Equal(t, 4, r.code, r.stderr)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			assert.Equal(t, c.msg, lines[len(lines)-1])
			assert.GreaterOrEqual(t, el, 900*time.Millisecond)
			assert.Less(t, el, 5*time.Second)
		})
	}
}

// Exit 4 is the user's --timeout only: a connection that cannot be made
// is exit 2 with one line, and so is an unknown host, at once.
func TestNetworkFailuresAreExit2(t *testing.T) {
	e := newEnv(t, fast())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	for _, server := range []string{"http://" + addr, "http://no-such-host.invalid"} {
		e.vars["TD_API_SERVER"] = server
		start := time.Now()
		r := e.run("job", "list")
		assert.Equal(t, 2, r.code, r.stderr)
		assert.Regexp(t, `^td: GET /v3/job/list: dial tcp[^\n]*(connection refused|no such host)\n$`, r.stderr)
		assert.Less(t, time.Since(start), 2*time.Second, server)
	}
}

// A 429 whose Retry-After ends past --timeout is not slept on: the API's
// answer comes back at once (exit 2), even with a retry policy that would
// honour a Retry-After of minutes.
func TestRetryAfterPastTimeoutFailsAtOnce(t *testing.T) {
	srv := nethttptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "100")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":"Too Many Requests","message":"slow down"}`)
	}))
	t.Cleanup(srv.Close)
	ios, _, _, errOut := iostreams.Test()
	f := factory.New(ios)
	f.Getenv = vars{"TD_API_KEY": testKey, "TD_API_SERVER": srv.URL, "XDG_CONFIG_HOME": t.TempDir()}.get
	f.HomeDir = t.TempDir()
	f.RetryPolicy = &td.RetryPolicy{MaxRetries: 3, MinWait: 10 * time.Millisecond, MaxWait: 5 * time.Minute}
	start := time.Now()
	code := Run(context.Background(), f, []string{"job", "wait", "1", "--timeout", "20s"})
	assert.Equal(t, 2, code, errOut.String())
	assert.Equal(t, "td: GET /v3/job/status/1: 429 Too Many Requests: Too Many Requests: slow down\n", errOut.String())
	assert.Less(t, time.Since(start), 2*time.Second)
}

type vars map[string]string

func (v vars) get(k string) string { return v[k] }

package td_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

// rangeFault answers the first times requests whose Range starts at
// offset with status (and Retry-After), or, with cut > 0, sends cut bytes
// of the answer and resets the connection; other requests reach the
// emulator untouched.
type rangeFault struct {
	offset       int64
	times        int
	status       int
	retryAfter   string
	cut          int64
	mu           sync.Mutex
	hits, ranged int
}

type faultyRanges struct {
	next   http.Handler
	faults []*rangeFault
	srv    *emulator.Server
}

func (f *faultyRanges) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rng := r.Header.Get("Range")
	for _, rf := range f.faults {
		rf.mu.Lock()
		hit := strings.HasPrefix(rng, fmt.Sprintf("bytes=%d-", rf.offset)) && rf.hits < rf.times
		if hit {
			rf.hits++
		}
		rf.mu.Unlock()
		if !hit {
			continue
		}
		if rf.cut > 0 {
			f.next.ServeHTTP(&cutter{ResponseWriter: w, left: rf.cut}, r)
			return
		}
		if rf.retryAfter != "" {
			w.Header().Set("Retry-After", rf.retryAfter)
		}
		http.Error(w, `{"error":"injected"}`, rf.status)
		return
	}
	f.next.ServeHTTP(w, r)
}

// cutter lets left bytes of the body through, then resets the connection.
type cutter struct {
	http.ResponseWriter
	left int64
}

func (c *cutter) Write(p []byte) (int, error) {
	if int64(len(p)) < c.left {
		n, err := c.ResponseWriter.Write(p)
		c.left -= int64(n)
		return n, err
	}
	n, _ := c.ResponseWriter.Write(p[:c.left])
	rc := http.NewResponseController(c.ResponseWriter)
	_ = rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}
	_ = n
	panic(http.ErrAbortHandler)
}

// parallelSetup serves a result file of size random bytes through
// faultyRanges and returns a client and the job id.
func parallelSetup(t *testing.T, size int, faults ...*rangeFault) (*td.Client, string, []byte, *emulator.Server) {
	t.Helper()
	return parallelSetupWith(t, size, emulator.Options{}, faults...)
}

// parallelSetupWith is parallelSetup with emulator options.
func parallelSetupWith(t *testing.T, size int, opts emulator.Options, faults ...*rangeFault) (*td.Client, string, []byte, *emulator.Server) {
	t.Helper()
	data := pRandom(size, uint64(size))
	file := filepath.Join(t.TempDir(), "result.msgpack.gz")
	require.NoError(t, os.WriteFile(file, data, 0o600))
	opts.APIKeys = []string{fmKey}
	srv, err := emulator.New(opts)
	require.NoError(t, err)
	ts := httptest.NewServer(&faultyRanges{next: srv, faults: faults, srv: srv})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.CloseClientConnections()
		ts.Close()
		srv.Close()
	})
	id, err := srv.AddFinishedJob(emulator.FinishedJob{Schema: []emulator.Column{{Name: "b", Type: "varchar"}}, ResultFile: file})
	require.NoError(t, err)
	c, err := td.NewClient(fmKey, td.WithEndpoint(ts.URL), td.WithRetryPolicy(fmRetry), td.WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, err)
	return c, id, data, srv
}

// memAt is an io.WriterAt in memory.
type memAt struct {
	mu sync.Mutex
	b  []byte
}

func (m *memAt) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// rangesSeen lists the Range headers the emulator received.
func rangesSeen(srv *emulator.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, "/v3/job/result/") {
			out = append(out, r.Header.Get("Range"))
		}
	}
	return out
}

// both runs a parallel download in order (Download) and at offsets
// (DownloadAt) and returns what each wrote.
func both(t *testing.T, c *td.Client, id string, opts *td.DownloadOptions) (inOrder []byte, info1 *td.DownloadInfo, err1 error, at []byte, info2 *td.DownloadInfo, err2 error) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var buf bytes.Buffer
	info1, err1 = c.Results.Download(ctx, id, td.FormatMsgpackGz, &buf, opts)
	m := &memAt{}
	info2, err2 = c.Results.DownloadAt(ctx, id, td.FormatMsgpackGz, m, opts)
	return buf.Bytes(), info1, err1, m.b, info2, err2
}

func TestDownloadParallelIsByteIdentical(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	c, id, data, srv := parallelSetup(t, 1<<20+12345)
	got, info, err, at, info2, err2 := both(t, c, id, &td.DownloadOptions{Parallel: 4})
	require.NoError(t, err)
	require.NoError(t, err2)
	assert.Equal(t, data, got, "Download, in order")
	assert.Equal(t, data, at, "DownloadAt, at offsets")
	assert.Equal(t, 4, info.Parallel)
	assert.Equal(t, 4, info2.Parallel)
	assert.EqualValues(t, len(data), info.Bytes)
	assert.EqualValues(t, len(data), info2.Bytes)
	seen := rangesSeen(srv)
	assert.Contains(t, seen, "bytes=0-65535", "the first range asked alone")
	assert.Contains(t, seen, fmt.Sprintf("bytes=%d-%d", 16*65536, len(data)-1), "the last range")
	assert.Len(t, seen, 2*17, "17 ranges each, nothing fetched twice")
}

func TestDownloadParallelDefaultFromResultSize(t *testing.T) {
	defer td.SetTestChunkSize(256 << 10)()
	// small: one stream, no Range
	c, id, data, srv := parallelSetup(t, 1<<20)
	var buf bytes.Buffer
	info, err := c.Results.Download(t.Context(), id, td.FormatMsgpackGz, &buf, nil)
	require.NoError(t, err)
	assert.Equal(t, data, buf.Bytes())
	assert.Equal(t, 1, info.Parallel)
	assert.Equal(t, []string{""}, rangesSeen(srv))
	// and so at offsets: one request, not 256 KiB ranges one after another
	m := &memAt{}
	info, err = c.Results.DownloadAt(t.Context(), id, td.FormatMsgpackGz, m, nil)
	require.NoError(t, err)
	assert.Equal(t, data, m.b)
	assert.Equal(t, 1, info.Parallel)
	assert.Equal(t, []string{"", ""}, rangesSeen(srv))
	assert.Equal(t, 1, td.ParallelFor(64<<20))
	assert.Equal(t, 4, td.ParallelFor(64<<20+1))
}

func TestDownloadParallelResumesACutRange(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	cut := &rangeFault{offset: 3 * 65536, times: 2, cut: 1000}
	c, id, data, srv := parallelSetup(t, 1<<20, cut)
	var buf bytes.Buffer
	info, err := c.Results.Download(t.Context(), id, td.FormatMsgpackGz, &buf, &td.DownloadOptions{Parallel: 3})
	require.NoError(t, err)
	assert.Equal(t, data, buf.Bytes())
	assert.Equal(t, 1, info.Resumes, "the cut range resumed on its own, once (its resume starts at another offset)")
	assert.Contains(t, rangesSeen(srv), fmt.Sprintf("bytes=%d-%d", 3*65536+1000, 4*65536-1), "resumed where it was cut, to its own end")
}

func TestDownloadParallel5xxAnd429OnOneRange(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	f500 := &rangeFault{offset: 2 * 65536, times: 2, status: 500}
	f429 := &rangeFault{offset: 5 * 65536, times: 1, status: 429, retryAfter: "1"}
	c, id, data, _ := parallelSetup(t, 1<<20, f500, f429)
	start := time.Now()
	got, _, err, _, _, _ := both(t, c, id, &td.DownloadOptions{Parallel: 4})
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, 2, f500.hits)
	assert.Equal(t, 1, f429.hits)
	// fmRetry's MaxWait (20 ms) caps the Retry-After of 1 s
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestDownloadParallelGivesUpWithATypedError(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	bad := &rangeFault{offset: 7 * 65536, times: 1 << 30, status: 503}
	c, id, _, _ := parallelSetup(t, 1<<20, bad)
	_, info, err, _, _, err2 := both(t, c, id, &td.DownloadOptions{Parallel: 4})
	for _, e := range []error{err, err2} {
		var apiErr *td.APIError
		require.ErrorAs(t, e, &apiErr)
		assert.Equal(t, 503, apiErr.StatusCode)
	}
	assert.Less(t, info.Bytes, int64(7*65536+1), "nothing written past the range that failed, in order")
	assert.Equal(t, fmRetries+1, bad.hits/2, "the range's budget, once per call")
}

func TestDownloadParallelResultChangedIsAnError(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	c, id, _, srv := parallelSetup(t, 1<<20)
	var once atomic.Bool
	var buf bytes.Buffer
	_, err := c.Results.Download(t.Context(), id, td.FormatMsgpackGz, &buf, &td.DownloadOptions{Parallel: 2, Progress: func(done, total int64) {
		if done > 200<<10 && once.CompareAndSwap(false, true) {
			// a new result under the same job: another ETag
			// (on a download goroutine: no require here)
			job, _ := srv.Job(id)
			_ = os.WriteFile(job.ResultFile, pRandom(1<<20, 99), 0o600)
			_ = os.Chtimes(job.ResultFile, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
		}
	}})
	require.ErrorIs(t, err, td.ErrTruncated)
}

func TestDownloadParallelWithoutRangeSupportIsOneStream(t *testing.T) {
	defer td.SetTestChunkSize(64 << 10)()
	data := pRandom(300<<10, 5)
	mux := http.NewServeMux()
	mux.HandleFunc("/v3/job/result/1", func(w http.ResponseWriter, r *http.Request) {
		w.Write(data) // no Accept-Ranges, Range ignored
	})
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"job_id":"1","status":"success","result_size":%d}`, len(data))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	c, err := td.NewClient(fmKey, td.WithEndpoint(ts.URL), td.WithRetryPolicy(fmRetry))
	require.NoError(t, err)
	var buf bytes.Buffer
	info, err := c.Results.Download(t.Context(), "1", td.FormatMsgpackGz, &buf, &td.DownloadOptions{Parallel: 4})
	require.NoError(t, err)
	assert.Equal(t, data, buf.Bytes())
	assert.Equal(t, 1, info.Parallel)
}

func pRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}), b)
	return b
}

// noLeaks checks, after every cleanup of t (servers closed, idle
// connections dropped), that no goroutine t started is left.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// tiles checks that the ranges an automatic download asked for cover
// [0, size) once: the first request ("bytes=0-") up to where the first of
// the others starts, then the others end to end.
func tiles(t *testing.T, seen []string, size int) {
	t.Helper()
	require.NotEmpty(t, seen)
	assert.Equal(t, "bytes=0-", seen[0], "the first request asks for everything as a range")
	type rng struct{ a, b int }
	var rs []rng
	for _, s := range seen[1:] {
		var a, b int
		_, err := fmt.Sscanf(s, "bytes=%d-%d", &a, &b)
		require.NoError(t, err, "range %q", s)
		rs = append(rs, rng{a, b})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].a < rs[j].a })
	require.NotEmpty(t, rs, "no range after the first request")
	at := rs[0].a
	assert.Greater(t, at, 0)
	for _, r := range rs {
		assert.Equal(t, at, r.a, "ranges %v leave a gap or overlap", rs)
		at = r.b + 1
	}
	assert.Equal(t, size, at, "the last range ends at the result's end")
}

// DownloadOptions.Parallel 0 on a big result: one stream while it is fast
// enough, nothing else asked for.
func TestDownloadAutoStaysOneStreamWhileFast(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	defer td.SetTestSplit(td.NeverSplit)()
	c, id, data, srv := parallelSetup(t, 1<<20+777)
	got, info, err, at, info2, err2 := both(t, c, id, nil)
	require.NoError(t, err)
	require.NoError(t, err2)
	assert.Equal(t, data, got)
	assert.Equal(t, data, at)
	assert.Equal(t, 1, info.Parallel)
	assert.Equal(t, 1, info2.Parallel)
	assert.EqualValues(t, len(data), info.Bytes)
	assert.EqualValues(t, len(data), info2.Bytes)
	assert.Equal(t, []string{"bytes=0-", "bytes=0-"}, rangesSeen(srv))
}

// ... and once it proves slow, the rest over four connections: the first
// stream stops at the next range boundary, nothing is fetched twice.
func TestDownloadAutoSplitsWhenSlow(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	defer td.SetTestSplit(td.AlwaysSplit)()
	c, id, data, srv := parallelSetup(t, 1<<20+12345)

	var buf bytes.Buffer
	var last atomic.Int64
	info, err := c.Results.Download(t.Context(), id, td.FormatMsgpackGz, &buf, &td.DownloadOptions{Progress: func(done, total int64) {
		assert.EqualValues(t, len(data), total)
		last.Store(done)
	}})
	require.NoError(t, err)
	assert.Equal(t, data, buf.Bytes())
	assert.Equal(t, 4, info.Parallel)
	assert.EqualValues(t, len(data), info.Bytes)
	assert.EqualValues(t, len(data), last.Load(), "progress reaches the total")
	tiles(t, rangesSeen(srv), len(data))

	before := len(rangesSeen(srv))
	m := &memAt{}
	info, err = c.Results.DownloadAt(t.Context(), id, td.FormatMsgpackGz, m, nil)
	require.NoError(t, err)
	assert.Equal(t, data, m.b)
	assert.Equal(t, 4, info.Parallel)
	assert.EqualValues(t, len(data), info.Bytes)
	tiles(t, rangesSeen(srv)[before:], len(data))
}

// A cut of the first stream after the split resumes to its new end only.
func TestDownloadAutoResumesTheFirstStreamToItsBoundary(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	defer td.SetTestSplit(td.AlwaysSplit)()
	cut := &rangeFault{offset: 0, times: 2, cut: 40000}
	c, id, data, srv := parallelSetup(t, 1<<20, cut)
	got, info, err, at, info2, err2 := both(t, c, id, nil)
	require.NoError(t, err)
	require.NoError(t, err2)
	assert.Equal(t, data, got)
	assert.Equal(t, data, at)
	assert.Equal(t, 1, info.Resumes)
	assert.Equal(t, 1, info2.Resumes)
	assert.Equal(t, 2, strings.Count(strings.Join(rangesSeen(srv), ","), "bytes=40000-65535"),
		"the cut stream resumed where it was cut, to the boundary it was given, in each call")
}

// slowWriter takes its time over every write: the consumer, not the
// network, is the limit.
type slowWriter struct {
	bytes.Buffer
	delay time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.Buffer.Write(p)
}

// The pace that decides is the network's: a throttled connection splits,
// a slow writer on a fast connection does not (more connections would only
// fill the reorder buffer).
func TestDownloadAutoSplitsOnASlowLinkNotASlowWriter(t *testing.T) {
	noLeaks(t)
	defer td.SetTestChunkSize(64 << 10)()
	defer td.SetTestSplit(td.TestSplit{Above: 1, Every: 50 * time.Millisecond, Below: 16 << 20, Worth: 0})()

	t.Run("slow link", func(t *testing.T) {
		c, id, data, _ := parallelSetupWith(t, 1<<20, emulator.Options{ConnBandwidth: 2 << 20})
		var buf bytes.Buffer
		info, err := c.Results.Download(t.Context(), id, td.FormatMsgpackGz, &buf, nil)
		require.NoError(t, err)
		assert.Equal(t, data, buf.Bytes())
		assert.Equal(t, 4, info.Parallel, "2 MiB/s per connection is slow: the rest went over 4")
	})
	t.Run("slow writer", func(t *testing.T) {
		c, id, data, srv := parallelSetup(t, 1<<20)
		w := &slowWriter{delay: 10 * time.Millisecond}
		info, err := c.Results.Download(t.Context(), id, td.FormatMsgpackGz, w, &td.DownloadOptions{BufferSize: 32 << 10})
		require.NoError(t, err)
		assert.Equal(t, data, w.Bytes())
		assert.Equal(t, 1, info.Parallel, "the writer took 10 ms per 32 KiB (3 MiB/s), the network did not")
		assert.Equal(t, []string{"bytes=0-"}, rangesSeen(srv))
	})
}

// When another range fails, the first stream's part stops too: the call
// does not wait for a slow tail it will throw away.
func TestDownloadAutoErrorStopsTheFirstStream(t *testing.T) {
	noLeaks(t)
	const chunk = 256 << 10 // above the emulator's pacing burst (64 KiB)
	defer td.SetTestChunkSize(chunk)()
	defer td.SetTestSplit(td.AlwaysSplit)()
	var faults []*rangeFault
	for k := int64(1); k < 8; k++ {
		faults = append(faults, &rangeFault{offset: k * chunk, times: 1 << 30, status: 503})
	}
	// 16 KiB/s: the rest of the first stream's part (about 200 KiB) would
	// take over ten seconds
	c, id, _, _ := parallelSetupWith(t, 2<<20, emulator.Options{ConnBandwidth: 16 << 10}, faults...)
	for _, at := range []bool{false, true} {
		start := time.Now()
		var err error
		if at {
			_, err = c.Results.DownloadAt(t.Context(), id, td.FormatMsgpackGz, &memAt{}, nil)
		} else {
			_, err = c.Results.Download(t.Context(), id, td.FormatMsgpackGz, io.Discard, nil)
		}
		var apiErr *td.APIError
		require.ErrorAs(t, err, &apiErr, "DownloadAt: %v", at)
		assert.Equal(t, 503, apiErr.StatusCode)
		assert.Less(t, time.Since(start), 3*time.Second, "DownloadAt: %v: the call waited for the first stream", at)
	}
}

package td

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// blobServer serves a result with ETag and Range support, cutting the
// connection after the byte offsets in cuts (absolute positions).
type blobServer struct {
	t           *testing.T
	data        []byte
	etag        string
	mu          sync.Mutex
	cuts        []int64
	ranges      []string
	ignoreRange bool
}

func (b *blobServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	start := int64(0)
	rng := r.Header.Get("Range")
	b.ranges = append(b.ranges, rng)
	if rng != "" && !b.ignoreRange {
		if ir := r.Header.Get("If-Range"); ir != "" && ir != b.etag {
			rng = ""
		}
	}
	if rng != "" && !b.ignoreRange {
		s := strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-")
		start, _ = strconv.ParseInt(s, 10, 64)
	}
	cut := int64(-1)
	for len(b.cuts) > 0 && b.cuts[0] <= start {
		b.cuts = b.cuts[1:]
	}
	if len(b.cuts) > 0 {
		cut = b.cuts[0]
		b.cuts = b.cuts[1:]
	}
	b.mu.Unlock()

	w.Header().Set("ETag", b.etag)
	w.Header().Set("Content-Length", strconv.FormatInt(int64(len(b.data))-start, 10))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b.data)-1, len(b.data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	if cut < 0 {
		w.Write(b.data[start:])
		return
	}
	w.Write(b.data[start:cut])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	require.NoError(b.t, err)
	conn.Close()
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func TestDownloadResumesAfterRandomCuts(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c, mux := setup(t)
			data := randomBytes(3<<20+17, seed)
			r := rand.New(rand.NewPCG(seed, 99))
			var cuts []int64
			for i := 0; i < 1+int(r.UintN(5)); i++ {
				cuts = append(cuts, 1+r.Int64N(int64(len(data)-1)))
			}
			sortInt64(cuts)
			bs := &blobServer{t: t, data: data, etag: `"v1"`, cuts: append([]int64(nil), cuts...)}
			mux.Handle("/v3/job/result/1", bs)
			var buf bytes.Buffer
			var lastDone, lastTotal int64
			info, err := c.Results.Download(context.Background(), "1", FormatMsgpackGz, &buf, &DownloadOptions{
				BufferSize: 64 << 10,
				Progress:   func(d, tot int64) { lastDone, lastTotal = d, tot },
			})
			require.NoError(t, err)
			assert.Equal(t, sha256.Sum256(data), sha256.Sum256(buf.Bytes()), "byte-identical after %d cuts at %v", len(cuts), cuts)
			assert.EqualValues(t, len(data), info.Bytes)
			assert.Equal(t, `"v1"`, info.ETag)
			assert.Equal(t, int64(len(data)), lastDone)
			assert.Equal(t, int64(len(data)), lastTotal)
			// every resume asks for exactly the next byte, with If-Range
			for _, rg := range bs.ranges[1:] {
				assert.Regexp(t, `^bytes=\d+-$`, rg)
			}
			assert.Equal(t, len(bs.ranges)-1, info.Resumes)
		})
	}
}

func sortInt64(a []int64) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func TestDownloadRefusesFullBodyOnResume(t *testing.T) {
	c, mux := setup(t)
	data := randomBytes(1<<20, 3)
	mux.Handle("/v3/job/result/1", &blobServer{t: t, data: data, etag: `"v1"`, cuts: []int64{1000}, ignoreRange: true})
	var buf bytes.Buffer
	_, err := c.Results.Download(context.Background(), "1", FormatCSV, &buf, nil)
	require.ErrorIs(t, err, ErrTruncated)
	assert.Contains(t, err.Error(), "instead of 206")
	assert.Equal(t, 1000, buf.Len(), "nothing duplicated")
}

func TestDownloadChangedResultIsAnError(t *testing.T) {
	c, mux := setup(t)
	bs := &blobServer{t: t, data: randomBytes(1<<20, 4), etag: `"v1"`, cuts: []int64{5000}}
	mux.HandleFunc("/v3/job/result/1", func(w http.ResponseWriter, r *http.Request) {
		bs.ServeHTTP(w, r)
		bs.mu.Lock()
		bs.etag = `"v2"` // result replaced after the first response
		bs.mu.Unlock()
	})
	_, err := c.Results.Download(context.Background(), "1", FormatCSV, io.Discard, nil)
	require.ErrorIs(t, err, ErrTruncated)
}

func TestDownloadGivesUpAfterMaxResumes(t *testing.T) {
	c, mux := setup(t)
	data := randomBytes(1<<20, 5)
	cuts := []int64{}
	for i := int64(1); i < 100; i++ {
		cuts = append(cuts, i*100)
	}
	mux.Handle("/v3/job/result/1", &blobServer{t: t, data: data, etag: `"v1"`, cuts: cuts})
	_, err := c.Results.Download(context.Background(), "1", FormatCSV, io.Discard, &DownloadOptions{MaxResumes: 3})
	require.ErrorIs(t, err, ErrTruncated)
	assert.Contains(t, err.Error(), "giving up")
}

func TestDownloadUnknownJob(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/result/404", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		io.WriteString(w, `{"error":"Not Found","message":"Job 404 not found"}`)
	})
	_, err := c.Results.Download(context.Background(), "404", FormatCSV, io.Discard, nil)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = c.Results.Download(context.Background(), "1", Format("xml"), io.Discard, nil)
	require.ErrorContains(t, err, "unknown result format")
}

func msgpackGz(t testing.TB, rows [][]any) []byte {
	var raw bytes.Buffer
	enc := msgpack.NewEncoder(&raw)
	for _, r := range rows {
		require.NoError(t, enc.Encode(r))
	}
	return gzipBytes(t, raw.Bytes())
}

func serveJobWithResult(t *testing.T, mux *http.ServeMux, id string, data []byte, cuts []int64) {
	mux.HandleFunc("/v3/job/show/"+id, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"job_id":"%s","status":"success","num_records":3,"hive_result_schema":"[[\"n\",\"bigint\"],[\"s\",\"varchar\"],[\"f\",\"double\"]]"}`, id)
	})
	mux.Handle("/v3/job/result/"+id, &blobServer{t: t, data: data, etag: `"e"`, cuts: cuts})
}

func TestRowsDecodeAndResume(t *testing.T) {
	c, mux := setup(t)
	var rows [][]any
	for i := 0; i < 50000; i++ {
		rows = append(rows, []any{int64(i), fmt.Sprintf("row-%d", i), float64(i) / 2})
	}
	rows = append(rows, []any{nil, "", 0.0}, []any{uint64(1 << 63), "big", -1.5})
	data := msgpackGz(t, rows)
	serveJobWithResult(t, mux, "1", data, []int64{int64(len(data) / 3), int64(len(data) / 2)})
	rr, err := c.Results.Rows(context.Background(), "1")
	require.NoError(t, err)
	defer rr.Close()
	assert.Equal(t, []Column{{"n", "bigint"}, {"s", "varchar"}, {"f", "double"}}, rr.Columns())
	i := 0
	for row, err := range rr.All() {
		require.NoError(t, err)
		switch {
		case i < 50000:
			assert.Equal(t, []any{int64(i), fmt.Sprintf("row-%d", i), float64(i) / 2}, row)
		case i == 50000:
			assert.Equal(t, []any{nil, "", 0.0}, row)
		default:
			assert.Equal(t, []any{uint64(1 << 63), "big", -1.5}, row)
		}
		i++
	}
	assert.Equal(t, len(rows), i)
	assert.EqualValues(t, len(rows), rr.Count())
}

func TestRowsTruncatedGzipIsAnError(t *testing.T) {
	var rows [][]any
	for i := 0; i < 20000; i++ {
		rows = append(rows, []any{int64(i), "abcdefghij"})
	}
	data := msgpackGz(t, rows)
	rr, err := NewRowReader(bytes.NewReader(data[:len(data)*2/3]), nil)
	require.NoError(t, err)
	defer rr.Close()
	n := 0
	var last error
	for _, err := range rr.All() {
		if err != nil {
			last = err
			break
		}
		n++
	}
	require.ErrorIs(t, last, ErrTruncated)
	assert.Less(t, n, 20000)
}

// countingReader counts what the row reader pulled from its source.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestRowsCloseEarlyStopsReading(t *testing.T) {
	var rows [][]any
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 300000; i++ {
		rows = append(rows, []any{int64(i), strconv.FormatUint(r.Uint64(), 36)})
	}
	data := msgpackGz(t, rows)
	src := &countingReader{r: bytes.NewReader(data)}
	before := runtime.NumGoroutine()
	rr, err := NewRowReader(src, nil)
	require.NoError(t, err)
	_, err = rr.Next()
	require.NoError(t, err)
	require.NoError(t, rr.Close())
	assert.Less(t, src.n.Load(), int64(len(data))/2, "Close does not read the rest of the result")
	_, err = rr.Next()
	require.Error(t, err)
	require.NoError(t, rr.Close(), "Close twice is fine")
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "the inflater goroutine ended")
}

func TestRowsRefusesUnfinishedJob(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/show/1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"job_id":"1","status":"running"}`)
	})
	_, err := c.Results.Rows(context.Background(), "1")
	require.ErrorContains(t, err, "not ready")
}

func TestNotGzip(t *testing.T) {
	_, err := NewRowReader(strings.NewReader("not gzip at all"), nil)
	require.ErrorContains(t, err, "not valid msgpack.gz")
}

package emulator

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResultFormats(t *testing.T) {
	_, c := newEmu(t, Options{})
	id := c.issue("sample_datasets", "SELECT 1 AS n, 2.5 AS x, 'a,b' AS s, NULL AS z, 'tab\there' AS t UNION ALL SELECT 2, 0.5, 'q\"uote', NULL, 'x'", nil)
	show := c.wait(id)
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	assert.Equal(t, `[["n","bigint"],["x","double"],["s","varchar"],["z","varchar"],["t","varchar"]]`, show["hive_result_schema"])
	assert.Equal(t, float64(2), show["num_records"])

	gz := c.get("/v3/job/result/" + id + "?format=msgpack.gz")
	require.Equal(t, 200, gz.status)
	assert.Empty(t, gz.header.Get("Content-Encoding"))
	assert.Equal(t, fmt.Sprint(show["result_size"]), fmt.Sprint(len(gz.body)), "result_size is the msgpack.gz size")
	want := [][]any{{int64(1), 2.5, "a,b", nil, "tab\there"}, {int64(2), 0.5, `q"uote`, nil, "x"}}
	assert.Equal(t, want, decodeMsgpackGz(t, gz.body))

	mp := c.get("/v3/job/result/" + id + "?format=msgpack")
	require.Equal(t, 200, mp.status)
	assert.Equal(t, want, decodeMsgpack(t, mp.body))

	js := c.get("/v3/job/result/" + id + "?format=json")
	assert.Equal(t, "[1,2.5,\"a,b\",null,\"tab\\there\"]\n[2,0.5,\"q\\\"uote\",null,\"x\"]\n", string(js.body))
	csv := c.get("/v3/job/result/" + id + "?format=csv")
	assert.Equal(t, "1,2.5,\"a,b\",,tab\there\n2,0.5,\"q\"\"uote\",,x\n", string(csv.body))
	assert.Contains(t, csv.header.Get("Content-Type"), "text/csv")
	tsv := c.get("/v3/job/result/" + id + "?format=tsv")
	assert.Equal(t, "1\t2.5\ta,b\t\ttab\\there\n2\t0.5\tq\"uote\t\tx\n", string(tsv.body))
	for _, r := range []resp{gz, mp, js, csv, tsv} {
		assert.NotEmpty(t, r.header.Get("ETag"))
		assert.Equal(t, fmt.Sprint(len(r.body)), r.header.Get("Content-Length"))
	}
	assert.Equal(t, 422, c.get("/v3/job/result/"+id+"?format=xml").status)
	// a second request for a derived format is served from the same file
	assert.Equal(t, csv.header.Get("ETag"), c.get("/v3/job/result/"+id+"?format=csv").header.Get("ETag"))
}

func bigRows(n int) func(yield func([]any) bool) {
	return func(yield func([]any) bool) {
		for i := 0; i < n; i++ {
			if !yield([]any{int64(i), fmt.Sprintf("host-%d.example.com", i*7919%100003), float64(i) / 3}) {
				return
			}
		}
	}
}

var bigSchema = []Column{{"i", "bigint"}, {"host", "varchar"}, {"f", "double"}}

func TestRangedDownloadsAndIfRange(t *testing.T) {
	s, c := newEmu(t, Options{})
	id, err := s.AddFinishedJob(FinishedJob{Schema: bigSchema, Rows: bigRows(20000)})
	require.NoError(t, err)
	show := c.show(id)
	assert.Equal(t, float64(20000), show["num_records"])
	assert.Equal(t, `[["i","bigint"],["host","varchar"],["f","double"]]`, show["hive_result_schema"])

	full := c.get("/v3/job/result/" + id + "?format=msgpack.gz")
	require.Equal(t, 200, full.status)
	etag := full.header.Get("ETag")
	require.NotEmpty(t, etag)
	assert.Equal(t, "bytes", full.header.Get("Accept-Ranges"))
	rows := decodeMsgpackGz(t, full.body)
	require.Len(t, rows, 20000)
	assert.Equal(t, []any{int64(19999), fmt.Sprintf("host-%d.example.com", 19999*7919%100003), float64(19999) / 3}, rows[19999])
	size := len(full.body)

	for _, off := range []int{1, 1000, size - 1} {
		r := c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", off), "If-Range": etag})
		require.Equal(t, 206, r.status)
		assert.Equal(t, fmt.Sprintf("bytes %d-%d/%d", off, size-1, size), r.header.Get("Content-Range"))
		assert.Equal(t, full.body[off:], r.body)
		assert.Equal(t, etag, r.header.Get("ETag"))
	}
	// bounded and suffix ranges
	r := c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, map[string]string{"Range": "bytes=10-19"})
	require.Equal(t, 206, r.status)
	assert.Equal(t, full.body[10:20], r.body)
	r = c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, map[string]string{"Range": "bytes=-5"})
	require.Equal(t, 206, r.status)
	assert.Equal(t, full.body[size-5:], r.body)
	// If-Range mismatch: full 200
	r = c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, map[string]string{"Range": "bytes=100-", "If-Range": `"stale"`})
	require.Equal(t, 200, r.status)
	assert.Equal(t, full.body, r.body)
	assert.Empty(t, r.header.Get("Content-Range"))
	// unsatisfiable: 416 with a JSON error
	r = c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)})
	require.Equal(t, 416, r.status)
	assert.Equal(t, fmt.Sprintf("bytes */%d", size), r.header.Get("Content-Range"))
	assert.NotEmpty(t, r.json(t)["message"])
	// HEAD: headers only
	r = c.do("HEAD", "/v3/job/result/"+id+"?format=msgpack.gz", nil, nil)
	assert.Equal(t, 200, r.status)
	assert.Equal(t, fmt.Sprint(size), r.header.Get("Content-Length"))
	assert.Empty(t, r.body)
	// derived formats honour ranges too
	csv := c.get("/v3/job/result/" + id + "?format=csv")
	r = c.do("GET", "/v3/job/result/"+id+"?format=csv", nil, map[string]string{"Range": "bytes=50-", "If-Range": csv.header.Get("ETag")})
	require.Equal(t, 206, r.status)
	assert.Equal(t, csv.body[50:], r.body)
}

func TestAddFinishedJobServesFileInPlace(t *testing.T) {
	s, c := newEmu(t, Options{})
	path := filepath.Join(t.TempDir(), "r.msgpack.gz")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, WriteMsgpackGz(f, bigRows(3)))
	require.NoError(t, f.Close())
	id, err := s.AddFinishedJob(FinishedJob{Database: "bench", Schema: bigSchema, ResultFile: path, NumRecords: 3})
	require.NoError(t, err)
	info, ok := s.Job(id)
	require.True(t, ok)
	assert.Equal(t, path, info.ResultFile)
	assert.Equal(t, "success", info.Status)
	body := c.get("/v3/job/result/" + id + "?format=msgpack.gz").body
	want, _ := os.ReadFile(path)
	assert.Equal(t, want, body)
	assert.Len(t, decodeMsgpack(t, c.get("/v3/job/result/"+id+"?format=msgpack").body), 3)

	_, err = s.AddFinishedJob(FinishedJob{Schema: bigSchema})
	assert.ErrorContains(t, err, "exactly one")
	_, err = s.AddFinishedJob(FinishedJob{Rows: bigRows(1)})
	assert.ErrorContains(t, err, "Schema")
	_, err = s.AddFinishedJob(FinishedJob{Schema: bigSchema, ResultFile: "/no/such/file"})
	assert.Error(t, err)
}

// TestStreamingDoesNotHoldTheStateLock reads a result slowly while other API
// calls must still be answered at once.
func TestStreamingDoesNotHoldTheStateLock(t *testing.T) {
	s, c := newEmu(t, Options{})
	path := filepath.Join(t.TempDir(), "big.msgpack.gz")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.CopyN(f, &pseudoRandom{}, 32<<20) // not gzip; served as bytes all the same
	require.NoError(t, err)
	require.NoError(t, f.Close())
	id, err := s.AddFinishedJob(FinishedJob{Schema: bigSchema, ResultFile: path})
	require.NoError(t, err)

	req, _ := http.NewRequest("GET", c.base+"/v3/job/result/"+id+"?format=msgpack.gz", nil)
	req.Header.Set("Authorization", "TD1 "+testKey)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	buf := make([]byte, 1024)
	_, err = io.ReadFull(res.Body, buf) // the server is now blocked writing the rest
	require.NoError(t, err)
	start := time.Now()
	assert.Equal(t, 200, c.get("/v3/job/show/"+id).status)
	assert.Equal(t, 200, c.get("/v3/job/list").status)
	assert.Less(t, time.Since(start), 2*time.Second)
	n, err := io.Copy(io.Discard, res.Body)
	require.NoError(t, err)
	assert.EqualValues(t, 32<<20, n+1024)
}

type pseudoRandom struct{ x uint64 }

func (p *pseudoRandom) Read(b []byte) (int, error) {
	for i := range b {
		p.x = p.x*6364136223846793005 + 1442695040888963407
		b[i] = byte(p.x >> 56)
	}
	return len(b), nil
}

func TestConcurrentDerivationIsSafe(t *testing.T) {
	s, c := newEmu(t, Options{})
	id, err := s.AddFinishedJob(FinishedJob{Schema: bigSchema, Rows: bigRows(5000)})
	require.NoError(t, err)
	var wg sync.WaitGroup
	bodies := make([][]byte, 6)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", c.base+"/v3/job/result/"+id+"?format=tsv", nil)
			req.Header.Set("Authorization", "TD1 "+testKey)
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				bodies[i], _ = io.ReadAll(res.Body)
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	for _, b := range bodies {
		assert.Equal(t, bodies[0], b)
	}
	assert.Equal(t, 5000, strings.Count(string(bodies[0]), "\n"))
}

func TestWriteMsgpackGz(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteMsgpackGz(&buf, func(yield func([]any) bool) {
		_ = yield([]any{int64(1), "a", nil, true, 1.5}) && yield([]any{int64(-2), "b", nil, false, 0.0})
	}))
	assert.Equal(t, [][]any{{int64(1), "a", nil, true, 1.5}, {int64(-2), "b", nil, false, 0.0}}, decodeMsgpackGz(t, buf.Bytes()))
	_, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	assert.Error(t, WriteMsgpackGz(failWriter{}, bigRows(10)))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// BenchmarkResultDownload measures the result-serving path on loopback.
func BenchmarkResultDownload(b *testing.B) {
	s, base := NewTestServer(b, Options{})
	path := filepath.Join(b.TempDir(), "big.msgpack.gz")
	f, err := os.Create(path)
	require.NoError(b, err)
	const size = 256 << 20
	_, err = io.CopyN(f, &pseudoRandom{}, size)
	require.NoError(b, err)
	require.NoError(b, f.Close())
	id, err := s.AddFinishedJob(FinishedJob{Schema: bigSchema, ResultFile: path})
	require.NoError(b, err)
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", base+"/v3/job/result/"+id+"?format=msgpack.gz", nil)
		req.Header.Set("Authorization", "TD1 k")
		res, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, res.Body, buf)
		res.Body.Close()
		require.NoError(b, err)
		require.EqualValues(b, size, n)
	}
}

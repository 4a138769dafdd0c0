package td_test

// End-to-end tests of the SDK against the TD API emulator: every endpoint the
// SDK calls, with the faults the acceptance criteria name (cut downloads,
// lost responses, 503/429, truncated gzip), real exports (td://, PostgreSQL)
// and job life cycles driven by a manual clock.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"net/http"
	nethttptest "net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

const flowKey = "42/flowtestsecretapikey0123"

// flowRetry keeps retries fast but lets a 2 s Retry-After through uncapped.
var flowRetry = td.RetryPolicy{MaxRetries: 4, MinWait: 5 * time.Millisecond, MaxWait: 5 * time.Second}

// fastWait polls quickly; the emulator finishes jobs at once unless told
// otherwise.
func fastWait() *td.WaitOptions {
	return &td.WaitOptions{MinDelay: 5 * time.Millisecond, MaxDelay: 40 * time.Millisecond, Timeout: 15 * time.Second}
}

// newFlow starts an emulator accepting flowKey and a client pointed at it.
func newFlow(t *testing.T, opts emulator.Options, copts ...td.Option) (*emulator.Server, *td.Client, string) {
	t.Helper()
	opts.APIKeys = []string{flowKey}
	srv, base := emulator.NewTestServer(t, opts)
	all := append([]td.Option{td.WithEndpoint(base), td.WithRetryPolicy(flowRetry)}, copts...)
	c, err := td.NewClient(flowKey, all...)
	require.NoError(t, err)
	return srv, c, base
}

func flowCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// issueWait issues a presto query on sample_datasets and waits for success.
func issueWait(t *testing.T, c *td.Client, query string) *td.Job {
	t.Helper()
	ctx := flowCtx(t)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: query})
	require.NoError(t, err)
	job, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	require.Equal(t, td.StatusSuccess, job.Status)
	return job
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func intPtr(i int) *int { return &i }

// requestsSince returns the requests the emulator saw from index from on,
// filtered by method and path prefix.
func requestsSince(srv *emulator.Server, from int, method, prefix string) []emulator.RequestRecord {
	var out []emulator.RequestRecord
	for _, r := range srv.Requests()[from:] {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// ---------------------------------------------------------------- downloads

// countingHash is the download sink: a sha256 and a byte counter the
// transport probe reads when a request goes out.
type countingHash struct {
	h hash.Hash
	n atomic.Int64
}

func (w *countingHash) Write(p []byte) (int, error) {
	w.h.Write(p)
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// rangeProbe records, for every ranged request, how many bytes the caller's
// writer had received when the request was sent.
type rangeProbe struct {
	base http.RoundTripper
	mu   sync.Mutex
	sink *countingHash
	seen []rangeSeen
}

type rangeSeen struct {
	rangeHdr string
	received int64
}

func (p *rangeProbe) RoundTrip(r *http.Request) (*http.Response, error) {
	if rg := r.Header.Get("Range"); rg != "" {
		p.mu.Lock()
		var got int64 = -1
		if p.sink != nil {
			got = p.sink.n.Load()
		}
		p.seen = append(p.seen, rangeSeen{rg, got})
		p.mu.Unlock()
	}
	return p.base.RoundTrip(r)
}

func (p *rangeProbe) reset(sink *countingHash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sink, p.seen = sink, nil
}

func plainTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	return tr
}

func rangeStart(t *testing.T, hdr string) int64 {
	t.Helper()
	s, ok := strings.CutPrefix(hdr, "bytes=")
	require.True(t, ok, "Range %q", hdr)
	s, ok = strings.CutSuffix(s, "-")
	require.True(t, ok, "Range %q is not an open range", hdr)
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

func TestFlowDownloadResumesAfterRandomCuts(t *testing.T) {
	probe := &rangeProbe{base: plainTransport()}
	srv, c, _ := newFlow(t, emulator.Options{}, td.WithHTTPClient(&http.Client{Transport: probe}))
	ctx := flowCtx(t)
	job := issueWait(t, c, "SELECT * FROM www_access")
	require.NotNil(t, job.ResultSize)
	size := *job.ResultSize
	require.Greater(t, size, int64(64<<10), "the result must be big enough to cut in several places")

	// the reference: a download without faults
	ref := &countingHash{h: sha256.New()}
	info, err := c.Results.Download(ctx, job.ID, td.FormatMsgpackGz, ref, nil)
	require.NoError(t, err)
	require.Equal(t, size, info.Bytes)
	require.Zero(t, info.Resumes)
	require.NotEmpty(t, info.ETag)
	want := ref.h.Sum(nil)

	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := mrand.New(mrand.NewPCG(seed, 0x7d))
			// k distinct absolute cut offsets in (0, size)
			k := 1 + r.IntN(4)
			var cuts []int64
			for len(cuts) < k {
				if o := 1 + r.Int64N(size-1); !slices.Contains(cuts, o) {
					cuts = append(cuts, o)
				}
			}
			slices.Sort(cuts)
			// each response in turn is cut after the bytes up to the next offset
			prev := int64(0)
			for _, o := range cuts {
				srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/result/", ResetAfterBytes: o - prev, Times: 1})
				prev = o
			}
			from := len(srv.Requests())
			hits := srv.Faults().Hits()
			sink := &countingHash{h: sha256.New()}
			probe.reset(sink)

			info, err := c.Results.Download(ctx, job.ID, td.FormatMsgpackGz, sink, &td.DownloadOptions{BufferSize: 16 << 10})
			require.NoError(t, err, "cuts at %v", cuts)
			assert.Equal(t, want, sink.h.Sum(nil), "byte-identical to the fault-free download after cuts at %v", cuts)
			assert.Equal(t, size, info.Bytes)
			assert.Equal(t, size, sink.n.Load())
			assert.Equal(t, k, srv.Faults().Hits()-hits, "every cut was applied")
			assert.Equal(t, k, info.Resumes)

			reqs := requestsSince(srv, from, "GET", "/v3/job/result/")
			require.Len(t, reqs, k+1, "one request, then one per cut")
			assert.Empty(t, reqs[0].Header.Get("Range"))
			assert.Empty(t, reqs[0].Header.Get("If-Range"))
			for i, rq := range reqs[1:] {
				assert.Equal(t, info.ETag, rq.Header.Get("If-Range"), "resumed request %d carries If-Range with the ETag", i+1)
				assert.Equal(t, cuts[i], rangeStart(t, rq.Header.Get("Range")), "resumed request %d starts where the cut was", i+1)
			}
			// client side: each Range asked for exactly the bytes already received
			probe.mu.Lock()
			seen := append([]rangeSeen(nil), probe.seen...)
			probe.mu.Unlock()
			require.Len(t, seen, k)
			for _, s := range seen {
				assert.Equal(t, s.received, rangeStart(t, s.rangeHdr), "Range start equals the bytes already received")
			}
		})
	}
}

func TestFlowDownloadFormats(t *testing.T) {
	_, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	job := issueWait(t, c, "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'")
	for f, want := range map[td.Format]string{
		td.FormatJSON: "[1,\"x\"]\n[2,\"y\"]\n",
		td.FormatCSV:  "1,x\n2,y\n",
		td.FormatTSV:  "1\tx\n2\ty\n",
	} {
		var buf bytes.Buffer
		info, err := c.Results.Download(ctx, job.ID, f, &buf, nil)
		require.NoError(t, err, f)
		assert.Equal(t, want, strings.ReplaceAll(buf.String(), "\r\n", "\n"), f)
		assert.EqualValues(t, buf.Len(), info.Bytes)
	}
	// msgpack.gz comes as sent (not un-gzipped by the transport) and decodes
	var buf bytes.Buffer
	_, err := c.Results.Download(ctx, job.ID, td.FormatMsgpackGz, &buf, nil)
	require.NoError(t, err)
	require.Equal(t, []byte{0x1f, 0x8b}, buf.Bytes()[:2], "gzip magic")
	rr, err := td.NewRowReader(&buf, job.Schema)
	require.NoError(t, err)
	defer rr.Close()
	var rows [][]any
	for row, err := range rr.All() {
		require.NoError(t, err)
		rows = append(rows, row)
	}
	assert.Equal(t, [][]any{{int64(1), "x"}, {int64(2), "y"}}, rows)

	// Open exposes size and ETag
	r, err := c.Results.Open(ctx, job.ID, td.FormatMsgpackGz, nil)
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, *job.ResultSize, r.Size())
	assert.NotEmpty(t, r.ETag())
	n, err := io.Copy(io.Discard, r)
	require.NoError(t, err)
	assert.Equal(t, *job.ResultSize, n)
	assert.Zero(t, r.Resumes())
}

// ------------------------------------------------------------------- issue

func TestFlowIssueThroughFailuresMakesOneJob(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/issue/", Status: http.StatusServiceUnavailable, Times: 2})
	srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/issue/", AfterHandler: true, Times: 1})

	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1 AS a, 2 AS b"})
	require.NoError(t, err)
	assert.Equal(t, 3, srv.Faults().Hits(), "two 503s and one lost response")
	require.Equal(t, 1, srv.JobCount(), "exactly one job was created")
	info, ok := srv.Job(issued.JobID)
	require.True(t, ok, "the client returns the id of the job that exists")
	assert.Equal(t, issued.DomainKey, info.DomainKey)
	assert.True(t, issued.Existing, "the lost response was resolved through the domain_key conflict")
	assert.Regexp(t, `^tdctl-[0-9a-f]{32}$`, issued.DomainKey)

	reqs := requestsSince(srv, 0, "POST", "/v3/job/issue/")
	require.Len(t, reqs, 4, "503, 503, lost, then the answer")
	for _, r := range reqs {
		assert.Equal(t, issued.DomainKey, r.Form.Get("domain_key"), "every try carries the same domain_key")
	}

	job, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	require.NotNil(t, job.NumRecords)
	assert.EqualValues(t, 1, *job.NumRecords)
}

func TestFlowIssueGivesUpOnPersistent503(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/issue/", Status: http.StatusServiceUnavailable, Body: `{"error":"Service Unavailable","message":"maintenance until 10:00"}`})
	_, err := c.Jobs.Issue(flowCtx(t), &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1"})
	require.ErrorIs(t, err, td.ErrServer)
	assert.Contains(t, err.Error(), "maintenance until 10:00", "the server's own message survives the retries")
	assert.Equal(t, 0, srv.JobCount())
	assert.Len(t, requestsSince(srv, 0, "POST", "/v3/job/issue/"), 1+flowRetry.MaxRetries)
}

func TestFlowRetryAfter429(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	job := issueWait(t, c, "SELECT 1")
	srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/status/", Status: http.StatusTooManyRequests, RetryAfter: "2", Times: 1})
	from := len(srv.Requests())
	start := time.Now()
	st, err := c.Jobs.Status(ctx, job.ID)
	elapsed := time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, td.StatusSuccess, st.Status)
	assert.GreaterOrEqual(t, elapsed, 1800*time.Millisecond, "Retry-After: 2 is honoured")
	assert.LessOrEqual(t, elapsed, 4*time.Second)
	reqs := requestsSince(srv, from, "GET", "/v3/job/status/")
	require.Len(t, reqs, 2)
	assert.GreaterOrEqual(t, reqs[1].Time.Sub(reqs[0].Time), 1800*time.Millisecond)
}

func TestFlowPriority(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	for _, p := range []int{-2, -1, 0, 2} {
		issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1", Priority: intPtr(p)})
		require.NoError(t, err)
		info, ok := srv.Job(issued.JobID)
		require.True(t, ok)
		assert.Equal(t, p, info.Priority, "priority %d reaches the server", p)
		assert.Equal(t, []string{strconv.Itoa(p)}, info.Form["priority"])
		job, err := c.Jobs.Show(ctx, issued.JobID)
		require.NoError(t, err)
		assert.Equal(t, p, job.Priority)
	}
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1"})
	require.NoError(t, err)
	info, ok := srv.Job(issued.JobID)
	require.True(t, ok)
	assert.NotContains(t, info.Form, "priority", "a missing priority is not sent")
	assert.NotContains(t, info.Form, "retry_limit", "a missing retry limit is not sent")
	assert.Equal(t, 0, info.Priority)
}

func TestFlowIssueSendsEveryField(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	require.NoError(t, srv.CreateDatabase("flowdb"))
	sched := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{
		Type: "hive", Database: "sample_datasets", Query: "SELECT 7 AS n",
		Result: "td://@/flowdb/in_job", RetryLimit: intPtr(3), EngineVersion: "stable", PoolName: "p1",
		DomainKey: "flow-every-" + randHex(t, 4), ScheduledTime: &sched,
	})
	require.NoError(t, err)
	info, ok := srv.Job(issued.JobID)
	require.True(t, ok)
	assert.Equal(t, "hive", info.Type)
	assert.Equal(t, "td://@/flowdb/in_job", info.Result)
	assert.Equal(t, 3, info.RetryLimit)
	assert.Equal(t, "stable", info.EngineVersion)
	assert.Equal(t, "p1", info.PoolName)
	assert.Equal(t, issued.DomainKey, info.DomainKey)
	assert.Equal(t, sched.Unix(), info.ScheduledTime)

	job, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	assert.Equal(t, "hive", job.Type)
	assert.Equal(t, "td://@/flowdb/in_job", job.Result)
	assert.Equal(t, 3, job.RetryLimit)
	rows, _, err := srv.TableRows("flowdb", "in_job")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(7)}}, rows, "the query job itself exported its result")

	// trino is accepted too
	tr, err := c.Jobs.Issue(ctx, &td.IssueRequest{Type: "trino", Database: "sample_datasets", Query: "SELECT 1"})
	require.NoError(t, err)
	info, _ = srv.Job(tr.JobID)
	assert.Equal(t, "trino", info.Type)
}

func TestFlowStatusByDomainKey(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	key := "flow-" + randHex(t, 8)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1", DomainKey: key})
	require.NoError(t, err)
	assert.False(t, issued.Existing)
	assert.Equal(t, key, issued.DomainKey)

	st, err := c.Jobs.StatusByDomainKey(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, issued.JobID, st.JobID)
	assert.NotEmpty(t, st.Status)

	// issuing again under the same key returns the first job
	again, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 2", DomainKey: key})
	require.NoError(t, err)
	assert.True(t, again.Existing)
	assert.Equal(t, issued.JobID, again.JobID)
	assert.Equal(t, 1, srv.JobCount())

	_, err = c.Jobs.StatusByDomainKey(ctx, "flow-unknown-"+randHex(t, 4))
	require.ErrorIs(t, err, td.ErrNotFound)
}

// ------------------------------------------------------------ job life cycle

func TestFlowNumRecordsNilUntilFinished(t *testing.T) {
	clock := emulator.NewManualClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	srv, c, _ := newFlow(t, emulator.Options{Clock: clock, QueuedFor: 10 * time.Second, RunningFor: 20 * time.Second})
	ctx := flowCtx(t)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1 AS a, 2 AS b"})
	require.NoError(t, err)

	st, err := c.Jobs.Status(ctx, issued.JobID)
	require.NoError(t, err)
	assert.Equal(t, td.StatusQueued, st.Status)
	assert.Nil(t, st.NumRecords)
	assert.Nil(t, st.StartAt)
	assert.False(t, st.Finished())
	job, err := c.Jobs.Show(ctx, issued.JobID)
	require.NoError(t, err)
	assert.Nil(t, job.NumRecords, "null until the job finished")
	assert.Nil(t, job.ResultSize)
	assert.Equal(t, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), job.CreatedAt)

	// a result is not there yet
	_, err = c.Results.Rows(ctx, issued.JobID)
	require.ErrorContains(t, err, "not ready")

	// Wait follows the clock: queued → running → success
	statuses := make(chan *td.JobStatus, 1000)
	done := make(chan struct{})
	var waited *td.Job
	var waitErr error
	go func() {
		defer close(done)
		o := fastWait()
		o.OnStatus = func(s *td.JobStatus) { statuses <- s }
		waited, waitErr = c.Jobs.Wait(ctx, issued.JobID, o)
	}()
	awaitStatus := func(want string) *td.JobStatus {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s := <-statuses:
				if s.Status == want {
					return s
				}
			case <-deadline:
				t.Fatalf("Wait never polled status %s", want)
			}
		}
	}
	awaitStatus(td.StatusQueued)
	clock.Advance(10 * time.Second)
	running := awaitStatus(td.StatusRunning)
	assert.Nil(t, running.NumRecords, "still null while running")
	require.NotNil(t, running.StartAt)
	assert.Equal(t, time.Date(2024, 5, 1, 12, 0, 10, 0, time.UTC), *running.StartAt)
	n, err := c.Jobs.NumRecords(ctx, issued.JobID)
	require.NoError(t, err)
	assert.Nil(t, n)

	clock.Advance(20 * time.Second)
	<-done
	require.NoError(t, waitErr)
	assert.Equal(t, td.StatusSuccess, waited.Status)
	require.NotNil(t, waited.NumRecords)
	assert.EqualValues(t, 1, *waited.NumRecords)
	require.NotNil(t, waited.EndAt)
	assert.Equal(t, time.Date(2024, 5, 1, 12, 0, 30, 0, time.UTC), *waited.EndAt)
	require.NotNil(t, waited.Duration)
	assert.EqualValues(t, 20, *waited.Duration)
	assert.Equal(t, []td.Column{{Name: "a", Type: "bigint"}, {Name: "b", Type: "bigint"}}, waited.Schema)
	n, err = c.Jobs.NumRecords(ctx, issued.JobID)
	require.NoError(t, err)
	require.NotNil(t, n)
	assert.EqualValues(t, 1, *n)
	info, _ := srv.Job(issued.JobID)
	assert.Equal(t, *info.NumRecords, *n)

	// an empty result is 0, not nil
	empty := issueWaitClock(t, c, clock, "SELECT 1 AS a WHERE 1 = 0")
	require.NotNil(t, empty.NumRecords)
	assert.EqualValues(t, 0, *empty.NumRecords)
}

// issueWaitClock issues a query on an emulator with a manual clock, moves
// the clock past the job's life and waits.
func issueWaitClock(t *testing.T, c *td.Client, clock *emulator.ManualClock, q string) *td.Job {
	t.Helper()
	ctx := flowCtx(t)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: q})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	job, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	return job
}

func TestFlowWaitSQLError(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT no_such_column FROM www_access"})
	require.NoError(t, err)
	job, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.ErrorIs(t, err, td.ErrJobFailed)
	var fe *td.JobFailedError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, issued.JobID, fe.JobID)
	assert.Equal(t, td.StatusError, fe.Status)
	info, _ := srv.Job(issued.JobID)
	require.NotEmpty(t, info.Stderr)
	assert.Equal(t, info.Stderr, fe.Stderr, "the SQL error text from debug.stderr")
	assert.Contains(t, fe.Stderr, "no_such_column")
	assert.Contains(t, err.Error(), "no_such_column")
	require.NotNil(t, job)
	assert.Equal(t, td.StatusError, job.Status)
	require.NotNil(t, job.Debug)
	assert.Equal(t, info.Stderr, job.Debug.Stderr)
	assert.Nil(t, job.NumRecords)

	// its result does not exist
	_, err = c.Results.Download(ctx, issued.JobID, td.FormatCSV, io.Discard, nil)
	require.ErrorIs(t, err, td.ErrInvalidRequest)
	_, err = c.Results.Rows(ctx, issued.JobID)
	require.ErrorContains(t, err, "status error")
}

func TestFlowKillRunningJob(t *testing.T) {
	clock := emulator.NewManualClock(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	srv, c, _ := newFlow(t, emulator.Options{Clock: clock, RunningFor: time.Hour})
	ctx := flowCtx(t)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1"})
	require.NoError(t, err)
	st, err := c.Jobs.Status(ctx, issued.JobID)
	require.NoError(t, err)
	require.Equal(t, td.StatusRunning, st.Status)

	srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/kill/", Status: http.StatusBadGateway, Times: 1})
	former, err := c.Jobs.Kill(ctx, issued.JobID)
	require.NoError(t, err, "kill is retried")
	assert.Equal(t, td.StatusRunning, former)

	job, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.ErrorIs(t, err, td.ErrJobFailed)
	var fe *td.JobFailedError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, td.StatusKilled, fe.Status)
	assert.Contains(t, fe.Stderr, "Killed")
	require.NotNil(t, job)
	assert.Equal(t, td.StatusKilled, job.Status)
	assert.Nil(t, job.NumRecords)

	// the clock passing the job's end changes nothing
	clock.Advance(2 * time.Hour)
	st, err = c.Jobs.Status(ctx, issued.JobID)
	require.NoError(t, err)
	assert.Equal(t, td.StatusKilled, st.Status)
	former, err = c.Jobs.Kill(ctx, issued.JobID)
	require.NoError(t, err)
	assert.Equal(t, td.StatusKilled, former)

	// a queued job can be killed too
	clock2 := emulator.NewManualClock(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	_, c2, _ := newFlow(t, emulator.Options{Clock: clock2, QueuedFor: time.Hour})
	q, err := c2.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1"})
	require.NoError(t, err)
	former, err = c2.Jobs.Kill(ctx, q.JobID)
	require.NoError(t, err)
	assert.Equal(t, td.StatusQueued, former)

	_, err = c.Jobs.Kill(ctx, "999999")
	require.ErrorIs(t, err, td.ErrNotFound)
}

func TestFlowWaitTimeoutAndCancel(t *testing.T) {
	clock := emulator.NewManualClock(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	_, c, _ := newFlow(t, emulator.Options{Clock: clock, QueuedFor: time.Hour})
	ctx := flowCtx(t)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1"})
	require.NoError(t, err)
	o := fastWait()
	o.Timeout = 100 * time.Millisecond
	_, err = c.Jobs.Wait(ctx, issued.JobID, o)
	require.ErrorIs(t, err, td.ErrWaitTimeout)

	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.Jobs.Wait(cctx, issued.JobID, &td.WaitOptions{MinDelay: 10 * time.Millisecond})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestFlowListAndAll(t *testing.T) {
	_, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, issueWait(t, c, fmt.Sprintf("SELECT %d AS n", i)).ID)
	}
	failed, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT nope FROM nowhere"})
	require.NoError(t, err)
	_, err = c.Jobs.Wait(ctx, failed.JobID, fastWait())
	require.ErrorIs(t, err, td.ErrJobFailed)
	newestFirst := append([]string{failed.JobID}, ids...)
	slices.Reverse(newestFirst[1:])

	page, err := c.Jobs.List(ctx, &td.ListOptions{PageSize: 2})
	require.NoError(t, err)
	require.Len(t, page.Jobs, 2)
	assert.EqualValues(t, 6, page.Count)
	assert.Equal(t, newestFirst[:2], []string{page.Jobs[0].ID, page.Jobs[1].ID})
	assert.Nil(t, page.Jobs[0].Debug, "list entries carry no debug")

	var all []string
	for j, err := range c.Jobs.All(ctx, &td.ListOptions{PageSize: 4}) {
		require.NoError(t, err)
		all = append(all, j.ID)
	}
	assert.Equal(t, newestFirst, all, "All walks every page, newest first")

	var ok []string
	for j, err := range c.Jobs.All(ctx, &td.ListOptions{Status: td.StatusSuccess, PageSize: 2, Limit: 3}) {
		require.NoError(t, err)
		assert.Equal(t, td.StatusSuccess, j.Status)
		ok = append(ok, j.ID)
	}
	assert.Equal(t, newestFirst[1:4], ok)

	var bad []string
	for j, err := range c.Jobs.All(ctx, &td.ListOptions{Status: td.StatusError}) {
		require.NoError(t, err)
		bad = append(bad, j.ID)
	}
	assert.Equal(t, []string{failed.JobID}, bad)
}

// ----------------------------------------------------------------- results

func TestFlowRowsTruncatedGzip(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	job := issueWait(t, c, "SELECT * FROM www_access")
	require.EqualValues(t, 5000, *job.NumRecords)
	srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/result/", TruncateGzip: true, Times: 1})

	require.Greater(t, *job.ResultSize, int64(1<<10), "half the body is past the gzip header")
	rows, err := c.Results.Rows(ctx, job.ID)
	require.NoError(t, err)
	defer rows.Close()
	var n int64
	var last error
	for _, err := range rows.All() {
		if err != nil {
			last = err
			break
		}
		n++
	}
	require.Error(t, last, "a truncated result must not end silently (got %d of 5000 rows)", n)
	assert.ErrorIs(t, last, td.ErrTruncated)
	assert.Less(t, n, int64(5000))
	assert.Equal(t, n, rows.Count())
	_, err = rows.Next()
	assert.ErrorIs(t, err, td.ErrTruncated, "the error sticks")
}

func TestFlowRowsResumeAfterReset(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	job := issueWait(t, c, "SELECT * FROM www_access ORDER BY time")
	srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/result/", ResetAfterBytes: *job.ResultSize / 3, Times: 2})
	rows, err := c.Results.Rows(ctx, job.ID)
	require.NoError(t, err)
	defer rows.Close()
	cols := rows.Columns()
	require.Len(t, cols, 9)
	assert.Equal(t, "user", cols[0].Name)
	assert.Equal(t, "time", cols[8].Name)
	var prev int64
	var n int
	for row, err := range rows.All() {
		require.NoError(t, err)
		require.Len(t, row, 9)
		ts, ok := row[8].(int64)
		require.True(t, ok, "time is an int64, got %T", row[8])
		require.GreaterOrEqual(t, ts, prev, "rows in order across resumes")
		prev = ts
		n++
	}
	assert.Equal(t, 5000, n)
	assert.Equal(t, 2, srv.Faults().Hits())
}

func TestFlowResultErrors(t *testing.T) {
	_, c, base := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	_, err := c.Jobs.Show(ctx, "424242")
	require.ErrorIs(t, err, td.ErrNotFound)
	var ae *td.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "/v3/job/show/424242", ae.Path)
	_, err = c.Jobs.Status(ctx, "424242")
	require.ErrorIs(t, err, td.ErrNotFound)
	_, err = c.Results.Open(ctx, "424242", td.FormatMsgpackGz, nil)
	require.ErrorIs(t, err, td.ErrNotFound)
	_, err = c.Results.Rows(ctx, "424242")
	require.ErrorIs(t, err, td.ErrNotFound)
	_, err = c.Jobs.Issue(ctx, &td.IssueRequest{Database: "no_such_db", Query: "SELECT 1"})
	require.ErrorIs(t, err, td.ErrNotFound)

	// a wrong key is refused and never echoed
	bad, err := td.NewClient("42/wrongkeywrongkey", td.WithEndpoint(base), td.WithRetryPolicy(flowRetry))
	require.NoError(t, err)
	_, err = bad.Jobs.List(ctx, nil)
	require.ErrorIs(t, err, td.ErrUnauthorized)
	assert.NotContains(t, err.Error(), "wrongkeywrongkey")
}

// ----------------------------------------------------------------- exports

func TestFlowExportByURLAndConnection(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	require.NoError(t, srv.CreateDatabase("flowdb"))
	job := issueWait(t, c, "SELECT 1 AS id, 'a' AS s UNION ALL SELECT 2, 'b'")

	exportID, err := c.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: "td://@/flowdb/by_url"})
	require.NoError(t, err)
	ex, err := c.Jobs.Wait(ctx, exportID, fastWait())
	require.NoError(t, err)
	assert.Equal(t, job.ID, ex.ResultExportTargetJobID)
	require.NotNil(t, ex.NumRecords)
	assert.EqualValues(t, 2, *ex.NumRecords)
	rows, cols, err := srv.TableRows("flowdb", "by_url")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(1), "a"}, {int64(2), "b"}}, rows)
	assert.Equal(t, []emulator.Column{{Name: "id", Type: "bigint"}, {Name: "s", Type: "varchar"}}, cols)
	src, err := c.Jobs.Show(ctx, job.ID)
	require.NoError(t, err)
	assert.Equal(t, exportID, src.LinkedResultExportJobID)

	// by connection name, with settings overriding the connection's
	cid := srv.AddConnection("flow_td", "td://@/flowdb/conn_default", map[string]any{"mode": "append"})
	conn, err := c.Connections.Lookup(ctx, "flow_td")
	require.NoError(t, err)
	assert.Equal(t, cid, conn.ID)
	assert.Equal(t, "flow_td", conn.Name)
	for range 2 { // replace twice: still two rows
		exportID, err = c.Results.Export(ctx, job.ID, td.ExportTarget{Connection: &td.ConnectionTarget{Name: "flow_td", Settings: map[string]any{"table": "by_conn", "mode": "replace"}}})
		require.NoError(t, err)
		_, err = c.Jobs.Wait(ctx, exportID, fastWait())
		require.NoError(t, err)
	}
	info, _ := srv.Job(exportID)
	assert.Equal(t, cid, info.ResultConnectionID)
	assert.JSONEq(t, `{"table":"by_conn","mode":"replace"}`, info.ResultConnectionSettings)
	rows, _, err = srv.TableRows("flowdb", "by_conn")
	require.NoError(t, err)
	assert.Len(t, rows, 2)

	// by connection id, as part of the query job (td> with result_connection)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 5 AS five",
		ResultConnection: &td.ConnectionTarget{ID: cid, Settings: map[string]any{"table": "from_issue"}}})
	require.NoError(t, err)
	_, err = c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	rows, _, err = srv.TableRows("flowdb", "from_issue")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(5)}}, rows)

	// unknown connection name
	_, err = c.Connections.Lookup(ctx, "no-such-connection")
	require.ErrorIs(t, err, td.ErrNotFound)
	assert.Contains(t, err.Error(), "no-such-connection")
	_, err = c.Results.Export(ctx, job.ID, td.ExportTarget{Connection: &td.ConnectionTarget{Name: "no-such-connection"}})
	require.ErrorIs(t, err, td.ErrNotFound)

	// exporting an unfinished or unknown job is refused by the server
	_, err = c.Results.Export(ctx, "424242", td.ExportTarget{ResultURL: "td://@/flowdb/x"})
	require.ErrorIs(t, err, td.ErrNotFound)
}

func TestFlowConnectionLookupRedacts(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	pw := "ConnPw" + randHex(t, 6)
	srv.AddConnection("flow_pg", "postgresql://postgres:"+pw+"@127.0.0.1:5432/test", map[string]any{"table": "t"})
	conn, err := c.Connections.Lookup(flowCtx(t), "flow_pg")
	require.NoError(t, err)
	assert.NotContains(t, conn.URL, pw)
	assert.Contains(t, conn.URL, "postgresql://postgres:"+td.Mask+"@127.0.0.1:5432/test")
}

func TestFlowExportAllPerTarget(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	require.NoError(t, srv.CreateDatabase("flowdb"))
	job := issueWait(t, c, "SELECT 1 AS a, 2 AS b")
	mysqlPw := "MyPw" + randHex(t, 6)
	targets := []td.ExportTarget{
		{ResultURL: "td://@/flowdb/all_ok"},
		{ResultURL: "mysql://root:" + mysqlPw + "@127.0.0.1:3306/app/t"},
		{Connection: &td.ConnectionTarget{Name: "no-such-connection"}},
	}
	out, err := c.Results.ExportAll(ctx, job.ID, targets, fastWait())
	require.Error(t, err)
	require.Len(t, out, 3)

	assert.NoError(t, out[0].Err)
	assert.NotEmpty(t, out[0].ExportJobID)
	require.NotNil(t, out[0].Job)
	assert.Equal(t, td.StatusSuccess, out[0].Job.Status)
	rows, _, rerr := srv.TableRows("flowdb", "all_ok")
	require.NoError(t, rerr)
	assert.Equal(t, [][]any{{int64(1), int64(2)}}, rows)

	assert.ErrorIs(t, out[1].Err, td.ErrJobFailed, "the mysql export job was started and failed")
	assert.NotEmpty(t, out[1].ExportJobID)
	require.NotNil(t, out[1].Job)
	assert.Equal(t, td.StatusError, out[1].Job.Status)
	var fe *td.JobFailedError
	require.ErrorAs(t, out[1].Err, &fe)
	assert.Contains(t, fe.Stderr, "mysql")

	assert.ErrorIs(t, out[2].Err, td.ErrNotFound, "the connection lookup failed before any job")
	assert.Empty(t, out[2].ExportJobID)
	assert.Nil(t, out[2].Job)

	assert.Equal(t, targets, []td.ExportTarget{out[0].Target, out[1].Target, out[2].Target}, "outcomes in the order given")
	msg := err.Error()
	assert.Contains(t, msg, "mysql://root:"+td.Mask+"@127.0.0.1:3306/app/t")
	assert.Contains(t, msg, "connection no-such-connection")
	assert.NotContains(t, msg, "td://@/flowdb/all_ok", "a successful target is not reported as failed")
	assertNoSecret(t, mysqlPw, out)
}

// assertNoSecret fails when secret appears anywhere in v (errors rendered
// with %v, jobs as JSON and with %+v).
func assertNoSecret(t *testing.T, secret string, v ...any) {
	t.Helper()
	for _, x := range v {
		var texts []string
		switch o := x.(type) {
		case []td.ExportOutcome:
			for _, e := range o {
				texts = append(texts, e.Target.String())
				if e.Err != nil {
					texts = append(texts, e.Err.Error(), fmt.Sprintf("%+v", e.Err))
				}
				if e.Job != nil {
					b, _ := json.Marshal(e.Job)
					texts = append(texts, string(b), fmt.Sprintf("%+v", *e.Job))
					if e.Job.Debug != nil {
						texts = append(texts, e.Job.Debug.Stderr, e.Job.Debug.CmdOut)
					}
				}
			}
		case error:
			if o != nil {
				texts = append(texts, o.Error(), fmt.Sprintf("%+v", o))
			}
		default:
			b, _ := json.Marshal(o)
			texts = append(texts, string(b), fmt.Sprintf("%+v", o))
		}
		for _, s := range texts {
			assert.NotContains(t, s, secret)
		}
	}
}

func TestFlowExportToPostgreSQL(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	pg, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	require.NoError(t, err, "PostgreSQL must run on 127.0.0.1:5432 (user postgres, database test)")
	table := "tdctl_flow_" + randHex(t, 6)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pg.Exec(cctx, `DROP TABLE IF EXISTS public.`+pgx.Identifier{table}.Sanitize())
		assert.NoError(t, err)
		_ = pg.Close(cctx)
	})
	password := "SOMEPASSWORD" + randHex(t, 4)
	resultURL := "postgresql://postgres:" + password + "@127.0.0.1:5432/test/" + table + "?mode=replace"

	job := issueWait(t, c, "SELECT code, COUNT(1) AS n FROM www_access GROUP BY code ORDER BY code")
	rr, err := c.Results.Rows(ctx, job.ID)
	require.NoError(t, err)
	var want [][]any
	for row, err := range rr.All() {
		require.NoError(t, err)
		want = append(want, row)
	}
	require.NoError(t, rr.Close())
	require.NotEmpty(t, want)

	for round := range 2 { // mode=replace: the second export replaces the first
		exportID, err := c.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: resultURL})
		require.NoError(t, err)
		ex, err := c.Jobs.Wait(ctx, exportID, fastWait())
		require.NoError(t, err, "round %d", round)
		assert.EqualValues(t, len(want), *ex.NumRecords)
		info, _ := srv.Job(exportID)
		assert.Equal(t, resultURL, info.Result, "the server got the real URL")
		assert.Contains(t, ex.Result, "postgresql://postgres:"+td.Mask+"@127.0.0.1:5432/test/"+table)
		assertNoSecret(t, password, ex, err)
		list, err := c.Jobs.List(ctx, nil)
		require.NoError(t, err)
		assertNoSecret(t, password, list)
	}

	pgRows, err := pg.Query(ctx, `SELECT code, n FROM public.`+pgx.Identifier{table}.Sanitize()+` ORDER BY code`)
	require.NoError(t, err)
	var got [][]any
	for pgRows.Next() {
		var code, n int64
		require.NoError(t, pgRows.Scan(&code, &n))
		got = append(got, []any{code, n})
	}
	require.NoError(t, pgRows.Err())
	assert.Equal(t, want, got, "the rows landed in PostgreSQL, replaced not appended")

	// a failing PostgreSQL export (nothing listens on port 1) keeps the
	// password out of every error and job field
	badURL := "postgresql://postgres:" + password + "@127.0.0.1:1/test/" + table
	out, err := c.Results.ExportAll(ctx, job.ID, []td.ExportTarget{{ResultURL: badURL}, {ResultURL: resultURL}}, fastWait())
	require.Error(t, err)
	require.ErrorIs(t, out[0].Err, td.ErrJobFailed)
	require.NoError(t, out[1].Err)
	assertNoSecret(t, password, out, err)
	info, _ := srv.Job(out[0].ExportJobID)
	assert.NotContains(t, info.Stderr, password, "the emulator scrubs it too")

	// the same export issued as part of the query job (td> with result)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1 AS code, 99 AS n", Result: resultURL})
	require.NoError(t, err)
	ij, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	assertNoSecret(t, password, ij)
	var n int64
	require.NoError(t, pg.QueryRow(ctx, `SELECT n FROM public.`+pgx.Identifier{table}.Sanitize()).Scan(&n))
	assert.EqualValues(t, 99, n)
}

// --------------------------------------------------------- unknown fields

// extraFields wraps the emulator and adds unknown keys to every JSON object
// of every successful JSON answer (result downloads pass through untouched).
type extraFields struct {
	next     http.Handler
	injected atomic.Int64
}

func (x *extraFields) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v3/job/result/") {
		x.next.ServeHTTP(w, r)
		return
	}
	r.Header.Del("Accept-Encoding") // plain JSON to rewrite
	rec := nethttptest.NewRecorder()
	x.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			if b, err := json.Marshal(addUnknown(v)); err == nil {
				body = b
				x.injected.Add(1)
			}
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

func addUnknown(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = addUnknown(e)
		}
		x["zz_new_object"] = map[string]any{"nested": []any{1, "two", nil}, "job_id": 0}
		x["zz_new_list"] = []any{map[string]any{"status": "bogus"}}
		x["zz_new_string"] = "x"
		x["zz_new_null"] = nil
	case []any:
		for i := range x {
			x[i] = addUnknown(x[i])
		}
	}
	return v
}

func TestFlowUnknownJSONFieldsIgnored(t *testing.T) {
	srv, err := emulator.New(emulator.Options{APIKeys: []string{flowKey}})
	require.NoError(t, err)
	wrap := &extraFields{next: srv}
	hs := nethttptest.NewServer(wrap)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		assert.NoError(t, srv.Close())
	})
	c, err := td.NewClient(flowKey, td.WithEndpoint(hs.URL), td.WithRetryPolicy(flowRetry))
	require.NoError(t, err)
	ctx := flowCtx(t)
	require.NoError(t, srv.CreateDatabase("flowdb"))

	// the wrapper really adds keys
	req, err := http.NewRequestWithContext(ctx, "GET", hs.URL+"/v3/job/list", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "TD1 "+flowKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(raw), "zz_new_object")

	key := "flow-unknown-" + randHex(t, 4)
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets", Query: "SELECT 1 AS a, 2 AS b", DomainKey: key, Priority: intPtr(-1)})
	require.NoError(t, err)
	job, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	assert.Equal(t, issued.JobID, job.ID)
	assert.Equal(t, td.StatusSuccess, job.Status)
	assert.EqualValues(t, 1, *job.NumRecords)
	assert.Equal(t, -1, job.Priority)
	assert.Equal(t, "sample_datasets", job.Database)
	assert.Len(t, job.Schema, 2)
	require.NotNil(t, job.Debug)

	st, err := c.Jobs.StatusByDomainKey(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, issued.JobID, st.JobID)
	assert.Equal(t, td.StatusSuccess, st.Status)

	page, err := c.Jobs.List(ctx, nil)
	require.NoError(t, err)
	require.Len(t, page.Jobs, 1)
	assert.Equal(t, issued.JobID, page.Jobs[0].ID)

	former, err := c.Jobs.Kill(ctx, issued.JobID)
	require.NoError(t, err)
	assert.Equal(t, td.StatusSuccess, former)

	srv.AddConnection("flow_td", "td://@/flowdb/t", nil)
	conn, err := c.Connections.Lookup(ctx, "flow_td")
	require.NoError(t, err)
	assert.Equal(t, "flow_td", conn.Name)

	exportID, err := c.Results.Export(ctx, job.ID, td.ExportTarget{Connection: &td.ConnectionTarget{Name: "flow_td"}})
	require.NoError(t, err)
	ex, err := c.Jobs.Wait(ctx, exportID, fastWait())
	require.NoError(t, err)
	assert.Equal(t, job.ID, ex.ResultExportTargetJobID)

	rows, err := c.Results.Rows(ctx, job.ID)
	require.NoError(t, err)
	defer rows.Close()
	row, err := rows.Next()
	require.NoError(t, err)
	assert.Equal(t, []any{int64(1), int64(2)}, row)
	assert.Greater(t, wrap.injected.Load(), int64(8), "the SDK decoded answers carrying unknown keys")
}

// --------------------------------------------------------- gzip JSON answers

func TestFlowGzipJSONAnswers(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	job := issueWait(t, c, "SELECT 1")
	var gz int
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, "/v3/job/show/") {
			assert.Contains(t, r.Header.Get("Accept-Encoding"), "gzip", "JSON calls ask for gzip")
			gz++
		}
		if strings.HasPrefix(r.Path, "/v3/job/") {
			assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "tdctl/"))
		}
	}
	assert.Positive(t, gz)
	// the emulator really gzips when asked: check one answer by hand
	req, err := http.NewRequest("GET", c.Endpoint()+"/v3/job/show/"+job.ID, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "TD1 "+flowKey)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: plainTransport()}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"job_id":"`+job.ID+`"`)
}

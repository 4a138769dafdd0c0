package operators

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// tdHarness is an emulator plus the operators wired to a client on it.
type tdHarness struct {
	srv *emulator.Server
	dir string // the emulator's data directory (s3 exports land here)
	ops map[string]workflow.Operator
	// temps counts, per path, the temporary files registered with
	// Env.TempFile less those unregistered
	mu    sync.Mutex
	temps map[string]int
}

func newTDHarness(t *testing.T) *tdHarness {
	t.Helper()
	return newTDHarnessOpts(t, emulator.Options{})
}

func newTDHarnessOpts(t *testing.T, opts emulator.Options) *tdHarness {
	t.Helper()
	dir := t.TempDir()
	opts.APIKeys, opts.DataDir = []string{"1/testkey"}, dir
	srv, base := emulator.NewTestServer(t, opts)
	c, err := td.NewClient("1/testkey", td.WithEndpoint(base),
		td.WithRetryPolicy(td.RetryPolicy{MaxRetries: 3, MinWait: 5 * time.Millisecond, MaxWait: 20 * time.Millisecond}))
	require.NoError(t, err)
	h := &tdHarness{srv: srv, dir: dir, temps: map[string]int{}}
	env := &Env{TD: func() (*td.Client, error) { return c, nil }, Wait: &td.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
		TempFile: func(path string) func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.temps[path]++
			return func() {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.temps[path]--
			}
		}}
	require.NoError(t, srv.CreateDatabase("wfdb"))
	h.ops = Operators(env)
	return h
}

// tdRun is the result of one workflow run.
type tdRun struct {
	sum *workflow.Summary
	out string // every task's log lines, prefixed with the task name
	err error
}

// run writes the workflow (and extra files, relative to the .dig) into a
// project directory that is not the working directory, then runs it.
func (h *tdHarness) run(t *testing.T, dig string, files map[string]string, secrets workflow.Secrets) tdRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return h.runCtx(ctx, t, dig, files, secrets)
}

func (h *tdHarness) runCtx(ctx context.Context, t *testing.T, dig string, files map[string]string, secrets workflow.Secrets) tdRun {
	t.Helper()
	root := t.TempDir()
	proj := filepath.Join(root, "proj")
	for name, body := range files {
		p := filepath.Join(proj, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	require.NoError(t, os.MkdirAll(proj, 0o755))
	file := filepath.Join(proj, "wf.dig")
	require.NoError(t, os.WriteFile(file, []byte(dig), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: h.ops, Secrets: secrets, RunsDir: filepath.Join(root, "runs"), Output: &out}
	sum, err := r.Run(ctx, wf)
	return tdRun{sum: sum, out: out.String(), err: err}
}

// jobs returns every job of the emulator, oldest first (ids are 1..n).
func (h *tdHarness) jobs(t *testing.T) []emulator.JobInfo {
	t.Helper()
	var out []emulator.JobInfo
	n := h.srv.JobCount()
	for id := 1; id <= n; id++ {
		if j, ok := h.srv.Job(strconv.Itoa(id)); ok {
			out = append(out, j)
		}
	}
	require.Len(t, out, n, "emulator job ids are expected to be 1..n")
	return out
}

// issueRequests returns the form of every POST /v3/job/issue/ the emulator saw.
func (h *tdHarness) issueRequests() []emulator.RequestRecord {
	var out []emulator.RequestRecord
	for _, r := range h.srv.Requests() {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/v3/job/issue/") {
			out = append(out, r)
		}
	}
	return out
}

// taskLog reads the log file of the last record whose path ends with name.
func taskLog(t *testing.T, sum *workflow.Summary, name string) string {
	t.Helper()
	require.NotNil(t, sum)
	recs := sum.FindTask(name)
	require.NotEmpty(t, recs, "no record for task %s", name)
	data, err := os.ReadFile(recs[len(recs)-1].Log)
	require.NoError(t, err)
	return string(data)
}

func TestTDInlineQueryForwardsEveryOption(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
_export:
  td:
    database: wfdb

+q:
  td>:
  data: SELECT 1 AS a
  engine: hive
  priority: -1
  job_retry: 2
  engine_version: stable
  pool_name: batch_pool
`, nil, nil)
	require.NoError(t, r.err, r.out)

	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	j := jobs[0]
	assert.Equal(t, "wfdb", j.Database, "database comes from _export: td: database:")
	assert.Equal(t, "hive", j.Type)
	assert.Equal(t, "SELECT 1 AS a", j.Query)
	assert.Equal(t, -1, j.Priority, "a negative priority reaches the server")
	assert.Equal(t, "-1", j.Form.Get("priority"))
	assert.Equal(t, 2, j.RetryLimit, "job_retry is sent as retry_limit")
	assert.Equal(t, "2", j.Form.Get("retry_limit"))
	assert.Equal(t, "stable", j.EngineVersion)
	assert.Equal(t, "batch_pool", j.PoolName)
	assert.Equal(t, "success", j.Status)
	assert.Empty(t, j.Form.Get("result"), "no result target was asked for")

	reqs := h.issueRequests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/v3/job/issue/hive/wfdb", reqs[0].Path)

	rec := r.sum.FindTask("+q")
	require.Len(t, rec, 1)
	assert.Equal(t, j.ID, rec[0].JobID)
	require.NotNil(t, rec[0].NumRecords)
	assert.EqualValues(t, 1, *rec[0].NumRecords)
}

func TestTDDefaultsToPrestoAndTaskDatabaseWins(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
_export:
  td:
    database: no_such_db

+q:
  td>:
  data: SELECT 2 AS b
  database: wfdb
`, nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	assert.Equal(t, "presto", jobs[0].Type)
	assert.Equal(t, "wfdb", jobs[0].Database)
	assert.Empty(t, jobs[0].Form.Get("priority"), "priority is left to the server when not given")
	assert.Empty(t, jobs[0].Form.Get("retry_limit"))
}

func TestTDQueryFileRelativeToWorkflowIsInterpolated(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
_export:
  td:
    database: wfdb
  greeting: hello
  n: 3

+q:
  td>: queries/select.sql
  store_last_results: true

+show:
  echo>: g=${td.last_results.g} n=${td.last_results.n} db=${td.last_results.db}
`, map[string]string{
		"queries/select.sql": "SELECT '${greeting}' AS g, ${n} AS n, '${td.database}' AS db\n",
	}, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	assert.Equal(t, "SELECT 'hello' AS g, 3 AS n, 'wfdb' AS db\n", jobs[0].Query, "the file is read next to the .dig and interpolated")
	assert.Contains(t, r.out, "+wf+show: g=hello n=3 db=wfdb\n")
}

func TestTDQueryFileMissingNamesTheFile(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>: queries/nope.sql\n  database: wfdb\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "nope.sql")
	assert.Equal(t, 0, h.srv.JobCount())
}

func TestTDWithoutDatabaseIsAClearError(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "database")
	assert.Equal(t, 0, h.srv.JobCount(), "nothing is issued")
}

func TestTDStoredParams(t *testing.T) {
	h := newTDHarness(t)
	// seed workflow 3
	r := h.run(t, `
timezone: UTC

+run:
  td>:
  data: SELECT 1 as a, 2 as b
  database: sample_datasets
  store_last_results: true

+show_num_records:
  echo>: num=${td.last_job.num_records} id=${td.last_job_id} same=${td.last_job.id} a=${td.last_results.a} b=${td.last_results.b}
`, nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	id := jobs[0].ID
	assert.Contains(t, r.out, "+wf+show_num_records: num=1 id="+id+" same="+id+" a=1 b=2\n")
	// the first result row was really downloaded
	var fetched bool
	for _, req := range h.srv.Requests() {
		if strings.HasPrefix(req.Path, "/v3/job/result/"+id) {
			fetched = true
		}
	}
	assert.True(t, fetched, "store_last_results reads the job's result")
}

func TestTDLastResultsNotStoredByDefault(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1 AS a\n  database: wfdb\n", nil, nil)
	require.NoError(t, r.err, r.out)
	for _, req := range h.srv.Requests() {
		assert.False(t, strings.HasPrefix(req.Path, "/v3/job/result/"), "no result download without store_last_results: %s", req.Path)
	}
}

func TestTDResultURL(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
+q:
  td>:
  data: SELECT 7 AS x, 'seven' AS y
  database: wfdb
  result_url: td://@/wfdb/from_url
`, nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	assert.Equal(t, "td://@/wfdb/from_url", jobs[0].Result)
	rows, _, err := h.srv.TableRows("wfdb", "from_url")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(7), "seven"}}, rows)
}

func TestTDResultConnectionWithSettings(t *testing.T) {
	h := newTDHarness(t)
	connID := h.srv.AddConnection("my_s3_connection", "s3://default_bucket/default/", map[string]any{"format": "csv"})
	// seed workflow 1, first task
	r := h.run(t, `
_export:
  td:
    database: wfdb

+result_with_connection_with_settings:
  td>:
  data: SELECT 1 AS a, 'x' AS b
  result_connection: my_s3_connection
  result_settings:
    bucket: my_bucket
    path: /logs/
`, nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	j := jobs[0]
	assert.Equal(t, "success", j.Status)
	assert.Equal(t, connID, j.ResultConnectionID, "the connection name was looked up and its id sent")
	assert.JSONEq(t, `{"bucket":"my_bucket","path":"/logs/"}`, j.ResultConnectionSettings)
	assert.Empty(t, j.Result)
	assert.Equal(t, map[string]any{"format": "csv", "bucket": "my_bucket", "path": "/logs/"}, j.TargetSettings)

	var looked bool
	for _, req := range h.srv.Requests() {
		if req.Path == "/v3/connections/lookup" && req.Query.Get("name") == "my_s3_connection" {
			looked = true
		}
	}
	assert.True(t, looked)

	data, err := os.ReadFile(filepath.Join(h.dir, "s3", "my_bucket", "logs", j.ID+".csv"))
	require.NoError(t, err, "the export wrote to the bucket and path of result_settings")
	assert.Equal(t, "a,b\n1,x\n", string(data))
}

func TestTDResultSettingsAsJSONString(t *testing.T) {
	h := newTDHarness(t)
	h.srv.AddConnection("td_conn", "td://@/wfdb/ignored", nil)
	r := h.run(t, `
+q:
  td>:
  data: SELECT 5 AS v
  database: wfdb
  result_connection: td_conn
  result_settings: '{"table": "via_conn", "mode": "replace"}'
`, nil, nil)
	require.NoError(t, r.err, r.out)
	rows, _, err := h.srv.TableRows("wfdb", "via_conn")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(5)}}, rows)
}

func TestTDUnknownConnectionIsAnError(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n  result_connection: nobody\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), `"nobody"`)
	assert.Equal(t, 0, h.srv.JobCount())
}

func TestTDResultURLAndConnectionTogetherIsAnError(t *testing.T) {
	h := newTDHarness(t)
	h.srv.AddConnection("c", "td://@/wfdb/t", nil)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n  result_connection: c\n  result_url: td://@/wfdb/t\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "not both")
	assert.Equal(t, 0, h.srv.JobCount())
}

func TestTDInsertIntoAppendsCreateTableReplaces(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
_export:
  td:
    database: wfdb

+first:
  td>:
  data: SELECT 1 AS x
  insert_into: dest

+second:
  td>:
  data: SELECT 2 AS x
  insert_into: dest

+after_insert:
  echo>: inserted

+replace:
  td>:
  data: SELECT 3 AS x UNION ALL SELECT 4 AS x
  create_table: dest2
`, nil, nil)
	require.NoError(t, r.err, r.out)
	rows, _, err := h.srv.TableRows("wfdb", "dest")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(1)}, {int64(2)}}, rows, "insert_into appends")

	// now replace dest with create_table, in a second run
	r2 := h.run(t, `
+again:
  td>:
  data: SELECT 9 AS x
  database: wfdb
  create_table: dest
`, nil, nil)
	require.NoError(t, r2.err, r2.out)
	rows, _, err = h.srv.TableRows("wfdb", "dest")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(9)}}, rows, "create_table replaces")
	rows, _, err = h.srv.TableRows("wfdb", "dest2")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(3)}, {int64(4)}}, rows)

	jobs := h.jobs(t)
	require.Len(t, jobs, 4)
	assert.Contains(t, jobs[0].Result, "mode=append")
	assert.Contains(t, jobs[2].Result, "mode=replace")
	assert.Contains(t, jobs[3].Result, "/wfdb/dest")
	assert.Contains(t, jobs[3].Result, "mode=replace")
}

func TestTDInsertIntoWithResultURLIsAnError(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n  insert_into: t\n  result_url: td://@/wfdb/u\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "insert_into")
	assert.Equal(t, 0, h.srv.JobCount())
}

func TestTDUserDomainKeyIsSentAsIs(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n  domain_key: nightly-${session_date}\n", nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	assert.Equal(t, "nightly-"+r.sum.SessionTime.UTC().Format("2006-01-02"), jobs[0].DomainKey)

	// the same key in a later run finds the job issued first instead of a second one
	r2 := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n  domain_key: "+jobs[0].DomainKey+"\n+show:\n  echo>: ${td.last_job_id}\n", nil, nil)
	require.NoError(t, r2.err, r2.out)
	assert.Equal(t, 1, h.srv.JobCount())
	assert.Contains(t, r2.out, "+wf+show: "+jobs[0].ID+"\n")
	assert.Contains(t, r2.out, "already issued under this domain key")
}

func TestTDDerivedDomainKeyStableAcrossTransportRetry(t *testing.T) {
	h := newTDHarness(t)
	// the job is created, then the answer is lost: the client retries
	h.srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/issue/", Times: 1, AfterHandler: true})
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1 AS a\n  database: wfdb\n+show:\n  echo>: ${td.last_job_id}\n", nil, nil)
	require.NoError(t, r.err, r.out)
	assert.Equal(t, 1, h.srv.Faults().Hits())

	assert.Equal(t, 1, h.srv.JobCount(), "a lost response never starts a second job")
	reqs := h.issueRequests()
	require.Len(t, reqs, 2, "the issue was retried")
	key := reqs[0].Form.Get("domain_key")
	assert.NotEmpty(t, key, "a domain key is derived when none is given")
	assert.Equal(t, key, reqs[1].Form.Get("domain_key"), "the retry carries the same key")
	jobs := h.jobs(t)
	assert.Equal(t, key, jobs[0].DomainKey)
	assert.Contains(t, r.out, "+wf+show: "+jobs[0].ID+"\n")
}

func TestTDDerivedDomainKeysDifferPerTaskAndRun(t *testing.T) {
	h := newTDHarness(t)
	dig := `
_export:
  td:
    database: wfdb
+a:
  td>:
  data: SELECT 1 AS same
+b:
  td>:
  data: SELECT 1 AS same
+loop:
  for_each>:
    v: [1, 2]
  _do:
    td>:
    data: SELECT 1 AS same
`
	r := h.run(t, dig, nil, nil)
	require.NoError(t, r.err, r.out)
	assert.Equal(t, 4, h.srv.JobCount(), "each task and each for_each iteration issues its own job")
	r2 := h.run(t, dig, nil, nil)
	require.NoError(t, r2.err, r2.out)
	assert.Equal(t, 8, h.srv.JobCount(), "a new run issues new jobs")
	keys := map[string]bool{}
	for _, j := range h.jobs(t) {
		require.NotEmpty(t, j.DomainKey)
		keys[j.DomainKey] = true
	}
	assert.Len(t, keys, 8, "every job has its own derived domain key")
}

func TestTDSameTaskAttemptFindsItsJob(t *testing.T) {
	h := newTDHarness(t)
	proj := t.TempDir()
	tc := func(runID string, attempt int) *workflow.TaskContext {
		return &workflow.TaskContext{
			Task:     &workflow.Task{Name: "+q", Path: "+wf+q", Operator: "td"},
			Workflow: &workflow.Workflow{Dir: proj, Name: "wf"},
			Config:   map[string]any{"data": "SELECT 1 AS a", "database": "wfdb"},
			Scope:    workflow.Scope{"task_name": "+wf+q"},
			Log:      &bytes.Buffer{},
			RunID:    runID, Attempt: attempt,
		}
	}
	q := h.ops["td"]
	first, err := q.Run(context.Background(), tc("run-1", 0))
	require.NoError(t, err)
	// the same run, task and attempt again (a repeated Run, not a transport
	// retry): the derived key finds the job issued first
	again := tc("run-1", 0)
	res, err := q.Run(context.Background(), again)
	require.NoError(t, err)
	assert.Equal(t, first.JobID, res.JobID)
	assert.Equal(t, 1, h.srv.JobCount())
	assert.Contains(t, again.Log.(*bytes.Buffer).String(), "already issued under this domain key")

	res, err = q.Run(context.Background(), tc("run-1", 1))
	require.NoError(t, err)
	assert.NotEqual(t, first.JobID, res.JobID, "another attempt issues a new job")
	res2, err := q.Run(context.Background(), tc("run-2", 0))
	require.NoError(t, err)
	assert.NotEqual(t, first.JobID, res2.JobID, "another run issues a new job")
	assert.NotEqual(t, res.JobID, res2.JobID)
	assert.Equal(t, 3, h.srv.JobCount())
}

func TestTDParallelBranchesLastDeclaredWins(t *testing.T) {
	h := newTDHarness(t)
	require.NoError(t, h.srv.CreateDatabase("slowdb"))
	// the first branch finishes last: completion order would make it win
	h.srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/issue/presto/slowdb", Latency: 300 * time.Millisecond})
	r := h.run(t, `
_export:
  td:
    database: wfdb
+p:
  _parallel: true
  +slow_first:
    td>:
    data: SELECT 'first' AS who
    database: slowdb
    store_last_results: true
  +second:
    td>:
    data: SELECT 'second' AS who
    store_last_results: true
+show:
  echo>: ${td.last_results.who} ${td.last_job_id}
`, nil, nil)
	require.NoError(t, r.err, r.out)
	var second string
	for _, j := range h.jobs(t) {
		if strings.Contains(j.Query, "'second'") {
			second = j.ID
		}
	}
	require.NotEmpty(t, second)
	assert.Equal(t, 1, h.srv.Faults().Hits())
	recs := r.sum.FindTask("+slow_first")
	require.Len(t, recs, 1)
	assert.Equal(t, "2", recs[0].JobID, "the slow branch's job was issued last")
	assert.Contains(t, r.out, "+wf+show: second "+second+"\n", "stored params merge in declaration order")
}

func TestTDQueryFileRefusesSecrets(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>: q.sql\n  database: wfdb\n", map[string]string{"q.sql": "SELECT '${secret:db.password}' AS p"},
		workflow.SecretMap{"db.password": "s3cretvalue"})
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "q.sql")
	assert.Contains(t, r.err.Error(), "secret")
	assert.Equal(t, 0, h.srv.JobCount(), "the query text never reaches TD")
	assert.NotContains(t, r.err.Error()+r.out, "s3cretvalue")
}

func TestTDCancelKillsTheJob(t *testing.T) {
	h := newTDHarnessOpts(t, emulator.Options{RunningFor: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := h.runCtx(ctx, t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n", nil, nil)
	require.Error(t, r.err)
	assert.ErrorIs(t, r.err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	assert.Equal(t, "killed", jobs[0].Status, "a cancelled workflow does not leave its job running")
	assert.Contains(t, taskLog(t, r.sum, "+q"), "killed job "+jobs[0].ID)
}

func TestResultExportCancelKillsTheExportJob(t *testing.T) {
	h := newTDHarnessOpts(t, emulator.Options{RunningFor: time.Minute})
	doneJob, err := h.srv.AddFinishedJob(emulator.FinishedJob{Database: "wfdb", Schema: []emulator.Column{{Name: "a", Type: "bigint"}},
		Rows: func(yield func([]any) bool) { yield([]any{int64(1)}) }})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	r := h.runCtx(ctx, t, "+ex:\n  td_result_export>:\n  job_id: '"+doneJob+"'\n  result_url: td://@/wfdb/out\n", nil, nil)
	require.Error(t, r.err)
	assert.ErrorIs(t, r.err, context.DeadlineExceeded)
	jobs := h.jobs(t)
	require.Len(t, jobs, 2)
	ex := jobs[1]
	require.Equal(t, "result_export", ex.Type)
	assert.Equal(t, "killed", ex.Status, "a cancelled workflow does not leave its export job running (td> kills its job)")
}

func TestTDBadOptionValuesIssueNothing(t *testing.T) {
	h := newTDHarness(t)
	for opt, want := range map[string][]string{
		"priority: 3":     {"priority", "-2", "2"},
		"job_retry: many": {"job_retry", "many"},
		"engine: spark":   {"spark", "presto"},
		"result_settings: [1, 2]\n  result_connection: c": {"result_settings", "mapping"},
	} {
		r := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n  "+opt+"\n", nil, nil)
		require.Error(t, r.err, opt)
		for _, w := range want {
			assert.Contains(t, r.err.Error(), w, opt)
		}
	}
	assert.Equal(t, 0, h.srv.JobCount())
}

func TestTDInsertIntoWithCreateTableNamesBoth(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1\n  database: wfdb\n  insert_into: t1\n  create_table: t2\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "insert_into")
	assert.Contains(t, r.err.Error(), "create_table")
	assert.NotContains(t, r.err.Error(), "result_url")
	assert.Equal(t, 0, h.srv.JobCount())
}

func TestResultSettingsWithoutConnectionIsAnError(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+q:\n  td>:\n  data: SELECT 1 AS a\n  database: wfdb\n  result_url: td://@/wfdb/t\n  result_settings:\n    mode: replace\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "result_settings")
	assert.Equal(t, 0, h.srv.JobCount())

	doneJob, err := h.srv.AddFinishedJob(emulator.FinishedJob{Database: "wfdb", Schema: []emulator.Column{{Name: "a", Type: "bigint"}},
		Rows: func(yield func([]any) bool) { yield([]any{int64(1)}) }})
	require.NoError(t, err)
	r = h.run(t, "+ex:\n  td_result_export>:\n  job_id: '"+doneJob+"'\n  result_url: td://@/wfdb/t\n  result_settings:\n    mode: replace\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "result_settings")
	assert.Equal(t, 1, h.srv.JobCount())
}

// flakyTD wraps td>: runs after the first replace the query with good, so
// that a retried task can succeed. It counts the runs.
type flakyTD struct {
	*Query
	good  string
	calls atomic.Int32
}

func (f *flakyTD) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	if f.calls.Add(1) > 1 {
		tc.Config["data"] = f.good
	}
	return f.Query.Run(ctx, tc)
}

func assertRetryIssuedNewJob(t *testing.T, h *tdHarness, r tdRun, calls int32) {
	t.Helper()
	require.NoError(t, r.err, r.out)
	assert.EqualValues(t, 2, calls, "td> ran twice")
	jobs := h.jobs(t)
	require.Len(t, jobs, 2, "the retry issues a new job instead of finding the failed one under the same domain key")
	assert.Equal(t, "error", jobs[0].Status)
	assert.Equal(t, "success", jobs[1].Status)
	assert.NotEqual(t, jobs[0].DomainKey, jobs[1].DomainKey)
	assert.Equal(t, "SELECT 42 AS answer", jobs[1].Query)
	assert.Contains(t, r.out, "+wf+show: "+jobs[1].ID+" 1\n", "later tasks see the successful job")
}

func TestTDTaskRetryIssuesNewJob(t *testing.T) {
	h := newTDHarness(t)
	flaky := &flakyTD{Query: h.ops["td"].(*Query), good: "SELECT 42 AS answer"}
	h.ops["td"] = flaky
	r := h.run(t, `
+q:
  _retry: 1
  td>:
  data: SELECT * FROM missing_table
  database: wfdb
+show:
  echo>: ${td.last_job_id} ${td.last_job.num_records}
`, nil, nil)
	assertRetryIssuedNewJob(t, h, r, flaky.calls.Load())
	jobs := h.jobs(t)
	byJob := map[string]*workflow.TaskRecord{}
	for _, rec := range r.sum.Tasks {
		byJob[rec.JobID] = rec
	}
	require.Contains(t, byJob, jobs[0].ID)
	require.Contains(t, byJob, jobs[1].ID)
	assert.Equal(t, workflow.StateError, byJob[jobs[0].ID].State)
	assert.Equal(t, 1, byJob[jobs[0].ID].Attempts)
	assert.Equal(t, workflow.StateSuccess, byJob[jobs[1].ID].State)
	assert.Equal(t, 2, byJob[jobs[1].ID].Attempts, "the summary records the second attempt")
}

func TestTDGroupRetryIssuesNewJob(t *testing.T) {
	h := newTDHarness(t)
	flaky := &flakyTD{Query: h.ops["td"].(*Query), good: "SELECT 42 AS answer"}
	h.ops["td"] = flaky
	r := h.run(t, `
+g:
  _retry: 1
  +q:
    td>:
    data: SELECT * FROM missing_table
    database: wfdb
+show:
  echo>: ${td.last_job_id} ${td.last_job.num_records}
`, nil, nil)
	assertRetryIssuedNewJob(t, h, r, flaky.calls.Load())
}

func TestTDTaskRetryBothAttemptsFail(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
+q:
  _retry: 1
  td>:
  data: SELECT * FROM missing_table
  database: wfdb
`, nil, nil)
	require.Error(t, r.err)
	jobs := h.jobs(t)
	require.Len(t, jobs, 2, "every attempt issues its own job")
	assert.Equal(t, "error", jobs[0].Status)
	assert.Equal(t, "error", jobs[1].Status)
	assert.NotEqual(t, jobs[0].DomainKey, jobs[1].DomainKey)
}

func TestTDFailingQueryStopsTheRun(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
+bad:
  td>:
  data: SELECT * FROM missing_table
  database: wfdb
+after:
  td>:
  data: SELECT 1
  database: wfdb
+also_after:
  echo>: never printed
`, nil, nil)
	require.Error(t, r.err)
	var jf *td.JobFailedError
	require.True(t, errors.As(r.err, &jf), "the run error unwraps to the job failure: %v", r.err)
	assert.Contains(t, r.err.Error(), "no such table: missing_table")

	jobs := h.jobs(t)
	require.Len(t, jobs, 1, "tasks after the failure do not run")
	assert.Equal(t, "error", jobs[0].Status)
	assert.Equal(t, jobs[0].ID, jf.JobID)

	log := taskLog(t, r.sum, "+bad")
	assert.Contains(t, log, "no such table: missing_table")
	assert.Contains(t, log, "issued job "+jobs[0].ID)

	rec := r.sum.FindTask("+bad")
	require.Len(t, rec, 1)
	assert.Equal(t, workflow.StateError, rec[0].State)
	assert.Equal(t, jobs[0].ID, rec[0].JobID, "the summary links the failed job")
	assert.Contains(t, rec[0].Error, "no such table")
	assert.Empty(t, r.sum.FindTask("+after"))
	assert.Empty(t, r.sum.FindTask("+also_after"))
	assert.NotContains(t, r.out, "never printed")
	assert.Equal(t, workflow.StateError, r.sum.State)
}

func TestResultExportSeedWorkflow(t *testing.T) {
	h := newTDHarness(t)
	require.NoError(t, h.srv.CreateDatabase("www_access"))
	const apikey = "1/secretkey123"
	// seed workflow 1, the td table export (the MySQL one is in
	// TestResultExportFailureFailsTheTask)
	r := h.run(t, `
_export:
  td:
    database: www_access

+q:
  td>:
  data: SELECT 1 AS a, 'one' AS b UNION ALL SELECT 2, 'two'

+exports:
  _parallel: true
  +export_query_result_to_td_table:
    td_result_export>:
    job_id: ${td.last_job_id}
    result_url: td://${secret:td.apikey}@/${td.database}/table
  +export_again:
    td_result_export>:
    job_id: ${td.last_job_id}
    result_url: td://@/wfdb/copy?mode=replace

+show:
  echo>: last=${td.last_job_id} id=${td.last_job.id} status=${td.last_job.status}
`, nil, workflow.SecretMap{"td.apikey": apikey})
	require.NoError(t, r.err, r.out)

	jobs := h.jobs(t)
	require.Len(t, jobs, 3)
	q, e1, e2 := jobs[0], jobs[1], jobs[2]
	if e1.Form.Get("result") != "td://"+apikey+"@/www_access/table" {
		e1, e2 = e2, e1 // the two exports run in parallel
	}
	assert.Equal(t, "result_export", e1.Type)
	assert.Equal(t, q.ID, e1.ResultExportTargetJobID, "job_id came from ${td.last_job_id}")
	assert.Equal(t, "td://"+apikey+"@/www_access/table", e1.Form.Get("result"))
	assert.Equal(t, q.ID, e2.ResultExportTargetJobID)
	// digdag's TdResultExportIT: td_result_export> stores its own job as
	// td.last_job_id / td.last_job.* (BaseTdJobOperator); of two parallel
	// branches the last declared wins
	assert.Contains(t, r.out, "+wf+show: last="+e2.ID+" id="+e2.ID+" status=success\n")
	assert.Equal(t, "success", e1.Status)
	assert.Equal(t, "success", e2.Status)

	want := [][]any{{int64(1), "one"}, {int64(2), "two"}}
	rows, _, err := h.srv.TableRows("www_access", "table")
	require.NoError(t, err)
	assert.Equal(t, want, rows)
	rows, _, err = h.srv.TableRows("wfdb", "copy")
	require.NoError(t, err)
	assert.Equal(t, want, rows)

	rec := r.sum.FindTask("+export_query_result_to_td_table")
	require.Len(t, rec, 1)
	assert.Equal(t, e1.ID, rec[0].JobID, "the summary shows the export job")
	log := taskLog(t, r.sum, "+export_query_result_to_td_table")
	assert.Contains(t, log, "export job "+e1.ID)
	assert.NotContains(t, r.out+log, "secretkey123", "the API key in the URL never reaches the logs")
}

func TestResultExportConnectionWithSettings(t *testing.T) {
	h := newTDHarness(t)
	connID := h.srv.AddConnection("my_td_conn", "td://@/wfdb/default_table", map[string]any{"mode": "append"})
	r := h.run(t, `
+q:
  td>:
  data: SELECT 10 AS n
  database: wfdb
+ex:
  td_result_export>:
  job_id: ${td.last_job_id}
  result_connection: my_td_conn
  result_settings:
    table: exported
    mode: replace
`, nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 2)
	ex := jobs[1]
	assert.Equal(t, jobs[0].ID, ex.ResultExportTargetJobID)
	assert.Equal(t, connID, ex.ResultConnectionID)
	assert.Equal(t, "", ex.Form.Get("result"))
	assert.JSONEq(t, `{"table":"exported","mode":"replace"}`, ex.ResultConnectionSettings)
	assert.Equal(t, "td://@/wfdb/default_table", ex.TargetURL)
	rows, _, err := h.srv.TableRows("wfdb", "exported")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(10)}}, rows)
	_, _, err = h.srv.TableRows("wfdb", "default_table")
	assert.Error(t, err, "result_settings chose the table, not the connection's default")
	assert.Contains(t, taskLog(t, r.sum, "+ex"), "connection my_td_conn")
}

func TestResultExportMissingJobID(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+ex:\n  td_result_export>:\n  result_url: td://@/wfdb/t\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "job_id")
	assert.Contains(t, r.err.Error(), "${td.last_job_id}", "the error shows how to fill it")
	assert.Empty(t, h.srv.Requests(), "nothing reaches the API")
}

func TestResultExportURLAndConnectionTogether(t *testing.T) {
	h := newTDHarness(t)
	h.srv.AddConnection("c", "td://@/wfdb/t", nil)
	r := h.run(t, "+ex:\n  td_result_export>:\n  job_id: '1'\n  result_url: td://@/wfdb/t\n  result_connection: c\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "result_url")
	assert.Contains(t, r.err.Error(), "result_connection")
	assert.Contains(t, r.err.Error(), "not both")
	assert.Empty(t, h.srv.Requests())
}

func TestResultExportWithoutTarget(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+ex:\n  td_result_export>:\n  job_id: '1'\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "result_url or result_connection")
	assert.Empty(t, h.srv.Requests())
}

func TestResultExportFailureFailsTheTask(t *testing.T) {
	h := newTDHarness(t)
	secrets := workflow.SecretMap{"user": "dbuser", "password": "hunter2pass", "host": "db.example.com"}
	// seed workflow 1, the MySQL export: the emulator ends it in error
	r := h.run(t, `
+q:
  td>:
  data: SELECT 1 AS a
  database: wfdb
+export_query_result_to_mysql:
  td_result_export>:
  job_id: ${td.last_job_id}
  result_url: mysql://${secret:user}:${secret:password}@${secret:host}/database/table
+after:
  echo>: never printed
`, nil, secrets)
	require.Error(t, r.err)
	jobs := h.jobs(t)
	require.Len(t, jobs, 2)
	ex := jobs[1]
	assert.Equal(t, "error", ex.Status)
	assert.Equal(t, jobs[0].ID, ex.ResultExportTargetJobID)

	assert.Contains(t, r.err.Error(), "mysql", "the error names the target")
	rec := r.sum.FindTask("+export_query_result_to_mysql")
	require.Len(t, rec, 1)
	assert.Equal(t, workflow.StateError, rec[0].State)
	assert.Equal(t, ex.ID, rec[0].JobID)
	assert.Empty(t, r.sum.FindTask("+after"))
	assert.NotContains(t, r.out, "never printed")

	log := taskLog(t, r.sum, "+export_query_result_to_mysql")
	assert.Contains(t, log, "mysql")
	for _, s := range []string{r.err.Error(), r.out, log, r.sum.Error} {
		assert.NotContains(t, s, "hunter2pass", "the password never appears")
	}
}

// retryWorkflow is a td> task with a retry, and a task showing its job.
const retryWorkflow = `
+q:
  _retry: 2
  td>:
  data: SELECT 42 AS answer
  database: wfdb
+show:
  echo>: ${td.last_job_id} ${td.last_job.num_records}
`

// faultUntilRetry adds f (for every matching request) and wraps td> so
// that the fault is removed when the task is retried: the first attempt
// fails however many times the client retries.
func faultUntilRetry(h *tdHarness, f emulator.Fault) {
	h.srv.Faults().Add(f)
	h.ops["td"] = &faultyTD{Query: h.ops["td"].(*Query), h: h}
}

type faultyTD struct {
	*Query
	h     *tdHarness
	calls atomic.Int32
}

func (f *faultyTD) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	if f.calls.Add(1) > 1 {
		f.h.srv.Faults().Reset()
	}
	return f.Query.Run(ctx, tc)
}

func TestTDRetryReattachesAfterLosingTheWait(t *testing.T) {
	h := newTDHarness(t)
	// status answers are lost until the retry: the first attempt fails
	// while its job runs on
	faultUntilRetry(h, emulator.Fault{Method: "GET", Path: "/v3/job/status/", AfterHandler: true})
	r := h.run(t, retryWorkflow, nil, nil)
	require.NoError(t, r.err, r.out)
	assert.NotZero(t, h.srv.Faults().Hits(), "the fault cut the first wait")
	assert.Equal(t, 1, h.srv.JobCount(), "exactly one job: the retry re-attached to it")
	assert.Len(t, h.issueRequests(), 1)
	jobs := h.jobs(t)
	assert.Equal(t, "success", jobs[0].Status)
	assert.Contains(t, r.out, "+wf+show: "+jobs[0].ID+" 1\n")
	assert.Contains(t, r.out, "re-attaching to job "+jobs[0].ID)
	var recs []*workflow.TaskRecord
	for _, rec := range r.sum.Tasks {
		if rec.Operator == "td" {
			recs = append(recs, rec)
		}
	}
	require.Len(t, recs, 2, "two attempts")
	assert.Equal(t, workflow.StateError, recs[0].State)
	assert.Equal(t, workflow.StateSuccess, recs[1].State)
	assert.Equal(t, jobs[0].ID, recs[1].JobID)
}

func TestTDRetryAfterALostIssueAnswerFindsTheJob(t *testing.T) {
	h := newTDHarness(t)
	// the job is created, and every answer to the issue is lost until the
	// retry
	faultUntilRetry(h, emulator.Fault{Method: "POST", Path: "/v3/job/issue/", AfterHandler: true})
	r := h.run(t, retryWorkflow, nil, nil)
	require.NoError(t, r.err, r.out)
	assert.Equal(t, 1, h.srv.JobCount(), "the retry issues under the same domain key and finds the job")
	reqs := h.issueRequests()
	require.Greater(t, len(reqs), 1)
	for _, req := range reqs {
		assert.Equal(t, reqs[0].Form.Get("domain_key"), req.Form.Get("domain_key"))
	}
	assert.Contains(t, r.out, "already issued under this domain key")
}

// TdIT's td_store_last_result_twice and td_store_last_result_empty: each
// store_last_results query replaces td.last_results whole, and an empty
// result gives {}.
func TestTDLastResultsReplacedByEachQuery(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
+run1:
  td>:
  data: SELECT 'A1' AS a, 'B' AS b
  database: wfdb
  store_last_results: true
+run2:
  td>:
  data: SELECT 'A2' AS a, 'D' AS d
  database: wfdb
  store_last_results: true
+post:
  echo>: ${td.last_results}
+run3:
  td>:
  data: SELECT * FROM (SELECT 1 AS x) WHERE 1 = 0
  database: wfdb
  store_last_results: true
+post_empty:
  echo>: ${td.last_results}
`, nil, nil)
	require.NoError(t, r.err, r.out)
	assert.Contains(t, r.out, "+wf+post: {\"a\":\"A2\",\"d\":\"D\"}\n")
	assert.Contains(t, r.out, "+wf+post_empty: {}\n")
}

// digdag's TdForEachIT (acceptance/td/td_for_each/td_for_each.dig): the
// query's rows each run _do with ${td.each.COLUMN}, as +td-for-each-N.
func TestTdForEachLikeDigdagIT(t *testing.T) {
	h := newTDHarness(t)
	outdir := t.TempDir()
	r := h.run(t, `
timezone: UTC

+task:
  td_for_each>:
    data: |
      select 'a1' as a, 'b1' as b
      UNION
      select 'a2' as a, 'b2' as b
  _do:
    sh>: touch `+outdir+`/out-${td.each.a}-${td.each.b}
  database: wfdb
+after:
  echo>: job ${td.last_job_id}
`, nil, nil)
	require.NoError(t, r.err, r.out)
	for _, f := range []string{"out-a1-b1", "out-a2-b2"} {
		assert.True(t, exists(outdir, f), f)
	}
	assert.Len(t, r.sum.FindTask("+wf+task^sub+td-for-each-1"), 1)
	assert.Regexp(t, `\+wf\+after: job \d+\n`, r.out)

	err := checkWorkflow(t, "+t:\n  td_for_each>: q.sql\n  database: d\n  store_last_results: true\n  _do:\n    echo>: ${td.each.a}\n", map[string]string{"q.sql": "select 1"}, h.ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown td_for_each> key store_last_results")
}

package operators

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

func (h *tdHarness) tableNames(t *testing.T, db string) []string {
	t.Helper()
	tables, err := h.client(t).Tables.List(context.Background(), db)
	require.NoError(t, err)
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	sort.Strings(names)
	return names
}

func (h *tdHarness) dbNames(t *testing.T) []string {
	t.Helper()
	dbs, err := h.client(t).Databases.List(context.Background())
	require.NoError(t, err)
	var names []string
	for _, d := range dbs {
		names = append(names, d.Name)
	}
	return names
}

// digdag-tests TdDdlIT.testDdl (td_ddl.dig) and testParameterizedDdl
// (parameterized.dig): one td_ddl> task doing every kind of operation, the
// lists written out or given through ${...}.
func TestTDDDLEveryOperation(t *testing.T) {
	const prep = `
_export:
  td:
    database: wfdb
+prep:
  td_ddl>:
  create_tables: ["drop_table_1", "drop_table_2", "rename_table_1_from", "rename_table_2_from", "rename_table_2_to", "empty_table_1"]
  create_databases: ["drop_db_1", "drop_db_2", "empty_db_1"]
+fill:
  td>:
  data: INSERT INTO empty_table_1 (time) VALUES (1)
`
	literal := prep + `
+ddl:
  td_ddl>:
  create_tables: ["create_table_1", "create_table_2"]
  empty_tables: ["empty_table_1", "empty_table_2"]
  drop_tables: ["drop_table_1", "drop_table_2"]
  create_databases: ["create_db_1", "create_db_2"]
  drop_databases: ["drop_db_1", "drop_db_2"]
  empty_databases: ["empty_db_1", "empty_db_2"]
  rename_tables: [{from: "rename_table_1_from", to: "rename_table_1_to"}, {from: "rename_table_2_from", to: "rename_table_2_to"}]
`
	parameterized := strings.Replace(prep, "_export:\n", `_export:
  tables:
    create: ["create_table_1", "create_table_2"]
    empty: ["empty_table_1", "empty_table_2"]
    drop: ["drop_table_1", "drop_table_2"]
    rename: [{from: "rename_table_1_from", to: "rename_table_1_to"}, {from: "rename_table_2_from", to: "rename_table_2_to"}]
  databases:
    create: ["create_db_1", "create_db_2"]
    drop: ["drop_db_1", "drop_db_2"]
    empty: ["empty_db_1", "empty_db_2"]
`, 1) + `
+ddl:
  td_ddl>:
  create_tables: ${tables.create}
  empty_tables: ${tables.empty}
  drop_tables: ${tables.drop}
  rename_tables: ${tables.rename}
  create_databases: ${databases.create}
  drop_databases: ${databases.drop}
  empty_databases: ${databases.empty}
`
	for name, dig := range map[string]string{"literal": literal, "parameterized": parameterized} {
		t.Run(name, func(t *testing.T) {
			h := newTDHarness(t)
			run := h.run(t, dig, nil, nil)
			require.NoError(t, run.err, run.out)
			dbs := h.dbNames(t)
			for _, d := range []string{"create_db_1", "create_db_2", "empty_db_1", "empty_db_2"} {
				assert.Contains(t, dbs, d)
			}
			assert.NotContains(t, dbs, "drop_db_1")
			assert.NotContains(t, dbs, "drop_db_2")
			assert.Equal(t, []string{"create_table_1", "create_table_2", "empty_table_1", "empty_table_2", "rename_table_1_to", "rename_table_2_to"},
				h.tableNames(t, "wfdb"))
			tb, err := h.client(t).Tables.Show(context.Background(), "wfdb", "empty_table_1")
			require.NoError(t, err)
			assert.Equal(t, int64(0), tb.Count, "empty_tables drops and creates again")
		})
	}
}

// digdag-tests TdDdlIT.testDdlFailIfRenameFromNotExists and
// testDdlFailIfSomeRenameFromNotExists: every "from" table must exist
// before anything is renamed.
func TestTDDDLRenameOfAMissingTableFailsBeforeRenamingAny(t *testing.T) {
	h := newTDHarness(t)
	run := h.run(t, `
_export:
  td:
    database: wfdb
+create:
  td_ddl>:
  create_tables: ["rename_table_from_1"]
+rename:
  td_ddl>:
  rename_tables:
    - {from: "rename_table_from_1", to: "rename_table_to_1"}
    - {from: "rename_table_from_2", to: "rename_table_to_2"}
`, nil, nil)
	require.Error(t, run.err)
	assert.Contains(t, taskLog(t, run.sum, "+rename")+run.err.Error()+run.out, "Renaming table wfdb.rename_table_from_2 doesn't exist")
	assert.Equal(t, []string{"rename_table_from_1"}, h.tableNames(t, "wfdb"), "nothing was renamed")
}

func TestTDDDLIsIdempotentAndRenameOverwrites(t *testing.T) {
	h := newTDHarness(t)
	dig := `
+a:
  td_ddl>:
  database: wfdb
  create_databases: [wfdb]
  drop_databases: [never_there]
  create_tables: [t1, other_db.t9, keep]
  drop_tables: [not_there]
  rename_tables: [{from: t1, to: keep}]
`
	require.NoError(t, h.srv.CreateDatabase("other_db"))
	for i := 0; i < 2; i++ {
		h.run(t, `
+mk:
  td_ddl>:
  database: wfdb
  create_tables: [t1]
`, nil, nil)
		run := h.run(t, dig, nil, nil)
		require.NoError(t, run.err, run.out)
	}
	assert.Equal(t, []string{"keep"}, h.tableNames(t, "wfdb"))
	assert.Equal(t, []string{"t9"}, h.tableNames(t, "other_db"))
}

func TestTDTableOperatorsRefuseBadSettingsAtCheckTime(t *testing.T) {
	h := newTDHarness(t)
	for _, tc := range []struct{ dig, want string }{
		{"+a:\n  td_ddl>:\n  create_tabels: [x]\n", "unknown td_ddl> key create_tabels (did you mean create_tables?)"},
		{"+a:\n  td_ddl>:\n  create_tables: x\n", "td_ddl> create_tables must be a list of names"},
		{"+a:\n  td_ddl>:\n  database: d\n  rename_tables: [{from: a, to: other.b}]\n", "'to' option of rename_tables can't include database name"},
		{"+a:\n  td_ddl>:\n  database: d\n  rename_tables: [{from: a}]\n", "rename_tables[0] needs from: and to:"},
		{"+a:\n  td_wait_table>: t\n  database: d\n  rows: lots\n", "td_wait_table> rows must be a whole number"},
		{"+a:\n  td_wait_table>: t\n  database: d\n  engine: spark\n", "Unknown 'engine:' option"},
		{"+a:\n  td_wait_table>: t\n  database: d\n  interval: soon\n", "td_wait_table> interval"},
		{"+a:\n  td_wait_table>: t\n  database: d\n  row: 3\n", "unknown td_wait_table> key row (did you mean rows?)"},
		{"+a:\n  td_partial_delete>: t\n  database: d\n  from: 2016-01-01T00:30:00Z\n  to: 2016-01-02T00:00:00Z\n", "'from' and 'to' parameters must be whole hours"},
		{"+a:\n  td_partial_delete>: t\n  database: d\n  from: 0\n", "td_partial_delete> needs to"},
		{"+a:\n  td_table_export>:\n  database: d\n  table: t\n  file_format: parquet\n  from: 0\n  to: 1\n  s3_bucket: b\n  s3_path_prefix: p\n  s3_access_key_id: k\n  s3_secret_access_key: s\n", "invalid file_format option"},
	} {
		err := checkWorkflow(t, tc.dig, nil, h.ops)
		require.Error(t, err, tc.dig)
		assert.Contains(t, err.Error(), tc.want, tc.dig)
	}
	require.NoError(t, checkWorkflow(t, "_export:\n  n: 3\n+a:\n  td_wait_table>: t\n  database: d\n  rows: ${n}\n", nil, h.ops))
}

// td_wait_table> waits for a table that a later insert creates and fills
// (digdag's TdWaitTableOperatorFactory: existence by the REST API, then a
// count query until rows is reached).
func TestTDWaitTableSatisfiedByALaterInsert(t *testing.T) {
	h := newTDHarness(t)
	c := h.client(t)
	go func() {
		time.Sleep(200 * time.Millisecond)
		ctx := context.Background()
		_ = c.Tables.Create(ctx, "wfdb", "arrivals")
		time.Sleep(200 * time.Millisecond)
		for i := 0; i < 3; i++ {
			is, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "wfdb", Query: "INSERT INTO arrivals (time) VALUES (1)"})
			if err == nil {
				_, _ = c.Jobs.Wait(ctx, is.JobID, &td.WaitOptions{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond})
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	run := h.run(t, `
_export:
  td:
    database: wfdb
+wait:
  td_wait_table>: arrivals
  rows: 3
  interval: 100ms
+after:
  echo>: arrived
`, nil, nil)
	require.NoError(t, run.err, run.out)
	log := taskLog(t, run.sum, "+wait")
	assert.Contains(t, log, "waiting for table wfdb.arrivals to exist")
	assert.Contains(t, log, "3 rows")
	tb, err := c.Tables.Show(context.Background(), "wfdb", "arrivals")
	require.NoError(t, err)
	assert.Equal(t, int64(3), tb.Count)
	var counts []string
	for _, r := range h.issueRequests() {
		if q := r.Form.Get("query"); strings.HasPrefix(q, "select count(*)") {
			counts = append(counts, q)
		}
	}
	require.NotEmpty(t, counts)
	assert.Equal(t, `select count(*) from "arrivals"`, counts[0])
}

func TestTDWaitTableHonoursCancellation(t *testing.T) {
	h := newTDHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	run := h.runCtx(ctx, t, "+wait:\n  td_wait_table>: never\n  database: wfdb\n  interval: 1h\n", nil, nil)
	require.Error(t, run.err)
	assert.Less(t, time.Since(start), 5*time.Second, "a cancelled wait ends at once, whatever the interval")
}

// digdag-tests TdPartialDeleteIT (td_partial_delete.dig and the epoch
// number form): the rows of [from, to) go, td.last_job_id is the job.
func TestTDPartialDelete(t *testing.T) {
	h := newTDHarness(t)
	c := h.client(t)
	ctx := context.Background()
	require.NoError(t, c.Tables.Create(ctx, "wfdb", "events"))
	is, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "wfdb", Query: "INSERT INTO events (time) VALUES (0), (3600), (7200), (10800)"})
	require.NoError(t, err)
	_, err = c.Jobs.Wait(ctx, is.JobID, nil)
	require.NoError(t, err)
	run := h.run(t, `
_export:
  td:
    database: wfdb
+iso:
  td_partial_delete>: events
  from: 1970-01-01T01:00:00Z
  to: 1970-01-01T02:00:00
+iso_zone:
  td_partial_delete>: events
  from: 1970-01-01T02:00:00Z
  to: 1970-01-01T03:00:00+00:00
+epoch:
  td_partial_delete>: wfdb.events
  from: 0
  to: 3600
+show:
  echo>: ${td.last_job_id}
`, nil, nil)
	require.NoError(t, run.err, run.out)
	rows, _, err := h.srv.TableRows("wfdb", "events")
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.EqualValues(t, 10800, rows[0][0])
	jobs := h.jobs(t)
	last := jobs[len(jobs)-1]
	assert.Contains(t, run.out, last.ID)
}

func TestTDTableExport(t *testing.T) {
	h := newTDHarness(t)
	secrets := workflow.SecretMap{"aws.s3.access_key_id": "AKIAEXAMPLE", "aws.s3.secret_access_key": "wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY"}
	run := h.run(t, `
+export:
  td_table_export>:
  database: sample_datasets
  table: nasdaq
  file_format: jsonl.gz
  from: 2014-01-02 00:00:00 +0000
  to: 1388707200
  s3_bucket: backup
  s3_path_prefix: nasdaq/
  s3_access_key_id: ${secret:aws.s3.access_key_id}
  s3_secret_access_key: ${secret:aws.s3.secret_access_key}
+show:
  echo>: ${td.last_job_id} ${td.last_job.num_records}
`, nil, secrets)
	require.NoError(t, run.err, run.out)
	assert.NotContains(t, run.out, "wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY")
	matches, err := filepath.Glob(filepath.Join(h.dir, "s3", "backup", "nasdaq", "*.jsonl.gz"))
	require.NoError(t, err)
	require.Len(t, matches, 1)
	fi, err := os.Stat(matches[0])
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(0))
	assert.Contains(t, run.out, " 20")
	var sent url.Values
	for _, r := range h.srv.Requests() {
		if strings.HasPrefix(r.Path, "/v3/export/run/") {
			sent = r.Form
		}
	}
	assert.Equal(t, "1388620800", sent.Get("from"))
	assert.Equal(t, "1388707200", sent.Get("to"))
	assert.Equal(t, "nasdaq/", sent.Get("file_prefix"))

	// without the settings, the keys are digdag's secrets aws.s3.*, read
	// by name (TdTableExportIT gives them as secrets); missing, the task
	// fails naming the secret
	run = h.run(t, "+export:\n  td_table_export>:\n  database: sample_datasets\n  table: nasdaq\n  file_format: jsonl.gz\n  from: 1388620800\n  to: 1388707200\n  s3_bucket: backup\n  s3_path_prefix: by_name/\n", nil, secrets)
	require.NoError(t, run.err, run.out)
	assert.NotContains(t, run.out, "wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY")
	for _, r := range h.srv.Requests() {
		if strings.HasPrefix(r.Path, "/v3/export/run/") {
			sent = r.Form
		}
	}
	assert.Equal(t, "AKIAEXAMPLE", sent.Get("access_key_id"))
	run = h.run(t, "+export:\n  td_table_export>:\n  database: sample_datasets\n  table: nasdaq\n  file_format: jsonl.gz\n  from: 1388620800\n  to: 1388707200\n  s3_bucket: backup\n  s3_path_prefix: none/\n", nil, nil)
	require.Error(t, run.err)
	assert.Contains(t, run.err.Error(), "set the secret aws.s3.access_key_id")

	// a time without a zone is read in the workflow's timezone
	run = h.run(t, `
timezone: Asia/Tokyo
+export:
  td_table_export>:
  database: sample_datasets
  table: nasdaq
  file_format: tsv.gz
  from: 2014-01-02 09:00:00
  to: 2014-01-03 09:00:00
  s3_bucket: backup
  s3_path_prefix: jst/
  s3_access_key_id: k
  s3_secret_access_key: s
`, nil, nil)
	require.NoError(t, run.err, run.out)
	for _, r := range h.srv.Requests() {
		if strings.HasPrefix(r.Path, "/v3/export/run/") {
			sent = r.Form
		}
	}
	assert.Equal(t, "1388620800", sent.Get("from"))
}

// A retried td_ddl> task resumes after the last operation that succeeded:
// what an earlier attempt did is not sent again.
func TestTDDDLRetryResumes(t *testing.T) {
	h := newTDHarness(t)
	h.srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/table/create/wfdb/b/", Times: 1, Status: 400})
	run := h.run(t, `
+ddl:
  _retry: 1
  td_ddl>:
  database: wfdb
  create_tables: [a, b, c]
`, nil, nil)
	require.NoError(t, run.err, run.out)
	assert.Equal(t, []string{"a", "b", "c"}, h.tableNames(t, "wfdb"))
	sent := map[string]int{}
	for _, r := range h.srv.Requests() {
		if strings.HasPrefix(r.Path, "/v3/table/create/") {
			sent[r.Path]++
		}
	}
	assert.Equal(t, map[string]int{"/v3/table/create/wfdb/a/log": 1, "/v3/table/create/wfdb/b/log": 2, "/v3/table/create/wfdb/c/log": 1}, sent)
}

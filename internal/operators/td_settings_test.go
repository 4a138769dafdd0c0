package operators

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// digdag's td> docs: an inline query is data: nested under td>:
// (Workspace.templateCommand reads _command.data).
func TestTDDataUnderTheOperator(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
+q:
  td>:
    data: SELECT ${n} AS a
  database: wfdb
  _export:
    n: 7
+show:
  echo>: num=${td.last_job.num_records}
`, nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	assert.Equal(t, "SELECT 7 AS a", jobs[0].Query)
	assert.Contains(t, r.out, "+wf+show: num=1\n")
}

// TdOperatorFactory merges the td> task's config over the td.* params:
// every setting can come from _export: td: (or -p td.KEY=...), and the
// task's own key wins. The pool is the one of the engine
// (BaseTdJobOperator: engine + "_pool_name").
func TestTDSettingsFromTDDefaults(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
_export:
  td:
    database: wfdb
    engine: hive
    priority: 1
    job_retry: 2
    engine_version: stable
    hive_pool_name: hive_pool
    presto_pool_name: presto_pool

+hive:
  td>:
    data: SELECT 1 AS a

+presto:
  td>:
    data: SELECT 1 AS a
  engine: presto
  priority: -2
`, nil, nil)
	require.NoError(t, r.err, r.out)
	jobs := h.jobs(t)
	require.Len(t, jobs, 2)
	assert.Equal(t, "hive", jobs[0].Type)
	assert.Equal(t, "wfdb", jobs[0].Database)
	assert.Equal(t, 1, jobs[0].Priority)
	assert.Equal(t, 2, jobs[0].RetryLimit)
	assert.Equal(t, "stable", jobs[0].EngineVersion)
	assert.Equal(t, "hive_pool", jobs[0].PoolName)
	assert.Equal(t, "presto", jobs[1].Type)
	assert.Equal(t, -2, jobs[1].Priority, "the task's own key wins over td.priority")
	assert.Equal(t, "presto_pool", jobs[1].PoolName)
}

// TableParam: insert_into / create_table take TABLE or DATABASE.TABLE.
func TestTDCreateTableInAnotherDatabase(t *testing.T) {
	h := newTDHarness(t)
	require.NoError(t, h.srv.CreateDatabase("otherdb"))
	r := h.run(t, `
+q:
  td>:
    data: SELECT 5 AS x
  database: wfdb
  create_table: otherdb.made
`, nil, nil)
	require.NoError(t, r.err, r.out)
	rows, _, err := h.srv.TableRows("otherdb", "made")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(5)}}, rows)

	r = h.run(t, "+q:\n  td>:\n    data: SELECT 1\n  database: wfdb\n  insert_into: a.b.c\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "insert_into must be TABLE or DATABASE.TABLE")
}

// td> docs: download_file saves the result as CSV; preview shows rows;
// store_last_results: true (first) and all.
func TestTDResultSettings(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, `
_export:
  td:
    database: wfdb

+rows:
  td>:
    data: SELECT 1 AS a, 'x,y' AS b UNION ALL SELECT 2 AS a, NULL AS b ORDER BY a
  download_file: out/result.csv
  preview: true
  store_last_results: all

+show_all:
  echo>: all=${td.last_results}

+first:
  td>:
    data: SELECT 1 AS a UNION ALL SELECT 2 AS a ORDER BY a
  store_last_results: first

+show_first:
  echo>: first=${td.last_results.a}
`, map[string]string{"out/.keep": ""}, nil)
	require.NoError(t, r.err, r.out)
	assert.Contains(t, r.out, `+wf+show_all: all=[{"a":1,"b":"x,y"},{"a":2,"b":null}]`+"\n")
	assert.Contains(t, r.out, "+wf+show_first: first=1\n")
	assert.Contains(t, r.out, "+wf+rows: a\tb\n")
	// the CSV file sits beside the workflow
	log := taskLog(t, r.sum, "+rows")
	assert.Contains(t, log, "downloaded 2 rows to out/result.csv")
	proj := filepath.Dir(r.sum.File)
	data, err := os.ReadFile(filepath.Join(proj, "out", "result.csv"))
	require.NoError(t, err)
	assert.Equal(t, "a,b\n1,\"x,y\"\n2,\n", string(data))
	entries, _ := os.ReadDir(filepath.Join(proj, "out"))
	for _, e := range entries {
		assert.False(t, strings.HasSuffix(e.Name(), ".tmp"), "no temporary file left: %s", e.Name())
	}
	// the temporary file was registered for a forced exit (a second
	// Ctrl-C) while it existed, and unregistered once renamed
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.temps, 1)
	for p, n := range h.temps {
		assert.Equal(t, filepath.Join(proj, "out"), filepath.Dir(p))
		assert.True(t, strings.HasSuffix(p, ".tmp"), p)
		assert.Zero(t, n, "unregistered after the rename")
	}
}

// An empty result stores {} (a run of its own: replacing an earlier
// td.last_results is the runner's scoping).
func TestTDLastResultsOfAnEmptyResult(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+empty:\n  td>:\n    data: SELECT 1 AS a WHERE 1 = 0\n  database: wfdb\n  store_last_results: true\n+show:\n  echo>: empty=[${td.last_results}]\n", nil, nil)
	require.NoError(t, r.err, r.out)
	assert.Contains(t, r.out, "+wf+show: empty=[{}]\n")
}

func TestTDResultSettingsChecked(t *testing.T) {
	ops := newTDHarness(t).ops
	err := checkWorkflow(t, "+q:\n  td>:\n    data: SELECT 1\n  database: d\n  store_last_results: every\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `store_last_results must be true, first, all or false (got "every")`)
	err = checkWorkflow(t, "+q:\n  td>:\n    data: SELECT 1\n  database: d\n  download_file: a.csv\n  insert_into: t\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "download_file cannot be combined with insert_into")
	err = checkWorkflow(t, "+q:\n  td>:\n    data: SELECT 1\n    database: d\n", nil, ops)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "database under td>: is not read")
}

package td_test

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

// Databases and tables end to end: what the calls change is what queries
// see in the emulator.
func TestDatabasesAndTablesFlow(t *testing.T) {
	_, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)

	require.NoError(t, c.Databases.Create(ctx, "shop"))
	err := c.Databases.Create(ctx, "shop")
	require.ErrorIs(t, err, td.ErrConflict)
	assert.Contains(t, err.Error(), `database "shop" already exists`)
	db, err := c.Databases.Show(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, "shop", db.Name)
	assert.Equal(t, "administrator", db.Permission)
	assert.False(t, db.CreatedAt.IsZero())
	_, err = c.Databases.Show(ctx, "nope")
	require.ErrorIs(t, err, td.ErrNotFound)
	dbs, err := c.Databases.List(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(dbs), 2)

	require.NoError(t, c.Tables.Create(ctx, "shop", "items"))
	require.ErrorIs(t, c.Tables.Create(ctx, "shop", "items"), td.ErrConflict)
	require.ErrorIs(t, c.Tables.Create(ctx, "nodb", "items"), td.ErrNotFound)
	require.NoError(t, c.Tables.SetSchema(ctx, "shop", "items", []td.TableColumn{{Name: "item", Type: "string"}}))
	require.NoError(t, c.Tables.AppendSchema(ctx, "shop", "items", []td.TableColumn{{Name: "qty", Type: "long"}}))
	err = c.Tables.AppendSchema(ctx, "shop", "items", []td.TableColumn{{Name: "qty", Type: "long"}})
	require.ErrorIs(t, err, td.ErrInvalidArgument, "a column given twice is refused before sending")
	require.ErrorIs(t, c.Tables.SetSchema(ctx, "shop", "items", []td.TableColumn{{Name: "time", Type: "long"}}), td.ErrInvalidArgument)
	require.NoError(t, c.Tables.SetExpireDays(ctx, "shop", "items", 7))

	runQuery := func(q string) *td.Job {
		t.Helper()
		issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "shop", Query: q})
		require.NoError(t, err)
		j, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
		require.NoError(t, err)
		return j
	}
	runQuery("INSERT INTO items (time, item, qty) VALUES (3600, 'apple', 1), (7200, 'pear', 2)")

	tbl, err := c.Tables.Show(ctx, "shop", "items")
	require.NoError(t, err)
	assert.Equal(t, int64(2), tbl.Count)
	assert.Equal(t, []td.TableColumn{{Name: "item", Type: "string"}, {Name: "qty", Type: "long"}}, tbl.Schema)
	require.NotNil(t, tbl.ExpireDays)
	assert.Equal(t, int64(7), *tbl.ExpireDays)
	require.NotNil(t, tbl.LastLogTimestamp)
	assert.Equal(t, time.Unix(7200, 0).UTC(), *tbl.LastLogTimestamp)

	rows, err := c.Tables.Tail(ctx, "shop", "items", 1)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, "pear", rows[0]["item"])

	require.NoError(t, c.Tables.Create(ctx, "shop", "staging"))
	require.NoError(t, c.Tables.Swap(ctx, "shop", "items", "staging"))
	staging, err := c.Tables.Show(ctx, "shop", "staging")
	require.NoError(t, err)
	assert.Equal(t, int64(2), staging.Count)
	assert.Equal(t, tbl.ID, staging.ID, "the table's id follows its data")

	require.ErrorIs(t, c.Tables.Rename(ctx, "shop", "staging", "items", false), td.ErrConflict)
	require.NoError(t, c.Tables.Rename(ctx, "shop", "staging", "items", true))
	ok, err := c.Tables.Exists(ctx, "shop", "staging")
	require.NoError(t, err)
	assert.False(t, ok)

	pd, err := c.Tables.PartialDelete(ctx, "shop", "items", td.PartialDeleteRequest{From: time.Unix(0, 0), To: time.Unix(7200, 0)})
	require.NoError(t, err)
	_, err = c.Jobs.Wait(ctx, pd.JobID, fastWait())
	require.NoError(t, err)
	j := runQuery("SELECT item FROM items")
	assert.Equal(t, int64(1), *j.NumRecords, "the row at 3600 is deleted")
	_, err = c.Tables.PartialDelete(ctx, "shop", "items", td.PartialDeleteRequest{From: time.Unix(1, 0), To: time.Unix(7200, 0)})
	require.ErrorIs(t, err, td.ErrInvalidArgument)

	tables, err := c.Tables.List(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, tables, 1)
	assert.Equal(t, "items", tables[0].Name)

	require.NoError(t, c.Tables.Delete(ctx, "shop", "items"))
	require.ErrorIs(t, c.Tables.Delete(ctx, "shop", "items"), td.ErrNotFound)
	_, err = c.Tables.List(ctx, "nodb")
	require.ErrorIs(t, err, td.ErrNotFound)
	require.NoError(t, c.Databases.Delete(ctx, "shop"))
	require.ErrorIs(t, c.Databases.Delete(ctx, "shop"), td.ErrNotFound)
}

// A create whose answer is lost went through: the retry's 409 is success. A
// swap is never sent twice (a second swap would undo the first).
func TestCreateRetriedAfterLostAnswerAndSwapSentOnce(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	srv.Faults().Add(emulator.Fault{Path: "/v3/database/create/", Times: 1, AfterHandler: true})
	require.NoError(t, c.Databases.Create(ctx, "shop"))
	_, err := c.Databases.Show(ctx, "shop")
	require.NoError(t, err)

	srv.Faults().Add(emulator.Fault{Path: "/v3/table/delete/", Times: 1, AfterHandler: true})
	require.NoError(t, c.Tables.Create(ctx, "shop", "a"))
	require.NoError(t, c.Tables.Delete(ctx, "shop", "a"), "a lost delete answer is retried; its 404 means done")

	require.NoError(t, c.Tables.Create(ctx, "shop", "a"))
	require.NoError(t, c.Tables.Create(ctx, "shop", "b"))
	srv.Faults().Add(emulator.Fault{Path: "/v3/table/swap/", Times: 1, Status: 503})
	err = c.Tables.Swap(ctx, "shop", "a", "b")
	require.ErrorIs(t, err, td.ErrServer)
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == "POST" && r.Path == "/v3/table/swap/shop/a/b" {
			n++
		}
	}
	assert.Equal(t, 1, n)

	srv.Faults().Add(emulator.Fault{Path: "/v3/table/show/", Times: 2, Status: 503})
	_, err = c.Tables.Show(ctx, "shop", "a")
	require.NoError(t, err, "reads are retried")
}

func TestTableExportFlowNeverLogsTheSecret(t *testing.T) {
	var logs bytes.Buffer
	srv, c, _ := newFlow(t, emulator.Options{}, td.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	ctx := flowCtx(t)
	from := time.Date(2014, 1, 2, 0, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	req := &td.TableExportRequest{Bucket: "bkt", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s3cr3t/value",
		FileFormat: "jsonl.gz", FilePrefix: "nasdaq/", From: &from, To: &to}
	issued, err := c.Exports.Run(ctx, "sample_datasets", "nasdaq", req)
	require.NoError(t, err)
	j, err := c.Jobs.Wait(ctx, issued.JobID, fastWait())
	require.NoError(t, err)
	assert.Equal(t, "export", j.Type)
	assert.Equal(t, int64(20), *j.NumRecords)
	got := srv.Requests()
	last := got[0]
	for _, r := range got {
		if r.Path == "/v3/export/run/sample_datasets/nasdaq" {
			last = r
		}
	}
	assert.Equal(t, "s3", last.Form.Get("storage_type"))
	assert.NotEmpty(t, last.Form.Get("domain_key"))

	bad := *req
	bad.FileFormat = "parquet"
	_, err = c.Exports.Run(ctx, "sample_datasets", "nasdaq", &bad)
	require.ErrorIs(t, err, td.ErrInvalidArgument)
	bad = *req
	bad.SecretAccessKey = ""
	_, err = c.Exports.Run(ctx, "sample_datasets", "nasdaq", &bad)
	require.ErrorIs(t, err, td.ErrInvalidArgument)
	_, err = c.Exports.Run(ctx, "sample_datasets", "nope", req)
	require.ErrorIs(t, err, td.ErrNotFound)
	assert.False(t, errors.Is(err, td.ErrInvalidArgument))
	assert.Contains(t, logs.String(), "/v3/export/run/")
	assert.NotContains(t, logs.String(), "s3cr3t")
}

// A tail answer cut mid-way is read again within the retry budget, never
// returned short.
func TestTailCutAnswerIsReadAgain(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	srv.Faults().Add(emulator.Fault{Path: "/v3/table/tail/", Times: 1, ResetAfterBytes: 300})
	rows, err := c.Tables.Tail(ctx, "sample_datasets", "www_access", 20)
	require.NoError(t, err)
	assert.Len(t, rows, 20)
	assert.Equal(t, 1, srv.Faults().Hits())
	for _, r := range rows {
		assert.Contains(t, r, "time")
		assert.Contains(t, r, "user")
	}
}

package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// The Go client (td-client-go) decodes these answers with a strict schema
// (see its api_database.go, api_table.go, api_job.go): a key it does not
// know fails the call, so does a required key that is missing or null, and
// an optional time-valued key that is absent (its default is no string).
// goKey describes one key of such a schema.
type goKey struct {
	kind     string // "string", "int", "bool", "time", "json" (a string holding JSON), "array", "object"
	optional bool
	elem     map[string]goKey // for "array" of objects and "object"
}

func req(kind string) goKey { return goKey{kind: kind} }
func opt(kind string) goKey { return goKey{kind: kind, optional: true} }

// goStrictCheck reports how td-client-go would refuse v under schema.
func goStrictCheck(path string, v map[string]any, schema map[string]goKey) error {
	for k := range v {
		if _, ok := schema[k]; !ok {
			return fmt.Errorf("unknown key %s under %s", k, path)
		}
	}
	for k, want := range schema {
		got, present := v[k]
		p := path + "/" + k
		if !present {
			if !want.optional {
				return fmt.Errorf("missing key %s", p)
			}
			if want.kind == "time" {
				return fmt.Errorf("optional time key %s absent: the Go client's default is no string and it fails", p)
			}
			continue
		}
		if got == nil {
			if !want.optional {
				return fmt.Errorf("%s may not be null", p)
			}
			continue
		}
		switch want.kind {
		case "string":
			if _, ok := got.(string); !ok {
				return fmt.Errorf("%s: want a string, got %T", p, got)
			}
		case "int":
			f, ok := got.(float64)
			if !ok || f != float64(int64(f)) {
				return fmt.Errorf("%s: want an integer, got %v", p, got)
			}
		case "bool":
			if _, ok := got.(bool); !ok {
				return fmt.Errorf("%s: want a bool, got %T", p, got)
			}
		case "time":
			s, ok := got.(string)
			if !ok {
				return fmt.Errorf("%s: want a time string, got %T", p, got)
			}
			if s == "" && !want.optional {
				return fmt.Errorf("%s may not be empty", p)
			}
			if s != "" && !reTDTime.MatchString(s) {
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					return fmt.Errorf("%s: invalid time string %q", p, s)
				}
			}
		case "json":
			s, ok := got.(string)
			if !ok {
				return fmt.Errorf("%s: want a JSON string, got %T", p, got)
			}
			var a []any
			if err := json.Unmarshal([]byte(s), &a); err != nil {
				return fmt.Errorf("%s: %v", p, err)
			}
		case "array":
			a, ok := got.([]any)
			if !ok {
				return fmt.Errorf("%s: want an array, got %T", p, got)
			}
			for i, e := range a {
				m, ok := e.(map[string]any)
				if !ok {
					return fmt.Errorf("%s[%d]: want an object", p, i)
				}
				if err := goStrictCheck(fmt.Sprintf("%s[%d]", p, i), m, want.elem); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var (
	goDatabaseList = map[string]goKey{"databases": {kind: "array", elem: map[string]goKey{
		"name": req("string"), "organization": opt("string"), "count": req("int"), "created_at": req("time"),
		"updated_at": req("time"), "permission": req("string"), "delete_protected": req("bool"),
	}}}
	goTable = map[string]goKey{
		"id": req("int"), "name": req("string"), "type": opt("string"), "count": opt("int"),
		"created_at": req("time"), "updated_at": req("time"), "counter_updated_at": opt("time"),
		"last_log_timestamp": opt("time"), "delete_protected": req("bool"), "estimated_storage_size": req("int"),
		"schema": opt("json"), "expire_days": opt("int"), "primary_key": opt("string"),
		"primary_key_type": opt("string"), "include_v": req("bool"),
	}
	goTableList   = map[string]goKey{"database": req("string"), "tables": {kind: "array", elem: goTable}}
	goTableDelete = map[string]goKey{"table": req("string"), "database": req("string"), "type": opt("string")}
	goSubmitJob   = map[string]goKey{"job": req("string"), "job_id": req("string"), "database": req("string")}
)

// The checker itself must refuse what the Go client refuses.
func TestGoStrictCheckRefuses(t *testing.T) {
	ok := map[string]any{"table": "t", "database": "d", "type": "log"}
	require.NoError(t, goStrictCheck("", ok, goTableDelete))
	assert.Error(t, goStrictCheck("", map[string]any{"table": "t", "database": "d", "extra": 1}, goTableDelete))
	assert.Error(t, goStrictCheck("", map[string]any{"table": "t"}, goTableDelete))
	assert.Error(t, goStrictCheck("", map[string]any{"table": nil, "database": "d"}, goTableDelete))
	tbl := map[string]any{"id": 1.0, "name": "t", "created_at": "2020-01-01 00:00:00 UTC", "updated_at": "2020-01-01 00:00:00 UTC",
		"delete_protected": false, "estimated_storage_size": 0.0, "include_v": true}
	assert.Error(t, goStrictCheck("", tbl, goTable), "absent optional time keys break the Go client")
	tbl["counter_updated_at"], tbl["last_log_timestamp"] = nil, 1600000000.0
	assert.Error(t, goStrictCheck("", tbl, goTable), "an integer time breaks it")
	tbl["last_log_timestamp"] = nil
	assert.NoError(t, goStrictCheck("", tbl, goTable))
}

func TestTableEndpointsMatchTheGoClientsSchemas(t *testing.T) {
	_, c := newEmu(t, Options{})
	strict := func(r resp, schema map[string]goKey) map[string]any {
		t.Helper()
		require.Equal(t, 200, r.status, "%s", r.body)
		m := r.json(t)
		require.NoError(t, goStrictCheck("", m, schema), "%s", r.body)
		return m
	}
	require.Equal(t, 200, c.post("/v3/database/create/shop", nil).status)
	require.Equal(t, 200, c.post("/v3/table/create/shop/items/log", nil).status)
	strict(c.get("/v3/database/list"), goDatabaseList)
	strict(c.get("/v3/table/list/shop"), goTableList)
	strict(c.get("/v3/table/list/sample_datasets"), goTableList)
	show := strict(c.get("/v3/table/show/shop/items"), goTable)
	assert.Equal(t, "[]", show["schema"], "a new log table has no columns but the implicit time")
	assert.Nil(t, show["last_log_timestamp"])
	strict(c.post("/v3/export/run/sample_datasets/nasdaq", url.Values{"storage_type": {"s3"}, "bucket": {"b"},
		"access_key_id": {"AK"}, "secret_access_key": {"SK"}, "file_format": {"jsonl.gz"}}), goSubmitJob)
	strict(c.post("/v3/table/delete/shop/items", nil), goTableDelete)

	// td-client-ruby (lib/td/client/api/*.rb) checks for "databases",
	// "tables" and an export's "job_id", parses each table's schema string
	// and refuses a schema naming time or v (reserved in TD tables)
	assert.Contains(t, c.get("/v3/database/list").json(t), "databases")
	for _, db := range []string{"shop", "sample_datasets"} {
		tl := c.get("/v3/table/list/" + db).json(t)
		require.Contains(t, tl, "tables")
		for _, e := range tl["tables"].([]any) {
			var cols [][]string
			require.NoError(t, json.Unmarshal([]byte(e.(map[string]any)["schema"].(string)), &cols))
			for _, col := range cols {
				assert.NotContains(t, []string{"time", "v"}, col[0], "%s.%s", db, e.(map[string]any)["name"])
			}
		}
	}
}

func TestCreatedTablesAreQueryableAndSwapRenameDeleteChangeWhatQueriesSee(t *testing.T) {
	s, c := newEmu(t, Options{})
	require.Equal(t, 200, c.post("/v3/database/create/shop", nil).status)
	assert.Equal(t, 409, c.post("/v3/database/create/shop", nil).status)
	assert.Equal(t, 400, c.post("/v3/database/create/bad-name", nil).status)
	assert.Equal(t, 404, c.post("/v3/table/create/nodb/t/log", nil).status)
	require.Equal(t, 200, c.post("/v3/table/create/shop/a/log", nil).status)
	assert.Equal(t, 409, c.post("/v3/table/create/shop/a/log", nil).status)
	require.Equal(t, 200, c.post("/v3/table/create/shop/b/log", nil).status)

	// schema: set, then append a column by setting the longer list
	require.Equal(t, 200, c.post("/v3/table/update-schema/shop/a", url.Values{"schema": {`[["item","string"],["qty","long"]]`}}).status)
	assert.Equal(t, 400, c.post("/v3/table/update-schema/shop/a", url.Values{"schema": {`[["time","long"]]`}}).status)
	show := c.get("/v3/table/show/shop/a").json(t)
	assert.Equal(t, `[["item","string"],["qty","long"]]`, show["schema"])

	run := func(db, q string) map[string]any {
		t.Helper()
		j := c.wait(c.issue(db, q, nil))
		require.Equal(t, "success", j["status"], "%v", j["debug"])
		return j
	}
	run("shop", "INSERT INTO a (time, item, qty) VALUES (3600, 'apple', 1), (7200, 'pear', 2), (10800, 'fig', 3)")
	run("shop", "INSERT INTO b (time) VALUES (1)")
	show = c.get("/v3/table/show/shop/a").json(t)
	assert.Equal(t, float64(3), show["count"], "count follows INSERT at once")
	assert.Equal(t, "1970-01-01 03:00:00 UTC", show["last_log_timestamp"])

	// tail: msgpack maps, newest first, also by GET with format=msgpack (Ruby)
	r := c.post("/v3/table/tail/shop/a", url.Values{"count": {"2"}})
	require.Equal(t, 200, r.status, "%s", r.body)
	dec := msgpack.NewDecoder(bytes.NewReader(r.body))
	var rows []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		rows = append(rows, m)
	}
	require.Len(t, rows, 2)
	assert.Equal(t, "fig", rows[0]["item"])
	assert.EqualValues(t, 10800, rows[0]["time"])
	assert.Equal(t, "pear", rows[1]["item"])
	assert.Equal(t, 200, c.get("/v3/table/tail/shop/a?format=msgpack&count=1").status)

	// swap: the names exchange contents, metadata follows
	idA := show["id"]
	require.Equal(t, 200, c.post("/v3/table/swap/shop/a/b", nil).status)
	b := c.get("/v3/table/show/shop/b").json(t)
	assert.Equal(t, float64(3), b["count"])
	assert.Equal(t, idA, b["id"])
	assert.Equal(t, `[["item","string"],["qty","long"]]`, b["schema"])
	j := run("shop", "SELECT COUNT(1) AS n FROM b")
	assert.Equal(t, float64(1), j["num_records"])
	rowsB, _, err := s.TableRows("shop", "b")
	require.NoError(t, err)
	assert.Len(t, rowsB, 3)
	assert.Equal(t, 404, c.post("/v3/table/swap/shop/a/nope", nil).status)

	// rename: refused onto an existing name without overwrite
	assert.Equal(t, 409, c.post("/v3/table/rename/shop/b/a", nil).status)
	require.Equal(t, 200, c.post("/v3/table/rename/shop/b/a", url.Values{"overwrite": {"true"}}).status)
	assert.Equal(t, 404, c.get("/v3/table/show/shop/b").status)
	rowsA, _, err := s.TableRows("shop", "a")
	require.NoError(t, err)
	assert.Len(t, rowsA, 3)

	// partial delete: a job; whole hours only
	assert.Equal(t, 400, c.post("/v3/table/partialdelete/shop/a", url.Values{"from": {"1"}, "to": {"7200"}}).status)
	pd := c.post("/v3/table/partialdelete/shop/a", url.Values{"from": {"3600"}, "to": {"10800"}})
	require.Equal(t, 200, pd.status, "%s", pd.body)
	pj := c.wait(pd.json(t)["job_id"].(string))
	require.Equal(t, "success", pj["status"], "%v", pj["debug"])
	assert.Equal(t, "partialdelete", pj["type"])
	rowsA, _, err = s.TableRows("shop", "a")
	require.NoError(t, err)
	require.Len(t, rowsA, 1, "rows at 3600 and 7200 are gone")

	// expire days
	require.Equal(t, 200, c.post("/v3/table/update/shop/a", url.Values{"expire_days": {"30"}}).status)
	assert.Equal(t, float64(30), c.get("/v3/table/show/shop/a").json(t)["expire_days"])
	assert.Equal(t, 400, c.post("/v3/table/update/shop/a", url.Values{"expire_days": {"-1"}}).status)

	// delete table, then database
	require.Equal(t, 200, c.post("/v3/table/delete/shop/a", nil).status)
	assert.Equal(t, 404, c.post("/v3/table/delete/shop/a", nil).status)
	j = c.wait(c.issue("shop", "SELECT * FROM a", nil))
	assert.Equal(t, "error", j["status"], "a deleted table is gone for queries")
	require.Equal(t, 200, c.post("/v3/database/delete/shop", nil).status)
	assert.Equal(t, 404, c.post("/v3/database/delete/shop", nil).status)
	assert.Equal(t, 404, c.get("/v3/table/list/shop").status)
}

func TestTableExportWritesTheRows(t *testing.T) {
	s, c := newEmu(t, Options{})
	form := url.Values{"storage_type": {"s3"}, "bucket": {"bkt"}, "access_key_id": {"AK"}, "secret_access_key": {"SK"},
		"file_format": {"jsonl.gz"}, "file_prefix": {"out/nasdaq_"}, "from": {"1388534400"}, "to": {"1388707200"}}
	r := c.post("/v3/export/run/sample_datasets/nasdaq", form)
	require.Equal(t, 200, r.status, "%s", r.body)
	id := r.json(t)["job_id"].(string)
	j := c.wait(id)
	require.Equal(t, "success", j["status"], "%v", j["debug"])
	assert.Equal(t, "export", j["type"])
	data, err := os.ReadFile(filepath.Join(s.root, "s3", "bkt", "out", "nasdaq_"+id+".jsonl.gz"))
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(plain)), "\n")
	assert.Equal(t, float64(len(lines)), j["num_records"])
	assert.Equal(t, 20, len(lines), "one trading day (2014-01-02) of 20 symbols")
	assert.Contains(t, lines[0], `"symbol"`)

	bad := cloneValues(form)
	bad.Set("file_format", "parquet")
	assert.Equal(t, 400, c.post("/v3/export/run/sample_datasets/nasdaq", bad).status)
	assert.Equal(t, 404, c.post("/v3/export/run/sample_datasets/nope", form).status)
}

func TestFaultsReachTheTableEndpoints(t *testing.T) {
	s, c := newEmu(t, Options{})
	s.Faults().Add(Fault{Method: "POST", Path: "/v3/table/swap/", Times: 1, Status: 503})
	s.Faults().Add(Fault{Method: "GET", Path: "/v3/table/show/", Times: 1, Status: 429, RetryAfter: "1"})
	assert.Equal(t, 503, c.post("/v3/table/swap/sample_datasets/nasdaq/www_access", nil).status)
	assert.Equal(t, 429, c.get("/v3/table/show/sample_datasets/nasdaq").status)
	assert.Equal(t, 200, c.get("/v3/table/show/sample_datasets/nasdaq").status)
	assert.Equal(t, 2, s.Faults().Hits())
}

// td-client-go sends its empty-form POSTs (create and delete database,
// create table, swap) chunked with no body, and its table tail as a POST
// with count and no format.
func TestGoClientRequestFormsAreAccepted(t *testing.T) {
	_, c := newEmu(t, Options{})
	post := func(path string, body io.Reader) int {
		t.Helper()
		req, err := http.NewRequest("POST", c.base+path, body)
		require.NoError(t, err)
		req.ContentLength = -1 // chunked
		req.Header.Set("Authorization", "TD1 "+testKey)
		res, err := c.hc.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	assert.Equal(t, 200, post("/v3/database/create/chunked_db", io.NopCloser(strings.NewReader(""))))
	assert.Equal(t, 200, post("/v3/table/create/chunked_db/t1/log", io.NopCloser(strings.NewReader(""))))
	assert.Equal(t, 200, post("/v3/table/create/chunked_db/t2/log", io.NopCloser(strings.NewReader(""))))
	assert.Equal(t, 200, post("/v3/table/swap/chunked_db/t1/t2", io.NopCloser(strings.NewReader(""))))
	assert.Equal(t, 200, post("/v3/table/tail/sample_datasets/nasdaq", io.NopCloser(strings.NewReader("count=3"))))
	assert.Equal(t, 200, post("/v3/database/delete/chunked_db", io.NopCloser(strings.NewReader(""))))
}

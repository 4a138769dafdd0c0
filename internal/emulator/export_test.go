package emulator

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIssueWithTDResultWritesTable(t *testing.T) {
	s, c := newEmu(t, Options{})
	require.NoError(t, s.CreateDatabase("out"))
	q := "SELECT code, COUNT(1) AS n FROM www_access GROUP BY code ORDER BY code"
	id := c.issue("sample_datasets", q, url.Values{"result": {"td://@/out/codes"}})
	show := c.wait(id)
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	assert.Equal(t, "td://@/out/codes", show["result"])
	rows, cols, err := s.TableRows("out", "codes")
	require.NoError(t, err)
	assert.Equal(t, []Column{{"code", "bigint"}, {"n", "bigint"}}, cols)
	require.Len(t, rows, 4)
	var total int64
	for _, r := range rows {
		total += r[1].(int64)
	}
	assert.EqualValues(t, 5000, total)
	assert.Equal(t, float64(4), show["num_records"])

	// append (default) doubles, replace resets; td://KEY@ works too
	show = c.wait(c.issue("sample_datasets", q, url.Values{"result": {"td://" + testKey + "@/out/codes?mode=append"}}))
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	assert.NotContains(t, show["debug"].(map[string]any)["cmdout"], testKey)
	rows, _, _ = s.TableRows("out", "codes")
	assert.Len(t, rows, 8)
	c.wait(c.issue("sample_datasets", "SELECT 'x' AS s, 1.5 AS f", url.Values{"result": {"td://@/out/codes?mode=replace"}}))
	rows, cols, _ = s.TableRows("out", "codes")
	assert.Equal(t, [][]any{{"x", 1.5}}, rows)
	assert.Equal(t, []Column{{"s", "varchar"}, {"f", "double"}}, cols)

	// append with a new column adds it
	c.wait(c.issue("sample_datasets", "SELECT 'y' AS s, 2.5 AS f, 7 AS extra", url.Values{"result": {"td://@/out/codes"}}))
	rows, cols, _ = s.TableRows("out", "codes")
	assert.Equal(t, [][]any{{"x", 1.5, nil}, {"y", 2.5, int64(7)}}, rows)
	assert.Equal(t, "extra", cols[2].Name)

	// the emulator's tables are queryable
	id = c.issue("out", "SELECT COUNT(1) FROM codes", nil)
	assert.Equal(t, "2\n", string(c.get("/v3/job/result/"+id+"?format=csv").body))

	// failures end the job in error with a clear message
	for result, msg := range map[string]string{
		"td://@/nodb/t":             `database "nodb" does not exist`,
		"td://@/out":                "needs a database and a table",
		"td://@/out/t?mode=upsert":  "unsupported mode",
		"mysql://u:secretpw@h/db/t": "cannot write results to mysql://",
	} {
		show := c.wait(c.issue("sample_datasets", "SELECT 1 AS a", url.Values{"result": {result}}))
		assert.Equal(t, "error", show["status"], result)
		stderr := show["debug"].(map[string]any)["stderr"].(string)
		assert.Contains(t, stderr, msg)
		assert.NotContains(t, stderr, "secretpw")
		assert.Equal(t, result, show["result"], "result echoes the URL as given")
	}
}

func TestResultExportEndpoint(t *testing.T) {
	clk := NewManualClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	s, c := newEmu(t, Options{Clock: clk, RunningFor: 10 * time.Second})
	require.NoError(t, s.CreateDatabase("out"))
	src := c.issue("sample_datasets", "SELECT symbol, MAX(high) AS top FROM nasdaq GROUP BY symbol", nil)

	r := c.post("/v3/job/result_export/"+src, url.Values{"result": {"td://@/out/top"}})
	assert.Equal(t, 422, r.status, "an unfinished job cannot be exported")
	assert.Contains(t, r.json(t)["message"], "only a job that finished with success")

	clk.Advance(10 * time.Second)
	require.Equal(t, "success", c.show(src)["status"])
	r = c.post("/v3/job/result_export/"+src, url.Values{})
	assert.Equal(t, 422, r.status)
	assert.Contains(t, r.json(t)["message"], "result_connection_id")

	r = c.post("/v3/job/result_export/"+src, url.Values{"result": {"td://@/out/top?mode=replace"}})
	require.Equal(t, 200, r.status, "%s", r.body)
	m := r.json(t)
	assert.Equal(t, []string{"job_id"}, keysOf(m))
	exp := m["job_id"].(string)
	assert.NotEqual(t, src, exp)

	show := c.show(exp)
	assert.Equal(t, showKeys, keysOf(show))
	assert.Equal(t, "running", show["status"])
	assert.Equal(t, float64(mustID(t, src)), show["result_export_target_job_id"], "a JSON number")
	srcShow := c.show(src)
	assert.Equal(t, float64(mustID(t, exp)), srcShow["linked_result_export_job_id"], "a JSON number")

	clk.Advance(10 * time.Second)
	show = c.show(exp)
	assert.Equal(t, "success", show["status"], "%v", show["debug"])
	assert.Nil(t, show["hive_result_schema"])
	assert.Equal(t, float64(20), show["num_records"])
	rows, cols, err := s.TableRows("out", "top")
	require.NoError(t, err)
	assert.Len(t, rows, 20)
	assert.Equal(t, []Column{{"symbol", "varchar"}, {"top", "double"}}, cols)
	assert.Equal(t, 422, c.get("/v3/job/result/"+exp+"?format=json").status, "an export job has no result")

	info, _ := s.Job(exp)
	assert.Equal(t, src, info.ResultExportTargetJobID)
	srcInfo, _ := s.Job(src)
	assert.Equal(t, exp, srcInfo.LinkedResultExportJobID)

	// a failed source job cannot be exported
	bad := c.issue("sample_datasets", "SELECT nope", nil)
	clk.Advance(time.Minute)
	assert.Equal(t, 422, c.post("/v3/job/result_export/"+bad, url.Values{"result": {"td://@/out/x"}}).status)
}

func TestConnections(t *testing.T) {
	s, c := newEmu(t, Options{})
	require.NoError(t, s.CreateDatabase("out"))
	id := s.AddConnection("my_td", "td://@/", map[string]any{"database": "out", "table": "from_conn", "mode": "append"})
	assert.Equal(t, id, s.AddConnection("my_td", "td://@/", map[string]any{"database": "out", "table": "from_conn"}), "same name, same id")
	s3id := s.AddConnection("my_s3", "s3://", map[string]any{"bucket": "default-bucket", "path": "/default/"})
	assert.NotEqual(t, id, s3id)

	r := c.get("/v3/connections/lookup?name=my_td")
	require.Equal(t, 200, r.status)
	m := r.json(t)
	assert.Equal(t, sorted("id", "name", "url"), keysOf(m))
	assert.Equal(t, float64(id), m["id"])
	assert.Equal(t, "my_td", m["name"])
	assert.Equal(t, "td://@/", m["url"])
	assert.Equal(t, 404, c.get("/v3/connections/lookup?name=nope").status)
	assert.Equal(t, 422, c.get("/v3/connections/lookup").status)

	// issue with a connection; request settings win over the connection's
	job := c.issue("sample_datasets", "SELECT 1 AS a", url.Values{
		"result_connection_id":       {fmt.Sprint(id)},
		"result_connection_settings": {`{"table":"override"}`},
	})
	show := c.wait(job)
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	assert.Equal(t, "", show["result"])
	rows, _, err := s.TableRows("out", "override")
	require.NoError(t, err)
	assert.Equal(t, [][]any{{int64(1)}}, rows)
	info, _ := s.Job(job)
	assert.Equal(t, id, info.ResultConnectionID)
	assert.Equal(t, `{"table":"override"}`, info.ResultConnectionSettings)
	assert.Equal(t, map[string]any{"database": "out", "table": "override"}, info.TargetSettings)

	// result_export with an s3 connection and settings
	exp := c.post("/v3/job/result_export/"+job, url.Values{
		"result_connection_id":       {fmt.Sprint(s3id)},
		"result_connection_settings": {`{"bucket":"b","path":"/logs/daily/"}`},
	})
	require.Equal(t, 200, exp.status, "%s", exp.body)
	eid := exp.json(t)["job_id"].(string)
	require.Equal(t, "success", c.wait(eid)["status"])
	b, err := os.ReadFile(filepath.Join(s.root, "s3", "b", "logs", "daily", eid+".csv"))
	require.NoError(t, err)
	assert.Equal(t, "a\n1\n", string(b))

	bad := c.post("/v3/job/result_export/"+job, url.Values{"result_connection_id": {fmt.Sprint(s3id)}, "result_connection_settings": {`not json`}})
	assert.Equal(t, 422, bad.status)
	assert.Contains(t, bad.json(t)["message"], "result_connection_settings must be a JSON object")
}

func TestS3ResultURL(t *testing.T) {
	dir := t.TempDir()
	_, c := newEmu(t, Options{DataDir: dir})
	id := c.issue("sample_datasets", "SELECT 'a,b' AS s, 2 AS n", url.Values{"result": {"s3://AKIA:secretkey@bucket1/exports/x/"}})
	show := c.wait(id)
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	b, err := os.ReadFile(filepath.Join(dir, "s3", "bucket1", "exports", "x", id+".csv"))
	require.NoError(t, err)
	assert.Equal(t, "s,n\n\"a,b\",2\n", string(b))
	assert.NotContains(t, show["debug"].(map[string]any)["cmdout"], "secretkey")

	// path traversal stays inside the bucket
	id = c.issue("sample_datasets", "SELECT 1 AS a", url.Values{"result": {"s3://bucket2/../../etc"}})
	require.Equal(t, "success", c.wait(id)["status"])
	_, err = os.Stat(filepath.Join(dir, "s3", "bucket2", "etc", id+".csv"))
	assert.NoError(t, err)
}

const pgDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func pgConn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgDSN)
	require.NoError(t, err, "PostgreSQL must run on 127.0.0.1:5432 (user postgres, database test)")
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestExportToPostgreSQL(t *testing.T) {
	pg := pgConn(t)
	ctx := context.Background()
	table := fmt.Sprintf("tdtest_export_%d", time.Now().UnixNano())
	schema := fmt.Sprintf("tdtest_schema_%d", time.Now().UnixNano())
	_, err := pg.Exec(ctx, `CREATE SCHEMA `+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = pg.Exec(context.Background(), `DROP TABLE IF EXISTS public.`+table)
		_, _ = pg.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
	})

	s, c := newEmu(t, Options{})
	q := "SELECT code, COUNT(1) AS n, AVG(size) AS avg_size, method FROM www_access GROUP BY code, method ORDER BY code, method"
	result := "postgresql://postgres:pw@127.0.0.1:5432/test/" + table
	id := c.issue("sample_datasets", q, url.Values{"result": {result}})
	show := c.wait(id)
	require.Equal(t, "success", show["status"], "%v", show["debug"])
	want := show["num_records"].(float64)

	var n, total int64
	require.NoError(t, pg.QueryRow(ctx, `SELECT COUNT(*), SUM(n) FROM public.`+table).Scan(&n, &total))
	assert.EqualValues(t, want, n)
	assert.EqualValues(t, 5000, total)
	var typ string
	require.NoError(t, pg.QueryRow(ctx, `SELECT data_type FROM information_schema.columns WHERE table_name = $1 AND column_name = 'avg_size'`, table).Scan(&typ))
	assert.Equal(t, "double precision", typ)

	// append, then replace via result_export with postgres:// and schema=
	c.wait(c.issue("sample_datasets", q, url.Values{"result": {result + "?mode=append"}}))
	require.NoError(t, pg.QueryRow(ctx, `SELECT COUNT(*) FROM public.`+table).Scan(&n))
	assert.EqualValues(t, 2*want, n)
	c.wait(c.issue("sample_datasets", q, url.Values{"result": {result + "?mode=truncate"}}))
	require.NoError(t, pg.QueryRow(ctx, `SELECT COUNT(*) FROM public.`+table).Scan(&n))
	assert.EqualValues(t, want, n)

	r := c.post("/v3/job/result_export/"+id, url.Values{"result": {"postgres://postgres@127.0.0.1/test/" + table + "?mode=replace&schema=" + schema}})
	require.Equal(t, 200, r.status, "%s", r.body)
	exp := c.wait(r.json(t)["job_id"].(string))
	require.Equal(t, "success", exp["status"], "%v", exp["debug"])
	require.NoError(t, pg.QueryRow(ctx, `SELECT COUNT(*) FROM `+schema+`.`+table).Scan(&n))
	assert.EqualValues(t, want, n)

	// a connection with settings
	cid := s.AddConnection("pg", "postgresql://postgres@127.0.0.1:5432/test", map[string]any{"table": table, "mode": "replace"})
	id2 := c.issue("sample_datasets", "SELECT 1 AS code, 2 AS n, 0.5 AS avg_size, 'GET' AS method", url.Values{"result_connection_id": {fmt.Sprint(cid)}, "result_connection_settings": {`{"schema":"` + schema + `"}`}})
	require.Equal(t, "success", c.wait(id2)["status"])
	require.NoError(t, pg.QueryRow(ctx, `SELECT COUNT(*) FROM `+schema+`.`+table).Scan(&n))
	assert.EqualValues(t, 1, n)
}

func TestExportToUnreachablePostgreSQLFailsWithRedactedReason(t *testing.T) {
	var logs logSink
	_, c := newEmu(t, Options{Logf: logs.logf})
	id := c.issue("sample_datasets", "SELECT 1 AS a", url.Values{"result": {"postgresql://postgres:hunter2secret@127.0.0.1:1/test/t"}})
	show := c.wait(id)
	assert.Equal(t, "error", show["status"])
	stderr := show["debug"].(map[string]any)["stderr"].(string)
	assert.Contains(t, stderr, "connecting to PostgreSQL at 127.0.0.1:1")
	assert.NotContains(t, stderr, "hunter2secret")
	assert.Contains(t, show["result"], "hunter2secret", "show echoes the URL as given; clients redact")
	assert.Contains(t, logs.String(), "failed")
	assert.NotContains(t, logs.String(), "hunter2secret")
}

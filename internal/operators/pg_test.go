package operators

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore/paramstoretest"
	"github.com/tdctl/tdctl/workflow"
)

// pgFixture is a schema of its own on the test PostgreSQL with digdag
// PgIT's source table (src_tbl) and destination table (dest_tbl).
type pgFixture struct {
	schema string
	conn   *pgx.Conn
	export string // an _export: block pointing pg> and redshift> there
}

func newPGFixture(t *testing.T, nulls bool) *pgFixture {
	t.Helper()
	schema := paramstoretest.FreshSchema(t, "pgop_")
	conn, err := pgx.Connect(t.Context(), paramstoretest.PostgresURL())
	paramstoretest.RequireServer(t, "PostgreSQL", err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	u, err := url.Parse(paramstoretest.PostgresURL())
	require.NoError(t, err)
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	q := pgx.Identifier{schema}.Sanitize()
	stmts := []string{"CREATE SCHEMA " + q,
		"CREATE TABLE " + q + ".src_tbl (id integer, name text, score real)",
		"CREATE TABLE " + q + ".dest_tbl (id integer, name text, score real)",
		"INSERT INTO " + q + ".dest_tbl VALUES (9, 'zzz', 9.99)"}
	if nulls {
		stmts = append(stmts, "INSERT INTO "+q+".src_tbl VALUES (0, NULL, NULL), (NULL, 'bar', NULL), (NULL, NULL, 5.00)")
	} else {
		stmts = append(stmts, "INSERT INTO "+q+".src_tbl VALUES (0, 'foo', 3.14), (1, 'bar', 1.23), (2, 'baz', 5.00)")
	}
	for _, s := range stmts {
		_, err := conn.Exec(t.Context(), s)
		require.NoError(t, err, s)
	}
	export := "_export:\n"
	for _, kind := range []string{"pg", "redshift"} {
		export += fmt.Sprintf("  %s:\n    host: %s\n    port: %s\n    database: %s\n    user: %s\n    schema: %s\n",
			kind, u.Hostname(), port, strings.TrimPrefix(u.Path, "/"), u.User.Username(), schema)
	}
	return &pgFixture{schema: schema, conn: conn, export: export}
}

func (f *pgFixture) rows(t *testing.T, query string) []string {
	t.Helper()
	rows, err := f.conn.Query(t.Context(), strings.ReplaceAll(query, "SCHEMA", pgx.Identifier{f.schema}.Sanitize()))
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		require.NoError(t, err)
		var parts []string
		for _, v := range vals {
			parts = append(parts, fmt.Sprint(v))
		}
		out = append(out, strings.Join(parts, ","))
	}
	require.NoError(t, rows.Err())
	return out
}

// runPG runs dig (after the fixture's _export) in a directory with files.
func runPG(t *testing.T, f *pgFixture, dig string, files map[string]string, secrets workflow.Secrets) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	file := filepath.Join(dir, "wf.dig")
	require.NoError(t, os.WriteFile(file, []byte(f.export+dig), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: Operators(nil), Secrets: secrets, RunsDir: filepath.Join(dir, "runs"), Output: &out}
	_, err = r.Run(t.Context(), wf)
	return dir, out.String(), err
}

var selectTable = map[string]string{"select_table.sql": "SELECT * FROM src_tbl ORDER BY id\n"}

// PgIT selectAndDownload / selectAndDownloadWithNullValues: the CSV as
// digdag writes it (CRLF, a header line, null as an empty field, a whole
// real as 5.0).
func TestPGDownloadFileLikeDigdag(t *testing.T) {
	f := newPGFixture(t, false)
	dir, _, err := runPG(t, f, "+run:\n  pg>: select_table.sql\n  download_file: pg_test.csv\n", selectTable, nil)
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "pg_test.csv"))
	require.NoError(t, err)
	assert.Equal(t, "id,name,score\r\n0,foo,3.14\r\n1,bar,1.23\r\n2,baz,5.0\r\n", string(data))

	f = newPGFixture(t, true)
	dir, _, err = runPG(t, f, "+run:\n  pg>: select_table.sql\n  download_file: pg_test.csv\n", selectTable, nil)
	require.NoError(t, err)
	data, err = os.ReadFile(filepath.Join(dir, "pg_test.csv"))
	require.NoError(t, err)
	assert.Equal(t, "id,name,score\r\n0,,\r\n,bar,\r\n,,5.0\r\n", string(data))
}

// digdag's CsvWriter: an empty string is "", a null nothing; a quote,
// comma or line break is quoted, with CR and CRLF written as LF.
func TestPGDownloadQuoting(t *testing.T) {
	f := newPGFixture(t, false)
	dir, _, err := runPG(t, f, "+run:\n  pg>: q.sql\n  download_file: out.csv\n",
		map[string]string{"q.sql": `SELECT '' AS e, NULL::text AS n, 'a,b' AS c, 'say "hi"' AS q, E'l1\r\nl2\rl3\nl4' AS nl, true AS b`}, nil)
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "out.csv"))
	require.NoError(t, err)
	assert.Equal(t, "e,n,c,q,nl,b\r\n\"\",,\"a,b\",\"say \"\"hi\"\"\",\"l1\nl2\nl3\nl4\",true\r\n", string(data))
}

// PgIT selectAndStoreLastResults (all, through for_each>) and
// selectAndStoreLastResultsWithFirst.
func TestPGStoreLastResults(t *testing.T) {
	f := newPGFixture(t, false)
	_, out, err := runPG(t, f, `
+all:
  pg>: select_table.sql
  store_last_results: all
+each:
  for_each>:
    user: ${pg.last_results}
  _do:
    echo>: name=${user.name} score=${user.score} id=${user.id}
+first:
  pg>: select_table.sql
  store_last_results: first
+show:
  echo>: first=${pg.last_results.name} ${JSON.stringify(pg.last_results)}
`, selectTable, nil)
	require.NoError(t, err)
	for _, want := range []string{"name=foo score=3.14 id=0", "name=bar score=1.23 id=1", "name=baz score=5.0 id=2",
		`first=foo {"id":0,"name":"foo","score":3.14}`} {
		assert.Contains(t, out, want)
	}
}

// PgIT's limits: more than MaxSQLLastResultsRows rows, or a longer value
// than MaxSQLLastResultsValue, fail the task.
func TestPGStoreLastResultsLimits(t *testing.T) {
	f := newPGFixture(t, false)
	_, _, err := runPG(t, f, "+run:\n  pg>:\n  query: SELECT g FROM generate_series(1, 8193) g\n  store_last_results: all\n", nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at most 8192 rows")
	_, _, err = runPG(t, f, "+run:\n  pg>:\n  query: SELECT repeat('x', 257) AS v\n  store_last_results: first\n", nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "column v: a value of 257 characters is longer than 256")
}

// PgIT createTable, insertInto, insertIntoWithSchema: the statement is
// wrapped, and runs under a status-table row.
func TestPGCreateTableAndInsertInto(t *testing.T) {
	f := newPGFixture(t, false)
	_, _, err := runPG(t, f, "+run:\n  pg>: select_table.sql\n  create_table: dest_tbl\n", selectTable, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"0,foo,3.14", "1,bar,1.23", "2,baz,5"}, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl ORDER BY id"))
	assert.Equal(t, []string{"1"}, f.rows(t, "SELECT count(*) FROM SCHEMA.__digdag_status WHERE completed_at IS NOT NULL"))

	f = newPGFixture(t, false)
	_, _, err = runPG(t, f, "+run:\n  pg>: select_table.sql\n  insert_into: dest_tbl\n", selectTable, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"0,foo,3.14", "1,bar,1.23", "2,baz,5", "9,zzz,9.99"}, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl ORDER BY id"))

	// SCHEMA.TABLE, and a status table in another schema
	f = newPGFixture(t, false)
	_, _, err = runPG(t, f, fmt.Sprintf("+run:\n  pg>: select_table.sql\n  insert_into: %s.dest_tbl\n  status_table_schema: %s\n  status_table: my_status\n", f.schema, f.schema), selectTable, nil)
	require.NoError(t, err)
	assert.Len(t, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl"), 4)
	assert.Equal(t, []string{"1"}, f.rows(t, "SELECT count(*) FROM SCHEMA.my_status"))
}

// PgIT insertIntoWithoutStrictTransaction: no status table is made.
func TestPGWithoutStrictTransaction(t *testing.T) {
	f := newPGFixture(t, false)
	_, _, err := runPG(t, f, "+run:\n  pg>: select_table.sql\n  insert_into: dest_tbl\n  strict_transaction: false\n", selectTable, nil)
	require.NoError(t, err)
	assert.Len(t, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl"), 4)
	assert.Equal(t, []string{"<nil>"}, f.rows(t, "SELECT to_regclass('SCHEMA.__digdag_status')::text"))
}

// A retried task (its State kept) finds its statement done in the status
// table and does not run it again: no duplicated rows.
func TestPGStrictTransactionRunsOnce(t *testing.T) {
	f := newPGFixture(t, false)
	state := map[string]any{}
	tc, log := sqlContext(t, f, map[string]any{"query": "SELECT * FROM src_tbl", "insert_into": "dest_tbl"}, state)
	op := &SQL{Kind: "pg"}
	_, err := op.Run(t.Context(), tc)
	require.NoError(t, err)
	require.NotEmpty(t, state[stateQueryID])
	_, err = op.Run(t.Context(), tc) // the retry
	require.NoError(t, err)
	assert.Contains(t, log.String(), "already done (status table): not run again")
	assert.Len(t, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl"), 4)
}

// ${...} in the query file is evaluated; query: inline works too.
func TestPGQueryTemplateAndInline(t *testing.T) {
	f := newPGFixture(t, false)
	_, out, err := runPG(t, f, `
+file:
  pg>: q.sql
  min_id: 1
  store_last_results: first
+a:
  echo>: file=${pg.last_results.name}
+inline:
  pg>:
  query: SELECT name FROM src_tbl WHERE id = ${2}
  store_last_results: first
+b:
  echo>: inline=${pg.last_results.name}
`, map[string]string{"q.sql": "SELECT name FROM src_tbl WHERE id = ${min_id}"}, nil)
	require.NoError(t, err)
	assert.Contains(t, out, "file=bar")
	assert.Contains(t, out, "inline=baz")
}

// download_file and store_last_results run read-only: a writing query is
// refused and writes nothing.
func TestPGReadOnlyWhenReading(t *testing.T) {
	f := newPGFixture(t, false)
	_, _, err := runPG(t, f, "+run:\n  pg>: q.sql\n  store_last_results: first\n",
		map[string]string{"q.sql": "INSERT INTO dest_tbl VALUES (1, 'x', 1) RETURNING id"}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must only read")
	assert.Len(t, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl"), 1)
}

// redshift> is pg> with its own names: redshift.* defaults,
// redshift.last_results, the aws.redshift secret scope.
func TestRedshiftOnThePostgresProtocol(t *testing.T) {
	f := newPGFixture(t, false)
	_, out, err := runPG(t, f, `
+run:
  redshift>: select_table.sql
  store_last_results: first
  password_override: other
+show:
  echo>: rs=${redshift.last_results.name}
`, selectTable, workflow.SecretMap{"aws.redshift.other": "rs-secret-pass"})
	require.NoError(t, err)
	assert.Contains(t, out, "rs=foo")
	assert.NotContains(t, out, "rs-secret-pass")

	_, _, err = runPG(t, f, "+run:\n  redshift>: select_table.sql\n  password_override: missing\n", selectTable, workflow.SecretMap{"pg.missing": "x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "password_override names secret aws.redshift.missing, which is not set")
}

// The secret password never shows: not in the log, not in the error of a
// failed connection or query.
func TestPGSecretsNeverShown(t *testing.T) {
	f := newPGFixture(t, false)
	const pass = "pg-very-secret-pw"
	_, out, err := runPG(t, f, "+run:\n  pg>:\n  query: SELECT 1/0 AS x\n  store_last_results: first\n", nil, workflow.SecretMap{"pg.password": pass})
	require.Error(t, err)
	assert.NotContains(t, out+err.Error(), pass)
	// a secret host is read from the pg scope first, and masked
	_, out, err = runPG(t, f, "+run:\n  pg>:\n  query: SELECT 1\n  connect_timeout: 2s\n", nil,
		workflow.SecretMap{"pg.password": pass, "pg.host": "secret-host.invalid"})
	require.Error(t, err)
	assert.NotContains(t, out+err.Error(), pass)
	assert.NotContains(t, out+err.Error(), "secret-host.invalid")
	assert.Contains(t, err.Error(), "connecting to")
}

// Mistakes are found by check, with the task's line, before anything runs.
func TestPGCheckedBeforeRunning(t *testing.T) {
	for _, c := range []struct{ dig, want string }{
		{"+a:\n  pg>: q.sql\n  datbase: x\n", "unknown pg> key datbase (did you mean database?)"},
		{"+a:\n  pg>: q.sql\n  insert_into: a\n  create_table: b\n", "not both"},
		{"+a:\n  pg>: q.sql\n  insert_into: a\n  download_file: x.csv\n", "download_file cannot be combined"},
		{"+a:\n  pg>: q.sql\n  store_last_results: all\n  download_file: x.csv\n", "give download_file or store_last_results, not both"},
		{"+a:\n  pg>: q.sql\n  store_last_results: some\n", "store_last_results must be false, first or all"},
		{"+a:\n  pg>: q.sql\n  port: abc\n", "port must be a port number"},
		{"+a:\n  pg>: q.sql\n  ssl: maybe\n", "ssl must be true or false"},
		{"+a:\n  pg>: q.sql\n  connect_timeout: 30\n", "connect_timeout: \"30\" is not a duration"},
		{"+a:\n  pg>: missing.sql\n", "query file missing.sql: no such file"},
		{"+a:\n  pg>: q.sql\n  password: x\n", "password is a digdag pg> setting tdctl does not support: a password is a secret"},
		{"+a:\n  redshift>: q.sql\n  insert_into: .t\n", "insert_into: \".t\" is not TABLE or SCHEMA.TABLE"},
		{"+a:\n  pg>:\n", "pg> needs a query"},
	} {
		err := checkWorkflow(t, c.dig, map[string]string{"q.sql": "SELECT 1"}, Operators(nil))
		require.Error(t, err, c.dig)
		assert.Contains(t, err.Error(), c.want, c.dig)
		assert.Contains(t, err.Error(), "wf.dig:", c.dig)
	}
	require.NoError(t, checkWorkflow(t, "+a:\n  pg>: q.sql\n  store_last_results: first\n+b:\n  echo>: ${pg.last_results.x}\n",
		map[string]string{"q.sql": "SELECT 1 AS x"}, Operators(nil)))
	// settings known at run time only pass check
	require.NoError(t, checkWorkflow(t, "_export:\n  p: 5432\n  s: false\n+a:\n  pg>: q.sql\n  port: ${p}\n  ssl: ${s}\n  store_last_results: ${s}\n  download_file: x.csv\n  connect_timeout: ${p}\n",
		map[string]string{"q.sql": "SELECT 1 AS x"}, Operators(nil)))
}

// fakePGAuth is a PostgreSQL server that asks for a cleartext password,
// records it and refuses the login: what the operator sends, seen from
// the server.
func fakePGAuth(t *testing.T) (port string, got func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var passwords []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				be := pgproto3.NewBackend(c, c)
				if _, err := be.ReceiveStartupMessage(); err != nil {
					return
				}
				be.Send(&pgproto3.AuthenticationCleartextPassword{})
				if be.Flush() != nil {
					return
				}
				msg, err := be.Receive()
				if err != nil {
					return
				}
				if pw, ok := msg.(*pgproto3.PasswordMessage); ok {
					mu.Lock()
					passwords = append(passwords, pw.Password)
					mu.Unlock()
				}
				be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
				be.Flush()
			}()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), passwords...)
	}
}

// The password is the secret pg.password, or the one password_override
// names (PgIT selectAndDownloadWithPasswordOverride); it reaches the
// server and nothing else.
func TestPGPasswordFromSecrets(t *testing.T) {
	port, got := fakePGAuth(t)
	dig := "+a:\n  pg>:\n  query: SELECT 1\n  host: 127.0.0.1\n  port: " + port + "\n  database: d\n  user: u\n"
	secrets := workflow.SecretMap{"pg.password": "default-SECRET-pw", "pg.another_password": "override-SECRET-pw"}
	_, out, err := runWorkflow(t, dig, Operators(nil), secrets)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "password authentication failed")
	_, out2, err2 := runWorkflow(t, dig+"  password_override: another_password\n", Operators(nil), secrets)
	require.Error(t, err2)
	assert.Equal(t, []string{"default-SECRET-pw", "override-SECRET-pw"}, got())
	for _, s := range []string{out, out2, err.Error(), err2.Error()} {
		assert.NotContains(t, s, "SECRET-pw")
	}
}

// socket_timeout bounds a wait for the server; connect_timeout the
// connection (a server that never answers).
func TestPGTimeouts(t *testing.T) {
	f := newPGFixture(t, false)
	start := time.Now()
	_, _, err := runPG(t, f, "+a:\n  pg>:\n  query: SELECT pg_sleep(5)\n  socket_timeout: 1s\n  strict_transaction: false\n", nil, nil)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 4*time.Second)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close() // accepts into the backlog, never answers
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	start = time.Now()
	_, _, err = runWorkflow(t, "+a:\n  pg>:\n  query: SELECT 1\n  host: 127.0.0.1\n  port: "+port+"\n  database: d\n  user: u\n  connect_timeout: 1s\n", Operators(nil), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connecting to 127.0.0.1:"+port+"/d as u")
	assert.Less(t, time.Since(start), 4*time.Second)
}

// A statement whose status row another session holds is waited for; when
// that session marks it done, it is not run again.
func TestPGStrictTransactionWaitsForAnotherSession(t *testing.T) {
	f := newPGFixture(t, false)
	q := pgx.Identifier{f.schema}.Sanitize()
	_, err := f.conn.Exec(t.Context(), "CREATE TABLE "+q+".__digdag_status (query_id text NOT NULL UNIQUE, created_at timestamptz NOT NULL, completed_at timestamptz)")
	require.NoError(t, err)
	_, err = f.conn.Exec(t.Context(), "INSERT INTO "+q+".__digdag_status VALUES ('held', now(), NULL)")
	require.NoError(t, err)
	tx, err := f.conn.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "SELECT * FROM "+q+".__digdag_status WHERE query_id = 'held' FOR UPDATE")
	require.NoError(t, err)

	var log bytes.Buffer
	var mu sync.Mutex
	tc, _ := sqlContext(t, f, map[string]any{"query": "SELECT * FROM src_tbl", "insert_into": "dest_tbl"}, map[string]any{stateQueryID: "held"})
	tc.Log = syncWriter{&mu, &log}
	done := make(chan error, 1)
	go func() {
		_, err := (&SQL{Kind: "pg"}).Run(t.Context(), tc)
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	_, err = tx.Exec(t.Context(), "UPDATE "+q+".__digdag_status SET completed_at = now() WHERE query_id = 'held'")
	require.NoError(t, err)
	require.NoError(t, tx.Commit(t.Context()))
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, log.String(), "statement held is being run by another session")
	assert.Contains(t, log.String(), "statement held already done")
	assert.Len(t, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl"), 1)
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// sqlContext is a TaskContext for running op.Run directly on the test
// PostgreSQL, in f's schema, with config's settings and state kept.
func sqlContext(t *testing.T, f *pgFixture, config map[string]any, state map[string]any) (*workflow.TaskContext, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "wf.dig")
	require.NoError(t, os.WriteFile(file, []byte("+run:\n  echo>: x\n"), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	u, _ := url.Parse(paramstoretest.PostgresURL())
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	cfg := map[string]any{"host": u.Hostname(), "port": port, "database": strings.TrimPrefix(u.Path, "/"), "user": u.User.Username(), "schema": f.schema}
	for k, v := range config {
		cfg[k] = v
	}
	var log bytes.Buffer
	return &workflow.TaskContext{Task: wf.Root.Children[0], Workflow: wf, Config: cfg, Log: &log, State: state}, &log
}

// redshift>'s strict_transaction (digdag's Redshift helper, no row locks):
// one status table per statement, made in the statement's transaction; a
// retry finds it and does not run the statement again; tables of
// statements done longer ago than status_table_cleanup are dropped.
func TestRedshiftStrictTransaction(t *testing.T) {
	f := newPGFixture(t, false)
	op := &SQL{Kind: "redshift"}
	first := map[string]any{}
	tc, log := sqlContext(t, f, map[string]any{"query": "SELECT * FROM src_tbl", "insert_into": "dest_tbl"}, first)
	_, err := op.Run(t.Context(), tc)
	require.NoError(t, err)
	_, err = op.Run(t.Context(), tc) // the retry
	require.NoError(t, err)
	assert.Contains(t, log.String(), "already done (status table): not run again")
	assert.Len(t, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl"), 4)
	id := first[stateQueryID].(string)
	assert.Equal(t, []string{"__digdag_status_" + id}, f.rows(t, "SELECT tablename FROM pg_tables WHERE schemaname = '"+f.schema+"' AND tablename LIKE '\\_\\_digdag%'"))

	time.Sleep(1100 * time.Millisecond)
	tc, _ = sqlContext(t, f, map[string]any{"query": "DELETE FROM dest_tbl WHERE id = 9", "status_table_cleanup": "1s"}, map[string]any{})
	_, err = op.Run(t.Context(), tc)
	require.NoError(t, err)
	tables := f.rows(t, "SELECT tablename FROM pg_tables WHERE schemaname = '"+f.schema+"' AND tablename LIKE '\\_\\_digdag%'")
	require.Len(t, tables, 1)
	assert.NotEqual(t, "__digdag_status_"+id, tables[0], "the first statement's table, done over 1s ago, is dropped")
	assert.Len(t, f.rows(t, "SELECT * FROM SCHEMA.dest_tbl"), 3)
}

// A query file cannot hold ${secret:...}: a secret belongs in the
// connection settings, not in SQL the server logs.
func TestPGNoSecretInQueryFile(t *testing.T) {
	f := newPGFixture(t, false)
	_, _, err := runPG(t, f, "+a:\n  pg>: q.sql\n", map[string]string{"q.sql": "SELECT '${secret:pg.password}'"}, workflow.SecretMap{"pg.password": "abcdef"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "${secret:...} cannot be used in a query file")
}

package operators

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/workflow"
)

// SQL is pg> and redshift> (Redshift speaks PostgreSQL's protocol): it
// runs the query of a file (pg>: queries/x.sql, its ${...} evaluated like
// the workflow) or of query:, as digdag's JDBC operators do.
//
// Settings are the task's own keys, else the pg.* (redshift.*) params of
// the same name (from _export): host, port (5432; redshift 5439),
// database, user, ssl (TLS without certificate checks, as digdag's
// NonValidatingFactory), schema (the search_path), connect_timeout (30s)
// and socket_timeout (1800s: the longest wait for the server's next
// bytes), as digdag durations ("1d 2h 3m 4s"). The password is the secret
// pg.password (aws.redshift.password for redshift>), or the secret the
// password_override key names in that scope; host, port, user, database,
// ssl and schema are read from secrets of the same scope first, as digdag
// does.
//
// What the query does follows digdag's AbstractJdbcJobOperator:
// store_last_results (first: one row as an object; all: a list) into
// pg.last_results, or download_file (CSV as digdag writes it: a header
// line, CRLF, a null as an empty field and an empty string as ""), run the
// query read-only; insert_into / create_table (TABLE or SCHEMA.TABLE) wrap
// it in INSERT INTO / DROP TABLE IF EXISTS + CREATE TABLE AS. Any other
// query runs once: with strict_transaction (the default) under a row of
// the status table (status_table_schema.status_table, default
// __digdag_status) that records it done, so a retried task never runs a
// statement twice; status_table_cleanup (24h) is how long done rows stay.
// Redshift has no row locks: redshift> gives each statement a status
// table of its own instead, as digdag does.
type SQL struct {
	Env *Env
	// Kind is "pg" or "redshift".
	Kind string
}

// Limits of store_last_results (digdag's defaults of
// max_store_last_results_rows, _columns and _value_size).
const (
	MaxSQLLastResultsRows    = 8192
	MaxSQLLastResultsColumns = 64
	MaxSQLLastResultsValue   = 256
)

var sqlKeys = []string{"query", "database", "host", "port", "user", "ssl", "schema", "connect_timeout",
	"socket_timeout", "password_override", "strict_transaction", "status_table", "status_table_schema",
	"status_table_cleanup", "create_table", "insert_into", "download_file", "store_last_results"}

func (s *SQL) spec() keySpec {
	return keySpec{op: s.Kind, known: sqlKeys, digdag: map[string]string{
		"password": "a password is a secret: set " + s.secretScope() + ".password (or name another with password_override)",
	}}
}

func (s *SQL) secretScope() string {
	if s.Kind == "redshift" {
		return "aws.redshift"
	}
	return "pg"
}

func (s *SQL) defaultPort() int {
	if s.Kind == "redshift" {
		return 5439
	}
	return 5432
}

// Defines implements workflow.Definer.
func (s *SQL) Defines(t *workflow.Task) []string {
	if n := t.Param("store_last_results"); n != nil && lastResultsMode(n.Value) != "" {
		return []string{s.Kind + ".last_results"}
	}
	return nil
}

// sqlTask is a pg>/redshift> task's settings, read and checked.
type sqlTask struct {
	host, user, database, schema string
	password                     *string
	port                         int
	ssl, strict                  bool
	connectTimeout, readTimeout  time.Duration
	cleanup                      time.Duration
	statusTable                  []string // [schema,] name
	insertInto, createTable      []string
	download                     string
	store                        string // "", "first", "all"
	query                        string
}

// setting reads key from the task, else from the KIND.* defaults.
func (s *SQL) setting(tc *workflow.TaskContext, key string) (string, bool) {
	if v, ok := tc.Config[key]; ok && v != nil {
		return workflow.Format(v), true
	}
	if tc.Dynamic[key] {
		return "", true
	}
	if v, ok := tc.Scope.Get(s.Kind + "." + key); ok && v != nil {
		return workflow.Format(v), true
	}
	return "", false
}

// pgTableRef reads TABLE or SCHEMA.TABLE (digdag's TableReference: split at
// the first dot).
func pgTableRef(s string) ([]string, error) {
	if sch, name, ok := strings.Cut(s, "."); ok {
		if sch == "" || name == "" {
			return nil, fmt.Errorf("%q is not TABLE or SCHEMA.TABLE", s)
		}
		return []string{sch, name}, nil
	}
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("the table name is empty")
	}
	return []string{s}, nil
}

// boolText reads the text of a true/false setting of pg>, redshift> and
// http>, where digdag's YAML 1.1 reading also takes yes/no and on/off.
func boolText(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false (got %q)", v)
}

// settings reads and checks a task's settings; in Validate (tc.Dynamic
// set) what is known at run time only passes, and secrets are not read.
func (s *SQL) settings(tc *workflow.TaskContext) (*sqlTask, error) {
	op := s.Kind + ">"
	validating := tc.Dynamic != nil
	st := &sqlTask{port: s.defaultPort(), strict: true, connectTimeout: 30 * time.Second,
		readTimeout: 1800 * time.Second, cleanup: 24 * time.Hour}
	// digdag reads these from the secret scope first
	fromSecrets := map[string]bool{"host": true, "port": true, "user": true, "database": true, "ssl": true, "schema": true}
	if s.Kind == "pg" {
		fromSecrets["connect_timeout"], fromSecrets["socket_timeout"] = true, true
	}
	get := func(key string) (string, bool) {
		if !validating && tc.Secret != nil && fromSecrets[key] {
			if v, ok := tc.Secret(s.secretScope() + "." + key); ok {
				return v, true
			}
		}
		return s.setting(tc, key)
	}
	dyn := func(key string) bool { return validating && tc.Dynamic[key] }
	var ok bool
	st.host, _ = get("host")
	st.user, _ = get("user")
	st.database, _ = get("database")
	st.schema, _ = get("schema")
	if v, ok := get("port"); ok && !dyn("port") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("%s port must be a port number (got %q)", op, v)
		}
		st.port = n
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"ssl", &st.ssl}, {"strict_transaction", &st.strict}} {
		key, dst := b.key, b.dst
		if v, ok := get(key); ok && !dyn(key) {
			b, err := boolText(v)
			if err != nil {
				return nil, fmt.Errorf("%s %s %v", op, key, err)
			}
			*dst = b
		}
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"connect_timeout", &st.connectTimeout}, {"socket_timeout", &st.readTimeout}, {"status_table_cleanup", &st.cleanup}} {
		key, dst := d.key, d.dst
		if v, ok := get(key); ok && !dyn(key) {
			d, err := parseDigdagDuration(v)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", op, key, err)
			}
			*dst = d
		}
	}
	name, _ := s.setting(tc, "status_table")
	if name == "" {
		name = "__digdag_status"
	}
	st.statusTable = []string{name}
	if sch, _ := s.setting(tc, "status_table_schema"); sch != "" {
		st.statusTable = []string{sch, name}
	}
	for _, tb := range []struct {
		key string
		dst *[]string
	}{{"insert_into", &st.insertInto}, {"create_table", &st.createTable}} {
		key, dst := tb.key, tb.dst
		if v, ok := s.setting(tc, key); ok && !dyn(key) {
			t, err := pgTableRef(v)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", op, key, err)
			}
			*dst = t
		} else if ok {
			*dst = []string{"${" + key + "}"}
		}
	}
	st.download, ok = s.setting(tc, "download_file")
	if ok && st.download == "" && !dyn("download_file") {
		return nil, fmt.Errorf("%s download_file is empty: name the CSV file to write", op)
	}
	if dyn("download_file") {
		st.download = "${download_file}"
	}
	if v, ok := s.setting(tc, "store_last_results"); ok && !dyn("store_last_results") {
		st.store = lastResultsMode(v)
		if st.store == "?" {
			return nil, fmt.Errorf("%s store_last_results must be false, first or all (got %q)", op, v)
		}
	}
	// digdag's rules on combining them
	switch {
	case st.insertInto != nil && st.createTable != nil:
		return nil, fmt.Errorf("%s: give insert_into (append) or create_table (replace), not both", op)
	case st.download != "" && (st.insertInto != nil || st.createTable != nil):
		return nil, fmt.Errorf("%s: download_file cannot be combined with insert_into or create_table (their statement returns no rows)", op)
	case st.store != "" && (st.insertInto != nil || st.createTable != nil):
		return nil, fmt.Errorf("%s: store_last_results cannot be combined with insert_into or create_table (their statement returns no rows)", op)
	case st.store != "" && st.download != "":
		return nil, fmt.Errorf("%s: give download_file or store_last_results, not both", op)
	}
	if !validating {
		if st.host == "" {
			return nil, fmt.Errorf("%s: no host: add host: NAME or _export: {%s: {host: NAME}}", op, s.Kind)
		}
		if st.database == "" {
			return nil, fmt.Errorf("%s: no database: add database: NAME or _export: {%s: {database: NAME}}", op, s.Kind)
		}
		if st.user == "" {
			return nil, fmt.Errorf("%s: no user: add user: NAME or _export: {%s: {user: NAME}}", op, s.Kind)
		}
		if tc.Secret != nil {
			key := "password"
			override, hasOverride := s.setting(tc, "password_override")
			if hasOverride {
				key = override
			}
			if v, ok := tc.Secret(s.secretScope() + "." + key); ok {
				st.password = &v
			} else if hasOverride {
				return nil, fmt.Errorf("%s: password_override names secret %s.%s, which is not set", op, s.secretScope(), key)
			}
		}
	}
	q, err := s.queryText(tc)
	if err != nil {
		return nil, err
	}
	st.query = q
	return st, nil
}

// queryText is the SQL: the file the command names, evaluated like the
// workflow, or query: (evaluated already).
func (s *SQL) queryText(tc *workflow.TaskContext) (string, error) {
	op := s.Kind + ">"
	file, _ := tc.Command.(string)
	if _, nested := tc.Command.(map[string]any); nested {
		return "", fmt.Errorf("%s takes a query file name (%s: queries/x.sql), or query: beside it", op, op)
	}
	switch {
	case tc.Dynamic[""] || (file == "" && tc.Dynamic["query"]):
		return "", nil
	case file != "":
		if tc.Has("query") {
			return "", fmt.Errorf("%s: give a query file or query:, not both", op)
		}
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(tc.Workflow.Dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%s query file %s: %w", op, file, unwrapPath(err))
		}
		if tc.Dynamic != nil {
			return "", nil
		}
		if strings.Contains(string(data), "${secret:") {
			return "", fmt.Errorf("%s %s: ${secret:...} cannot be used in a query file: a secret belongs in the connection settings", op, file)
		}
		q, err := workflow.EvalString(string(data), tc.Scope)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", op, file, err)
		}
		if strings.TrimSpace(q) == "" {
			return "", fmt.Errorf("%s %s: the query is empty", op, file)
		}
		return q, nil
	case tc.String("query") != "":
		return tc.String("query"), nil
	}
	return "", fmt.Errorf("%s needs a query: %s: queries/x.sql, or query: SELECT ...", op, op)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Validate implements workflow.Validator.
func (s *SQL) Validate(tc *workflow.TaskContext) error {
	if err := s.spec().check(tc.Task, queryFileText(tc)); err != nil {
		return err
	}
	_, err := s.settings(tc)
	return err
}

// stateQueryID is the key of TaskContext.State holding the id a
// statement runs under in the status table: kept across attempts, so a
// retry finds a statement done rather than running it again.
const stateQueryID = "sql.query_id"

// Run implements workflow.Operator.
func (s *SQL) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	st, err := s.settings(tc)
	if err != nil {
		return nil, err
	}
	conn, err := s.connect(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("%s>: connecting to %s:%d/%s as %s: %w", s.Kind, st.host, st.port, st.database, st.user, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	fmt.Fprintf(tc.Log, "connected to %s:%d/%s as %s\n", st.host, st.port, st.database, st.user)
	res := &workflow.Result{}
	if st.download != "" || st.store != "" {
		return res, s.readOnly(ctx, tc, conn, st, res)
	}
	stmt := st.query
	switch {
	case st.insertInto != nil:
		stmt = fmt.Sprintf("INSERT INTO %s\n%s", pgx.Identifier(st.insertInto).Sanitize(), st.query)
	case st.createTable != nil:
		t := pgx.Identifier(st.createTable).Sanitize()
		stmt = fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s AS \n%s", t, t, st.query)
	}
	if !st.strict {
		if err := s.exec(ctx, conn, stmt); err != nil {
			return res, err
		}
		fmt.Fprintln(tc.Log, "statement done")
		return res, nil
	}
	state := tc.State
	if state == nil {
		state = map[string]any{}
	}
	id, _ := state[stateQueryID].(string)
	if id == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
		state[stateQueryID] = id
	}
	strict := s.strictExec
	if s.Kind == "redshift" {
		strict = s.redshiftStrictExec
	}
	ran, err := strict(ctx, tc, conn, st, id, stmt)
	if err != nil {
		return res, err
	}
	if ran {
		fmt.Fprintln(tc.Log, "statement done")
	} else {
		fmt.Fprintf(tc.Log, "statement %s already done (status table): not run again\n", id)
	}
	return res, nil
}

// connect opens the task's connection with pgx.
func (s *SQL) connect(ctx context.Context, st *sqlTask) (*pgx.Conn, error) {
	u := &url.URL{Scheme: "postgres", User: url.User(st.user), Host: net.JoinHostPort(st.host, strconv.Itoa(st.port)), Path: "/" + st.database}
	q := url.Values{}
	q.Set("sslmode", map[bool]string{true: "require", false: "disable"}[st.ssl])
	q.Set("application_name", "tdctl")
	u.RawQuery = q.Encode()
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	if st.password != nil {
		cfg.Password = *st.password
	}
	cfg.ConnectTimeout = st.connectTimeout
	if st.schema != "" {
		cfg.RuntimeParams["search_path"] = st.schema
	}
	dial := cfg.DialFunc
	timeout := st.readTimeout
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil || timeout <= 0 {
			return c, err
		}
		return &readTimeoutConn{Conn: c, timeout: timeout}, nil
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// readTimeoutConn is socket_timeout: a read waiting longer than timeout
// for the server fails (and with it the connection).
type readTimeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *readTimeoutConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// exec runs a script (one or more statements) with the simple protocol.
func (s *SQL) exec(ctx context.Context, conn *pgx.Conn, sql string) error {
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("%s>: %w", s.Kind, err)
	}
	return nil
}

// strictExec runs stmt under the status-table row of id (digdag's
// persistent transaction helper): a done row skips it; a row another
// session holds is waited for; otherwise the statement and the row's
// completed_at commit together.
func (s *SQL) strictExec(ctx context.Context, tc *workflow.TaskContext, conn *pgx.Conn, st *sqlTask, id, stmt string) (bool, error) {
	table := pgx.Identifier(st.statusTable).Sanitize()
	create := "CREATE TABLE IF NOT EXISTS " + table + " (query_id text NOT NULL UNIQUE, created_at timestamptz NOT NULL, completed_at timestamptz)"
	if _, err := conn.Exec(ctx, create); err != nil {
		return false, fmt.Errorf("%s>: creating the status table %s: %w (without the right to create it, add strict_transaction: false, or status_table_schema: a schema you may write; or have it created: %s)", s.Kind, table, err, create)
	}
	for attempt := 0; ; attempt++ {
		ran, conflict, err := s.lockedRun(ctx, conn, table, id, stmt)
		if err != nil {
			return false, err
		}
		if !conflict {
			// old rows go; a failure here does not fail the task
			del := fmt.Sprintf("DELETE FROM %s WHERE completed_at < now() - interval '%d second'", table, int64(st.cleanup/time.Second))
			if _, err := conn.Exec(ctx, del); err != nil {
				fmt.Fprintf(tc.Log, "warning: cleaning the status table %s: %v\n", table, err)
			}
			return ran, nil
		}
		wait := backoff.Exp(time.Second, 30*time.Second, attempt)
		fmt.Fprintf(tc.Log, "statement %s is being run by another session: waiting %s\n", id, wait)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return false, err
		}
	}
}

// lockedRun is one try of strictExec: conflict means another session
// holds the row.
func (s *SQL) lockedRun(ctx context.Context, conn *pgx.Conn, table, id, stmt string) (ran, conflict bool, err error) {
	for {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return false, false, fmt.Errorf("%s>: %w", s.Kind, err)
		}
		var done pgtype.Timestamptz
		err = tx.QueryRow(ctx, "SELECT completed_at FROM "+table+" WHERE query_id = $1 FOR UPDATE NOWAIT", id).Scan(&done)
		switch {
		case pgCode(err) == "55P03":
			tx.Rollback(ctx)
			return false, true, nil
		case errors.Is(err, pgx.ErrNoRows):
			// no row: insert one and lock it on the next turn
			_, err = tx.Exec(ctx, "INSERT INTO "+table+" (query_id, created_at) VALUES ($1, CURRENT_TIMESTAMP)", id)
			if err != nil && pgCode(err) != "23505" {
				tx.Rollback(ctx)
				return false, false, fmt.Errorf("%s>: adding a status row: %w", s.Kind, err)
			}
			if err != nil {
				tx.Rollback(ctx)
			} else if err := tx.Commit(ctx); err != nil {
				return false, false, fmt.Errorf("%s>: adding a status row: %w", s.Kind, err)
			}
			continue
		case err != nil:
			tx.Rollback(ctx)
			return false, false, fmt.Errorf("%s>: locking the status row: %w", s.Kind, err)
		case done.Valid:
			tx.Rollback(ctx)
			return false, false, nil
		}
		if err := s.exec(ctx, conn, stmt); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return false, false, err
		}
		if _, err := tx.Exec(ctx, "UPDATE "+table+" SET completed_at = CURRENT_TIMESTAMP WHERE query_id = $1", id); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return false, false, fmt.Errorf("%s>: marking the statement done: %w", s.Kind, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return false, false, fmt.Errorf("%s>: %w", s.Kind, err)
		}
		return true, false, nil
	}
}

// redshiftStrictExec is strictExec for Redshift, which has no row locks
// (digdag's RedshiftPersistentTransactionHelper): each statement has a
// status table of its own, STATUS_TABLE_ID, created in the statement's
// transaction. If it exists (or another session creates it first) the
// statement is done; otherwise statement and table commit together. The
// tables of statements done longer ago than status_table_cleanup are
// dropped after. Times are literals: Redshift runs CREATE TABLE AS on
// its compute nodes, where now() does not exist.
func (s *SQL) redshiftStrictExec(ctx context.Context, tc *workflow.TaskContext, conn *pgx.Conn, st *sqlTask, id, stmt string) (bool, error) {
	prefix := st.statusTable[len(st.statusTable)-1]
	ref := append(append([]string(nil), st.statusTable[:len(st.statusTable)-1]...), prefix+"_"+id)
	table := pgx.Identifier(ref).Sanitize()
	stamp := func(t time.Time) string {
		return "'" + t.UTC().Format("2006-01-02 15:04:05.000000") + "+00'::timestamptz"
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("%s>: %w", s.Kind, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	create := fmt.Sprintf("CREATE TABLE %s (query_id, created_at, completed_at) AS SELECT '%s'::text, %s, NULL::timestamptz", table, id, stamp(time.Now()))
	if _, err := tx.Exec(ctx, create); err != nil {
		if c := pgCode(err); c == "23505" || c == "42P07" {
			return false, nil // done, by an earlier attempt or another session
		}
		return false, fmt.Errorf("%s>: creating the status table %s: %w (without the right to create it, add strict_transaction: false, or status_table_schema: a schema you may write)", s.Kind, table, err)
	}
	if err := s.exec(ctx, conn, stmt); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s SET completed_at = %s WHERE query_id = '%s'", table, stamp(time.Now()), id)); err != nil {
		return false, fmt.Errorf("%s>: marking the statement done: %w", s.Kind, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("%s>: %w", s.Kind, err)
	}
	s.redshiftCleanup(ctx, tc, conn, st, prefix)
	return true, nil
}

// redshiftCleanup drops the status tables of statements done longer than
// status_table_cleanup ago; a failure is a warning.
func (s *SQL) redshiftCleanup(ctx context.Context, tc *workflow.TaskContext, conn *pgx.Conn, st *sqlTask, prefix string) {
	var schema any // nil: the current schema
	if len(st.statusTable) == 2 {
		schema = st.statusTable[0]
	}
	rows, err := conn.Query(ctx, "SELECT schemaname::text, tablename::text FROM pg_tables WHERE schemaname = COALESCE($1::text, current_schema()) AND tablename LIKE $2", schema, prefix+"%")
	if err != nil {
		fmt.Fprintf(tc.Log, "warning: listing the status tables %s_*: %v\n", prefix, err)
		return
	}
	var tables [][]string
	for rows.Next() {
		var sch, name string
		if rows.Scan(&sch, &name) == nil && statusTableName.MatchString(strings.TrimPrefix(name, prefix)) {
			tables = append(tables, []string{sch, name})
		}
	}
	rows.Close()
	cutoff := time.Now().Add(-st.cleanup).UTC().Format("2006-01-02 15:04:05.000000") + "+00"
	for _, t := range tables {
		ref := pgx.Identifier(t).Sanitize()
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM "+ref+" WHERE completed_at < $1::timestamptz", cutoff).Scan(&n)
		if err == nil && n > 0 {
			_, err = conn.Exec(ctx, "DROP TABLE "+ref)
		}
		if err != nil {
			fmt.Fprintf(tc.Log, "warning: dropping the old status table %s: %v\n", ref, err)
		}
	}
}

// statusTableName is the end of a Redshift status table's name: _ and a
// statement id.
var statusTableName = regexp.MustCompile(`^_[0-9a-f]{32}$`)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// readOnly runs the query in a read-only transaction and stores or
// downloads its rows.
func (s *SQL) readOnly(ctx context.Context, tc *workflow.TaskContext, conn *pgx.Conn, st *sqlTask, res *workflow.Result) error {
	op := s.Kind + ">"
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("%s %w", op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// the text format for every column: CSV gets PostgreSQL's own text
	rr := conn.PgConn().ExecParams(ctx, st.query, nil, nil, nil, nil)
	fail := func(err error) error {
		rr.Close()
		switch pgCode(err) {
		case "25006":
			return fmt.Errorf("%s the query must only read when download_file or store_last_results is set: %w", op, err)
		case "42601":
			if strings.Contains(err.Error(), "multiple commands") {
				return fmt.Errorf("%s with download_file or store_last_results the query must be one statement: %w", op, err)
			}
		}
		return fmt.Errorf("%s %w", op, err)
	}
	fields := rr.FieldDescriptions()
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = f.Name
	}
	var out *digdagCSV
	if st.download != "" {
		if out, err = createDigdagCSV(tc, s.Env, op, st.download); err != nil {
			rr.Close()
			return err
		}
		defer out.abort()
		out.row(cols, nil)
	}
	if st.store != "" && len(cols) > MaxSQLLastResultsColumns {
		rr.Close()
		return fmt.Errorf("%s store_last_results: the query returns %d columns, more than %d", op, len(cols), MaxSQLLastResultsColumns)
	}
	var all []any
	var first map[string]any
	n := 0
	for rr.NextRow() {
		vals := rr.Values()
		if out != nil {
			text := make([]string, len(vals))
			null := make([]bool, len(vals))
			for i, v := range vals {
				text[i], null[i] = csvText(fields[i].DataTypeOID, v)
			}
			out.row(text, null)
			n++
			continue
		}
		if st.store == "first" && n > 0 {
			n++
			continue // read to the end, as digdag does
		}
		obj := map[string]any{}
		for i, v := range vals {
			x, err := lastResultValue(fields[i].DataTypeOID, v)
			if err != nil {
				rr.Close()
				return fmt.Errorf("%s store_last_results: column %s: %w", op, cols[i], err)
			}
			obj[cols[i]] = x
		}
		n++
		if st.store == "first" {
			first = obj
			continue
		}
		if n > MaxSQLLastResultsRows {
			rr.Close()
			return fmt.Errorf("%s store_last_results: all keeps at most %d rows and the query returned more: use download_file, or insert_into a table", op, MaxSQLLastResultsRows)
		}
		all = append(all, obj)
	}
	if _, err := rr.Close(); err != nil {
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s %w", op, err)
	}
	if out != nil {
		if err := out.commit(out.err); err != nil {
			return err
		}
		fmt.Fprintf(tc.Log, "downloaded %d rows to %s\n", n, st.download)
		return nil
	}
	var v any = all
	if st.store == "first" {
		if first == nil {
			first = map[string]any{}
		}
		v = first
	} else if all == nil {
		v = []any{}
	}
	fmt.Fprintf(tc.Log, "stored %s.last_results (%d rows read)\n", s.Kind, n)
	res.Store = map[string]any{s.Kind + ".last_results": v}
	res.Reset = []string{s.Kind + ".last_results"}
	return nil
}

// lastResultValue is a column's text as a param: numbers and booleans
// typed, anything else the text PostgreSQL sends (at most
// MaxSQLLastResultsValue characters, digdag's limit).
func lastResultValue(oid uint32, v []byte) (any, error) {
	if v == nil {
		return nil, nil
	}
	s := string(v)
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
	case pgtype.Float4OID, pgtype.Float8OID:
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return json.Number(javaFloat(s)), nil
		}
	case pgtype.NumericOID:
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return json.Number(s), nil
		}
	case pgtype.BoolOID:
		return s == "t", nil
	}
	if n := len([]rune(s)); n > MaxSQLLastResultsValue {
		return nil, fmt.Errorf("a value of %d characters is longer than %d", n, MaxSQLLastResultsValue)
	}
	return s, nil
}

// csvText is a column's text for download_file (booleans as true/false,
// as digdag writes them); null reports SQL NULL.
func csvText(oid uint32, v []byte) (string, bool) {
	if v == nil {
		return "", true
	}
	switch oid {
	case pgtype.BoolOID:
		return strconv.FormatBool(string(v) == "t"), false
	case pgtype.Float4OID, pgtype.Float8OID:
		return javaFloat(string(v)), false
	}
	return string(v), false
}

// javaFloat writes a whole float as digdag (Java) does: 5 is 5.0.
func javaFloat(s string) string {
	if strings.ContainsAny(s, ".eEaIn") { // a fraction, exponent, NaN, Infinity
		return s
	}
	return s + ".0"
}

// digdagCSV writes CSV as digdag's CsvWriter does: CRLF after each row,
// a null as nothing and an empty string as "", a value quoted only when
// it holds a quote, comma, CR or LF, a lone CR or a CRLF inside a value
// written as LF. encoding/csv cannot tell null from empty, so this small
// writer is ours. It writes a pendingFile.
type digdagCSV struct {
	*pendingFile
	err error
	buf []byte
}

func createDigdagCSV(tc *workflow.TaskContext, env *Env, op, name string) (*digdagCSV, error) {
	p, err := createPending(tc, env, op, name)
	if err != nil {
		return nil, err
	}
	return &digdagCSV{pendingFile: p}, nil
}

func (c *digdagCSV) row(vals []string, null []bool) {
	c.buf = c.buf[:0]
	for i, v := range vals {
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		if null != nil && null[i] {
			continue
		}
		c.buf = appendDigdagCSV(c.buf, v)
	}
	c.buf = append(c.buf, '\r', '\n')
	if c.err == nil {
		_, c.err = c.f.Write(c.buf)
	}
}

func appendDigdagCSV(b []byte, v string) []byte {
	if v == "" {
		return append(b, '"', '"')
	}
	if !strings.ContainsAny(v, "\",\r\n") {
		return append(b, v...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"':
			b = append(b, '"', '"')
		case '\r':
			b = append(b, '\n')
		case '\n':
			if i == 0 || v[i-1] != '\r' {
				b = append(b, '\n')
			}
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

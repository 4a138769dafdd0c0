package emulator

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// target is where a job's result goes: a result URL plus settings (from a
// connection's defaults merged with the request's settings).
type target struct {
	URL      string
	Settings map[string]any
	ConnID   int64
}

// resolveTarget reads result / result_connection_id /
// result_connection_settings from a form. A non-zero status is an error to
// answer with.
func (s *Server) resolveTarget(f url.Values, required bool) (*target, int, string) {
	result := strings.TrimSpace(f.Get("result"))
	cid := strings.TrimSpace(f.Get("result_connection_id"))
	cs := strings.TrimSpace(f.Get("result_connection_settings"))
	switch {
	case result != "" && cid != "":
		return nil, http.StatusUnprocessableEntity, "send either result (a result URL) or result_connection_id, not both"
	case cs != "" && cid == "":
		return nil, http.StatusUnprocessableEntity, "result_connection_settings needs result_connection_id (the id of a connection, see /v3/connections/lookup)"
	case result != "":
		u, err := parseResultURL(result)
		if err != nil || u.Scheme == "" {
			return nil, http.StatusUnprocessableEntity, "result must be a result URL such as td://@/db/table or postgresql://user:pass@host:5432/db/table, got " + strconv.Quote(redact(result))
		}
		return &target{URL: result}, 0, ""
	case cid != "":
		id, err := strconv.ParseInt(cid, 10, 64)
		if err != nil {
			return nil, http.StatusUnprocessableEntity, fmt.Sprintf("result_connection_id must be a connection id (a number), got %q", cid)
		}
		settings := map[string]any{}
		if cs != "" {
			if err := json.Unmarshal([]byte(cs), &settings); err != nil {
				return nil, http.StatusUnprocessableEntity, fmt.Sprintf(`result_connection_settings must be a JSON object such as {"table":"t","mode":"append"}: %v`, err)
			}
		}
		s.mu.Lock()
		c, ok := s.conns[id]
		var t target
		if ok {
			t = target{URL: c.URL, Settings: map[string]any{}, ConnID: id}
			for k, v := range c.Settings {
				t.Settings[k] = v
			}
		}
		s.mu.Unlock()
		if !ok {
			return nil, http.StatusNotFound, fmt.Sprintf("result_connection_id %d: connection not found", id)
		}
		for k, v := range settings { // the request wins
			t.Settings[k] = v
		}
		return &t, 0, ""
	case required:
		return nil, http.StatusUnprocessableEntity, "a result target is required: send result (a result URL such as td://@/db/table) or result_connection_id with result_connection_settings"
	}
	return nil, 0, ""
}

// parseResultURL parses a result URL. TD API keys hold a "/" ("1234/abcd"),
// so td://KEY@/db/table is split at its last "@" by hand.
func parseResultURL(raw string) (*url.URL, error) {
	if len(raw) > 5 && strings.EqualFold(raw[:5], "td://") {
		rest := raw[5:]
		if at := strings.LastIndex(rest, "@"); at >= 0 && !strings.ContainsAny(rest[:at], "?#") {
			u, err := url.Parse("td://" + rest[at+1:])
			if err != nil {
				return nil, err
			}
			if key := rest[:at]; key != "" {
				u.User = url.User(key)
			}
			return u, nil
		}
	}
	return url.Parse(raw)
}

// setting returns the named setting: from the settings map first, then
// from the URL's query.
func (t *target) setting(u *url.URL, key string) string {
	if v, ok := t.Settings[key]; ok && v != nil {
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		default:
			return fmt.Sprint(x)
		}
	}
	return u.Query().Get(key)
}

// export writes the rows of the msgpack.gz file src (with schema) to t. It
// returns how many rows it wrote and a line for the job's cmdout. Errors
// never hold the target's password.
func (s *Server) export(ctx context.Context, src string, schema []Column, t *target, jobID int64) (int64, string, error) {
	u, err := parseResultURL(t.URL)
	if err != nil {
		return 0, "", fmt.Errorf("invalid result URL %q", redact(t.URL))
	}
	pass, _ := u.User.Password()
	var n int64
	switch strings.ToLower(u.Scheme) {
	case "td":
		n, err = s.exportTD(ctx, src, schema, t, u)
	case "postgresql", "postgres":
		n, err = exportPostgres(ctx, src, schema, t, u)
	case "s3":
		n, err = s.exportS3(src, schema, t, u, jobID)
	default:
		err = fmt.Errorf("the emulator cannot write results to %s:// targets (%s); it writes td://, postgresql:// and s3:// only", u.Scheme, redactURL(u))
	}
	if err != nil {
		return n, "", errors.New(scrub(err.Error(), pass))
	}
	return n, fmt.Sprintf("Exported %d rows to %s", n, redactURL(u)), nil
}

func pathSegments(u *url.URL) []string {
	var out []string
	for _, p := range strings.Split(strings.Trim(u.Path, "/"), "/") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func exportMode(t *target, u *url.URL, allowed ...string) (string, error) {
	mode := strings.ToLower(t.setting(u, "mode"))
	if mode == "" {
		return "append", nil
	}
	for _, a := range allowed {
		if mode == a {
			return mode, nil
		}
	}
	return "", fmt.Errorf("unsupported mode %q: use %s", mode, strings.Join(allowed, " or "))
}

// dbTable is the database and table a result URL names: its database and
// table settings, else the first two segments of its path.
func (t *target) dbTable(u *url.URL) (db, table string) {
	segs := pathSegments(u)
	db, table = t.setting(u, "database"), t.setting(u, "table")
	if db == "" && len(segs) > 0 {
		db = segs[0]
	}
	if table == "" && len(segs) > 1 {
		table = segs[1]
	}
	return db, table
}

// exportTD writes into the emulator's own table db.table.
func (s *Server) exportTD(ctx context.Context, src string, schema []Column, t *target, u *url.URL) (int64, error) {
	db, table := t.dbTable(u)
	if db == "" || table == "" {
		return 0, fmt.Errorf("td result URL %s needs a database and a table: td://@/DATABASE/TABLE", redactURL(u))
	}
	if err := validName("table", table); err != nil {
		return 0, err
	}
	mode, err := exportMode(t, u, "append", "replace")
	if err != nil {
		return 0, err
	}
	d, ok := s.database(db)
	if !ok {
		return 0, fmt.Errorf("database %q does not exist in the emulator (create it first)", db)
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	qt := quoteIdent(table)
	if mode == "replace" {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+qt); err != nil {
			return 0, err
		}
	}
	exists, err := tableExists(ctx, tx, table)
	if err != nil {
		return 0, err
	}
	if !exists {
		defs := make([]string, len(schema))
		for i, c := range schema {
			defs[i] = quoteIdent(c.Name) + " " + sqliteDecl(c.Type)
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE `+qt+` (`+strings.Join(defs, ", ")+`)`); err != nil {
			return 0, fmt.Errorf("creating table %s.%s: %w", db, table, err)
		}
	} else {
		have, err := tableColumns(ctx, tx, table)
		if err != nil {
			return 0, err
		}
		known := map[string]bool{}
		for _, c := range have {
			known[strings.ToLower(c.Name)] = true
		}
		for _, c := range schema {
			if !known[strings.ToLower(c.Name)] {
				if _, err := tx.ExecContext(ctx, `ALTER TABLE `+qt+` ADD COLUMN `+quoteIdent(c.Name)+` `+sqliteDecl(c.Type)); err != nil {
					return 0, fmt.Errorf("adding column %s to %s.%s: %w", c.Name, db, table, err)
				}
			}
		}
	}
	names := make([]string, len(schema))
	marks := make([]string, len(schema))
	for i, c := range schema {
		names[i], marks[i] = quoteIdent(c.Name), "?"
	}
	var n int64
	if len(schema) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO `+qt+` (`+strings.Join(names, ", ")+`) VALUES (`+strings.Join(marks, ", ")+`)`)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		err = readRows(src, func(row []any) error {
			vals := convertRow(row, schema)
			if _, err := st.ExecContext(ctx, vals...); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("writing %s.%s: %w", db, table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// convertRow fits row to the column types of schema (missing cells are
// NULL, extra cells dropped).
func convertRow(row []any, schema []Column) []any {
	out := make([]any, len(schema))
	for i, c := range schema {
		if i < len(row) {
			out[i] = convertValue(row[i], c.Type)
		}
	}
	return out
}

func convertValue(v any, hive string) any {
	if v == nil {
		return nil
	}
	switch sqliteDecl(hive) {
	case "BIGINT":
		switch x := v.(type) {
		case int64:
			return x
		case uint64:
			return int64(x)
		case float64:
			return int64(x)
		case bool:
			if x {
				return int64(1)
			}
			return int64(0)
		case string:
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				return n
			}
			return nil
		}
	case "DOUBLE":
		switch x := v.(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		case uint64:
			return float64(x)
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f
			}
			return nil
		}
	case "BOOLEAN":
		switch x := v.(type) {
		case bool:
			return x
		case int64:
			return x != 0
		case uint64:
			return x != 0
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				return nil
			}
			return b
		}
	default:
		s, ok := cellText(v)
		if !ok {
			return nil
		}
		return s
	}
	return nil
}

// cellText renders a value as text (composite values as JSON).
func cellText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case []byte:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	b, err := json.Marshal(jsonSafe(v))
	if err != nil {
		return fmt.Sprint(v), true
	}
	return string(b), true
}

func pgType(hive string) string {
	switch sqliteDecl(hive) {
	case "BIGINT":
		return "BIGINT"
	case "DOUBLE":
		return "DOUBLE PRECISION"
	case "BOOLEAN":
		return "BOOLEAN"
	}
	return "TEXT"
}

// exportPostgres writes into a real PostgreSQL table:
// postgresql://user:pass@host:port/db/table?mode=append|replace|truncate&schema=S.
func exportPostgres(ctx context.Context, src string, schema []Column, t *target, u *url.URL) (int64, error) {
	db, table := t.dbTable(u)
	if db == "" || table == "" {
		return 0, fmt.Errorf("PostgreSQL result URL %s needs a database and a table: postgresql://user:pass@host:5432/DATABASE/TABLE", redactURL(u))
	}
	pgSchema := t.setting(u, "schema")
	if pgSchema == "" {
		pgSchema = "public"
	}
	mode, err := exportMode(t, u, "append", "replace", "truncate")
	if err != nil {
		return 0, err
	}
	user := t.setting(u, "user")
	pass := t.setting(u, "password")
	if u.User != nil {
		if user == "" {
			user = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && pass == "" {
			pass = p
		}
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "5432"
	}
	sslmode := t.setting(u, "sslmode")
	if sslmode == "" {
		sslmode = "prefer"
		if b, _ := strconv.ParseBool(t.setting(u, "ssl")); b {
			sslmode = "require"
		}
	}
	dsn := url.URL{Scheme: "postgres", Host: host + ":" + port, Path: "/" + db,
		RawQuery: url.Values{"sslmode": {sslmode}, "connect_timeout": {"5"}}.Encode()}
	if pass != "" {
		dsn.User = url.UserPassword(user, pass)
	} else if user != "" {
		dsn.User = url.User(user)
	}
	cfg, err := pgx.ParseConfig(dsn.String())
	if err != nil {
		return 0, errors.New(scrub("bad PostgreSQL target: "+err.Error(), pass))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, errors.New(scrub(fmt.Sprintf("connecting to PostgreSQL at %s:%s (database %s, user %s): %v", host, port, db, user, err), pass))
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	ident := pgx.Identifier{pgSchema, table}
	defs := make([]string, len(schema))
	names := make([]string, len(schema))
	for i, c := range schema {
		defs[i] = pgx.Identifier{c.Name}.Sanitize() + " " + pgType(c.Type)
		names[i] = c.Name
	}
	create := `CREATE TABLE IF NOT EXISTS ` + ident.Sanitize() + ` (` + strings.Join(defs, ", ") + `)`
	if mode == "replace" {
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+ident.Sanitize()); err != nil {
			return 0, fmt.Errorf("replacing %s: %w", ident.Sanitize(), err)
		}
	}
	if _, err := tx.Exec(ctx, create); err != nil {
		return 0, fmt.Errorf("creating %s: %w", ident.Sanitize(), err)
	}
	if mode == "truncate" {
		if _, err := tx.Exec(ctx, `TRUNCATE `+ident.Sanitize()); err != nil {
			return 0, fmt.Errorf("truncating %s: %w", ident.Sanitize(), err)
		}
	}
	var n int64
	if len(schema) > 0 {
		rr, err := openRows(src)
		if err != nil {
			return 0, err
		}
		defer rr.Close()
		n, err = tx.CopyFrom(ctx, ident, names, pgx.CopyFromFunc(func() ([]any, error) {
			row, err := rr.Next()
			if err != nil || row == nil { // nil, nil ends the copy
				return nil, err
			}
			return convertRow(row, schema), nil
		}))
		if err != nil {
			return 0, fmt.Errorf("copying rows into %s: %w", ident.Sanitize(), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing %s: %w", ident.Sanitize(), err)
	}
	return n, nil
}

// exportS3 writes a CSV file (header line, then rows) to
// <root>/s3/<bucket>/<path>/<job_id>.csv.
func (s *Server) exportS3(src string, schema []Column, t *target, u *url.URL, jobID int64) (int64, error) {
	segs := pathSegments(u)
	bucket, prefix := t.setting(u, "bucket"), t.setting(u, "path")
	urlBucket, urlPath := u.Host, strings.Join(segs, "/")
	if urlBucket == "" && len(segs) > 0 { // s3://KEY:SECRET@/bucket/path
		urlBucket, urlPath = segs[0], strings.Join(segs[1:], "/")
	}
	if bucket == "" {
		bucket = urlBucket
	}
	if prefix == "" {
		prefix = urlPath
	}
	if bucket == "" || strings.ContainsAny(bucket, `/\`) || bucket == "." || bucket == ".." {
		return 0, fmt.Errorf("s3 target %s needs a bucket: s3://BUCKET/PATH or the setting \"bucket\"", redactURL(u))
	}
	rel := filepath.Clean("/" + prefix) // stays inside the bucket
	dir := filepath.Join(s.root, "s3", bucket, rel)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	final := filepath.Join(dir, fmt.Sprintf("%d.csv", jobID))
	f, err := os.CreateTemp(dir, ".export-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cw := csv.NewWriter(f)
	header := make([]string, len(schema))
	for i, c := range schema {
		header[i] = c.Name
	}
	if err := cw.Write(header); err != nil {
		return 0, err
	}
	var n int64
	rec := make([]string, len(schema))
	err = readRows(src, func(row []any) error {
		for i := range rec {
			rec[i] = ""
			if i < len(row) {
				rec[i], _ = cellText(row[i])
			}
		}
		n++
		return cw.Write(rec)
	})
	if err != nil {
		return 0, err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return 0, err
	}
	return n, nil
}

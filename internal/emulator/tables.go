package emulator

import (
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Databases and tables: a TD database is one SQLite file, a TD table one
// SQLite table in it, so what the table endpoints change is what queries
// see. What SQLite does not keep — a table's id, creation time, expiry and
// the TD type names given with update-schema — lives in the state
// database's table_meta, created on first sight for tables made by
// queries or td:// exports.

// tableMeta is what the emulator keeps about a table beside its rows.
type tableMeta struct {
	ID         int64
	Created    time.Time
	Updated    time.Time
	ExpireDays *int64
	IncludeV   bool
	Types      map[string]string // column → TD type as given with update-schema
}

func (s *Server) initTableMeta() error {
	_, err := s.state.Exec(`CREATE TABLE IF NOT EXISTS table_meta (db TEXT NOT NULL, name TEXT NOT NULL, id INTEGER NOT NULL,
created INTEGER NOT NULL, updated INTEGER NOT NULL, expire_days INTEGER, include_v INTEGER NOT NULL DEFAULT 1, types TEXT NOT NULL DEFAULT '{}',
PRIMARY KEY (db, name))`)
	return err
}

// meta returns the metadata of db.name, creating it when missing.
func (s *Server) meta(ctx context.Context, db, name string) (tableMeta, error) {
	var m tableMeta
	var created, updated int64
	var expire sql.NullInt64
	var incV int
	var types string
	err := s.state.QueryRowContext(ctx, `SELECT id, created, updated, expire_days, include_v, types FROM table_meta WHERE db = ? AND name = ?`, db, name).
		Scan(&m.ID, &created, &updated, &expire, &incV, &types)
	if errors.Is(err, sql.ErrNoRows) {
		now := s.clock.Now().Unix()
		if _, err := s.state.ExecContext(ctx, `INSERT OR IGNORE INTO table_meta (db, name, id, created, updated)
VALUES (?, ?, (SELECT COALESCE(MAX(id), 0) + 1 FROM table_meta), ?, ?)`, db, name, now, now); err != nil {
			return m, err
		}
		return s.meta(ctx, db, name)
	}
	if err != nil {
		return m, err
	}
	m.Created, m.Updated = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	if expire.Valid {
		v := expire.Int64
		m.ExpireDays = &v
	}
	m.IncludeV = incV != 0
	_ = json.Unmarshal([]byte(types), &m.Types)
	return m, nil
}

func (s *Server) touchMeta(ctx context.Context, db, name string) {
	_, _ = s.state.ExecContext(ctx, `UPDATE table_meta SET updated = ? WHERE db = ? AND name = ?`, s.clock.Now().Unix(), db, name)
}

// tdType is the TD table type shown for a column: the one given with
// update-schema, else the one its SQLite declaration maps to.
func tdType(c Column, given map[string]string) string {
	if t, ok := given[c.Name]; ok {
		return t
	}
	switch c.Type {
	case "bigint":
		return "long"
	case "double":
		return "double"
	case "boolean":
		return "boolean"
	}
	return "string"
}

// tableJSON is one table as /v3/table/show and each element of
// /v3/table/list answer it: exactly the keys td-client-go accepts, the
// time-valued ones always present (null when unknown).
type tableJSON struct {
	ID                   int64   `json:"id"`
	Name                 string  `json:"name"`
	Type                 string  `json:"type"`
	Count                int64   `json:"count"`
	CreatedAt            string  `json:"created_at"`
	UpdatedAt            string  `json:"updated_at"`
	CounterUpdatedAt     *string `json:"counter_updated_at"`
	LastLogTimestamp     *string `json:"last_log_timestamp"`
	DeleteProtected      bool    `json:"delete_protected"`
	EstimatedStorageSize int64   `json:"estimated_storage_size"`
	Schema               string  `json:"schema"`
	ExpireDays           *int64  `json:"expire_days"`
	IncludeV             bool    `json:"include_v"`
}

// describe builds the answer for one table of d.
func (s *Server) describe(ctx context.Context, conn *sql.Conn, d *database, name string) (tableJSON, error) {
	m, err := s.meta(ctx, d.name, name)
	if err != nil {
		return tableJSON{}, err
	}
	cols, err := tableColumns(ctx, conn, name)
	if err != nil {
		return tableJSON{}, err
	}
	out := tableJSON{ID: m.ID, Name: name, Type: "log", CreatedAt: formatTime(m.Created), UpdatedAt: formatTime(m.Updated),
		ExpireDays: m.ExpireDays, IncludeV: m.IncludeV}
	pairs := [][]string{}
	hasTime := false
	for _, c := range cols {
		if c.Name == "time" {
			hasTime = true
			continue
		}
		if c.Name == "v" {
			continue
		}
		pairs = append(pairs, []string{c.Name, tdType(c, m.Types)})
	}
	b, _ := json.Marshal(pairs)
	out.Schema = string(b)
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(name)).Scan(&out.Count); err != nil {
		return tableJSON{}, err
	}
	if out.Count > 0 {
		upd := formatTime(m.Updated)
		out.CounterUpdatedAt = &upd
		out.EstimatedStorageSize = out.Count * 64
	}
	if hasTime {
		var last sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT MAX(CAST(time AS INTEGER)) FROM `+quoteIdent(name)).Scan(&last); err == nil && last.Valid {
			ts := formatTime(time.Unix(last.Int64, 0))
			out.LastLogTimestamp = &ts
		}
	}
	return out, nil
}

// tableNames lists the tables of a database.
func tableNames(ctx context.Context, conn *sql.Conn) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// withDB runs fn on a connection to the database named in the path, or
// answers 404.
func (s *Server) withDB(w http.ResponseWriter, r *http.Request, dbName string, fn func(d *database, conn *sql.Conn)) {
	d, ok := s.database(dbName)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("database %q not found", dbName), nil)
		return
	}
	conn, err := d.db.Conn(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("database %s: %v", dbName, err), nil)
		return
	}
	defer conn.Close()
	fn(d, conn)
}

// withTable is withDB for a table that must exist.
func (s *Server) withTable(w http.ResponseWriter, r *http.Request, dbName, table string, fn func(d *database, conn *sql.Conn)) {
	s.withDB(w, r, dbName, func(d *database, conn *sql.Conn) {
		ok, err := tableExists(r.Context(), conn, table)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("table %s.%s not found", dbName, table), nil)
			return
		}
		fn(d, conn)
	})
}

func (s *Server) handleDatabaseList(w http.ResponseWriter, r *http.Request) {
	dbs := []map[string]any{}
	for _, name := range s.databaseNames() {
		d, ok := s.database(name)
		if !ok {
			continue
		}
		tables, err := s.tables(r.Context(), d)
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("listing database %s: %v", name, err), nil)
			return
		}
		var count int64
		for _, t := range tables {
			count += t.count
		}
		ts := formatTime(d.created)
		dbs = append(dbs, map[string]any{"name": name, "count": count, "created_at": ts, "updated_at": ts,
			"permission": "administrator", "delete_protected": false, "organization": nil})
	}
	writeJSON(w, r, map[string]any{"databases": dbs})
}

func (s *Server) handleDatabaseCreate(w http.ResponseWriter, r *http.Request, name string) {
	if err := validName("database", name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	s.mu.Lock()
	_, exists := s.dbs[name]
	var err error
	if !exists && !s.closed {
		err = s.openDatabase(name)
	}
	s.mu.Unlock()
	switch {
	case exists:
		writeError(w, http.StatusConflict, fmt.Sprintf("database %q already exists", name), nil)
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
	default:
		writeJSON(w, r, map[string]any{"database": name})
	}
}

func (s *Server) handleDatabaseDelete(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	d, ok := s.dbs[name]
	if ok {
		delete(s.dbs, name)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("database %q not found", name), nil)
		return
	}
	err := d.db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if rerr := os.Remove(d.path + suffix); rerr != nil && !os.IsNotExist(rerr) && err == nil {
			err = rerr
		}
	}
	_, _ = s.state.ExecContext(r.Context(), `DELETE FROM table_meta WHERE db = ?`, name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("deleting database %s: %v", name, err), nil)
		return
	}
	writeJSON(w, r, map[string]any{"database": name})
}

func (s *Server) handleTableList(w http.ResponseWriter, r *http.Request, dbName string) {
	s.withDB(w, r, dbName, func(d *database, conn *sql.Conn) {
		names, err := tableNames(r.Context(), conn)
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("listing tables of %s: %v", dbName, err), nil)
			return
		}
		out := []tableJSON{}
		for _, n := range names {
			t, err := s.describe(r.Context(), conn, d, n)
			if err != nil {
				writeError(w, http.StatusInternalServerError, fmt.Sprintf("describing %s.%s: %v", dbName, n, err), nil)
				return
			}
			out = append(out, t)
		}
		writeJSON(w, r, map[string]any{"database": dbName, "tables": out})
	})
}

func (s *Server) handleTableShow(w http.ResponseWriter, r *http.Request, dbName, table string) {
	s.withTable(w, r, dbName, table, func(d *database, conn *sql.Conn) {
		t, err := s.describe(r.Context(), conn, d, table)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error(), nil)
			return
		}
		writeJSON(w, r, t)
	})
}

func (s *Server) handleTableCreate(w http.ResponseWriter, r *http.Request, dbName, table, typ string) {
	if typ != "log" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown table type %q: use log", typ), nil)
		return
	}
	if err := validName("table", table); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	s.withDB(w, r, dbName, func(d *database, conn *sql.Conn) {
		ok, err := tableExists(r.Context(), conn, table)
		if err == nil && ok {
			writeError(w, http.StatusConflict, fmt.Sprintf("table %s.%s already exists", dbName, table), nil)
			return
		}
		if err == nil {
			_, err = conn.ExecContext(r.Context(), `CREATE TABLE `+quoteIdent(table)+` (time BIGINT)`)
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		// a table of the same name deleted before leaves no metadata behind
		_, _ = s.state.ExecContext(r.Context(), `DELETE FROM table_meta WHERE db = ? AND name = ?`, dbName, table)
		if _, err := s.meta(r.Context(), dbName, table); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		writeJSON(w, r, map[string]any{"database": dbName, "table": table, "type": "log"})
	})
}

func (s *Server) handleTableDelete(w http.ResponseWriter, r *http.Request, dbName, table string) {
	s.withTable(w, r, dbName, table, func(d *database, conn *sql.Conn) {
		if _, err := conn.ExecContext(r.Context(), `DROP TABLE `+quoteIdent(table)); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		_, _ = s.state.ExecContext(r.Context(), `DELETE FROM table_meta WHERE db = ? AND name = ?`, dbName, table)
		writeJSON(w, r, map[string]any{"database": dbName, "table": table, "type": "log"})
	})
}

// handleTableSwap exchanges two tables' names: rows, schema and settings
// follow the data.
func (s *Server) handleTableSwap(w http.ResponseWriter, r *http.Request, dbName, t1, t2 string) {
	s.withTable(w, r, dbName, t1, func(d *database, conn *sql.Conn) {
		ctx := r.Context()
		if ok, err := tableExists(ctx, conn, t2); err != nil || !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("table %s.%s not found", dbName, t2), nil)
			return
		}
		if t1 == t2 {
			writeError(w, http.StatusBadRequest, "cannot swap a table with itself", nil)
			return
		}
		// metadata first (it must exist to follow), then the rows
		if _, err := s.meta(ctx, dbName, t1); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if _, err := s.meta(ctx, dbName, t2); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		tmp := "__swap_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		err := renameAll(ctx, conn, [][2]string{{t1, tmp}, {t2, t1}, {tmp, t2}})
		if err == nil {
			err = renameMeta(ctx, s.state, dbName, [][2]string{{t1, tmp}, {t2, t1}, {tmp, t2}})
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		writeJSON(w, r, map[string]any{"database": dbName, "table1": t1, "table2": t2})
	})
}

// handleTableRename gives a table a new name; overwrite=true replaces a
// table that has it.
func (s *Server) handleTableRename(w http.ResponseWriter, r *http.Request, dbName, from, to string) {
	if err := validName("table", to); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	overwrite := strings.EqualFold(r.Form.Get("overwrite"), "true")
	s.withTable(w, r, dbName, from, func(d *database, conn *sql.Conn) {
		ctx := r.Context()
		if _, err := s.meta(ctx, dbName, from); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		exists, err := tableExists(ctx, conn, to)
		if err == nil && exists && from != to {
			if !overwrite {
				writeError(w, http.StatusConflict, fmt.Sprintf("table %s.%s already exists (send overwrite=true to replace it)", dbName, to), nil)
				return
			}
			_, err = conn.ExecContext(ctx, `DROP TABLE `+quoteIdent(to))
			if err == nil {
				_, err = s.state.ExecContext(ctx, `DELETE FROM table_meta WHERE db = ? AND name = ?`, dbName, to)
			}
		}
		if err == nil && from != to {
			err = renameAll(ctx, conn, [][2]string{{from, to}})
			if err == nil {
				err = renameMeta(ctx, s.state, dbName, [][2]string{{from, to}})
			}
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		writeJSON(w, r, map[string]any{"database": dbName, "table": to, "type": "log"})
	})
}

// renameAll renames SQLite tables in one transaction.
func renameAll(ctx context.Context, conn *sql.Conn, steps [][2]string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, st := range steps {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+quoteIdent(st[0])+` RENAME TO `+quoteIdent(st[1])); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func renameMeta(ctx context.Context, state *sql.DB, db string, steps [][2]string) error {
	tx, err := state.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, st := range steps {
		if _, err := tx.ExecContext(ctx, `UPDATE table_meta SET name = ? WHERE db = ? AND name = ?`, st[1], db, st[0]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// handleUpdateSchema sets a table's columns: missing ones are added,
// columns left out are dropped (queries no longer see them, as on TD), and
// the TD type names given are kept.
func (s *Server) handleUpdateSchema(w http.ResponseWriter, r *http.Request, dbName, table string) {
	raw := r.Form.Get("schema")
	var cols [][]string
	if err := json.Unmarshal([]byte(raw), &cols); err != nil || raw == "" {
		writeError(w, http.StatusBadRequest, `schema must be a JSON array of [name, type] pairs such as [["user_id","long"]]`, nil)
		return
	}
	types := map[string]string{}
	var order []string
	for _, c := range cols {
		if len(c) < 2 || c[0] == "" || c[1] == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("schema entry %q needs a name and a type", c), nil)
			return
		}
		if c[0] == "time" || c[0] == "v" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Column name '%s' is reserved", c[0]), nil)
			return
		}
		if _, dup := types[c[0]]; dup {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("column %q is given twice", c[0]), nil)
			return
		}
		types[c[0]] = c[1]
		order = append(order, c[0])
	}
	s.withTable(w, r, dbName, table, func(d *database, conn *sql.Conn) {
		ctx := r.Context()
		have, err := tableColumns(ctx, conn, table)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		existing := map[string]bool{}
		var stmts []string
		for _, c := range have {
			existing[c.Name] = true
			if _, keep := types[c.Name]; !keep && c.Name != "time" && c.Name != "v" {
				stmts = append(stmts, `ALTER TABLE `+quoteIdent(table)+` DROP COLUMN `+quoteIdent(c.Name))
			}
		}
		for _, n := range order {
			if !existing[n] {
				stmts = append(stmts, `ALTER TABLE `+quoteIdent(table)+` ADD COLUMN `+quoteIdent(n)+` `+sqliteDecl(hiveOf(types[n])))
			}
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		defer tx.Rollback()
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, st); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("changing the schema of %s.%s: %v", dbName, table, err), nil)
				return
			}
		}
		if err := tx.Commit(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if _, err := s.meta(ctx, dbName, table); err == nil {
			b, _ := json.Marshal(types)
			_, _ = s.state.ExecContext(ctx, `UPDATE table_meta SET types = ?, updated = ? WHERE db = ? AND name = ?`, string(b), s.clock.Now().Unix(), dbName, table)
		}
		writeJSON(w, r, map[string]any{"database": dbName, "table": table, "type": "log"})
	})
}

// hiveOf maps a TD table type to the engine type the SQLite column gets.
func hiveOf(td string) string {
	switch strings.ToLower(td) {
	case "long", "int", "bigint":
		return "bigint"
	case "double", "float":
		return "double"
	case "boolean":
		return "boolean"
	}
	return "varchar"
}

func (s *Server) handleTableUpdate(w http.ResponseWriter, r *http.Request, dbName, table string) {
	f := r.Form
	var expire *int64
	setExpire := false
	if v, ok := f["expire_days"]; ok && len(v) > 0 {
		setExpire = true
		n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("expire_days must be a whole number >= 0, got %q", v[0]), nil)
			return
		}
		if n > 0 {
			expire = &n
		}
	}
	var includeV *bool
	if v := f.Get("include_v"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("include_v must be true or false, got %q", v), nil)
			return
		}
		includeV = &b
	}
	s.withTable(w, r, dbName, table, func(d *database, conn *sql.Conn) {
		ctx := r.Context()
		if _, err := s.meta(ctx, dbName, table); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if setExpire {
			_, _ = s.state.ExecContext(ctx, `UPDATE table_meta SET expire_days = ? WHERE db = ? AND name = ?`, expire, dbName, table)
		}
		if includeV != nil {
			_, _ = s.state.ExecContext(ctx, `UPDATE table_meta SET include_v = ? WHERE db = ? AND name = ?`, *includeV, dbName, table)
		}
		s.touchMeta(ctx, dbName, table)
		writeJSON(w, r, map[string]any{"database": dbName, "table": table, "type": "log"})
	})
}

// handleTail answers the newest rows (by time, then insertion) as a stream
// of msgpack maps, or JSON lines with format=json.
func (s *Server) handleTail(w http.ResponseWriter, r *http.Request, dbName, table string) {
	count := int64(10)
	if v := r.Form.Get("count"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("count must be a positive number, got %q", v), nil)
			return
		}
		count = min(n, 10000)
	}
	format := r.Form.Get("format")
	if format != "" && format != "msgpack" && format != "json" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown format %q: use msgpack or json", format), nil)
		return
	}
	s.withTable(w, r, dbName, table, func(d *database, conn *sql.Conn) {
		ctx := r.Context()
		cols, err := tableColumns(ctx, conn, table)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		order := "rowid DESC"
		for _, c := range cols {
			if c.Name == "time" {
				order = "time DESC, rowid DESC"
			}
		}
		rows, err := conn.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table)+` ORDER BY `+order+` LIMIT ?`, count)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		defer rows.Close()
		var out []map[string]any
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
				return
			}
			m := make(map[string]any, len(cols))
			for i, c := range cols {
				m[c.Name] = normalize(vals[i], c.Type)
			}
			out = append(out, m)
		}
		if err := rows.Err(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if format == "json" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			enc := json.NewEncoder(w)
			for _, m := range out {
				_ = enc.Encode(m)
			}
			return
		}
		w.Header().Set("Content-Type", "application/x-msgpack")
		enc := msgpack.NewEncoder(w)
		enc.SetSortMapKeys(true)
		for _, m := range out {
			_ = enc.Encode(m)
		}
	})
}

// handlePartialDelete starts a job deleting the rows with from <= time <
// to. TD insists on whole hours.
func (s *Server) handlePartialDelete(w http.ResponseWriter, r *http.Request, dbName, table string) {
	from, ferr := strconv.ParseInt(r.Form.Get("from"), 10, 64)
	to, terr := strconv.ParseInt(r.Form.Get("to"), 10, 64)
	switch {
	case ferr != nil || terr != nil:
		writeError(w, http.StatusBadRequest, "from and to are required: unix seconds on whole hours", nil)
		return
	case from%3600 != 0 || to%3600 != 0:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("from (%d) and to (%d) must be on whole hours (multiples of 3600)", from, to), nil)
		return
	case from >= to:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("from (%d) must be before to (%d)", from, to), nil)
		return
	}
	s.withTable(w, r, dbName, table, func(d *database, conn *sql.Conn) {
		j := &job{Kind: kindQuery, Type: "partialdelete", Database: dbName,
			Query:     fmt.Sprintf("DELETE FROM %s WHERE time >= %d AND time < %d", quoteIdent(table), from, to),
			DomainKey: r.Form.Get("domain_key"), Form: cloneValues(r.Form)}
		id, ok := s.addJobOrAnswer(w, j)
		if !ok {
			return
		}
		sid := strconv.FormatInt(id, 10)
		writeJSON(w, r, map[string]any{"job_id": sid, "database": dbName, "table": table, "from": from, "to": to})
	})
}

// handleTableExportRun starts a table export job: the rows (optionally
// limited to from <= time < to) written as one file under the emulator's
// s3/<bucket>/<file_prefix>.
func (s *Server) handleTableExportRun(w http.ResponseWriter, r *http.Request, dbName, table string) {
	f := r.Form
	if st := f.Get("storage_type"); st != "s3" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("storage_type must be s3, got %q", st), nil)
		return
	}
	bucket := f.Get("bucket")
	if bucket == "" || strings.ContainsAny(bucket, `/\`) || bucket == "." || bucket == ".." {
		writeError(w, http.StatusBadRequest, "bucket is required (a bucket name without /)", nil)
		return
	}
	if f.Get("access_key_id") == "" || f.Get("secret_access_key") == "" {
		writeError(w, http.StatusBadRequest, "access_key_id and secret_access_key are required", nil)
		return
	}
	format := f.Get("file_format")
	switch format {
	case "jsonl.gz", "json-line.gz", "json.gz", "tsv.gz":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("file_format must be jsonl.gz, json.gz or tsv.gz, got %q", format), nil)
		return
	}
	where := []string{}
	for _, k := range []string{"from", "to"} {
		if v := f.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s must be unix seconds, got %q", k, v), nil)
				return
			}
			op := ">="
			if k == "to" {
				op = "<"
			}
			where = append(where, fmt.Sprintf("time %s %d", op, n))
		}
	}
	s.withTable(w, r, dbName, table, func(d *database, conn *sql.Conn) {
		q := "SELECT * FROM " + quoteIdent(table)
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		j := &job{Kind: kindTableExport, Type: "export", Database: dbName, Query: q,
			DomainKey: f.Get("domain_key"), PoolName: f.Get("pool_name"), Form: cloneValues(f)}
		id, ok := s.addJobOrAnswer(w, j)
		if !ok {
			return
		}
		sid := strconv.FormatInt(id, 10)
		writeJSON(w, r, map[string]string{"job": sid, "job_id": sid, "database": dbName})
	})
}

// kindTableExport runs a table export (POST /v3/export/run).
const kindTableExport = "tableexport"

// runTableExport runs p's query and writes its rows in the requested
// format to s3/<bucket>/<file_prefix><job id>.<format>. It returns the row
// count and a line for cmdout.
func (s *Server) runTableExport(ctx context.Context, p execParams) (int64, string, error) {
	res, err := s.runQuery(ctx, p.database, "presto", p.query, p.out)
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(p.out)
	bucket, prefix, format := p.form.Get("bucket"), p.form.Get("file_prefix"), p.form.Get("file_format")
	rel := filepath.Clean("/" + prefix + strconv.FormatInt(p.id, 10) + "." + format)
	final := filepath.Join(s.root, "s3", bucket, rel)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".export-*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	zw := gzip.NewWriter(tmp)
	var n int64
	if format == "tsv.gz" {
		names := make([]string, len(res.schema))
		for i, c := range res.schema {
			names[i] = c.Name
		}
		fmt.Fprintln(zw, strings.Join(names, "\t"))
	}
	err = readRows(p.out, func(row []any) error {
		n++
		if format == "tsv.gz" {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i], _ = cellText(v)
			}
			_, err := fmt.Fprintln(zw, strings.Join(cells, "\t"))
			return err
		}
		m := make(map[string]any, len(row))
		for i, v := range row {
			if i < len(res.schema) {
				m[res.schema[i].Name] = v
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = zw.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return 0, "", err
	}
	if err := zw.Close(); err != nil {
		return 0, "", err
	}
	if err := tmp.Close(); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return 0, "", err
	}
	return n, fmt.Sprintf("Exported %d rows to s3://%s%s", n, bucket, filepath.ToSlash(rel)), nil
}

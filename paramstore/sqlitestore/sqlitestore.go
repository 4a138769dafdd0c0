// Package sqlitestore is the embedded paramstore backend: one SQLite file
// (pure Go, modernc.org/sqlite), the default store of a tdctl install.
//
// Layout, table params (not shared with digdag, so it keeps an explicit
// expiry; values use digdag's encoding so exports move between backends):
//
//	site_id INTEGER, key TEXT, value TEXT ({"value": ...}), value_type INTEGER,
//	created_at, updated_at, expires_at INTEGER (Unix milliseconds),
//	PRIMARY KEY (site_id, key)
//
// The file is opened in WAL mode with a busy timeout, so a CLI and a
// workflow run can use it at once; inside one process the driver keeps a
// single connection, which serialises statements without SQLITE_BUSY.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/driver"
)

func init() {
	paramstore.Register(paramstore.Backend{
		Name: "sqlite", Schemes: []string{"sqlite", "sqlite3"}, Example: "sqlite:///abs/path/params.db",
		Open: openURL,
	})
}

// openURL opens sqlite:///absolute/path/params.db.
func openURL(ctx context.Context, u *url.URL) (driver.Driver, error) {
	if u.Host != "" || u.Opaque != "" {
		return nil, driver.OpenError(driver.ErrBadURL, u.String(), nil,
			"paramstore sqlite: %s has no absolute path; write sqlite:///absolute/path/params.db (three slashes)", driver.RedactURL(u.String()))
	}
	if u.Path == "" {
		return nil, driver.OpenError(driver.ErrBadURL, u.String(), nil,
			"paramstore sqlite: the URL has no path; write sqlite:///absolute/path/params.db")
	}
	d, err := Open(ctx, u.Path)
	if err != nil {
		return nil, err
	}
	return d, nil
}

const schema = `CREATE TABLE IF NOT EXISTS params (
	site_id    INTEGER NOT NULL,
	key        TEXT    NOT NULL,
	value      TEXT    NOT NULL,
	value_type INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (site_id, key)
);
CREATE INDEX IF NOT EXISTS params_expires_at ON params (expires_at);`

var wantColumns = []string{"site_id", "key", "value", "value_type", "created_at", "updated_at", "expires_at"}

const (
	qGet = `SELECT value, value_type FROM params WHERE site_id = ? AND key = ? AND expires_at > ?`
	// An expired row being overwritten is a new param: created_at restarts.
	qUpsert = `INSERT INTO params (site_id, key, value, value_type, created_at, updated_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
ON CONFLICT (site_id, key) DO UPDATE SET value = excluded.value, value_type = excluded.value_type,
	updated_at = excluded.updated_at, expires_at = excluded.expires_at,
	created_at = CASE WHEN params.expires_at > excluded.updated_at THEN params.created_at ELSE excluded.created_at END`
	qDelete = `DELETE FROM params WHERE site_id = ? AND key = ? RETURNING expires_at > ?`
	qList   = `SELECT key, value, value_type FROM params
WHERE site_id = ?1 AND substr(key, 1, length(?2)) = ?2 AND key > ?3 AND expires_at > ?4
ORDER BY key LIMIT ?5`
	// Create when absent or expired.
	qCreate = `INSERT INTO params (site_id, key, value, value_type, created_at, updated_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
ON CONFLICT (site_id, key) DO UPDATE SET value = excluded.value, value_type = excluded.value_type,
	created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at
WHERE params.expires_at <= excluded.updated_at`
	qSwap = `UPDATE params SET value = ?1, value_type = ?2, updated_at = ?3, expires_at = ?4
WHERE site_id = ?5 AND key = ?6 AND value = ?7 AND value_type = ?8 AND expires_at > ?3`
	qSweep = `DELETE FROM params WHERE rowid IN (SELECT rowid FROM params WHERE expires_at <= ? LIMIT ?)`
)

// Driver is the SQLite driver.Driver.
type Driver struct {
	db                                          *sql.DB
	now                                         func() time.Time
	get, upsert, del, list, create, swap, sweep *sql.Stmt
}

var _ driver.Driver = (*Driver)(nil)

// Option configures Open.
type Option func(*Driver)

// WithClock sets the clock expiry is computed with (tests).
func WithClock(now func() time.Time) Option { return func(d *Driver) { d.now = now } }

// Open opens (creating when missing, mode 0600, parent directories 0700)
// the SQLite file at the absolute path and makes sure it holds the params
// table.
func Open(ctx context.Context, path string, opts ...Option) (*Driver, error) {
	if !filepath.IsAbs(path) {
		return nil, driver.OpenError(driver.ErrBadURL, "", nil,
			"paramstore sqlite: %q is not an absolute path; use sqlite:///absolute/path/params.db", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, driver.OpenError(driver.ErrUnavailable, "", err, "paramstore sqlite: cannot create the directory of %s", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, driver.OpenError(driver.ErrUnavailable, "", err, "paramstore sqlite: cannot open %s (check the path and its permissions)", path)
	}
	f.Close()
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, driver.OpenError(driver.ErrUnavailable, "", err, "paramstore sqlite: cannot open %s", path)
	}
	// One connection: statements from this process queue in database/sql
	// instead of failing with SQLITE_BUSY; each is microseconds long.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	d := &Driver{db: db, now: time.Now}
	for _, o := range opts {
		o(d)
	}
	if err := d.init(ctx, path); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func (d *Driver) init(ctx context.Context, path string) error {
	have, err := d.columns(ctx)
	if err != nil {
		if isNotADatabase(err) {
			return driver.OpenError(driver.ErrSchema, "", err, "paramstore sqlite: %s is not a SQLite database; point the URL at another file", path)
		}
		return driver.OpenError(driver.ErrUnavailable, "", err, "paramstore sqlite: cannot read the layout of %s", path)
	}
	var missing []string
	for _, c := range wantColumns {
		if len(have) > 0 && !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return driver.OpenError(driver.ErrSchema, "", nil,
			"paramstore sqlite: %s has a params table without column(s) %s: it is not a tdctl param store; point the URL at another file",
			path, strings.Join(missing, ", "))
	}
	if _, err := d.db.ExecContext(ctx, schema); err != nil {
		return driver.OpenError(driver.ErrUnavailable, "", err, "paramstore sqlite: cannot create the params table in %s", path)
	}
	for _, p := range []struct {
		s **sql.Stmt
		q string
	}{{&d.get, qGet}, {&d.upsert, qUpsert}, {&d.del, qDelete}, {&d.list, qList}, {&d.create, qCreate}, {&d.swap, qSwap}, {&d.sweep, qSweep}} {
		if *p.s, err = d.db.PrepareContext(ctx, p.q); err != nil {
			return driver.OpenError(driver.ErrSchema, "", err, "paramstore sqlite: cannot prepare statements on %s", path)
		}
	}
	return nil
}

// columns returns the columns of the params table (none when missing).
func (d *Driver) columns(ctx context.Context) (map[string]bool, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT name FROM pragma_table_info('params')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		have[name] = true
	}
	return have, rows.Err()
}

func isNotADatabase(err error) bool {
	return strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "file is encrypted")
}

func (d *Driver) ms() int64 { return d.now().UnixMilli() }

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, site int32, key string) (driver.Value, error) {
	var v driver.Value
	err := d.get.QueryRowContext(ctx, site, key, d.ms()).Scan(&v.Column, &v.Type)
	if errors.Is(err, sql.ErrNoRows) {
		return v, driver.ErrNotFound
	}
	return v, err
}

// SetMany implements driver.Driver: one IMMEDIATE transaction.
func (d *Driver) SetMany(ctx context.Context, site int32, entries []driver.Entry, ttl time.Duration) error {
	now := d.ms()
	exp := now + ttl.Milliseconds()
	if len(entries) == 1 {
		e := entries[0]
		_, err := d.upsert.ExecContext(ctx, site, e.Key, e.Value.Column, e.Value.Type, now, exp)
		return err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, d.upsert)
	for _, e := range entries {
		if _, err := st.ExecContext(ctx, site, e.Key, e.Value.Column, e.Value.Type, now, exp); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, site int32, key string) error {
	var live bool
	err := d.del.QueryRowContext(ctx, site, key, d.ms()).Scan(&live)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !live) {
		return driver.ErrNotFound
	}
	return err
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, site int32, prefix, after string, limit int) ([]driver.Entry, error) {
	rows, err := d.list.QueryContext(ctx, site, prefix, after, d.ms(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.Entry
	for rows.Next() {
		var e driver.Entry
		if err := rows.Scan(&e.Key, &e.Value.Column, &e.Value.Type); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CompareAndSwap implements driver.Driver: one statement.
func (d *Driver) CompareAndSwap(ctx context.Context, site int32, key string, old *driver.Value, next driver.Value, ttl time.Duration) (bool, error) {
	now := d.ms()
	exp := now + ttl.Milliseconds()
	var res sql.Result
	var err error
	if old == nil {
		res, err = d.create.ExecContext(ctx, site, key, next.Column, next.Type, now, exp)
	} else {
		res, err = d.swap.ExecContext(ctx, next.Column, next.Type, now, exp, site, key, old.Column, old.Type)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Sweep implements driver.Driver.
func (d *Driver) Sweep(ctx context.Context, limit int) (int, error) {
	res, err := d.sweep.ExecContext(ctx, d.ms(), limit)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Close implements driver.Driver.
func (d *Driver) Close() error { return d.db.Close() }

// Package pgstore is the PostgreSQL paramstore backend (pgx/v5 pool). It
// uses digdag's param server table, byte for byte, so tdctl and a digdag
// server configured with param_server.database.type=postgresql share
// params:
//
//	CREATE TABLE params (key text NOT NULL, value text NOT NULL,
//	  value_type int NOT NULL, site_id integer,
//	  updated_at timestamp with time zone NOT NULL,
//	  created_at timestamp with time zone NOT NULL,
//	  CONSTRAINT params_site_id_key_uniq UNIQUE(site_id, key))
//
// created in the connection's current schema (the URL's search_path, e.g.
// postgres://digdag@db/digdag?search_path=params) when missing; a schema
// named by search_path is created too. Nothing else is added.
//
// Expiry is digdag's rule for every row: a row is live while
// updated_at + 90 days >= now() (server clock). A custom TTL is stored in
// the same column: tdctl writes updated_at = now() - 90 days + TTL, so
// digdag's own reads honour the TTL too, and a write with the default TTL
// is exactly digdag's write (updated_at = now()). A digdag write over a
// tdctl row resets it to digdag's 90 days, as it should. The price: for a
// row written with a custom TTL, updated_at is its expiry minus 90 days
// rather than its write time (created_at stays the creation time).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/driver"
)

func init() {
	paramstore.Register(paramstore.Backend{
		Name: "postgres", Shared: true, Schemes: []string{"postgres", "postgresql"}, Example: "postgres://user@host/db",
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			d, err := Open(ctx, u.String())
			if err != nil {
				return nil, err
			}
			return d, nil
		},
	})
}

// live is digdag's visibility rule, written so it can use plain
// comparisons.
const live = `updated_at >= now() - interval '7776000 seconds'`

const (
	qGet    = `SELECT value, value_type FROM params WHERE site_id = $1 AND key = $2 AND ` + live
	qUpdAt  = `now() + $5::bigint * interval '1 millisecond'`
	qUpsert = `INSERT INTO params (key, value, value_type, site_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, now(), ` + qUpdAt + `)
ON CONFLICT ON CONSTRAINT params_site_id_key_uniq DO UPDATE SET value = EXCLUDED.value, value_type = EXCLUDED.value_type,
	updated_at = EXCLUDED.updated_at,
	created_at = CASE WHEN params.` + live + ` THEN params.created_at ELSE EXCLUDED.created_at END`
	qUpsertMany = `INSERT INTO params (key, value, value_type, site_id, created_at, updated_at)
SELECT k, v, t, $4, now(), ` + qUpdAt + ` FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS e(k, v, t, i) ORDER BY i
ON CONFLICT ON CONSTRAINT params_site_id_key_uniq DO UPDATE SET value = EXCLUDED.value, value_type = EXCLUDED.value_type,
	updated_at = EXCLUDED.updated_at,
	created_at = CASE WHEN params.` + live + ` THEN params.created_at ELSE EXCLUDED.created_at END`
	qDelete = `DELETE FROM params WHERE site_id = $1 AND key = $2 RETURNING ` + live
	qList   = `SELECT key, value, value_type FROM params
WHERE site_id = $1 AND starts_with(key, $2) AND key COLLATE "C" > $3 AND ` + live + `
ORDER BY key COLLATE "C" LIMIT $4`
	qCreate = `INSERT INTO params (key, value, value_type, site_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, now(), ` + qUpdAt + `)
ON CONFLICT ON CONSTRAINT params_site_id_key_uniq DO UPDATE SET value = EXCLUDED.value, value_type = EXCLUDED.value_type,
	created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
WHERE NOT (params.` + live + `)`
	qSwap = `UPDATE params SET value = $1, value_type = $2, updated_at = now() + $3::bigint * interval '1 millisecond'
WHERE site_id = $4 AND key = $5 AND value = $6 AND value_type = $7 AND ` + live
	qSweep = `DELETE FROM params WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM params WHERE updated_at < now() - interval '7776000 seconds' LIMIT $1))
AND updated_at < now() - interval '7776000 seconds'`
)

// digdagDDL is digdag's own CREATE TABLE for the param server.
const digdagDDL = `CREATE TABLE IF NOT EXISTS params (` +
	`key text NOT NULL,` +
	`value text NOT NULL,` +
	`value_type int NOT NULL,` +
	`site_id integer,` +
	`updated_at timestamp with time zone NOT NULL,` +
	`created_at timestamp with time zone NOT NULL,` +
	`CONSTRAINT params_site_id_key_uniq UNIQUE(site_id, key))`

var wantColumns = []struct{ name, typ string }{
	{"key", "text"}, {"value", "text"}, {"value_type", "integer"}, {"site_id", "integer"},
	{"updated_at", "timestamp with time zone"}, {"created_at", "timestamp with time zone"},
}

// Driver is the PostgreSQL driver.Driver.
type Driver struct {
	pool *pgxpool.Pool
}

var _ driver.Driver = (*Driver)(nil)

// Open connects to the postgres:// or postgresql:// URL (any pgx
// connection URL: sslmode, search_path, pool_max_conns...), checks the
// server answers, and creates or checks the params table. Errors never
// contain the URL's password.
func Open(ctx context.Context, rawURL string) (*Driver, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, driver.OpenError(driver.ErrBadURL, rawURL, err,
			"paramstore postgres: cannot use the URL %s; write it as postgres://user[:password]@host[:port]/database[?search_path=schema]", driver.RedactURL(rawURL))
	}
	where := fmt.Sprintf("%s:%d (user %q, database %q)", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, cfg.ConnConfig.Database)
	if _, ok := ctx.Deadline(); !ok && cfg.ConnConfig.ConnectTimeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, driver.OpenError(driver.ErrBadURL, rawURL, err, "paramstore postgres: cannot configure a pool for %s", where)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, driver.OpenError(driver.ErrUnavailable, rawURL, err,
			"paramstore postgres: cannot connect to %s; check that PostgreSQL runs there and the URL's host, port, user, password and database", where)
	}
	d := &Driver{pool: pool}
	if err := d.prepareTable(ctx, rawURL, cfg.ConnConfig.RuntimeParams["search_path"]); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

// prepareTable creates the schema (when the URL names one) and digdag's
// table when missing, then checks the layout. It runs once per Open.
func (d *Driver) prepareTable(ctx context.Context, rawURL, searchPath string) error {
	var schema *string
	if err := d.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return driver.OpenError(driver.ErrUnavailable, rawURL, err, "paramstore postgres: cannot read the current schema")
	}
	cols, err := d.columns(ctx)
	if err != nil {
		return driver.OpenError(driver.ErrUnavailable, rawURL, err, "paramstore postgres: cannot read the layout of table params")
	}
	if schema == nil || len(cols) == 0 {
		first := firstSchema(searchPath)
		if schema == nil && first == "" {
			return driver.OpenError(driver.ErrSchema, rawURL, nil,
				"paramstore postgres: no schema of the search_path exists; add ?search_path=<schema> to the URL")
		}
		if err := d.create(ctx, first, schema == nil); err != nil {
			return driver.OpenError(driver.ErrSchema, rawURL, err,
				"paramstore postgres: cannot create table params (schema %q); grant CREATE to the user or create it with digdag's DDL", first)
		}
		if err := d.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil || schema == nil {
			return driver.OpenError(driver.ErrSchema, rawURL, err, "paramstore postgres: no current schema after creating %q", first)
		}
		if cols, err = d.columns(ctx); err != nil {
			return driver.OpenError(driver.ErrUnavailable, rawURL, err, "paramstore postgres: cannot read the layout of table params")
		}
	}
	var problems []string
	for _, w := range wantColumns {
		got, ok := cols[w.name]
		switch {
		case !ok:
			problems = append(problems, "column "+w.name+" is missing")
		case got != w.typ:
			problems = append(problems, fmt.Sprintf("column %s is %s, want %s", w.name, got, w.typ))
		}
	}
	var hasConstraint bool
	if err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint
		WHERE conname = 'params_site_id_key_uniq' AND conrelid = to_regclass(quote_ident(current_schema()) || '.params'))`).Scan(&hasConstraint); err != nil {
		return driver.OpenError(driver.ErrUnavailable, rawURL, err, "paramstore postgres: cannot read the constraints of table params")
	}
	if !hasConstraint {
		problems = append(problems, "constraint params_site_id_key_uniq UNIQUE(site_id, key) is missing")
	}
	if len(problems) > 0 {
		return driver.OpenError(driver.ErrSchema, rawURL, nil,
			"paramstore postgres: table %s.params is not digdag's param table (%s); point ?search_path= at another schema or fix the table",
			*schema, strings.Join(problems, "; "))
	}
	return nil
}

func (d *Driver) columns(ctx context.Context) (map[string]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT column_name::text, data_type::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'params'`)
	if err != nil {
		return nil, err
	}
	cols := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error { cols[name] = typ; return nil })
	return cols, err
}

// create makes the schema (when asked) and the table under an advisory
// lock, so concurrent first Opens do not race on the catalog.
func (d *Driver) create(ctx context.Context, schema string, makeSchema bool) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('tdctl.paramstore.create'))`); err != nil {
			return err
		}
		if makeSchema {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, digdagDDL)
		return err
	})
}

// firstSchema returns the first schema of a search_path setting.
func firstSchema(searchPath string) string {
	first, _, _ := strings.Cut(searchPath, ",")
	first = strings.TrimSpace(first)
	if len(first) >= 2 && first[0] == '"' && first[len(first)-1] == '"' {
		return strings.ReplaceAll(first[1:len(first)-1], `""`, `"`)
	}
	if first == "$user" {
		return ""
	}
	return first
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, site int32, key string) (driver.Value, error) {
	var v driver.Value
	err := d.pool.QueryRow(ctx, qGet, site, key).Scan(&v.Column, &v.Type)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, driver.ErrNotFound
	}
	return v, err
}

// offset is updated_at's distance from now(): TTL − 90 days, in ms.
func offset(ttl time.Duration) int64 { return (ttl - driver.DigdagTTL).Milliseconds() }

// SetMany implements driver.Driver: one statement, so one atomic write.
func (d *Driver) SetMany(ctx context.Context, site int32, entries []driver.Entry, ttl time.Duration) error {
	if len(entries) == 1 {
		e := entries[0]
		_, err := d.pool.Exec(ctx, qUpsert, e.Key, e.Value.Column, e.Value.Type, site, offset(ttl))
		return err
	}
	keys := make([]string, len(entries))
	vals := make([]string, len(entries))
	types := make([]int32, len(entries))
	for i, e := range entries {
		keys[i], vals[i], types[i] = e.Key, e.Value.Column, int32(e.Value.Type)
	}
	_, err := d.pool.Exec(ctx, qUpsertMany, keys, vals, types, site, offset(ttl))
	return err
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, site int32, key string) error {
	var wasLive bool
	err := d.pool.QueryRow(ctx, qDelete, site, key).Scan(&wasLive)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !wasLive) {
		return driver.ErrNotFound
	}
	return err
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, site int32, prefix, after string, limit int) ([]driver.Entry, error) {
	rows, err := d.pool.Query(ctx, qList, site, prefix, after, limit)
	if err != nil {
		return nil, err
	}
	var out []driver.Entry
	var e driver.Entry
	_, err = pgx.ForEachRow(rows, []any{&e.Key, &e.Value.Column, &e.Value.Type}, func() error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// CompareAndSwap implements driver.Driver: one statement. Under READ
// COMMITTED a concurrent writer makes the UPDATE re-check its WHERE on the
// new row, so exactly one of two racing swaps from the same old value wins.
func (d *Driver) CompareAndSwap(ctx context.Context, site int32, key string, old *driver.Value, next driver.Value, ttl time.Duration) (bool, error) {
	var n int64
	if old == nil {
		tag, err := d.pool.Exec(ctx, qCreate, key, next.Column, next.Type, site, offset(ttl))
		if err != nil {
			return false, err
		}
		n = tag.RowsAffected()
	} else {
		tag, err := d.pool.Exec(ctx, qSwap, next.Column, next.Type, offset(ttl), site, key, old.Column, old.Type)
		if err != nil {
			return false, err
		}
		n = tag.RowsAffected()
	}
	return n == 1, nil
}

// Sweep implements driver.Driver: deletes up to limit rows digdag's rule
// calls expired, whoever wrote them.
func (d *Driver) Sweep(ctx context.Context, limit int) (int, error) {
	tag, err := d.pool.Exec(ctx, qSweep, limit)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// Pool returns the connection pool (tests, benchmarks).
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Close implements driver.Driver.
func (d *Driver) Close() error {
	d.pool.Close()
	return nil
}

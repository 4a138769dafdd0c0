package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
)

// rawConn connects to the test server in schema, as digdag would.
func rawConn(t *testing.T, schema string) *pgx.Conn {
	conn, err := pgx.Connect(t.Context(), paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema))
	paramstoretest.RequireServer(t, "PostgreSQL", err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// open opens a Store in a fresh schema (created by Open).
func open(t *testing.T) (*paramstore.Store, string) {
	schema := paramstoretest.FreshSchema(t, "paramstore_test_")
	s, err := paramstore.Open(t.Context(), paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema))
	paramstoretest.RequireServer(t, "PostgreSQL", err)
	t.Cleanup(func() { s.Close() })
	return s, schema
}

func TestConformance(t *testing.T) {
	paramstoretest.Run(t, func(t *testing.T) *paramstore.Store {
		s, _ := open(t)
		return s
	})
}

// The table Open creates is digdag's, column for column.
func TestCreatesDigdagTable(t *testing.T) {
	_, schema := open(t)
	conn := rawConn(t, schema)
	rows, err := conn.Query(t.Context(), `SELECT column_name::text, data_type::text, is_nullable::text
		FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'params' ORDER BY ordinal_position`, schema)
	require.NoError(t, err)
	var got []string
	var name, typ, null string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ, &null}, func() error {
		got = append(got, name+" "+typ+" "+null)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"key text NO", "value text NO", "value_type integer NO", "site_id integer YES",
		"updated_at timestamp with time zone NO", "created_at timestamp with time zone NO",
	}, got)
	var def string
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conname = 'params_site_id_key_uniq' AND connamespace = $1::regnamespace`, schema).Scan(&def))
	assert.Equal(t, "UNIQUE (site_id, key)", def)
}

// digdagSet is digdag's PostgresqlParamServerClient.set, verbatim SQL.
func digdagSet(t *testing.T, conn *pgx.Conn, key, jsonValue string, site int32) {
	_, err := conn.Exec(t.Context(), "insert into params (key, value, value_type, site_id, created_at, updated_at) values ($1, $2, $3, $4, now(), now()) "+
		"on conflict on constraint params_site_id_key_uniq do update set value = $5, updated_at = now()",
		key, jsonValue, 0, site, jsonValue)
	require.NoError(t, err)
}

// digdagGet is digdag's PostgresqlParamServerClient.get, verbatim SQL.
func digdagGet(t *testing.T, conn *pgx.Conn, key string, site int32) (value string, valueType int, found bool) {
	err := conn.QueryRow(t.Context(), "select key, value, value_type from params where key = $1 and site_id = $2"+
		" and updated_at + INTERVAL '7776000 seconds' >= now() limit 1", key, site).Scan(&key, &value, &valueType)
	if err == pgx.ErrNoRows {
		return "", 0, false
	}
	require.NoError(t, err)
	return value, valueType, true
}

// Rows written as digdag writes them read back through the Store.
func TestReadsWhatDigdagWrites(t *testing.T) {
	s, schema := open(t)
	conn := rawConn(t, schema)
	ctx := t.Context()
	// Jackson's escaping: quote, backslash, short and \u00XX control escapes,
	// raw non-ASCII and HTML characters.
	digdagSet(t, conn, "last_executed_time", `{"value":"2026-11-24T21:00:00Z"}`, 0)
	digdagSet(t, conn, "escaped", `{"value":"a\"b\\c\nd\tе\u0001<&>/😀"}`, 0)
	digdagSet(t, conn, "empty", `{"value":""}`, 0)
	digdagSet(t, conn, "other_site", `{"value":"x"}`, 7)
	digdagSet(t, conn, "old", `{"value":"stale"}`, 0)
	_, err := conn.Exec(ctx, `UPDATE params SET updated_at = now() - interval '91 days' WHERE key = 'old'`)
	require.NoError(t, err)

	h := s.Site(0)
	for key, want := range map[string]string{
		"last_executed_time": "2026-11-24T21:00:00Z",
		"escaped":            "a\"b\\c\nd\tе\x01<&>/😀",
		"empty":              "",
	} {
		got, err := h.GetText(ctx, key)
		require.NoError(t, err, key)
		assert.Equal(t, want, got, key)
	}
	_, err = h.Get(ctx, "other_site")
	require.ErrorIs(t, err, paramstore.ErrNotFound, "site 0 does not see site 7")
	got, err := s.Site(7).GetText(ctx, "other_site")
	require.NoError(t, err)
	assert.Equal(t, "x", got)
	_, err = h.Get(ctx, "old")
	require.ErrorIs(t, err, paramstore.ErrNotFound, "older than 90 days is absent, as for digdag")
	p, err := h.List(ctx, "", nil)
	require.NoError(t, err)
	assert.Len(t, p.Entries, 3)

	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the stale row is swept")
	var left int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM params WHERE key = 'old'`).Scan(&left))
	assert.Zero(t, left)

	// CAS against a digdag-written string compares by content.
	ok, err := h.CompareAndSwap(ctx, "escaped", paramstore.String("a\"b\\c\nd\tе\x01<&>/😀"), paramstore.String("next"))
	require.NoError(t, err)
	assert.True(t, ok)
}

// What the Store writes is exactly what digdag writes and reads.
func TestWritesWhatDigdagReads(t *testing.T) {
	s, schema := open(t)
	conn := rawConn(t, schema)
	ctx := t.Context()
	h := s.Site(0)
	require.NoError(t, h.Set(ctx, "last_executed_time", paramstore.String("2026-11-24T21:00:00Z")))
	require.NoError(t, h.SetValue(ctx, "escaped", "a\"b\\c\nd\tе\x01\x1f\x7f<&>/\u2028😀"))
	require.NoError(t, h.SetMany(ctx, map[string]json.RawMessage{"n": json.RawMessage(`12345678901234567890`), "list": json.RawMessage(`[1, "a"]`)}))

	for key, want := range map[string]string{
		"last_executed_time": `{"value":"2026-11-24T21:00:00Z"}`,
		"escaped":            `{"value":"a\"b\\c\nd\tе\u0001\u001F` + "\x7f<&>/\u2028😀" + `"}`,
	} {
		value, typ, found := digdagGet(t, conn, key, 0)
		require.True(t, found, key)
		assert.Equal(t, want, value, key)
		assert.Equal(t, 0, typ)
	}
	for key, want := range map[string]string{"n": `{"value":12345678901234567890}`, "list": `{"value":[1,"a"]}`} {
		value, typ, found := digdagGet(t, conn, key, 0)
		require.True(t, found, key)
		assert.Equal(t, want, value)
		assert.Equal(t, 2, typ, "non-string JSON is value_type 2")
	}
	// Default TTL: updated_at is the write time, as digdag sets it.
	var siteID *int32
	var fresh, sameTimes bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT site_id, updated_at > now() - interval '1 minute' AND updated_at <= now(), created_at = updated_at
		FROM params WHERE key = 'last_executed_time'`).Scan(&siteID, &fresh, &sameTimes))
	require.NotNil(t, siteID)
	assert.Equal(t, int32(0), *siteID)
	assert.True(t, fresh)
	assert.True(t, sameTimes)

	// A custom TTL lives in updated_at, so digdag's own rule honours it.
	require.NoError(t, h.WithTTL(time.Hour).Set(ctx, "hourly", paramstore.String("h")))
	var left float64
	require.NoError(t, conn.QueryRow(ctx, `SELECT extract(epoch FROM updated_at + interval '7776000 seconds' - now())
		FROM params WHERE key = 'hourly'`).Scan(&left))
	assert.InDelta(t, 3600, left, 60)
	require.NoError(t, h.WithTTL(time.Second).Set(ctx, "brief", paramstore.String("b")))
	_, _, found := digdagGet(t, conn, "brief", 0)
	require.True(t, found)
	time.Sleep(1200 * time.Millisecond)
	_, _, found = digdagGet(t, conn, "brief", 0)
	assert.False(t, found, "digdag sees tdctl's TTL expire")

	// digdag overwriting a short-TTL row gives it digdag's 90 days back.
	require.NoError(t, h.WithTTL(time.Hour).Set(ctx, "shared", paramstore.String("tdctl")))
	digdagSet(t, conn, "shared", `{"value":"digdag"}`, 0)
	require.NoError(t, conn.QueryRow(ctx, `SELECT extract(epoch FROM updated_at + interval '7776000 seconds' - now())
		FROM params WHERE key = 'shared'`).Scan(&left))
	assert.InDelta(t, paramstore.DefaultTTL.Seconds(), left, 60)
	got, err := h.GetText(ctx, "shared")
	require.NoError(t, err)
	assert.Equal(t, "digdag", got)
}

func TestWrongLayout(t *testing.T) {
	schema := paramstoretest.FreshSchema(t, "paramstore_test_")
	conn, err := pgx.Connect(t.Context(), paramstoretest.PostgresURL())
	paramstoretest.RequireServer(t, "PostgreSQL", err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), fmt.Sprintf(`CREATE SCHEMA %[1]s; CREATE TABLE %[1]s.params (key text, value jsonb, site_id int)`, schema))
	require.NoError(t, err)
	u := strings.Replace(paramstoretest.PostgresURL(), "postgres://postgres@", "postgres://postgres:Wr0ngLayoutPw@", 1)
	_, err = paramstore.Open(t.Context(), paramstoretest.WithQuery(u, "search_path="+schema))
	require.ErrorIs(t, err, paramstore.ErrSchema)
	msg := err.Error()
	assert.Contains(t, msg, "postgres")
	assert.Contains(t, msg, "column value is jsonb, want text")
	assert.Contains(t, msg, "column value_type is missing")
	assert.Contains(t, msg, "params_site_id_key_uniq")
	assert.Contains(t, msg, "search_path")
	assert.NotContains(t, msg, "Wr0ngLayoutPw")
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	const pw = "S3cr3t-Pa55"
	for name, tc := range map[string]struct {
		url  string
		kind error
	}{
		"unreachable":    {"postgres://alice:" + pw + "@127.0.0.1:1/test", paramstore.ErrUnavailable},
		"bad port":       {"postgres://alice:" + pw + "@127.0.0.1:notaport/test", paramstore.ErrBadURL},
		"bad param":      {"postgresql://alice:" + pw + "@127.0.0.1/test?sslmode=sometimes", paramstore.ErrBadURL},
		"query password": {"postgres://alice@127.0.0.1:1/test?password=" + pw, paramstore.ErrUnavailable},
		"no database":    {"postgres://postgres:" + pw + "@127.0.0.1:5432/paramstore_no_such_db", paramstore.ErrUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := paramstore.Open(t.Context(), tc.url)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.kind)
			for e := error(err); e != nil; e = unwrapOne(e) {
				assert.NotContains(t, e.Error(), pw)
				assert.NotContains(t, fmt.Sprintf("%+v %#v", e, e), pw)
			}
			assert.Contains(t, err.Error(), "postgres")
			t.Log(err)
		})
	}
}

func unwrapOne(err error) error {
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return e.Unwrap()
	case interface{ Unwrap() []error }:
		if es := e.Unwrap(); len(es) > 0 {
			return es[0]
		}
	}
	return nil
}

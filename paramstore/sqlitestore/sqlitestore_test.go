package sqlitestore_test

import (
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
	"github.com/tdctl/tdctl/paramstore/sqlitestore"
)

func TestConformance(t *testing.T) {
	paramstoretest.Run(t, func(t *testing.T) *paramstore.Store {
		s, err := paramstore.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "params.db"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestCreatesPrivateFileAndDirectories(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b", "c?d", "params.db")
	s, err := paramstore.Open(t.Context(), (&url.URL{Scheme: "sqlite", Path: path}).String())
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Site(0).Set(t.Context(), "k", paramstore.String("v")))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
}

// Two Stores on one file behave like two processes (the CLI and a
// workflow run): CompareAndSwap across them loses no update.
func TestTwoStoresOnOneFile(t *testing.T) {
	u := "sqlite://" + filepath.Join(t.TempDir(), "params.db")
	var stores []*paramstore.Store
	for range 2 {
		s, err := paramstore.Open(t.Context(), u)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		h := stores[i%2].Site(0)
		wg.Go(func() {
			for range 25 {
				_, err := paramstoretest.Increment(t.Context(), h, "n")
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	got, err := stores[0].Site(0).Get(t.Context(), "n")
	require.NoError(t, err)
	assert.Equal(t, "100", string(got))
}

func TestSweepDeletesExpiredRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "params.db")
	now := time.Unix(1_700_000_000, 0)
	d, err := sqlitestore.Open(t.Context(), path, sqlitestore.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	s, err := paramstore.New(d, paramstore.WithSweepInterval(0))
	require.NoError(t, err)
	defer s.Close()
	h := s.Site(3)
	require.NoError(t, h.WithTTL(time.Hour).Set(t.Context(), "hour", paramstore.Int(1)))
	require.NoError(t, h.Set(t.Context(), "default", paramstore.Int(2)))

	rows := func() int {
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM params`).Scan(&n))
		return n
	}
	require.Equal(t, 2, rows())
	now = now.Add(time.Hour - time.Millisecond)
	_, err = h.Get(t.Context(), "hour")
	require.NoError(t, err, "live until its expiry")
	now = now.Add(time.Millisecond)
	_, err = h.Get(t.Context(), "hour")
	require.ErrorIs(t, err, paramstore.ErrNotFound, "gone at its expiry")
	require.Equal(t, 2, rows(), "expired but not yet swept")
	n, err := s.Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.Equal(t, 1, rows())
	now = now.Add(paramstore.DefaultTTL)
	n, err = s.Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.Equal(t, 0, rows())
}

// Writes sweep expired rows once the sweep interval has passed.
func TestWritesSweep(t *testing.T) {
	for _, tc := range []struct {
		every time.Duration
		left  int
	}{{time.Nanosecond, 0}, {time.Hour, 1}} {
		path := filepath.Join(t.TempDir(), "params.db")
		now := time.Unix(1_700_000_000, 0)
		d, err := sqlitestore.Open(t.Context(), path, sqlitestore.WithClock(func() time.Time { return now }))
		require.NoError(t, err)
		s, err := paramstore.New(d, paramstore.WithSweepInterval(tc.every))
		require.NoError(t, err)
		h := s.Site(0)
		// The first write sweeps (nothing has expired yet).
		require.NoError(t, h.WithTTL(time.Second).Set(t.Context(), "old", paramstore.Int(1)))
		now = now.Add(2 * time.Second)
		require.NoError(t, h.Set(t.Context(), "new", paramstore.Int(2)))
		require.NoError(t, s.Close())
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM params WHERE key = 'old'`).Scan(&n))
		db.Close()
		assert.Equal(t, tc.left, n, "sweep interval %s", tc.every)
	}
}

func TestRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notDB, []byte("this is not a database, just some text that is long enough to have a header.........................................."), 0o600))
	_, err := paramstore.Open(t.Context(), "sqlite://"+notDB)
	require.ErrorIs(t, err, paramstore.ErrSchema)
	assert.Contains(t, err.Error(), "not a SQLite database")

	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE params (name TEXT, value TEXT)`)
	require.NoError(t, err)
	db.Close()
	_, err = paramstore.Open(t.Context(), "sqlite://"+other)
	require.ErrorIs(t, err, paramstore.ErrSchema)
	assert.Contains(t, err.Error(), "site_id")
	assert.Contains(t, err.Error(), "point the URL at another file")

	_, err = sqlitestore.Open(t.Context(), "relative/params.db")
	require.ErrorIs(t, err, paramstore.ErrBadURL)
}

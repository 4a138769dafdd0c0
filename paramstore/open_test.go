package paramstore_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/driver"
	"github.com/tdctl/tdctl/paramstore/memstore"
	_ "github.com/tdctl/tdctl/paramstore/pgstore"
	_ "github.com/tdctl/tdctl/paramstore/redisstore"
	_ "github.com/tdctl/tdctl/paramstore/sqlitestore"
)

// TestRegistry: Open finds a backend by its URL's scheme; a backend added
// by Register alone (no change to this package) is opened like the
// module's own, and a scheme cannot be taken twice.
var registered int

func TestRegistry(t *testing.T) {
	assert.Subset(t, paramstore.Schemes(), []string{"mem", "memory", "postgres", "postgresql", "redis", "rediss", "sqlite", "sqlite3"})

	var got *url.URL
	registered++ // -count=N registers a new scheme each time
	scheme := fmt.Sprintf("test-kv%d", registered)
	paramstore.Register(paramstore.Backend{Name: "test-kv", Schemes: []string{scheme}, Example: scheme + "://bucket",
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			got = u
			return memstore.New(), nil
		}})
	s, err := paramstore.Open(t.Context(), strings.ToUpper(scheme)+"://bucket/x?ttl=1h&a=b")
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, "test-kv", s.Backend())
	assert.Equal(t, time.Hour, s.TTL())
	assert.Equal(t, scheme+"://bucket/x?a=b", got.String(), "the backend gets the URL without ttl=")
	require.NoError(t, s.Site(0).Set(t.Context(), "k", paramstore.String("v")))

	_, err = paramstore.Open(t.Context(), "nope://x")
	assert.ErrorContains(t, err, `unknown store URL scheme "nope"; use postgres://user@host/db, redis://host:6379/0, sqlite:///abs/path/params.db`)
	assert.ErrorContains(t, err, scheme+"://bucket")

	assert.PanicsWithValue(t, `paramstore: Register again: scheme "redis" is already registered by redis`, func() {
		paramstore.Register(paramstore.Backend{Name: "again", Schemes: []string{"redis"}, Open: func(context.Context, *url.URL) (driver.Driver, error) { return nil, nil }})
	})
	assert.Panics(t, func() { paramstore.Register(paramstore.Backend{Name: "x"}) })
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for url, want := range map[string]string{
		"":                          "not a store URL",
		"/tmp/params.db":            "not a store URL",
		"mysql://u:pw@h/db":         `unknown store URL scheme "mysql"`,
		"sqlite://params.db":        "three slashes",
		"sqlite:params.db":          "three slashes",
		"sqlite://":                 "no path",
		"mem://?ttl=soon":           "ttl=\"soon\"",
		"mem://?ttl=0":              "ttl=\"0\"",
		"mem://?ttl=-5s":            "out of range",
		"postgres://u:pw@h:x/db":    "invalid port",
		"redis://u:pw@h:6379/db?x=": "redis",
	} {
		_, err := paramstore.Open(t.Context(), url)
		require.Error(t, err, url)
		assert.ErrorIs(t, err, paramstore.ErrBadURL, "%s: %v", url, err)
		assert.Contains(t, err.Error(), want, url)
		assert.NotContains(t, err.Error(), ":pw@", url)
	}
}

func TestOpenTTL(t *testing.T) {
	for url, want := range map[string]time.Duration{
		"mem://":           paramstore.DefaultTTL,
		"mem://?ttl=24h":   24 * time.Hour,
		"mem://?ttl=3600":  time.Hour,
		"memory://?ttl=1m": time.Minute,
	} {
		s, err := paramstore.Open(t.Context(), url, paramstore.WithTTL(time.Second))
		require.NoError(t, err, url)
		if url == "mem://" {
			want = time.Second // no ttl in the URL: the option's
		}
		assert.Equal(t, want, s.TTL(), url)
		assert.Equal(t, want, s.Site(1).TTL())
		assert.Equal(t, "memory", s.Backend())
		require.NoError(t, s.Close())
	}
	assert.Equal(t, 7776000*time.Second, paramstore.DefaultTTL)
	_, err := paramstore.Open(t.Context(), "mem://", paramstore.WithTTL(-time.Second))
	assert.ErrorIs(t, err, paramstore.ErrInvalid)
}

func TestOpenSQLiteURLWithTTL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s, err := paramstore.Open(t.Context(), "sqlite://"+path+"?ttl=2h")
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, 2*time.Hour, s.TTL())
	assert.Equal(t, "sqlite", s.Backend())
	require.NoError(t, s.Site(0).Set(t.Context(), "k", paramstore.String("v")))
	assert.FileExists(t, path)
}

func TestDefaultURL(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "cfg dir"))
	t.Setenv("HOME", home)
	u, err := paramstore.DefaultURL()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u, "sqlite:///"), u)
	assert.True(t, strings.HasSuffix(u, "/tdctl/params.db"), u)
	s, err := paramstore.Open(t.Context(), u)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Site(0).Set(t.Context(), "k", paramstore.String("v")))
	assert.FileExists(t, filepath.Join(home, "cfg dir", "tdctl", "params.db"))
}

func TestNotFoundAndTextHelpers(t *testing.T) {
	s, err := paramstore.Open(t.Context(), "mem://")
	require.NoError(t, err)
	h := s.Site(0)
	_, err = h.Get(t.Context(), "missing")
	assert.ErrorIs(t, err, paramstore.ErrNotFound)
	assert.EqualError(t, err, `paramstore memory: get "missing" (site 0): param not found`)
}

// values=string|json says whether workflows keep typed values in a store;
// the backends a digdag server shares default to digdag's strings.
func TestOpenValuesOption(t *testing.T) {
	ctx := t.Context()
	open := func(u string) *paramstore.Store {
		t.Helper()
		s, err := paramstore.Open(ctx, u)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	db := "sqlite://" + filepath.Join(t.TempDir(), "p.db")
	assert.True(t, open(db).TypedValues(), "SQLite keeps types by default")
	assert.False(t, open(db+"?values=string").TypedValues())
	assert.True(t, open("mem://").Site(0).TypedValues())
	var got *url.URL
	registered++
	scheme := fmt.Sprintf("test-shared%d", registered)
	paramstore.Register(paramstore.Backend{Name: "test-shared", Shared: true, Schemes: []string{scheme},
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			got = u
			return memstore.New(), nil
		}})
	assert.False(t, open(scheme+"://x").TypedValues(), "a store digdag shares defaults to strings")
	assert.True(t, open(scheme+"://x?values=json&a=b").TypedValues())
	assert.Equal(t, "a=b", got.RawQuery, "values= is not passed to the backend")
	_, err := paramstore.Open(ctx, db+"?values=typed")
	require.ErrorIs(t, err, paramstore.ErrBadURL)
	assert.Contains(t, err.Error(), `values="typed" in the store URL: give values=string (what digdag reads) or values=json`)
}

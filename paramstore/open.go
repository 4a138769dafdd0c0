package paramstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tdctl/tdctl/paramstore/driver"
)

// Backend is a storage backend's entry in the registry Open consults: the
// URL schemes it serves and how it opens a driver for one of their URLs.
// Each backend package registers itself in its init function (as
// database/sql drivers do), so a program has the backends it imports:
//
//	import _ "github.com/tdctl/tdctl/paramstore/pgstore" // postgres://
type Backend struct {
	// Name names the backend in messages and Store.Backend ("postgres").
	Name string
	// Schemes are the URL schemes it serves, lower case ("postgres",
	// "postgresql").
	Schemes []string
	// Example is a URL shown when a URL names no known scheme
	// ("postgres://user@host/db"); "" shows none.
	Example string
	// Shared says a digdag server may read the backend's layout
	// (PostgreSQL, Redis): workflows then store every param_set> value in
	// its string form, as digdag does, unless the URL says values=json.
	Shared bool
	// Open opens the driver for u, which has no ttl= or values= parameter
	// left. Its
	// errors wrap ErrBadURL or ErrUnavailable, name the backend and the
	// fix, and never contain the URL's password (see driver.OpenError).
	Open func(ctx context.Context, u *url.URL) (driver.Driver, error)
}

var registry struct {
	mu       sync.RWMutex
	schemes  map[string]*Backend
	backends []*Backend
}

// Register adds a backend to the registry Open consults. It panics when
// the backend has no name, scheme or Open, or when one of its schemes is
// already registered: a program error, found when the program starts.
func Register(b Backend) {
	if b.Name == "" || len(b.Schemes) == 0 || b.Open == nil {
		panic("paramstore: Register needs a Name, Schemes and Open")
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.schemes == nil {
		registry.schemes = map[string]*Backend{}
	}
	for _, sc := range b.Schemes {
		if sc != strings.ToLower(sc) {
			panic(fmt.Sprintf("paramstore: Register %s: scheme %q is not lower case", b.Name, sc))
		}
		if o, dup := registry.schemes[sc]; dup {
			panic(fmt.Sprintf("paramstore: Register %s: scheme %q is already registered by %s", b.Name, sc, o.Name))
		}
	}
	bp := &b
	for _, sc := range b.Schemes {
		registry.schemes[sc] = bp
	}
	registry.backends = append(registry.backends, bp)
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	out := make([]string, 0, len(registry.schemes))
	for sc := range registry.schemes {
		out = append(out, sc)
	}
	slices.Sort(out)
	return out
}

func lookup(scheme string) *Backend {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return registry.schemes[scheme]
}

// examples lists the registered backends' example URLs, sorted by backend
// name: "use a, b or c".
func examples() string {
	registry.mu.RLock()
	var ex []string
	for _, b := range slices.SortedFunc(slices.Values(registry.backends), func(a, b *Backend) int { return strings.Compare(a.Name, b.Name) }) {
		if b.Example != "" {
			ex = append(ex, b.Example)
		}
	}
	registry.mu.RUnlock()
	switch len(ex) {
	case 0:
		return "no store backend is registered: the program must import one, e.g. github.com/tdctl/tdctl/paramstore/sqlitestore"
	case 1:
		return "use " + ex[0]
	}
	return "use " + strings.Join(ex[:len(ex)-1], ", ") + " or " + ex[len(ex)-1]
}

// Open opens the store a URL names, with the backend registered for its
// scheme (see Register). The backends of this module:
//
//	sqlite:///absolute/path/params.db          paramstore/sqlitestore: embedded file (see DefaultURL)
//	postgres://user[:pw]@host[:port]/db[?search_path=schema&sslmode=...]
//	postgresql://...                           paramstore/pgstore
//	redis://[:pw@]host[:port][/db]             paramstore/redisstore (rediss:// for TLS)
//	mem://                                     paramstore/memstore: in memory, for tests
//
// Every URL takes ttl=<duration> (Go syntax such as 24h or 90m, or whole
// seconds): the default lifetime of written values, overriding WithTTL; and
// values=string|json: whether workflows' param_set> keeps typed JSON values
// (json, the default of SQLite and memory) or writes every value in the
// string form a digdag server reads (string, the default of the backends
// a digdag server shares: PostgreSQL and Redis). See Store.TypedValues.
// PostgreSQL URLs take any pgx connection parameter; the params table is
// created when missing. Server backends are pinged, so an unreachable
// server fails here (ErrUnavailable), not on first use. Errors wrap
// ErrBadURL, ErrUnavailable or ErrSchema, name the backend and the fix,
// and never contain the URL's password.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		who := "paramstore"
		if scheme, _, ok := strings.Cut(rawURL, "://"); ok && len(scheme) < 20 {
			who += " " + scheme
		}
		return nil, driver.OpenError(ErrBadURL, rawURL, err, "%s: cannot parse the store URL %s", who, driver.RedactURL(rawURL))
	}
	q := u.Query()
	var urlTTL time.Duration
	if s := q.Get("ttl"); s != "" {
		if urlTTL, err = parseTTL(s); err != nil {
			return nil, driver.OpenError(ErrBadURL, rawURL, nil,
				"paramstore: ttl=%q in the store URL is not a duration; write e.g. ttl=24h, ttl=90m or ttl=3600 (seconds)", s)
		}
		if err := checkTTL(urlTTL); err != nil {
			return nil, driver.OpenError(ErrBadURL, rawURL, nil, "paramstore: ttl=%q in the store URL: %v", s, err)
		}
		q.Del("ttl")
		u.RawQuery = q.Encode()
	}
	values := q.Get("values")
	if q.Has("values") {
		if values != "json" && values != "string" {
			return nil, driver.OpenError(ErrBadURL, rawURL, nil,
				"paramstore: values=%q in the store URL: give values=string (what digdag reads) or values=json (typed values, tdctl only)", values)
		}
		q.Del("values")
		u.RawQuery = q.Encode()
	}
	if u.Scheme == "" {
		return nil, driver.OpenError(ErrBadURL, rawURL, nil,
			"paramstore: %q is not a store URL; %s", driver.RedactURL(rawURL), examples())
	}
	b := lookup(u.Scheme)
	if b == nil {
		return nil, driver.OpenError(ErrBadURL, rawURL, nil,
			"paramstore: unknown store URL scheme %q; %s", u.Scheme, examples())
	}
	d, err := b.Open(ctx, u)
	if err != nil {
		return nil, err
	}
	all := append([]Option{WithBackendName(b.Name)}, opts...)
	if urlTTL != 0 {
		all = append(all, WithTTL(urlTTL))
	}
	switch {
	case values == "json":
		all = append(all, WithTypedValues(true))
	case values == "string" || b.Shared:
		all = append(all, WithTypedValues(false))
	}
	s, err := New(d, all...)
	if err != nil {
		d.Close()
		return nil, err
	}
	return s, nil
}

func parseTTL(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > int64(MaxTTL/time.Second) {
			return 0, fmt.Errorf("out of range")
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// DefaultURL is the embedded store of this user:
// sqlite://<os.UserConfigDir()>/tdctl/params.db (on Linux
// ~/.config/tdctl/params.db). The file is created by Open.
func DefaultURL() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("paramstore: no user config directory (%v); give a store URL such as sqlite:///abs/path/params.db", err)
	}
	return (&url.URL{Scheme: "sqlite", Path: filepath.ToSlash(filepath.Join(dir, "tdctl", "params.db"))}).String(), nil
}

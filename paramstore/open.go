package paramstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/paramstore/driver"
	"github.com/tdctl/tdctl/paramstore/memstore"
	"github.com/tdctl/tdctl/paramstore/pgstore"
	"github.com/tdctl/tdctl/paramstore/redisstore"
	"github.com/tdctl/tdctl/paramstore/sqlitestore"
)

// Open opens the store a URL names:
//
//	sqlite:///absolute/path/params.db          embedded file (see DefaultURL)
//	postgres://user[:pw]@host[:port]/db[?search_path=schema&sslmode=...]
//	postgresql://...                           same as postgres://
//	redis://[:pw@]host[:port][/db]             (rediss:// for TLS)
//	mem://                                     in memory, for tests
//
// Every URL takes ttl=<duration> (Go syntax such as 24h or 90m, or whole
// seconds): the default lifetime of written values, overriding WithTTL.
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
	var d driver.Driver
	var name string
	switch u.Scheme {
	case "sqlite", "sqlite3":
		name = "sqlite"
		if u.Host != "" || u.Opaque != "" {
			return nil, driver.OpenError(ErrBadURL, rawURL, nil,
				"paramstore sqlite: %s has no absolute path; write sqlite:///absolute/path/params.db (three slashes)", driver.RedactURL(rawURL))
		}
		if u.Path == "" {
			return nil, driver.OpenError(ErrBadURL, rawURL, nil,
				"paramstore sqlite: the URL has no path; write sqlite:///absolute/path/params.db")
		}
		d, err = sqlitestore.Open(ctx, u.Path)
	case "postgres", "postgresql":
		name = "postgres"
		d, err = pgstore.Open(ctx, u.String())
	case "redis", "rediss":
		name = "redis"
		d, err = redisstore.Open(ctx, u.String())
	case "mem", "memory":
		name = "memory"
		d = memstore.New()
	case "":
		return nil, driver.OpenError(ErrBadURL, rawURL, nil,
			"paramstore: %q is not a store URL; use sqlite:///abs/path/params.db, postgres://user@host/db or redis://host:6379/0", driver.RedactURL(rawURL))
	default:
		return nil, driver.OpenError(ErrBadURL, rawURL, nil,
			"paramstore: unknown store URL scheme %q; use sqlite:///abs/path/params.db, postgres://user@host/db or redis://host:6379/0", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	all := append([]Option{WithBackendName(name)}, opts...)
	if urlTTL != 0 {
		all = append(all, WithTTL(urlTTL))
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

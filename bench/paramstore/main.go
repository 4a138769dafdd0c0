// Command paramstore measures paramstore Get/Set latency per backend
// beside the raw driver doing the same round trip, in the same run:
//
//	go run ./bench/paramstore [-n 5000] [-backends sqlite,postgres,redis]
//
// Raw references: PostgreSQL — a pgxpool QueryRow of the same single-row
// SELECT and an Exec of digdag's upsert; Redis — go-redis GET and SETEX;
// SQLite — database/sql prepared statements on the same file layout.
// Store and raw calls alternate so both see the same machine load. Target:
// Store p50 ≤ 1.2× raw. Servers: TDCTL_TEST_POSTGRES / TDCTL_TEST_REDIS or
// the CI defaults; the run uses its own schema / site and removes them.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/paramstore"
	_ "github.com/tdctl/tdctl/paramstore/pgstore"     // postgres://
	_ "github.com/tdctl/tdctl/paramstore/redisstore"  // redis://
	_ "github.com/tdctl/tdctl/paramstore/sqlitestore" // sqlite:///
)

func main() {
	n := flag.Int("n", 5000, "measured calls per operation")
	backends := flag.String("backends", "sqlite,postgres,redis", "backends to measure")
	summaryFile := flag.String("summary", "", "append the figures to this file (bench/run's combined table)")
	flag.Parse()
	if err := run(*n, strings.Split(*backends, ","), *summaryFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/paramstore:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// pair is one Store operation and the raw call it is compared with.
type pair struct {
	name       string
	store, raw func(ctx context.Context, i int) error
}

const value = `"2026-11-24T21:00:00Z"`

func run(n int, backends []string, summaryFile string) error {
	ctx := context.Background()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\top\tstore p50\traw p50\tratio p50\tstore p99\traw p99\tratio p99\t")
	for _, b := range backends {
		pairs, cleanup, err := setup(ctx, strings.TrimSpace(b))
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		for _, p := range pairs {
			s, r, err := measure(ctx, n, p)
			if err != nil {
				cleanup()
				return fmt.Errorf("%s %s: %w", b, p.name, err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f×\t%s\t%s\t%.2f×\t\n", b, p.name,
				us(s[0]), us(r[0]), float64(s[0])/float64(r[0]), us(s[1]), us(r[1]), float64(s[1])/float64(r[1]))
			ratio := float64(s[0]) / float64(r[0])
			if err := summary.Append(summaryFile, summary.Figure{
				Name: fmt.Sprintf("paramstore %s %s p50", b, p.name), Value: float64(s[0].Nanoseconds()) / 1e3, Unit: "µs",
				Reference: "raw driver, same round trip", RefValue: float64(r[0].Nanoseconds()) / 1e3, Ratio: ratio,
				Target: "<= 1.2x", OK: ratio <= 1.2, Note: fmt.Sprintf("p99 %.2fx", float64(s[1])/float64(r[1])),
			}); err != nil {
				cleanup()
				return err
			}
		}
		cleanup()
	}
	return tw.Flush()
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

// measure alternates Store and raw calls (warm-up first) and returns
// p50 and p99 of each.
func measure(ctx context.Context, n int, p pair) (store, raw [2]time.Duration, err error) {
	for i := range n / 10 {
		if err := p.store(ctx, i); err != nil {
			return store, raw, err
		}
		if err := p.raw(ctx, i); err != nil {
			return store, raw, err
		}
	}
	st := make([]time.Duration, 0, n)
	rt := make([]time.Duration, 0, n)
	for i := range n {
		first, second, fs, ss := p.store, p.raw, &st, &rt
		if i%2 == 1 {
			first, second, fs, ss = p.raw, p.store, &rt, &st
		}
		t0 := time.Now()
		if err := first(ctx, i); err != nil {
			return store, raw, err
		}
		t1 := time.Now()
		if err := second(ctx, i); err != nil {
			return store, raw, err
		}
		t2 := time.Now()
		*fs = append(*fs, t1.Sub(t0))
		*ss = append(*ss, t2.Sub(t1))
	}
	return pct(st), pct(rt), nil
}

func pct(d []time.Duration) [2]time.Duration {
	slices.Sort(d)
	return [2]time.Duration{d[len(d)/2], d[len(d)*99/100]}
}

func setup(ctx context.Context, backend string) ([]pair, func(), error) {
	switch backend {
	case "sqlite":
		return setupSQLite(ctx)
	case "postgres":
		return setupPostgres(ctx)
	case "redis":
		return setupRedis(ctx)
	}
	return nil, nil, fmt.Errorf("unknown backend %q (sqlite, postgres, redis)", backend)
}

func setupSQLite(ctx context.Context) ([]pair, func(), error) {
	dir, err := os.MkdirTemp("", "tdctl-bench-params")
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, "params.db")
	s, err := paramstore.Open(ctx, "sqlite://"+path)
	if err != nil {
		return nil, nil, err
	}
	h := s.Site(0)
	if err := h.Set(ctx, "k", json.RawMessage(value)); err != nil {
		return nil, nil, err
	}
	// The raw reference: its own connection to the same file, same pragmas.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, nil, err
	}
	db.SetMaxOpenConns(1)
	get, err := db.PrepareContext(ctx, `SELECT value, value_type FROM params WHERE site_id = ? AND key = ? AND expires_at > ?`)
	if err != nil {
		return nil, nil, err
	}
	set, err := db.PrepareContext(ctx, `INSERT INTO params (site_id, key, value, value_type, created_at, updated_at, expires_at)
VALUES (?1, ?2, ?3, 0, ?4, ?4, ?5) ON CONFLICT (site_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`)
	if err != nil {
		return nil, nil, err
	}
	col := `{"value":` + value + `}`
	pairs := []pair{
		{"Get", func(ctx context.Context, _ int) error { _, err := h.Get(ctx, "k"); return err },
			func(ctx context.Context, _ int) error {
				var v string
				var t int
				return get.QueryRowContext(ctx, 0, "k", time.Now().UnixMilli()).Scan(&v, &t)
			}},
		{"Set", func(ctx context.Context, _ int) error { return h.Set(ctx, "k", json.RawMessage(value)) },
			func(ctx context.Context, _ int) error {
				now := time.Now().UnixMilli()
				_, err := set.ExecContext(ctx, 0, "r", col, now, now+paramstore.DefaultTTL.Milliseconds())
				return err
			}},
	}
	return pairs, func() { s.Close(); db.Close(); os.RemoveAll(dir) }, nil
}

func setupPostgres(ctx context.Context) ([]pair, func(), error) {
	base := env("TDCTL_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
	schema := fmt.Sprintf("paramstore_bench_%d", os.Getpid())
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	u := base + sep + "search_path=" + schema
	s, err := paramstore.Open(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		s.Close()
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		pool.Close()
	}
	h := s.Site(0)
	if err := h.Set(ctx, "k", json.RawMessage(value)); err != nil {
		cleanup()
		return nil, nil, err
	}
	col := `{"value":` + value + `}`
	pairs := []pair{
		{"Get", func(ctx context.Context, _ int) error { _, err := h.Get(ctx, "k"); return err },
			func(ctx context.Context, _ int) error {
				var v string
				var t int
				return pool.QueryRow(ctx, `SELECT value, value_type FROM params WHERE site_id = $1 AND key = $2`, 0, "k").Scan(&v, &t)
			}},
		{"Set", func(ctx context.Context, _ int) error { return h.Set(ctx, "k", json.RawMessage(value)) },
			func(ctx context.Context, _ int) error {
				_, err := pool.Exec(ctx, "insert into params (key, value, value_type, site_id, created_at, updated_at) values ($1, $2, $3, $4, now(), now()) "+
					"on conflict on constraint params_site_id_key_uniq do update set value = $5, updated_at = now()", "r", col, 0, 0, col)
				return err
			}},
	}
	return pairs, cleanup, nil
}

func setupRedis(ctx context.Context) ([]pair, func(), error) {
	u := env("TDCTL_TEST_REDIS", "redis://127.0.0.1:6379/0")
	s, err := paramstore.Open(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, nil, err
	}
	c := redis.NewClient(opt)
	site := rand.Int32N(1<<30) + 1<<30
	h := s.Site(site)
	key := func(k string) string { return fmt.Sprintf("%d:%s", site, k) }
	cleanup := func() {
		c.Del(context.Background(), key("k"), key("r"))
		s.Close()
		c.Close()
	}
	if err := h.Set(ctx, "k", json.RawMessage(value)); err != nil {
		cleanup()
		return nil, nil, err
	}
	body := `{"value_type":0,"value":{"value":` + value + `}}`
	pairs := []pair{
		{"Get", func(ctx context.Context, _ int) error { _, err := h.Get(ctx, "k"); return err },
			func(ctx context.Context, _ int) error { return c.Get(ctx, key("k")).Err() }},
		{"Set", func(ctx context.Context, _ int) error { return h.Set(ctx, "k", json.RawMessage(value)) },
			func(ctx context.Context, _ int) error {
				return c.SetEx(ctx, key("r"), body, paramstore.DefaultTTL).Err()
			}},
	}
	return pairs, cleanup, nil
}

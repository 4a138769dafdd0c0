package paramstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test servers and how every test isolates itself on them, shared by
// the backends' tests and the CLI's.

// PostgresURL is the PostgreSQL test server: TDCTL_TEST_POSTGRES or the
// CI default.
func PostgresURL() string {
	if u := os.Getenv("TDCTL_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test"
}

// RedisURL is the Redis test server: TDCTL_TEST_REDIS or the CI default.
func RedisURL() string {
	if u := os.Getenv("TDCTL_TEST_REDIS"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// WithQuery adds a query parameter (e.g. "search_path=s") to a URL.
func WithQuery(u, q string) string {
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}

// FreshSchema returns a PostgreSQL schema name no other test uses (prefix
// plus random hex; the store's Open creates it), dropped when t ends.
func FreshSchema(t *testing.T, prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, PostgresURL())
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		assert.NoError(t, err)
	})
	return schema
}

// RedisClient is a plain client on the Redis test server (as digdag would
// use one), closed when t ends; an unreachable server fails t (see
// RequireServer).
func RedisClient(t *testing.T) *redis.Client {
	opt, err := redis.ParseURL(RedisURL())
	require.NoError(t, err)
	c := redis.NewClient(opt)
	RequireServer(t, "Redis", c.Ping(t.Context()).Err())
	t.Cleanup(func() { c.Close() })
	return c
}

// FreshRedisSite is a site id no other test uses; its keys are deleted
// when t ends.
func FreshRedisSite(t *testing.T, c *redis.Client) int32 {
	site := mrand.Int32N(1<<30) + 1<<30
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, fmt.Sprintf("%d:*", site)).Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return site
}

package redisstore_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
	"github.com/tdctl/tdctl/paramstore/redisstore"
)

func open(t *testing.T) *paramstore.Store {
	s, err := paramstore.Open(t.Context(), paramstoretest.RedisURL())
	paramstoretest.RequireServer(t, "Redis", err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	paramstoretest.Run(t, open)
}

// digdagSet is digdag's RedisParamServerClient.commit: SETEX 7776000 in MULTI.
func digdagSet(t *testing.T, c *redis.Client, site int32, kv map[string]string) {
	_, err := c.TxPipelined(t.Context(), func(p redis.Pipeliner) error {
		for k, body := range kv {
			p.SetEx(t.Context(), fmt.Sprintf("%d:%s", site, k), body, 7776000*time.Second)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestReadsWhatDigdagWrites(t *testing.T) {
	c := paramstoretest.RedisClient(t)
	site := paramstoretest.FreshRedisSite(t, c)
	digdagSet(t, c, site, map[string]string{
		"last_executed_time": `{"value_type":0,"value":{"value":"2026-11-24T21:00:00Z"}}`,
		"escaped":            `{"value_type":0,"value":{"value":"a\"b\\c\nd\u0001<&>/😀"}}`,
		"empty":              `{"value_type":0,"value":{"value":""}}`,
	})
	// The other field order and spacing read too.
	require.NoError(t, c.Set(t.Context(), fmt.Sprintf("%d:spaced", site), `{"value": {"value": "s"}, "value_type": 0}`, time.Hour).Err())
	h := open(t).Site(site)
	for key, want := range map[string]string{
		"last_executed_time": "2026-11-24T21:00:00Z",
		"escaped":            "a\"b\\c\nd\x01<&>/😀",
		"empty":              "",
		"spaced":             "s",
	} {
		got, err := h.GetText(t.Context(), key)
		require.NoError(t, err, key)
		assert.Equal(t, want, got, key)
	}
	p, err := h.List(t.Context(), "", nil)
	require.NoError(t, err)
	assert.Len(t, p.Entries, 4)
	ok, err := h.CompareAndSwap(t.Context(), "escaped", paramstore.String("a\"b\\c\nd\x01<&>/😀"), paramstore.String("next"))
	require.NoError(t, err)
	assert.True(t, ok, "CAS against digdag's bytes compares by content")
}

func TestWritesWhatDigdagReads(t *testing.T) {
	c := paramstoretest.RedisClient(t)
	site := paramstoretest.FreshRedisSite(t, c)
	h := open(t).Site(site)
	ctx := t.Context()
	require.NoError(t, h.SetMany(ctx, map[string]json.RawMessage{
		"key1": paramstore.String("value1"),
		"key2": paramstore.String("value2"),
	}))
	require.NoError(t, h.SetValue(ctx, "escaped", "a\"b\\c\nd\x01\x1f<&>/\u2028😀"))
	require.NoError(t, h.Set(ctx, "obj", json.RawMessage(`{"a": [1, 2.50]}`)))
	key := func(k string) string { return fmt.Sprintf("%d:%s", site, k) }
	// The bytes digdag's own acceptance test (ParamSetRedisIT) expects.
	for k, want := range map[string]string{
		"key1":    `{"value_type":0,"value":{"value":"value1"}}`,
		"key2":    `{"value_type":0,"value":{"value":"value2"}}`,
		"escaped": `{"value_type":0,"value":{"value":"a\"b\\c\nd\u0001\u001F<&>/` + "\u2028😀" + `"}}`,
		"obj":     `{"value_type":2,"value":{"value":{"a":[1,2.50]}}}`,
	} {
		got, err := c.Get(ctx, key(k)).Result()
		require.NoError(t, err)
		assert.Equal(t, want, got, k)
		ttl, err := c.TTL(ctx, key(k)).Result()
		require.NoError(t, err)
		assert.True(t, ttl <= 90*24*time.Hour && ttl > 89*24*time.Hour, "TTL %s", ttl)
	}
	require.NoError(t, h.WithTTL(90*time.Minute).Set(ctx, "custom", paramstore.Int(1)))
	ttl, err := c.PTTL(ctx, key("custom")).Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(90*time.Minute), float64(ttl), float64(time.Minute))
	require.NoError(t, h.WithTTL(1500*time.Millisecond).Set(ctx, "ms", paramstore.Int(1)))
	ttl, err = c.PTTL(ctx, key("ms")).Result()
	require.NoError(t, err)
	assert.InDelta(t, 1500, float64(ttl.Milliseconds()), 200)
}

func TestForeignKeys(t *testing.T) {
	c := paramstoretest.RedisClient(t)
	site := paramstoretest.FreshRedisSite(t, c)
	ctx := t.Context()
	require.NoError(t, c.RPush(ctx, fmt.Sprintf("%d:list", site), "x").Err())
	require.NoError(t, c.Set(ctx, fmt.Sprintf("%d:text", site), "plain text", time.Hour).Err())
	h := open(t).Site(site)
	_, err := h.Get(ctx, "list")
	require.ErrorIs(t, err, paramstore.ErrSchema)
	_, err = h.Get(ctx, "text")
	require.ErrorIs(t, err, paramstore.ErrSchema)
	assert.Contains(t, err.Error(), "does not hold a digdag param")
	_, err = h.List(ctx, "", nil)
	require.ErrorIs(t, err, paramstore.ErrSchema)
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	const pw = "S3cr3t-Pa55"
	for name, tc := range map[string]struct {
		url  string
		kind error
	}{
		"unreachable": {"redis://:" + pw + "@127.0.0.1:1/0", paramstore.ErrUnavailable},
		"bad db":      {"redis://:" + pw + "@127.0.0.1:6379/notanumber", paramstore.ErrBadURL},
		"bad option":  {"redis://:" + pw + "@127.0.0.1:6379/0?dial_timeout=soon", paramstore.ErrBadURL},
		"refused":     {"redis://bob:" + pw + "@127.0.0.1:6379/0", paramstore.ErrUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := paramstore.Open(t.Context(), tc.url)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.kind)
			assert.NotContains(t, err.Error(), pw)
			assert.NotContains(t, fmt.Sprintf("%+v %#v", err, err), pw)
			assert.Contains(t, err.Error(), "redis")
			t.Log(err)
		})
	}
}

func TestBody(t *testing.T) {
	assert.Equal(t, "7:k", redisstore.Key(7, "k"))
	assert.Equal(t, "-1:a:b", redisstore.Key(-1, "a:b"))
}

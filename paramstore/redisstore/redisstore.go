// Package redisstore is the Redis paramstore backend (go-redis/v9). It
// uses digdag's param server layout, byte for byte, so tdctl and a digdag
// server configured with param_server.database.type=redis share params:
//
//	key:   <site_id>:<key>                  e.g. 0:last_executed_time
//	value: {"value_type":0,"value":{"value":"<string>"}}
//
// with the key's Redis TTL as the param's lifetime (digdag: SETEX 7776000
// inside MULTI). The field order is the one digdag's Jackson HashMap
// produces (digdag's own acceptance tests assert these bytes). Non-string
// JSON values use value_type 2: {"value_type":2,"value":{"value":<json>}}.
//
// Expiry is Redis's own. A multi-key write is one MULTI/EXEC; a
// single-key write is one SETEX (PSETEX for TTLs that are not whole
// seconds), which Redis applies atomically anyway. CompareAndSwap is one
// Lua script. List SCANs the site's keys matching the prefix, sorts them
// and MGETs one page: its cost grows with the number of matching keys.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/driver"
)

func init() {
	paramstore.Register(paramstore.Backend{
		Name: "redis", Shared: true, Schemes: []string{"redis", "rediss"}, Example: "redis://host:6379/0",
		Open: func(ctx context.Context, u *url.URL) (driver.Driver, error) {
			d, err := Open(ctx, u.String())
			if err != nil {
				return nil, err
			}
			return d, nil
		},
	})
}

// Driver is the Redis driver.Driver.
type Driver struct {
	c redis.UniversalClient
}

var _ driver.Driver = (*Driver)(nil)

// Open connects to a redis:// or rediss:// URL
// (redis://[user:password@]host[:port][/db]) and checks the server
// answers. Errors never contain the URL's password.
func Open(ctx context.Context, rawURL string) (*Driver, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, driver.OpenError(driver.ErrBadURL, rawURL, err,
			"paramstore redis: cannot use the URL %s; write it as redis://[:password@]host[:port][/db]", driver.RedactURL(rawURL))
	}
	c := redis.NewClient(opt)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, driver.OpenError(driver.ErrUnavailable, rawURL, err,
			"paramstore redis: cannot connect to %s (db %d); check that Redis runs there and the URL's host, port and password", opt.Addr, opt.DB)
	}
	return New(c), nil
}

// New wraps an existing client (its lifetime is then the Driver's: Close
// closes it).
func New(c redis.UniversalClient) *Driver { return &Driver{c: c} }

// Client returns the underlying client (tests, benchmarks).
func (d *Driver) Client() redis.UniversalClient { return d.c }

// Key returns the Redis key of a param: "<site>:<key>".
func Key(site int32, key string) string {
	return strconv.FormatInt(int64(site), 10) + ":" + key
}

// Body returns the Redis value of a stored param, as digdag writes it.
func Body(v driver.Value) string {
	return `{"value_type":` + strconv.Itoa(v.Type) + `,"value":` + v.Column + `}`
}

// parseBody is the inverse of Body; it also reads the other field order
// and spacing, in case another writer produced them.
func parseBody(key, body string) (driver.Value, error) {
	const p = `{"value_type":`
	if strings.HasPrefix(body, p) && len(body) > len(p)+1 && body[len(p)+1] == ',' &&
		body[len(p)] >= '0' && body[len(p)] <= '9' && strings.HasSuffix(body, "}") {
		rest := body[len(p)+2:]
		if strings.HasPrefix(rest, `"value":`) {
			return driver.Value{Type: int(body[len(p)] - '0'), Column: rest[len(`"value":`) : len(rest)-1]}, nil
		}
	}
	var w struct {
		Type  *int            `json:"value_type"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(body), &w); err != nil || w.Type == nil || len(w.Value) == 0 {
		return driver.Value{}, fmt.Errorf("%w: Redis key %q does not hold a digdag param ({\"value_type\":0,\"value\":{\"value\":\"...\"}}), got %.60q", driver.ErrSchema, key, body)
	}
	return driver.Value{Type: *w.Type, Column: string(w.Value)}, nil
}

func mapErr(key string, err error) error {
	if err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") {
		return fmt.Errorf("%w: Redis key %q holds a %s, not a digdag param string", driver.ErrSchema, key, err)
	}
	return err
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, site int32, key string) (driver.Value, error) {
	k := Key(site, key)
	s, err := d.c.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) {
		return driver.Value{}, driver.ErrNotFound
	}
	if err != nil {
		return driver.Value{}, mapErr(k, err)
	}
	return parseBody(k, s)
}

// cmdDoer is what both a client and a pipeline offer.
type cmdDoer interface {
	SetEx(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
	Do(ctx context.Context, args ...any) *redis.Cmd
}

func setCmd(ctx context.Context, c cmdDoer, k, body string, ttl time.Duration) interface{ Err() error } {
	if ttl%time.Second == 0 {
		return c.SetEx(ctx, k, body, ttl) // digdag's SETEX <seconds>
	}
	return c.Do(ctx, "psetex", k, ttl.Milliseconds(), body)
}

// SetMany implements driver.Driver.
func (d *Driver) SetMany(ctx context.Context, site int32, entries []driver.Entry, ttl time.Duration) error {
	if len(entries) == 1 {
		e := entries[0]
		return setCmd(ctx, d.c, Key(site, e.Key), Body(e.Value), ttl).Err()
	}
	_, err := d.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			setCmd(ctx, p, Key(site, e.Key), Body(e.Value), ttl)
		}
		return nil
	})
	return err
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, site int32, key string) error {
	n, err := d.c.Del(ctx, Key(site, key)).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return driver.ErrNotFound
	}
	return nil
}

// globEscape escapes the glob metacharacters of SCAN MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, site int32, prefix, after string, limit int) ([]driver.Entry, error) {
	base := Key(site, "")
	match := globEscape(base+prefix) + "*"
	seen := map[string]struct{}{}
	var keys []string
	var cursor uint64
	for {
		ks, next, err := d.c.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			name := k[len(base):]
			if _, dup := seen[k]; dup || name <= after {
				continue
			}
			seen[k] = struct{}{}
			keys = append(keys, k)
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	slices.Sort(keys)
	var out []driver.Entry
	// MGET a little more than a page: keys may expire between SCAN and MGET.
	for len(keys) > 0 && len(out) < limit {
		n := min(len(keys), limit-len(out))
		vals, err := d.c.MGet(ctx, keys[:n]...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // expired or deleted since SCAN, or not a string
			}
			val, err := parseBody(keys[i], s)
			if err != nil {
				return nil, err
			}
			out = append(out, driver.Entry{Key: keys[i][len(base):], Value: val})
		}
		keys = keys[n:]
	}
	return out, nil
}

// casScript: KEYS[1] key; ARGV[1] expected body ("" = must be absent),
// ARGV[2] new body, ARGV[3] TTL in ms.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// CompareAndSwap implements driver.Driver: one Lua script, atomic on the
// server.
func (d *Driver) CompareAndSwap(ctx context.Context, site int32, key string, old *driver.Value, next driver.Value, ttl time.Duration) (bool, error) {
	k := Key(site, key)
	want := ""
	if old != nil {
		want = Body(*old)
	}
	n, err := casScript.Run(ctx, d.c, []string{k}, want, Body(next), ttl.Milliseconds()).Int()
	if err != nil {
		return false, mapErr(k, err)
	}
	return n == 1, nil
}

// Sweep implements driver.Driver: Redis expires keys itself.
func (d *Driver) Sweep(context.Context, int) (int, error) { return 0, nil }

// Close implements driver.Driver.
func (d *Driver) Close() error { return d.c.Close() }

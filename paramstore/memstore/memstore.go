// Package memstore is an in-memory paramstore backend (URL mem://), for
// tests of code that uses a param store and for dry runs. Nothing
// persists after Close; it passes the same conformance suite as the
// other backends.
package memstore

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/driver"
)

func init() {
	paramstore.Register(paramstore.Backend{
		Name: "memory", Schemes: []string{"mem", "memory"},
		Open: func(context.Context, *url.URL) (driver.Driver, error) { return New(), nil },
	})
}

type siteKey struct {
	site int32
	key  string
}

type item struct {
	v       driver.Value
	expires time.Time
}

// Driver is the in-memory driver.Driver.
type Driver struct {
	mu  sync.RWMutex
	m   map[siteKey]item
	now func() time.Time
}

var _ driver.Driver = (*Driver)(nil)

// Option configures New.
type Option func(*Driver)

// WithClock sets the clock expiry is computed with (tests).
func WithClock(now func() time.Time) Option { return func(d *Driver) { d.now = now } }

// New returns an empty store.
func New(opts ...Option) *Driver {
	d := &Driver{m: map[siteKey]item{}, now: time.Now}
	for _, o := range opts {
		o(d)
	}
	return d
}

func (d *Driver) live(k siteKey, now time.Time) (item, bool) {
	it, ok := d.m[k]
	return it, ok && now.Before(it.expires)
}

// Get implements driver.Driver.
func (d *Driver) Get(_ context.Context, site int32, key string) (driver.Value, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	it, ok := d.live(siteKey{site, key}, d.now())
	if !ok {
		return driver.Value{}, driver.ErrNotFound
	}
	return it.v, nil
}

// SetMany implements driver.Driver.
func (d *Driver) SetMany(_ context.Context, site int32, entries []driver.Entry, ttl time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	exp := d.now().Add(ttl)
	for _, e := range entries {
		d.m[siteKey{site, e.Key}] = item{v: e.Value, expires: exp}
	}
	return nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(_ context.Context, site int32, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := siteKey{site, key}
	_, ok := d.live(k, d.now())
	delete(d.m, k)
	if !ok {
		return driver.ErrNotFound
	}
	return nil
}

// List implements driver.Driver.
func (d *Driver) List(_ context.Context, site int32, prefix, after string, limit int) ([]driver.Entry, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	now := d.now()
	var out []driver.Entry
	for k, it := range d.m {
		if k.site == site && strings.HasPrefix(k.key, prefix) && k.key > after && now.Before(it.expires) {
			out = append(out, driver.Entry{Key: k.key, Value: it.v})
		}
	}
	slices.SortFunc(out, func(a, b driver.Entry) int { return strings.Compare(a.Key, b.Key) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// CompareAndSwap implements driver.Driver.
func (d *Driver) CompareAndSwap(_ context.Context, site int32, key string, old *driver.Value, next driver.Value, ttl time.Duration) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	k := siteKey{site, key}
	it, ok := d.live(k, now)
	if (old == nil && ok) || (old != nil && (!ok || it.v != *old)) {
		return false, nil
	}
	d.m[k] = item{v: next, expires: now.Add(ttl)}
	return true, nil
}

// Sweep implements driver.Driver.
func (d *Driver) Sweep(_ context.Context, limit int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	n := 0
	for k, it := range d.m {
		if n == limit {
			break
		}
		if !now.Before(it.expires) {
			delete(d.m, k)
			n++
		}
	}
	return n, nil
}

// Close implements driver.Driver.
func (d *Driver) Close() error { return nil }

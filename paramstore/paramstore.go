// Package paramstore keeps workflow params between runs: digdag's
// param_get> / param_set>, as a Go library.
//
// A *Store wraps one backend (SQLite, PostgreSQL, Redis or memory; see
// Open) and does everything that is not storage once: JSON encoding,
// validation, TTL defaults, paging and CompareAndSwap semantics. A
// backend is a package of its own that registers its URL schemes when
// imported (see Register), so a program links only the backends it
// imports. Params belong to a site (digdag's integer site id, an
// account): every read and write goes through a *Site handle,
//
//	import _ "github.com/tdctl/tdctl/paramstore/pgstore"
//
//	store, err := paramstore.Open(ctx, "postgres://digdag@db/digdag")
//	site := store.Site(0)
//	err = site.Set(ctx, "last_executed_time", paramstore.String("2026-11-24T21:00:00Z"))
//	raw, err := site.Get(ctx, "last_executed_time") // json.RawMessage `"2026-11-24T21:00:00Z"`
//
// and sites never see each other's keys.
//
// Values are JSON: strings, numbers (kept digit for digit), booleans,
// null, arrays and objects. A missing (or expired) key is ErrNotFound,
// distinct from an empty string.
//
// The PostgreSQL and Redis layouts are digdag's, byte for byte, so tdctl
// and a digdag server share params: a string param is stored as digdag
// stores it (value_type 0); other JSON values use value_type 2, which only
// tdctl reads (digdag's param_get> rejects it with "Unexpected valueType
// code: 2" instead of misreading it).
//
// Every value expires after a TTL, digdag's 90 days unless configured
// (WithTTL, the URL's ttl parameter, or Site.WithTTL per write). Expired
// values are never returned. Redis expires keys itself; the SQL backends
// delete expired rows in bounded sweeps (on the first write of a Store,
// then at most once per sweep interval, and on Sweep).
package paramstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tdctl/tdctl/paramstore/driver"
)

// Errors; test with errors.Is.
var (
	// ErrNotFound: the key has no value (never set, deleted or expired).
	ErrNotFound = driver.ErrNotFound
	// ErrInvalid: a key, value, TTL or option cannot be used.
	ErrInvalid = errors.New("invalid param")
	// ErrBadURL: the store URL cannot be used as given.
	ErrBadURL = driver.ErrBadURL
	// ErrUnavailable: the server cannot be reached or refused the login.
	ErrUnavailable = driver.ErrUnavailable
	// ErrSchema: the table or keys are not in digdag's layout.
	ErrSchema = driver.ErrSchema
)

// DefaultTTL is how long a value lives unless configured otherwise:
// digdag's 90 days.
const DefaultTTL = driver.DigdagTTL

// MaxTTL is the longest TTL accepted (100 years).
const MaxTTL = 100 * 365 * 24 * time.Hour

// MaxKeyLen is the longest key accepted, in bytes.
const MaxKeyLen = 1024

// DefaultSweepInterval is how often, at most, writes trigger a sweep of
// expired rows on SQL backends.
const DefaultSweepInterval = time.Minute

// sweepBatch bounds the rows one sweep deletes.
const sweepBatch = 1000

// Store is a param store over one backend. It is safe for concurrent use;
// open it once and share it. Reads and writes go through Site.
type Store struct {
	d          driver.Driver
	backend    string
	ttl        time.Duration
	sweepEvery time.Duration
	lastSweep  atomic.Int64 // unix nanoseconds; 0 = never
	now        func() time.Time
	typed      bool
}

// Option configures a Store.
type Option func(*options)

type options struct {
	ttl        time.Duration
	sweepEvery time.Duration
	backend    string
	typed      bool
}

// WithTypedValues says whether workflows keep typed JSON values in the
// store (true, New's default) or write what a digdag server reads: strings
// only (Open's default for PostgreSQL and Redis; a URL's values= wins).
// It guides writers such as param_set>; the Store itself accepts any JSON
// value either way (tdctl param set stores what it is given).
func WithTypedValues(typed bool) Option { return func(o *options) { o.typed = typed } }

// WithTTL sets the default lifetime of written values (default
// DefaultTTL). A store URL's ttl parameter takes precedence.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithSweepInterval sets how often, at most, a write also deletes a batch
// of expired rows (SQL backends); 0 turns the automatic sweep off (call
// Sweep yourself). Default DefaultSweepInterval.
func WithSweepInterval(d time.Duration) Option { return func(o *options) { o.sweepEvery = d } }

// WithBackendName names the backend in error messages (Open sets it).
func WithBackendName(name string) Option { return func(o *options) { o.backend = name } }

// New returns a Store over a driver (see Open for the usual way in).
func New(d driver.Driver, opts ...Option) (*Store, error) {
	o := options{ttl: DefaultTTL, sweepEvery: DefaultSweepInterval, backend: "paramstore", typed: true}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkTTL(o.ttl); err != nil {
		return nil, err
	}
	if o.sweepEvery < 0 {
		return nil, fmt.Errorf("%w: sweep interval %s is negative; use 0 to turn the sweep off", ErrInvalid, o.sweepEvery)
	}
	return &Store{d: d, backend: o.backend, ttl: o.ttl, sweepEvery: o.sweepEvery, now: time.Now, typed: o.typed}, nil
}

func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond || ttl > MaxTTL {
		return fmt.Errorf("%w: TTL %s is out of range; give 1ms to 100 years (default 90 days = 2160h)", ErrInvalid, ttl)
	}
	if ttl%time.Millisecond != 0 {
		return fmt.Errorf("%w: TTL %s is finer than a millisecond", ErrInvalid, ttl)
	}
	return nil
}

// TTL returns the default lifetime of values written through the Store.
func (s *Store) TTL() time.Duration { return s.ttl }

// TypedValues reports whether workflows keep typed JSON values in this
// store (see WithTypedValues).
func (s *Store) TypedValues() bool { return s.typed }

// TypedValues reports whether workflows keep typed JSON values in the
// site's store (see WithTypedValues).
func (h *Site) TypedValues() bool { return h.s.typed }

// Backend names the backend: "sqlite", "postgres", "redis", "memory".
func (s *Store) Backend() string { return s.backend }

// Close closes the backend's connections.
func (s *Store) Close() error { return s.d.Close() }

// Sweep deletes every expired value (in bounded batches) and returns how
// many it deleted. Redis expires keys itself: there Sweep returns 0.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.d.Sweep(ctx, sweepBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("paramstore %s: sweep: %w", s.backend, err)
		}
		if n < sweepBatch {
			s.lastSweep.Store(s.now().UnixNano())
			return total, nil
		}
	}
}

// maybeSweep runs one bounded sweep after a successful write when the
// sweep interval has passed. A failed sweep does not fail the write: it is
// housekeeping, expired values are never returned either way.
func (s *Store) maybeSweep(ctx context.Context) {
	if s.sweepEvery <= 0 {
		return
	}
	now := s.now().UnixNano()
	last := s.lastSweep.Load()
	if last != 0 && now-last < int64(s.sweepEvery) {
		return
	}
	if !s.lastSweep.CompareAndSwap(last, now) {
		return // another goroutine is sweeping
	}
	_, _ = s.d.Sweep(ctx, sweepBatch)
}

// Site returns the handle for one site id (digdag's site_id; 0 on a
// single-account digdag server). Handles are cheap values; all of them
// share the Store's connections.
func (s *Store) Site(id int32) *Site { return &Site{s: s, id: id, ttl: s.ttl} }

// Site is a Store scoped to one site id: its keys are invisible to every
// other site. Safe for concurrent use.
type Site struct {
	s   *Store
	id  int32
	ttl time.Duration
}

// ID returns the site id.
func (h *Site) ID() int32 { return h.id }

// TTL returns the lifetime given to values this handle writes.
func (h *Site) TTL() time.Duration { return h.ttl }

// WithTTL returns a handle on the same site whose writes live for ttl
// (1ms to 100 years) instead of the Store's default. An out-of-range ttl
// makes every write through the handle fail with ErrInvalid.
func (h *Site) WithTTL(ttl time.Duration) *Site {
	c := *h
	c.ttl = ttl
	return &c
}

func (h *Site) errf(op, key string, err error) error {
	return fmt.Errorf("paramstore %s: %s %q (site %d): %w", h.s.backend, op, key, h.id, err)
}

// CheckKey reports whether key can be stored: 1 to MaxKeyLen bytes of
// valid UTF-8 without NUL.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: the key is empty", ErrInvalid)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: the key is %d bytes long; the limit is %d", ErrInvalid, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: the key is not valid UTF-8", ErrInvalid)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: the key contains a NUL byte", ErrInvalid)
	}
	return nil
}

// Get returns the JSON value of key, or an error wrapping ErrNotFound.
// Strings come back as JSON strings (`"text"`); use Text for the text
// digdag would interpolate.
func (h *Site) Get(ctx context.Context, key string) (json.RawMessage, error) {
	if err := CheckKey(key); err != nil {
		return nil, h.errf("get", key, err)
	}
	v, err := h.s.d.Get(ctx, h.id, key)
	if err != nil {
		return nil, h.errf("get", key, err)
	}
	raw, err := decode(v)
	if err != nil {
		return nil, h.errf("get", key, err)
	}
	return raw, nil
}

// GetText is Get followed by Text: the string digdag would interpolate.
func (h *Site) GetText(ctx context.Context, key string) (string, error) {
	raw, err := h.Get(ctx, key)
	if err != nil {
		return "", err
	}
	return Text(raw)
}

// Set writes one JSON value (see String and Int for building one), last
// writer wins.
func (h *Site) Set(ctx context.Context, key string, value json.RawMessage) error {
	if err := CheckKey(key); err != nil {
		return h.errf("set", key, err)
	}
	if err := checkTTL(h.ttl); err != nil {
		return h.errf("set", key, err)
	}
	v, err := encode(value)
	if err != nil {
		return h.errf("set", key, err)
	}
	if err := h.s.d.SetMany(ctx, h.id, []driver.Entry{{Key: key, Value: v}}, h.ttl); err != nil {
		return h.errf("set", key, err)
	}
	h.s.maybeSweep(ctx)
	return nil
}

// SetValue writes a Go value marshalled with encoding/json.
func (h *Site) SetValue(ctx context.Context, key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return h.errf("set", key, fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	return h.Set(ctx, key, raw)
}

// SetMany writes every value or none: all are validated first, then
// written in one transaction, and no reader sees some written and others
// not.
func (h *Site) SetMany(ctx context.Context, values map[string]json.RawMessage) error {
	if len(values) == 0 {
		return nil
	}
	if err := checkTTL(h.ttl); err != nil {
		return fmt.Errorf("paramstore %s: set (site %d): %w", h.s.backend, h.id, err)
	}
	entries := make([]driver.Entry, 0, len(values))
	for k, raw := range values {
		if err := CheckKey(k); err != nil {
			return h.errf("set", k, err)
		}
		v, err := encode(raw)
		if err != nil {
			return h.errf("set", k, err)
		}
		entries = append(entries, driver.Entry{Key: k, Value: v})
	}
	// A fixed order: row locks are taken in it, so concurrent SetMany calls
	// on overlapping keys cannot deadlock.
	slices.SortFunc(entries, func(a, b driver.Entry) int { return strings.Compare(a.Key, b.Key) })
	if err := h.s.d.SetMany(ctx, h.id, entries, h.ttl); err != nil {
		return fmt.Errorf("paramstore %s: set %d keys (site %d): %w", h.s.backend, len(entries), h.id, err)
	}
	h.s.maybeSweep(ctx)
	return nil
}

// Delete removes key. Deleting a key that has no value returns an error
// wrapping ErrNotFound (callers that do not care ignore it with errors.Is).
func (h *Site) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return h.errf("delete", key, err)
	}
	if err := h.s.d.Delete(ctx, h.id, key); err != nil {
		return h.errf("delete", key, err)
	}
	return nil
}

// CompareAndSwap writes next only if the key's current value is old, and
// reports whether it wrote. old == nil means "only if the key has no
// value" (create); json.RawMessage("null") is the JSON null value. Values
// compare by their stored text: strings by content, other JSON by their
// compact text (object key order and number spelling count).
func (h *Site) CompareAndSwap(ctx context.Context, key string, old, next json.RawMessage) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, h.errf("compare-and-swap", key, err)
	}
	if err := checkTTL(h.ttl); err != nil {
		return false, h.errf("compare-and-swap", key, err)
	}
	nv, err := encode(next)
	if err != nil {
		return false, h.errf("compare-and-swap", key, err)
	}
	var ov *driver.Value
	if old != nil {
		v, err := encode(old)
		if err != nil {
			return false, h.errf("compare-and-swap", key, fmt.Errorf("old value: %w", err))
		}
		ov = &v
	}
	ok, err := h.s.d.CompareAndSwap(ctx, h.id, key, ov, nv, h.ttl)
	if err != nil {
		return false, h.errf("compare-and-swap", key, err)
	}
	if ok {
		h.s.maybeSweep(ctx)
	}
	return ok, nil
}

// Entry is one listed param.
type Entry struct {
	Key   string
	Value json.RawMessage
}

// ListOptions pages through List.
type ListOptions struct {
	// After: only keys after this one (bytewise); pass Page.Next to get
	// the following page.
	After string
	// Limit: entries per page; 0 means DefaultListLimit, at most
	// MaxListLimit.
	Limit int
}

// List page sizes.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Page is one page of List.
type Page struct {
	// Entries in bytewise key order.
	Entries []Entry
	// Next is the ListOptions.After of the next page; "" on the last page.
	Next string
}

// List returns one page of the params whose key starts with prefix ("" for
// all), in bytewise key order.
func (h *Site) List(ctx context.Context, prefix string, opts *ListOptions) (*Page, error) {
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Limit == 0:
		o.Limit = DefaultListLimit
	case o.Limit < 0 || o.Limit > MaxListLimit:
		return nil, fmt.Errorf("paramstore %s: list %q (site %d): %w: limit %d is out of range 1..%d", h.s.backend, prefix, h.id, ErrInvalid, o.Limit, MaxListLimit)
	}
	es, err := h.s.d.List(ctx, h.id, prefix, o.After, o.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("paramstore %s: list %q (site %d): %w", h.s.backend, prefix, h.id, err)
	}
	p := &Page{}
	if len(es) > o.Limit {
		es = es[:o.Limit]
		p.Next = es[len(es)-1].Key
	}
	p.Entries = make([]Entry, len(es))
	for i, e := range es {
		raw, err := decode(e.Value)
		if err != nil {
			return nil, h.errf("list", e.Key, err)
		}
		p.Entries[i] = Entry{Key: e.Key, Value: raw}
	}
	return p, nil
}

// All walks every page of List(prefix). It stops at the first error,
// which it yields.
func (h *Site) All(ctx context.Context, prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		o := ListOptions{Limit: MaxListLimit}
		for {
			p, err := h.List(ctx, prefix, &o)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range p.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if p.Next == "" {
				return
			}
			o.After = p.Next
		}
	}
}

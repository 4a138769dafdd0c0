// Package driver defines the small interface a paramstore backend
// implements, and the pieces the backends share: the stored form of a
// value, the sentinel errors and the redaction of secrets in errors.
//
// Application code uses paramstore.Store; this package is for backend
// authors (sqlitestore, pgstore, redisstore, memstore). The Store does the
// JSON encoding, key validation, TTL defaults and paging; a driver only
// stores, compares and expires encoded values.
package driver

import (
	"context"
	"errors"
	"time"
)

// Value types as stored in digdag's value_type column / field.
const (
	// TypeString is digdag's value_type 0: Column is {"value":"<string>"}.
	TypeString = 0
	// TypeDigdagArray is digdag's value_type 1 (ValueType.ARRAY), declared
	// by digdag but never written by it. tdctl reads it as JSON and never
	// writes it.
	TypeDigdagArray = 1
	// TypeJSON is tdctl's value_type 2: Column is {"value":<any JSON>}
	// (number, boolean, null, array or object). digdag's param_get> fails
	// on it with "Unexpected valueType code: 2" rather than misreading it.
	TypeJSON = 2
)

// DigdagTTL is digdag's fixed param lifetime: 90 days (7,776,000 s)
// counted from updated_at (PostgreSQL) or set with SETEX (Redis).
const DigdagTTL = 7776000 * time.Second

// Value is a param in its stored form, shared by every backend so that
// comparisons (CompareAndSwap) are byte comparisons of canonical text.
type Value struct {
	// Type is the value_type: TypeString or TypeJSON.
	Type int
	// Column is digdag's `value` column text: {"value":<json>}, compact,
	// strings escaped exactly as digdag's Jackson ObjectMapper does.
	Column string
}

// Entry is a key with its stored value.
type Entry struct {
	Key   string
	Value Value
}

// Driver is what a backend implements. Every method is safe for concurrent
// use. Keys and values reaching a driver are already validated. Expired
// values must behave exactly as absent ones in every method.
type Driver interface {
	// Get returns the live value of key in site, or ErrNotFound.
	Get(ctx context.Context, site int32, key string) (Value, error)
	// SetMany writes every entry with the given lifetime, all or nothing:
	// no reader may observe some entries written and others not. Entries
	// are sorted by key and have distinct keys.
	SetMany(ctx context.Context, site int32, entries []Entry, ttl time.Duration) error
	// Delete removes key; ErrNotFound when there was no live value.
	Delete(ctx context.Context, site int32, key string) error
	// List returns up to limit live entries whose key starts with prefix
	// and sorts (bytewise) after `after`, in bytewise key order.
	List(ctx context.Context, site int32, prefix, after string, limit int) ([]Entry, error)
	// CompareAndSwap atomically replaces key's value with next when its
	// current live value equals *old (same Type and Column), or creates it
	// when old is nil and there is no live value. It reports whether it
	// wrote.
	CompareAndSwap(ctx context.Context, site int32, key string, old *Value, next Value, ttl time.Duration) (bool, error)
	// Sweep deletes up to limit expired values and returns how many it
	// deleted. Backends whose server expires keys itself return 0, nil.
	Sweep(ctx context.Context, limit int) (int, error)
	// Close releases the connections.
	Close() error
}

// Sentinel errors. Drivers return (or wrap) these; package paramstore
// re-exports them.
var (
	// ErrNotFound: no live value under the key.
	ErrNotFound = errors.New("param not found")
	// ErrBadURL: the store URL cannot be used as given.
	ErrBadURL = errors.New("bad param store URL")
	// ErrUnavailable: the server cannot be reached or refused the login.
	ErrUnavailable = errors.New("param store unavailable")
	// ErrSchema: the table or keys exist but are not laid out as digdag's
	// param server lays them out.
	ErrSchema = errors.New("param store has an unexpected layout")
)

// Package paramstoretest is the conformance suite every paramstore backend
// passes. A backend's test calls
//
//	paramstoretest.Run(t, func(t *testing.T) *paramstore.Store { ... })
//
// with a function that opens a store for one subtest (closing it in
// t.Cleanup). Each subtest opens its own store and works in its own random
// site ids, deleting what it wrote when it ends, so backends that share a
// server (Redis) need no further isolation. Subtests run in parallel.
package paramstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore"
)

// SkipEnv is the environment variable that turns an unreachable server
// from a failure into a skip: TDCTL_SKIP_SERVER_TESTS=1.
const SkipEnv = "TDCTL_SKIP_SERVER_TESTS"

// RequireServer fails t when err (from opening a server backend) is not
// nil, or skips it when TDCTL_SKIP_SERVER_TESTS=1.
func RequireServer(t testing.TB, backend string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s is not reachable, skipped because %s=1: %v", backend, SkipEnv, err)
	}
	t.Fatalf("%s is not reachable: %v\n(start it, e.g. `bash .ci/services.sh`, or set %s=1 to skip server tests)", backend, err, SkipEnv)
}

// Run runs every conformance subtest against the stores open returns.
func Run(t *testing.T, open func(t *testing.T) *paramstore.Store) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, s *paramstore.Store)
	}{
		{"MissingKey", testMissingKey},
		{"EmptyStringIsNotMissing", testEmptyString},
		{"RoundTripEveryJSONType", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"InvalidInputWritesNothing", testInvalid},
		{"ListPrefixAndPaging", testList},
		{"SetManyAllOrNothing", testSetManyAtomic},
		{"SetManyReadersNeverSeePartialState", testSetManyReaders},
		{"TTLExpiry", testTTL},
		{"CompareAndSwap", testCAS},
		{"SiteIsolation", testSites},
		{"ConcurrentCASLosesNoUpdate", testConcurrentCAS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			tc.f(t, s)
		})
	}
}

// site returns a handle on a random site id no other test uses, whose
// params are deleted when t ends.
func site(t *testing.T, s *paramstore.Store) *paramstore.Site {
	h := s.Site(rand.Int32N(1<<30) + 1<<30)
	t.Cleanup(func() {
		ctx := context.Background()
		for e, err := range h.All(ctx, "") {
			if err != nil {
				t.Logf("cleanup of site %d: %v", h.ID(), err)
				return
			}
			_ = h.Delete(ctx, e.Key)
		}
	})
	return h
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func testMissingKey(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	_, err := h.Get(ctx, "never_set")
	require.ErrorIs(t, err, paramstore.ErrNotFound)
	assert.Contains(t, err.Error(), "never_set")
	_, err = h.GetText(ctx, "never_set")
	require.ErrorIs(t, err, paramstore.ErrNotFound)
	p, err := h.List(ctx, "never", nil)
	require.NoError(t, err)
	assert.Empty(t, p.Entries)
	assert.Empty(t, p.Next)
}

func testEmptyString(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	require.NoError(t, h.Set(ctx, "empty", raw(`""`)))
	v, err := h.Get(ctx, "empty")
	require.NoError(t, err)
	assert.Equal(t, `""`, string(v))
	txt, err := h.GetText(ctx, "empty")
	require.NoError(t, err)
	assert.Equal(t, "", txt)
	_, err = h.Get(ctx, "empty2")
	require.ErrorIs(t, err, paramstore.ErrNotFound)
}

// roundTrips: input JSON → the JSON Get must return. Strings compare by
// content (see testRoundTrip), everything else byte for byte.
var roundTrips = []struct{ in, want string }{
	{`"2026-11-24T21:00:00Z"`, `"2026-11-24T21:00:00Z"`},
	{`"quote \" backslash \\ slash / <b>&amp;</b>"`, ""},
	{`"tab\tnewline\ncr\rbell\u0007nul\u0000del\u007f"`, ""},
	{`"日本語 emoji 😀 sep\u2028\u2029"`, ""},
	{`"\u0041\u00e9"`, `"Aé"`},
	{`0`, `0`},
	{`-1`, `-1`},
	{`123456789012345678901234567890`, `123456789012345678901234567890`},
	{`9007199254740993`, `9007199254740993`},
	{`3.14159265358979323846264338327950288`, `3.14159265358979323846264338327950288`},
	{`1.0`, `1.0`},
	{`-0`, `-0`},
	{`1e-7`, `1e-7`},
	{`1E+400`, `1E+400`},
	{`true`, `true`},
	{`false`, `false`},
	{`null`, `null`},
	{`[]`, `[]`},
	{`{}`, `{}`},
	{` [1, "two", 3.0, true, null, [], {"k": [1e3]}] `, `[1,"two",3.0,true,null,[],{"k":[1e3]}]`},
	{"{\n  \"b\": 1,\n  \"a\": {\"x\": \"y z\"},\n  \"n\": 12345678901234567890\n}", `{"b":1,"a":{"x":"y z"},"n":12345678901234567890}`},
}

func testRoundTrip(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	for i, rt := range roundTrips {
		key := fmt.Sprintf("v%02d", i)
		require.NoError(t, h.Set(ctx, key, raw(rt.in)), rt.in)
	}
	check := func(i int, got json.RawMessage) {
		rt := roundTrips[i]
		if rt.in[0] == '"' {
			var want, have string
			require.NoError(t, json.Unmarshal([]byte(rt.in), &want))
			require.NoError(t, json.Unmarshal(got, &have), "%s", got)
			assert.Equal(t, want, have, "string %s", rt.in)
			if rt.want != "" {
				assert.Equal(t, rt.want, string(got))
			}
			return
		}
		assert.Equal(t, rt.want, string(got), "value %s", rt.in)
	}
	for i := range roundTrips {
		got, err := h.Get(ctx, fmt.Sprintf("v%02d", i))
		require.NoError(t, err)
		check(i, got)
	}
	p, err := h.List(ctx, "v", &paramstore.ListOptions{Limit: paramstore.MaxListLimit})
	require.NoError(t, err)
	require.Len(t, p.Entries, len(roundTrips))
	for i, e := range p.Entries {
		assert.Equal(t, fmt.Sprintf("v%02d", i), e.Key)
		check(i, e.Value)
	}
	// SetValue marshals Go values; the text is what digdag interpolates.
	require.NoError(t, h.SetValue(ctx, "go", map[string]any{"n": 1, "s": "x"}))
	txt, err := h.GetText(ctx, "go")
	require.NoError(t, err)
	assert.JSONEq(t, `{"n":1,"s":"x"}`, txt)
	require.NoError(t, h.SetValue(ctx, "gostr", "a<b"))
	txt, err = h.GetText(ctx, "gostr")
	require.NoError(t, err)
	assert.Equal(t, "a<b", txt)
}

func testOverwrite(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	for _, v := range []string{`"first"`, `"second"`, `42`, `{"a":[1,2]}`, `"last"`} {
		require.NoError(t, h.Set(ctx, "k", raw(v)))
		got, err := h.Get(ctx, "k")
		require.NoError(t, err)
		assert.Equal(t, v, string(got))
	}
	p, err := h.List(ctx, "", nil)
	require.NoError(t, err)
	require.Len(t, p.Entries, 1, "an overwrite must not add a second entry")
}

func testDelete(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	require.NoError(t, h.Set(ctx, "gone", raw(`"x"`)))
	require.NoError(t, h.Set(ctx, "kept", raw(`"y"`)))
	require.NoError(t, h.Delete(ctx, "gone"))
	_, err := h.Get(ctx, "gone")
	require.ErrorIs(t, err, paramstore.ErrNotFound)
	require.ErrorIs(t, h.Delete(ctx, "gone"), paramstore.ErrNotFound, "second delete")
	require.ErrorIs(t, h.Delete(ctx, "never_set"), paramstore.ErrNotFound)
	got, err := h.Get(ctx, "kept")
	require.NoError(t, err)
	assert.Equal(t, `"y"`, string(got))
	// A deleted key can be created again.
	ok, err := h.CompareAndSwap(ctx, "gone", nil, raw(`"again"`))
	require.NoError(t, err)
	assert.True(t, ok)
}

func testInvalid(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	long := make([]byte, paramstore.MaxKeyLen+1)
	for i := range long {
		long[i] = 'k'
	}
	for _, key := range []string{"", "nul\x00byte", "bad\xffutf8", string(long)} {
		require.ErrorIs(t, h.Set(ctx, key, raw(`"v"`)), paramstore.ErrInvalid, "key %q", key)
		_, err := h.Get(ctx, key)
		require.ErrorIs(t, err, paramstore.ErrInvalid)
		require.ErrorIs(t, h.Delete(ctx, key), paramstore.ErrInvalid)
	}
	for _, v := range []string{``, `   `, `text`, `{"a":}`, `'single'`, `"a" "b"`, `[1,]`, `NaN`} {
		err := h.Set(ctx, "k", raw(v))
		require.ErrorIs(t, err, paramstore.ErrInvalid, "value %q", v)
		assert.Contains(t, err.Error(), `"k"`, "the error names the key")
	}
	_, err := h.CompareAndSwap(ctx, "k", raw(`nope`), raw(`1`))
	require.ErrorIs(t, err, paramstore.ErrInvalid)
	for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond, paramstore.MaxTTL + time.Hour} {
		require.ErrorIs(t, h.WithTTL(ttl).Set(ctx, "k", raw(`1`)), paramstore.ErrInvalid, "ttl %s", ttl)
	}
	_, err = h.List(ctx, "", &paramstore.ListOptions{Limit: paramstore.MaxListLimit + 1})
	require.ErrorIs(t, err, paramstore.ErrInvalid)
	p, err := h.List(ctx, "", nil)
	require.NoError(t, err)
	assert.Empty(t, p.Entries, "nothing was written")
}

func testList(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	vals := map[string]json.RawMessage{}
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("job/%02d", i)
		want = append(want, k)
		vals[k] = raw(strconv.Itoa(i))
	}
	// Neighbours that must not match "job/", and keys with glob and LIKE
	// metacharacters.
	for _, k := range []string{"job", "job0", "jo", "jobx/1", "a*b", "a?c", "a[x]", "a%d", "a_e", `a\f`, "z"} {
		vals[k] = raw(`"n"`)
	}
	require.NoError(t, h.SetMany(ctx, vals))

	var got []string
	o := paramstore.ListOptions{Limit: 10}
	var sizes []int
	for {
		p, err := h.List(ctx, "job/", &o)
		require.NoError(t, err)
		sizes = append(sizes, len(p.Entries))
		for _, e := range p.Entries {
			got = append(got, e.Key)
			assert.Equal(t, string(vals[e.Key]), string(e.Value))
		}
		if p.Next == "" {
			break
		}
		o.After = p.Next
	}
	assert.Equal(t, want, got)
	assert.Equal(t, []int{10, 10, 5}, sizes)

	// A page that ends exactly at the last key has no Next.
	p, err := h.List(ctx, "job/", &paramstore.ListOptions{Limit: 25})
	require.NoError(t, err)
	assert.Len(t, p.Entries, 25)
	assert.Empty(t, p.Next)

	var all []string
	for e, err := range h.All(ctx, "") {
		require.NoError(t, err)
		all = append(all, e.Key)
	}
	assert.Len(t, all, len(vals))
	assert.IsIncreasing(t, all, "bytewise key order")

	for prefix, n := range map[string]int{"a*": 1, "a?": 1, "a[": 1, "a%": 1, "a_": 1, `a\`: 1, "a": 6, "jo": 29, "job": 28, "nothing": 0} {
		var keys []string
		for e, err := range h.All(ctx, prefix) {
			require.NoError(t, err)
			keys = append(keys, e.Key)
		}
		assert.Len(t, keys, n, "prefix %q: %v", prefix, keys)
	}
}

func testSetManyAtomic(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	require.NoError(t, h.Set(ctx, "a", raw(`"old"`)))
	err := h.SetMany(ctx, map[string]json.RawMessage{"a": raw(`"new"`), "b": raw(`1`), "c": raw(`{bad`)})
	require.ErrorIs(t, err, paramstore.ErrInvalid)
	err = h.SetMany(ctx, map[string]json.RawMessage{"a": raw(`"new"`), "b": raw(`1`), "": raw(`2`)})
	require.ErrorIs(t, err, paramstore.ErrInvalid)
	got, err := h.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, `"old"`, string(got), "a failed SetMany changes nothing")
	_, err = h.Get(ctx, "b")
	require.ErrorIs(t, err, paramstore.ErrNotFound, "a failed SetMany writes nothing")

	require.NoError(t, h.SetMany(ctx, map[string]json.RawMessage{"a": raw(`"new"`), "b": raw(`1`), "c": raw(`[true]`)}))
	for k, want := range map[string]string{"a": `"new"`, "b": `1`, "c": `[true]`} {
		got, err := h.Get(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
	require.NoError(t, h.SetMany(ctx, nil), "an empty SetMany is a no-op")
}

func testSetManyReaders(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	keys := []string{"snap/a", "snap/b", "snap/c", "snap/d"}
	write := func(i int) error {
		m := map[string]json.RawMessage{}
		for _, k := range keys {
			m[k] = raw(strconv.Itoa(i))
		}
		return h.SetMany(ctx, m)
	}
	require.NoError(t, write(0))
	var done atomic.Bool
	var torn atomic.Value
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				p, err := h.List(ctx, "snap/", nil)
				if err != nil {
					torn.Store(err.Error())
					return
				}
				reads.Add(1)
				if len(p.Entries) != len(keys) {
					torn.Store(fmt.Sprintf("saw %d of %d keys", len(p.Entries), len(keys)))
					return
				}
				for _, e := range p.Entries[1:] {
					if string(e.Value) != string(p.Entries[0].Value) {
						torn.Store(fmt.Sprintf("saw a partial SetMany: %v", p.Entries))
						return
					}
				}
			}
		})
	}
	// At least 150 writes, and on until the readers have read 20 times
	// while writes were going on.
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; i <= 150 || (reads.Load() < 20 && time.Now().Before(deadline)); i++ {
		require.NoError(t, write(i))
	}
	done.Store(true)
	wg.Wait()
	assert.Nil(t, torn.Load())
	assert.Positive(t, reads.Load())
}

func testTTL(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	short := h.WithTTL(time.Second)
	assert.Equal(t, time.Second, short.TTL())
	assert.Equal(t, s.TTL(), h.TTL(), "WithTTL leaves the original handle alone")
	require.NoError(t, short.Set(ctx, "short", raw(`"soon gone"`)))
	require.NoError(t, short.SetMany(ctx, map[string]json.RawMessage{"many1": raw(`1`), "many2": raw(`2`)}))
	ok, err := short.CompareAndSwap(ctx, "cas", nil, raw(`1`))
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, short.Set(ctx, "renewed", raw(`"x"`)))
	require.NoError(t, h.Set(ctx, "renewed", raw(`"y"`)), "a rewrite with the default TTL")
	require.NoError(t, h.Set(ctx, "long", raw(`"stays"`)))

	got, err := h.Get(ctx, "short")
	require.NoError(t, err, "a value is there before its TTL")
	assert.Equal(t, `"soon gone"`, string(got))

	time.Sleep(1300 * time.Millisecond)

	for _, k := range []string{"short", "many1", "many2", "cas"} {
		_, err := h.Get(ctx, k)
		require.ErrorIs(t, err, paramstore.ErrNotFound, "%s after its TTL", k)
	}
	p, err := h.List(ctx, "", nil)
	require.NoError(t, err)
	var keys []string
	for _, e := range p.Entries {
		keys = append(keys, e.Key)
	}
	assert.Equal(t, []string{"long", "renewed"}, keys, "List skips expired values")
	ok, err = h.CompareAndSwap(ctx, "short", raw(`"soon gone"`), raw(`"zombie"`))
	require.NoError(t, err)
	assert.False(t, ok, "an expired value cannot be compared against")
	require.ErrorIs(t, h.Delete(ctx, "many1"), paramstore.ErrNotFound)
	ok, err = h.CompareAndSwap(ctx, "cas", nil, raw(`2`))
	require.NoError(t, err)
	assert.True(t, ok, "an expired key counts as absent for create")
	got, err = h.Get(ctx, "cas")
	require.NoError(t, err)
	assert.Equal(t, `2`, string(got))

	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	_, err = h.Get(ctx, "long")
	require.NoError(t, err, "Sweep leaves live values")
	_, err = h.Get(ctx, "many2")
	require.ErrorIs(t, err, paramstore.ErrNotFound)
}

func testCAS(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	cas := func(old, next json.RawMessage) bool {
		t.Helper()
		ok, err := h.CompareAndSwap(ctx, "k", old, next)
		require.NoError(t, err)
		return ok
	}
	get := func() string {
		t.Helper()
		v, err := h.Get(ctx, "k")
		require.NoError(t, err)
		return string(v)
	}
	assert.False(t, cas(raw(`"x"`), raw(`"y"`)), "compare against a missing key")
	_, err := h.Get(ctx, "k")
	require.ErrorIs(t, err, paramstore.ErrNotFound)

	assert.True(t, cas(nil, raw(`"v1"`)), "create if absent")
	assert.Equal(t, `"v1"`, get())
	assert.False(t, cas(nil, raw(`"other"`)), "create when present")
	assert.Equal(t, `"v1"`, get())
	assert.False(t, cas(raw(`"wrong"`), raw(`"v2"`)), "compare mismatch")
	assert.Equal(t, `"v1"`, get())
	assert.True(t, cas(raw(`"v\u0031"`), raw(`"v2"`)), "strings compare by content")
	assert.Equal(t, `"v2"`, get())
	assert.True(t, cas(raw(`"v2"`), raw(`{"n": 1}`)), "type change")
	assert.False(t, cas(raw(`"{\"n\":1}"`), raw(`3`)), "a string is not the object it spells")
	assert.True(t, cas(raw(`{ "n" : 1 }`), raw(`null`)), "JSON compares compacted")
	assert.Equal(t, `null`, get())
	assert.False(t, cas(nil, raw(`1`)), "null is a value, not absence")
	assert.True(t, cas(raw(`null`), raw(`1.0`)))
	assert.False(t, cas(raw(`1`), raw(`2`)), "numbers compare as written")
	assert.Equal(t, `1.0`, get())
}

func testSites(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	a, b := site(t, s), site(t, s)
	require.NotEqual(t, a.ID(), b.ID())
	require.NoError(t, a.Set(ctx, "shared_name", raw(`"a"`)))
	_, err := b.Get(ctx, "shared_name")
	require.ErrorIs(t, err, paramstore.ErrNotFound)
	p, err := b.List(ctx, "", nil)
	require.NoError(t, err)
	assert.Empty(t, p.Entries)
	require.ErrorIs(t, b.Delete(ctx, "shared_name"), paramstore.ErrNotFound)
	ok, err := b.CompareAndSwap(ctx, "shared_name", nil, raw(`"b"`))
	require.NoError(t, err)
	assert.True(t, ok)
	for h, want := range map[*paramstore.Site]string{a: `"a"`, b: `"b"`} {
		got, err := h.Get(ctx, "shared_name")
		require.NoError(t, err)
		assert.Equal(t, want, string(got), "site %d", h.ID())
	}
	require.NoError(t, a.Delete(ctx, "shared_name"))
	got, err := b.Get(ctx, "shared_name")
	require.NoError(t, err)
	assert.Equal(t, `"b"`, string(got))
	// Site ids that print as prefixes of each other stay apart.
	c := s.Site(a.ID() / 10)
	t.Cleanup(func() { _ = c.Delete(context.Background(), "x") })
	require.NoError(t, c.Set(ctx, "x", raw(`1`)))
	p, err = a.List(ctx, "", nil)
	require.NoError(t, err)
	assert.Empty(t, p.Entries)
}

// Increment adds one to the integer under key with a CompareAndSwap loop
// (a missing key counts as 0), returning the number of attempts.
func Increment(ctx context.Context, h *paramstore.Site, key string) (int, error) {
	for attempt := 1; ; attempt++ {
		cur, err := h.Get(ctx, key)
		var old json.RawMessage
		n := int64(0)
		switch {
		case errors.Is(err, paramstore.ErrNotFound):
		case err != nil:
			return attempt, err
		default:
			old = cur
			if n, err = strconv.ParseInt(string(cur), 10, 64); err != nil {
				return attempt, fmt.Errorf("%s holds %s, not an integer", key, cur)
			}
		}
		ok, err := h.CompareAndSwap(ctx, key, old, paramstore.Int(n+1))
		if err != nil || ok {
			return attempt, err
		}
		if err := ctx.Err(); err != nil {
			return attempt, err
		}
	}
}

func testConcurrentCAS(t *testing.T, s *paramstore.Store) {
	ctx := t.Context()
	h := site(t, s)
	const writers, increments = 8, 25
	var wg sync.WaitGroup
	var attempts atomic.Int64
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range increments {
				n, err := Increment(ctx, h, "counter")
				attempts.Add(int64(n))
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := h.Get(ctx, "counter")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(writers*increments), string(got), "no lost update")
	t.Logf("%d increments took %d CompareAndSwap attempts", writers*increments, attempts.Load())
}

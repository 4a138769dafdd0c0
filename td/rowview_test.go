package td

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// viewRows returns a msgpack.gz stream of rows with every cell type and
// width, some cells longer than the inflater's buffer (so rows span them).
func viewRows(t testing.TB, n int) []byte {
	var raw bytes.Buffer
	enc := msgpack.NewEncoder(&raw)
	ok := func(err error) { require.NoError(t, err) }
	for i := range n {
		ok(enc.EncodeArrayLen(17))
		ok(enc.EncodeNil())
		ok(enc.EncodeBool(i%2 == 0))
		ok(enc.EncodeInt(int64(i)))
		ok(enc.EncodeInt8(-5))
		ok(enc.EncodeInt16(math.MinInt16))
		ok(enc.EncodeInt32(math.MinInt32))
		ok(enc.EncodeInt64(math.MinInt64))
		ok(enc.EncodeUint64(7))
		ok(enc.EncodeUint64(math.MaxUint64))
		ok(enc.EncodeFloat32(1.25))
		ok(enc.EncodeFloat64(float64(i) / 3))
		s := "row"
		if i%5000 == 17 {
			s = strings.Repeat("long", 100_000) // 400 KB: across buffers
		}
		ok(enc.EncodeString(s))
		ok(enc.EncodeBytes([]byte{0, 1, 2}))
		ok(enc.Encode([]any{int64(1), "x"}))
		ok(enc.Encode(map[string]any{"k": 2.5}))
		ok(enc.EncodeExtHeader(-1, 4)) // timestamp
		raw.Write([]byte{0, 0, 0, 9})
		ok(enc.EncodeUint8(200))
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write(raw.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// TestNextRowEqualsNext reads the same stream through Next (the boxed
// reference) and NextRow: Value of every cell equals Next's, and the
// typed getters agree with it.
func TestNextRowEqualsNext(t *testing.T) {
	data := viewRows(t, 12000)
	ref, err := NewRowReader(bytes.NewReader(data), nil)
	require.NoError(t, err)
	defer ref.Close()
	rr, err := NewRowReader(bytes.NewReader(data), nil)
	require.NoError(t, err)
	defer rr.Close()
	kinds := map[Kind]int{}
	for {
		want, werr := ref.Next()
		row, err := rr.NextRow()
		if werr == io.EOF {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		require.NoError(t, werr)
		require.NoError(t, err)
		require.Equal(t, len(want), row.Len())
		for i, w := range want {
			got, err := row.Value(i)
			require.NoError(t, err)
			require.Equal(t, w, got, "row %d cell %d", rr.Count(), i)
			k := row.Kind(i)
			kinds[k]++
			switch x := w.(type) {
			case nil:
				assert.Equal(t, KindNull, k)
				assert.True(t, row.IsNull(i))
			case bool:
				v, ok := row.Bool(i)
				assert.True(t, ok && v == x && k == KindBool)
			case int64:
				v, ok := row.Int(i)
				assert.True(t, ok && v == x && k == KindInt, "cell %d", i)
			case uint64:
				v, ok := row.Uint(i)
				assert.True(t, ok && v == x && k == KindUint)
				_, ok = row.Int(i)
				assert.False(t, ok)
			case float64:
				v, ok := row.Float(i)
				assert.True(t, ok && v == x && k == KindFloat)
			case string:
				v, ok := row.String(i)
				assert.True(t, ok && v == x && (k == KindString || k == KindBinary), "cell %d %s", i, k)
			}
		}
	}
	assert.Equal(t, ref.Count(), rr.Count())
	for k := KindNull; k <= KindExt; k++ {
		assert.Positive(t, kinds[k], "no cell of kind %s", k)
	}
}

// TestNextRowMixedWithNext: the two read the same rows in turn.
func TestNextRowMixedWithNext(t *testing.T) {
	data := viewRows(t, 6000)
	rr, err := NewRowReader(bytes.NewReader(data), nil)
	require.NoError(t, err)
	defer rr.Close()
	for i := int64(0); ; i++ {
		var id any
		if i%3 == 0 {
			row, err := rr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			id = row[2]
		} else {
			row, err := rr.NextRow()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			n, _ := row.Int(2)
			id = n
		}
		require.Equal(t, i, id)
	}
	require.EqualValues(t, 6000, rr.Count())
}

// TestNextRowTruncated: a stream cut inside a row is ErrTruncated, never a
// silent end; garbage is a ProtocolError.
func TestNextRowTruncated(t *testing.T) {
	var raw bytes.Buffer
	enc := msgpack.NewEncoder(&raw)
	require.NoError(t, enc.Encode([]any{int64(1), "a"}))
	require.NoError(t, enc.Encode([]any{int64(2), "bbbbbbbb"}))
	cut := raw.Bytes()[:raw.Len()-3]
	for name, c := range map[string]struct {
		raw  []byte
		want error
	}{
		"cut":     {cut, ErrTruncated},
		"garbage": {[]byte{0x92, 0xc1, 0x01}, ErrProtocol},
	} {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(c.raw)
		zw.Close()
		rr, err := NewRowReader(&b, nil)
		require.NoError(t, err)
		var last error
		for {
			_, err := rr.NextRow()
			if err != nil {
				last = err
				break
			}
		}
		rr.Close()
		assert.True(t, errors.Is(last, c.want), "%s: %v", name, last)
	}
}

// BenchmarkNextRow reads www_access-like rows through the row view; one
// op is one row (allocs/op is allocations per row).
func BenchmarkNextRow(b *testing.B) {
	benchRows(b, func(rr *RowReader) error {
		row, err := rr.NextRow()
		if err != nil {
			return err
		}
		for i := range row.Len() {
			switch row.Kind(i) {
			case KindInt:
				row.Int(i)
			case KindString:
				row.Bytes(i)
			}
		}
		return nil
	})
}

// BenchmarkNext is the same with Next (every cell boxed), for comparison.
func BenchmarkNext(b *testing.B) {
	benchRows(b, func(rr *RowReader) error {
		_, err := rr.Next()
		return err
	})
}

func benchRows(b *testing.B, next func(*RowReader) error) {
	var raw bytes.Buffer
	enc := msgpack.NewEncoder(&raw)
	const n = 100_000
	for i := range n {
		require.NoError(b, enc.Encode([]any{nil, "10.0.0.1", "/category/electronics", "-", int64(200), "Mozilla/5.0 (compatible; Googlebot/2.1)", int64(i % 200), "GET", int64(1412000000 + i)}))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	data := gz.Bytes()
	open := func() *RowReader {
		rr, err := NewRowReader(bytes.NewReader(data), nil)
		require.NoError(b, err)
		return rr
	}
	rr := open()
	b.ReportAllocs()
	b.SetBytes(int64(raw.Len() / n))
	b.ResetTimer()
	for range b.N {
		err := next(rr)
		if err == io.EOF {
			rr.Close()
			rr = open()
			err = next(rr)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rr.Close()
}

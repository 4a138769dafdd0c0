package td

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// TestRowsScalarsMatchTheDecoder: the RowReader's own scalar decoding
// (scalar) gives what the msgpack decoder's loose mode gives, for every
// scalar code, with cells across chunk boundaries (left to the decoder)
// and containers and bin mixed in.
func TestRowsScalarsMatchTheDecoder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	var raw bytes.Buffer
	enc := msgpack.NewEncoder(&raw)
	enc.UseCompactInts(true)
	cells := []func() error{
		func() error { return enc.EncodeInt(int64(rnd.IntN(256)) - 128) }, // fixints, int8, uint8
		func() error { return enc.EncodeInt8(int8(rnd.Uint32())) },
		func() error { return enc.EncodeInt16(int16(rnd.Uint32())) },
		func() error { return enc.EncodeInt32(int32(rnd.Uint32())) },
		func() error { return enc.EncodeInt64(int64(rnd.Uint64())) },
		func() error { return enc.EncodeUint8(uint8(rnd.Uint32())) },
		func() error { return enc.EncodeUint16(uint16(rnd.Uint32())) },
		func() error { return enc.EncodeUint32(rnd.Uint32()) },
		func() error { return enc.EncodeUint64(rnd.Uint64()) }, // above MaxInt64 half the time
		func() error { return enc.EncodeFloat32(rnd.Float32() * 1e6) },
		func() error { return enc.EncodeFloat64(rnd.NormFloat64() * 1e12) },
		func() error { return enc.EncodeFloat64(math.Inf(-1)) },
		func() error { return enc.EncodeNil() },
		func() error { return enc.EncodeBool(rnd.IntN(2) == 0) },
		func() error { return enc.EncodeString(strings.Repeat("é", rnd.IntN(16))) },       // fixstr
		func() error { return enc.EncodeString(strings.Repeat("a", 32+rnd.IntN(200))) },   // str8
		func() error { return enc.EncodeString(strings.Repeat("b", 256+rnd.IntN(2000))) }, // str16
		func() error {
			if rnd.IntN(500) == 0 {
				return enc.EncodeString(strings.Repeat("c", 70000)) // str32
			}
			return enc.EncodeString("")
		},
		func() error { return enc.EncodeBytes([]byte{1, 2, 3}) },
		func() error { return enc.Encode([]any{int64(1), "x", nil}) },
		func() error { return enc.Encode(map[string]any{"k": 1.5}) },
	}
	const rows = 20000
	for i := 0; i < rows; i++ {
		n := 1 + rnd.IntN(12)
		require.NoError(t, enc.EncodeArrayLen(n))
		for j := 0; j < n; j++ {
			require.NoError(t, cells[rnd.IntN(len(cells))]())
		}
	}
	require.Greater(t, raw.Len(), 8*rowChunkSize, "enough data to cross many chunk boundaries")

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(raw.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	rr, err := NewRowReader(&gz, nil)
	require.NoError(t, err)
	defer rr.Close()

	ref := msgpack.NewDecoder(bytes.NewReader(raw.Bytes()))
	for i := 0; i < rows; i++ {
		got, err := rr.Next()
		require.NoError(t, err, "row %d", i)
		n, err := ref.DecodeArrayLen()
		require.NoError(t, err)
		require.Len(t, got, n, "row %d", i)
		for j := 0; j < n; j++ {
			want, err := ref.DecodeInterfaceLoose()
			require.NoError(t, err)
			switch w := want.(type) {
			case uint64:
				if w <= math.MaxInt64 {
					want = int64(w)
				}
			case []any, map[string]any, map[any]any:
				continue // containers: decoded by value's own loops
			}
			require.Equal(t, want, got[j], "row %d cell %d", i, j)
		}
	}
	_, err = rr.Next()
	require.Equal(t, io.EOF, err)
}

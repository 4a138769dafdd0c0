package shared

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdctl/tdctl/td"
)

// everyType returns rows holding a cell of every msgpack type and width,
// the values csv, tsv and JSON treat specially, and rows longer and
// shorter than the schema.
func everyType(t testing.TB) []byte {
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	type cell func()
	str := func(s string) cell { return func() { must(enc.EncodeString(s)) } }
	cells := []cell{
		func() { must(enc.EncodeNil()) },
		func() { must(enc.EncodeBool(true)) },
		func() { must(enc.EncodeBool(false)) },
		func() { must(enc.EncodeInt(5)) },  // positive fixint
		func() { must(enc.EncodeInt(-7)) }, // negative fixint
		func() { must(enc.EncodeInt8(math.MinInt8)) },
		func() { must(enc.EncodeInt16(math.MinInt16)) },
		func() { must(enc.EncodeInt32(math.MinInt32)) },
		func() { must(enc.EncodeInt64(math.MinInt64)) },
		func() { must(enc.EncodeInt64(math.MaxInt64)) },
		func() { must(enc.EncodeUint8(math.MaxUint8)) },
		func() { must(enc.EncodeUint16(math.MaxUint16)) },
		func() { must(enc.EncodeUint32(math.MaxUint32)) },
		func() { must(enc.EncodeUint64(42)) },
		func() { must(enc.EncodeUint64(math.MaxUint64)) },
		func() { must(enc.EncodeFloat32(1.1)) },
		func() { must(enc.EncodeFloat32(float32(math.Inf(-1)))) },
		func() { must(enc.EncodeFloat64(0)) },
		func() { must(enc.EncodeFloat64(math.Copysign(0, -1))) },
		func() { must(enc.EncodeFloat64(1.5)) },
		func() { must(enc.EncodeFloat64(123456789.125)) },
		func() { must(enc.EncodeFloat64(1e21)) },
		func() { must(enc.EncodeFloat64(-2.5e-7)) },
		func() { must(enc.EncodeFloat64(1e-9)) },
		func() { must(enc.EncodeFloat64(1e300)) },
		func() { must(enc.EncodeFloat64(math.NaN())) },
		func() { must(enc.EncodeFloat64(math.Inf(1))) },
		func() { must(enc.EncodeFloat64(math.Inf(-1))) },
		str(""), str("plain"), str("a,b"), str(`say "hi"`), str("two\nlines"), str("crlf\r\nend"),
		str("cr\ronly"), str("tab\there"), str(" leading space"), str("\tleading tab"),
		str("\u00a0nbsp first"), str("\u3000ideographic space"), str(`\.`), str(`\.x`),
		str("<b>&amp;</b>"), str("bad \xff\xfe utf8"), str("\xff"), str("sep\u2028\u2029"),
		str("ctl \x00\x01\x08\x0c\x1f\x7f"), str("0123456789,"), str("01234567\n89"), str("0123456789abcdef\""), str("back\\slash"), str("日本語 ✓ 🍣"),
		str(strings.Repeat("x", 40)),     // str8
		str(strings.Repeat("y", 300)),    // str16
		str(strings.Repeat("z,", 40000)), // str32
		func() { must(enc.EncodeBytes(nil)) },
		func() { must(enc.EncodeBytes([]byte{})) },
		func() { must(enc.EncodeBytes([]byte("bin,\"\n\x00\xff"))) },
		func() { must(enc.EncodeBytes(bytes.Repeat([]byte{1, 2}, 200))) },
		func() { must(enc.Encode([]any{int64(1), "two", nil, 3.5, true, []any{}})) },
		func() { must(enc.Encode(map[string]any{"b": int64(1), "a": "x<y", "c": []any{nil}})) },
		func() { must(enc.Encode(map[int64]any{2: "two", 1: "one"})) },
		func() { must(enc.Encode([]any{map[string]any{"deep": []any{[]any{[]any{"x"}}}}})) },
		func() { must(enc.Encode(map[string]any{})) },
		func() { must(enc.Encode([]any{[]byte("b"), 2.5, uint64(math.MaxUint64)})) },
		func() { // timestamp extension (-1), 4 bytes of seconds
			must(enc.EncodeExtHeader(-1, 4))
			b.Write([]byte{0, 0, 0, 100})
		},
		func() { // timestamp extension, 8 bytes
			must(enc.EncodeExtHeader(-1, 8))
			b.Write([]byte{0, 0, 0, 4, 0, 0, 0, 100})
		},
	}
	// one row of everything; then every cell alone in a row of 3 (more
	// cells than the 2-column schema); then www_access-like rows enough to
	// span several of the inflater's 256 KiB buffers
	must(enc.EncodeArrayLen(len(cells)))
	for _, c := range cells {
		c()
	}
	for _, c := range cells {
		must(enc.EncodeArrayLen(3))
		str("k")()
		c()
		must(enc.EncodeInt(-1))
	}
	must(enc.EncodeArrayLen(0))
	for i := range 30000 {
		must(enc.Encode([]any{nil, "10.0.0." + strings.Repeat("1", i%7), "/item/" + strings.Repeat("books/", i%5), int64(200 + i%3), float64(i) / 7, i%2 == 0}))
	}
	return b.Bytes()
}

func gz(t testing.TB, raw []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// both writes the msgpack.gz stream in format through the boxed reference
// (writeRowsBoxed) and through transcode.
func both(t testing.TB, data []byte, format string, header bool) (ref, got []byte, refErr, gotErr error) {
	cols := []string{"name", "v,al\"ue"}
	var rb, gb bytes.Buffer
	rr, err := td.NewRowReader(bytes.NewReader(data), nil)
	if err != nil {
		return nil, nil, err, err
	}
	refErr = writeRowsBoxed(rr, &rb, format, cols, header, 0)
	rr.Close()
	rr, err = td.NewRowReader(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	gotErr = transcode(rr, &gb, format, cols, header)
	rr.Close()
	return rb.Bytes(), gb.Bytes(), refErr, gotErr
}

var transcodeCases = []struct {
	format string
	header bool
}{{"csv", false}, {"csv", true}, {"tsv", false}, {"tsv", true}, {"json", false}, {"jsonl", false}}

// TestTranscodeEqualsBoxed holds the transcoder's output byte for byte
// equal to the boxed reference path for every msgpack type.
func TestTranscodeEqualsBoxed(t *testing.T) {
	data := gz(t, everyType(t))
	for _, c := range transcodeCases {
		ref, got, refErr, gotErr := both(t, data, c.format, c.header)
		require.NoError(t, refErr, c.format)
		require.NoError(t, gotErr, c.format)
		require.Greater(t, len(ref), 1<<20, "sanity: several inflater buffers")
		if !bytes.Equal(ref, got) {
			i := 0
			for i < min(len(ref), len(got)) && ref[i] == got[i] {
				i++
			}
			t.Fatalf("%s (header %v): output differs at byte %d:\nboxed:     %q\ntranscode: %q", c.format, c.header, i,
				ref[max(0, i-80):min(len(ref), i+80)], got[max(0, i-80):min(len(got), i+80)])
		}
	}
}

// TestTranscodeEmpty: no rows (json is "[]").
func TestTranscodeEmpty(t *testing.T) {
	for _, c := range transcodeCases {
		ref, got, refErr, gotErr := both(t, gz(t, nil), c.format, c.header)
		require.NoError(t, refErr)
		require.NoError(t, gotErr)
		require.Equal(t, string(ref), string(got), c.format)
	}
}

// TestTranscodeErrors: bad and cut streams fail both paths alike.
func TestTranscodeErrors(t *testing.T) {
	good := everyType(t)
	for name, raw := range map[string][]byte{
		"cut in a row":   good[:len(good)-3],
		"nil row":        {0xc0},
		"not an array":   {0x05},
		"invalid code":   {0x91, 0xc1},
		"unknown ext":    {0x91, 0xd4, 0x05, 0x01},
		"too deep":       append(append([]byte{0x91}, bytes.Repeat([]byte{0x91}, 70)...), 0x01),
		"huge claim":     {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01},
		"huge str claim": {0x91, 0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'},
	} {
		for _, c := range transcodeCases {
			_, _, refErr, gotErr := both(t, gz(t, raw), c.format, c.header)
			require.Error(t, refErr, name)
			require.Error(t, gotErr, "%s %s", name, c.format)
		}
	}
}

// FuzzTranscode compares the two paths on arbitrary msgpack streams:
// both fail, or both write the same bytes.
func FuzzTranscode(f *testing.F) {
	f.Add(everyType(f)[:4096])
	f.Add([]byte{0x93, 0xc0, 0xa1, 'x', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x92, 0x81, 0xa1, 'k', 0x91, 0xc4, 0x01, 0xff, 0xd6, 0xff, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		data := gz(t, raw)
		for _, c := range transcodeCases {
			ref, got, refErr, gotErr := both(t, data, c.format, c.header)
			if (refErr == nil) != (gotErr == nil) {
				t.Fatalf("%s: boxed error %v, transcode error %v", c.format, refErr, gotErr)
			}
			if refErr == nil && !bytes.Equal(ref, got) {
				t.Fatalf("%s: boxed %q\ntranscode %q", c.format, ref, got)
			}
		}
	})
}

// BenchmarkTranscode converts 100k www_access-like rows (msgpack.gz) to
// each format, inflating on the side as `tdctl job result` does.
func BenchmarkTranscode(b *testing.B) {
	var raw bytes.Buffer
	enc := msgpack.NewEncoder(&raw)
	const n = 100_000
	for i := range n {
		if err := enc.Encode([]any{nil, "10.0.0.1", "/category/electronics", "-", int64(200), "Mozilla/5.0 (compatible; Googlebot/2.1)", int64(i % 200), "GET", int64(1412000000 + i)}); err != nil {
			b.Fatal(err)
		}
	}
	data := gz(b, raw.Bytes())
	for _, format := range []string{"csv", "tsv", "jsonl"} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(raw.Len()))
			for range b.N {
				rr, err := td.NewRowReader(bytes.NewReader(data), nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := transcode(rr, io.Discard, format, []string{"user", "host", "path", "referer", "code", "agent", "size", "method", "time"}, false); err != nil {
					b.Fatal(err)
				}
				rr.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}

package td

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Kind is the type of one cell of a Row.
type Kind uint8

// Cell kinds. An integer is KindInt when it fits an int64 (whatever its
// msgpack width or signedness) and KindUint above math.MaxInt64; float32
// and float64 are both KindFloat.
const (
	KindNull Kind = iota
	KindBool
	KindInt
	KindUint
	KindFloat
	KindString
	KindBinary
	KindArray
	KindMap
	KindExt
)

var kindNames = [...]string{"null", "bool", "int", "uint", "float", "string", "binary", "array", "map", "ext"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Row is a view of one result row whose cells are read in place, without
// boxing them into interfaces: Int, Float, Bool and Bytes allocate
// nothing. A Row and every slice it returns are valid only until the next
// call of NextRow, Next or Close on its reader: copy what you keep.
type Row struct {
	buf  []byte // the row's msgpack encoding
	offs []int  // cell i is buf[offs[i]:offs[i+1]]
}

// Len returns the number of cells.
func (r *Row) Len() int { return len(r.offs) - 1 }

// Raw returns cell i's msgpack encoding.
func (r *Row) Raw(i int) []byte { return r.buf[r.offs[i]:r.offs[i+1]] }

// Kind returns the type of cell i.
func (r *Row) Kind(i int) Kind {
	c := r.buf[r.offs[i]]
	switch {
	case c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow:
		return KindInt
	case msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32:
		return KindString
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		return KindArray
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		return KindMap
	}
	switch c {
	case msgpcode.Nil:
		return KindNull
	case msgpcode.False, msgpcode.True:
		return KindBool
	case msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64,
		msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32:
		return KindInt
	case msgpcode.Uint64:
		if r.uint(i) > math.MaxInt64 {
			return KindUint
		}
		return KindInt
	case msgpcode.Float, msgpcode.Double:
		return KindFloat
	case msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32:
		return KindBinary
	}
	return KindExt // the framing accepted nothing else
}

// IsNull reports whether cell i is NULL.
func (r *Row) IsNull(i int) bool { return r.buf[r.offs[i]] == msgpcode.Nil }

// uint returns the big-endian number after cell i's code.
func (r *Row) uint(i int) uint64 {
	u := uint64(0)
	for _, x := range r.buf[r.offs[i]+1 : r.offs[i+1]] {
		u = u<<8 | uint64(x)
	}
	return u
}

// Int returns cell i as an int64; ok is false unless its Kind is KindInt.
func (r *Row) Int(i int) (v int64, ok bool) {
	c := r.buf[r.offs[i]]
	switch {
	case c <= msgpcode.PosFixedNumHigh:
		return int64(c), true
	case c >= msgpcode.NegFixedNumLow:
		return int64(int8(c)), true
	}
	switch c {
	case msgpcode.Int8:
		return int64(int8(r.uint(i))), true
	case msgpcode.Int16:
		return int64(int16(r.uint(i))), true
	case msgpcode.Int32:
		return int64(int32(r.uint(i))), true
	case msgpcode.Int64:
		return int64(r.uint(i)), true
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64:
		if u := r.uint(i); u <= math.MaxInt64 {
			return int64(u), true
		}
	}
	return 0, false
}

// Uint returns cell i as a uint64 when it is a non-negative integer.
func (r *Row) Uint(i int) (v uint64, ok bool) {
	if c := r.buf[r.offs[i]]; c == msgpcode.Uint64 {
		return r.uint(i), true
	}
	if n, ok := r.Int(i); ok && n >= 0 {
		return uint64(n), true
	}
	return 0, false
}

// Float returns cell i as a float64 when it is a float32 or float64.
func (r *Row) Float(i int) (v float64, ok bool) {
	switch r.buf[r.offs[i]] {
	case msgpcode.Float:
		return float64(math.Float32frombits(uint32(r.uint(i)))), true
	case msgpcode.Double:
		return math.Float64frombits(r.uint(i)), true
	}
	return 0, false
}

// Bool returns cell i as a bool when it is one.
func (r *Row) Bool(i int) (v bool, ok bool) {
	switch r.buf[r.offs[i]] {
	case msgpcode.True:
		return true, true
	case msgpcode.False:
		return false, true
	}
	return false, false
}

// Bytes returns the bytes of a string or binary cell i, in place (not a
// copy: valid until the next row).
func (r *Row) Bytes(i int) (b []byte, ok bool) {
	cell := r.buf[r.offs[i]:r.offs[i+1]]
	c := cell[0]
	pre := 0
	switch {
	case msgpcode.IsFixedString(c):
		return cell[1:], true
	case c == msgpcode.Str8 || c == msgpcode.Bin8:
		pre = 1
	case c == msgpcode.Str16 || c == msgpcode.Bin16:
		pre = 2
	case c == msgpcode.Str32 || c == msgpcode.Bin32:
		pre = 4
	default:
		return nil, false
	}
	return cell[1+pre:], true
}

// String returns cell i as a string when it is a string or binary (this
// copies the bytes; use Bytes to avoid it).
func (r *Row) String(i int) (s string, ok bool) {
	b, ok := r.Bytes(i)
	return string(b), ok
}

// Value returns cell i boxed, exactly as Next gives it (nil, bool, int64,
// uint64, float64, string, []byte, []any, map[string]any, ...). It
// allocates: use it for arrays, maps and extension types.
func (r *Row) Value(i int) (any, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(r.Raw(i)))
	dec.UseLooseInterfaceDecoding(true)
	return decodeValue(dec, 0, nil)
}

// errShort: the bytes end inside the row (more are needed).
var errShort = errors.New("short row")

// frame sets r to the row at the start of b and returns its length in
// bytes; errShort when b ends inside it.
func (r *Row) frame(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errShort
	}
	n, p := 0, 1
	switch c := b[0]; {
	case msgpcode.IsFixedArray(c):
		n = int(c & msgpcode.FixedArrayMask)
	case c == msgpcode.Array16 || c == msgpcode.Array32:
		w := 2
		if c == msgpcode.Array32 {
			w = 4
		}
		if len(b) < 1+w {
			return 0, errShort
		}
		n, p = int(be(b[1:1+w])), 1+w
	case c == msgpcode.Nil:
		return 0, errors.New("nil row")
	default:
		return 0, fmt.Errorf("msgpack: invalid code=%x decoding array length", c)
	}
	r.offs = r.offs[:0]
	for range n {
		r.offs = append(r.offs, p)
		q, err := skip(b, p, 0)
		if err != nil {
			return 0, err
		}
		p = q
	}
	r.offs = append(r.offs, p)
	r.buf = b[:p]
	return p, nil
}

func be(b []byte) uint64 {
	u := uint64(0)
	for _, x := range b {
		u = u<<8 | uint64(x)
	}
	return u
}

// skip returns the offset after the value at b[p]; containers nest at
// most maxDepth deep, as for Next.
func skip(b []byte, p, depth int) (int, error) {
	if p >= len(b) {
		return 0, errShort
	}
	c := b[p]
	size, pre, items := 0, 0, -1 // fixed size after the code; length prefix; container items
	switch {
	case c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow:
		return p + 1, nil
	case msgpcode.IsFixedString(c):
		size = int(c & msgpcode.FixedStrMask)
	case msgpcode.IsFixedArray(c):
		items = int(c & msgpcode.FixedArrayMask)
	case msgpcode.IsFixedMap(c):
		items = 2 * int(c&msgpcode.FixedMapMask)
	default:
		switch c {
		case msgpcode.Nil, msgpcode.False, msgpcode.True:
			return p + 1, nil
		case msgpcode.Uint8, msgpcode.Int8:
			size = 1
		case msgpcode.Uint16, msgpcode.Int16:
			size = 2
		case msgpcode.Uint32, msgpcode.Int32, msgpcode.Float:
			size = 4
		case msgpcode.Uint64, msgpcode.Int64, msgpcode.Double:
			size = 8
		case msgpcode.FixExt1:
			size = 2
		case msgpcode.FixExt2:
			size = 3
		case msgpcode.FixExt4:
			size = 5
		case msgpcode.FixExt8:
			size = 9
		case msgpcode.FixExt16:
			size = 17
		case msgpcode.Str8, msgpcode.Bin8:
			pre = 1
		case msgpcode.Str16, msgpcode.Bin16:
			pre = 2
		case msgpcode.Str32, msgpcode.Bin32:
			pre = 4
		case msgpcode.Ext8:
			pre, size = 1, 1 // the type byte
		case msgpcode.Ext16:
			pre, size = 2, 1
		case msgpcode.Ext32:
			pre, size = 4, 1
		case msgpcode.Array16, msgpcode.Map16:
			pre, items = 2, 0
		case msgpcode.Array32, msgpcode.Map32:
			pre, items = 4, 0
		default:
			return 0, fmt.Errorf("msgpack: invalid code=%x decoding value", c)
		}
	}
	p++
	if pre > 0 {
		if len(b)-p < pre {
			return 0, errShort
		}
		n := be(b[p : p+pre])
		p += pre
		if items >= 0 {
			items = int(n)
			if c == msgpcode.Map16 || c == msgpcode.Map32 {
				items *= 2
			}
		} else {
			if n > uint64(len(b)) { // never overflow below
				return 0, errShort
			}
			size += int(n)
		}
	}
	if items >= 0 {
		if depth >= maxDepth {
			return 0, errors.New("values nested too deeply")
		}
		for range items {
			q, err := skip(b, p, depth+1)
			if err != nil {
				return 0, err
			}
			p = q
		}
		return p, nil
	}
	if len(b)-p < size {
		return 0, errShort
	}
	return p + size, nil
}

// NextRow returns a view of the next row, or io.EOF after the last one;
// nothing is boxed or copied (but a row that spans two of the inflater's
// buffers, once per 256 KiB). The Row is reused: it and the slices it
// returns are valid until the next call of NextRow, Next or Close. A
// result cut short is an error matching ErrTruncated. NextRow and Next
// may be mixed; they read the same rows in turn.
func (rr *RowReader) NextRow() (*Row, error) {
	if rr.err != nil {
		return nil, rr.err
	}
	b := rr.cur.buf[rr.pos:]
	n, err := rr.view.frame(b)
	if err == nil {
		rr.pos += n
		rr.rows++
		return &rr.view, nil
	}
	if err != errShort {
		return nil, rr.fail(err)
	}
	// The row continues in the next buffer(s): gather it in carry, taking
	// the next buffer's bytes a little at a time (a row is usually short).
	carry := append(rr.carry[:0], b...)
	rr.pos = len(rr.cur.buf)
	take := max(512, len(carry))
	for {
		if rr.pos >= len(rr.cur.buf) {
			if err := rr.nextChunk(); err != nil {
				if err == io.EOF {
					if len(carry) == 0 {
						rr.err = io.EOF
						return nil, io.EOF
					}
					err = fmt.Errorf("%w: a row ended early", ErrTruncated)
				}
				return nil, rr.fail(err)
			}
			continue
		}
		base := len(carry)
		k := min(take, len(rr.cur.buf)-rr.pos)
		carry = append(carry, rr.cur.buf[rr.pos:rr.pos+k]...)
		rr.carry = carry
		n, err := rr.view.frame(carry)
		switch {
		case err == nil:
			rr.pos += n - base
			rr.rows++
			return &rr.view, nil
		case err != errShort:
			return nil, rr.fail(err)
		}
		rr.pos += k
		take *= 2
	}
}

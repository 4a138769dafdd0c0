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
	buf   []byte // the row's msgpack encoding
	offs  []int  // cell i is buf[offs[i]:offs[i+1]]
	kinds []Kind // cell i's kind
}

// Len returns the number of cells.
func (r *Row) Len() int { return len(r.offs) - 1 }

// Raw returns cell i's msgpack encoding.
func (r *Row) Raw(i int) []byte { return r.buf[r.offs[i]:r.offs[i+1]] }

// Kind returns the type of cell i.
func (r *Row) Kind(i int) Kind { return r.kinds[i] }

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
	if k := r.kinds[i]; k != KindString && k != KindBinary {
		return nil, false
	}
	start := r.offs[i]
	return r.buf[start+int(codes[r.buf[start]].pre)+1 : r.offs[i+1]], true
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
	r.offs, r.kinds = r.offs[:0], r.kinds[:0]
	for range n {
		q, err := skip(b, p, 0)
		if err != nil {
			return 0, err
		}
		k := codes[b[p]].kind
		if k == KindUint && be(b[p+1:q]) <= math.MaxInt64 {
			k = KindInt
		}
		r.offs, r.kinds = append(r.offs, p), append(r.kinds, k)
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

// codeInfo describes a msgpack type code: the bytes that follow it are
// size, plus a length of pre bytes (strings, binary, ext), or items
// values (arrays, maps; with pre, their count follows in pre bytes).
type codeInfo struct {
	kind      Kind
	size      uint8
	pre       uint8
	container bool // items values follow (count: items, or read from pre bytes)
	items     uint8
	valid     bool
}

// codes describes every msgpack type code (uint64 is KindUint here:
// frame makes it KindInt when it fits).
var codes = func() (t [256]codeInfo) {
	for i := range 256 {
		c := byte(i)
		ci := &t[c]
		ci.valid = true
		switch {
		case c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow:
			ci.kind = KindInt
		case msgpcode.IsFixedMap(c):
			ci.kind, ci.container, ci.items = KindMap, true, 2*(c&msgpcode.FixedMapMask)
		case msgpcode.IsFixedArray(c):
			ci.kind, ci.container, ci.items = KindArray, true, c&msgpcode.FixedArrayMask
		case msgpcode.IsFixedString(c):
			ci.kind, ci.size = KindString, c&msgpcode.FixedStrMask
		}
	}
	set := func(c byte, k Kind, size, pre uint8) { t[c] = codeInfo{kind: k, size: size, pre: pre, valid: true} }
	set(msgpcode.Nil, KindNull, 0, 0)
	set(msgpcode.False, KindBool, 0, 0)
	set(msgpcode.True, KindBool, 0, 0)
	set(msgpcode.Uint8, KindInt, 1, 0)
	set(msgpcode.Uint16, KindInt, 2, 0)
	set(msgpcode.Uint32, KindInt, 4, 0)
	set(msgpcode.Uint64, KindUint, 8, 0)
	set(msgpcode.Int8, KindInt, 1, 0)
	set(msgpcode.Int16, KindInt, 2, 0)
	set(msgpcode.Int32, KindInt, 4, 0)
	set(msgpcode.Int64, KindInt, 8, 0)
	set(msgpcode.Float, KindFloat, 4, 0)
	set(msgpcode.Double, KindFloat, 8, 0)
	set(msgpcode.Str8, KindString, 0, 1)
	set(msgpcode.Str16, KindString, 0, 2)
	set(msgpcode.Str32, KindString, 0, 4)
	set(msgpcode.Bin8, KindBinary, 0, 1)
	set(msgpcode.Bin16, KindBinary, 0, 2)
	set(msgpcode.Bin32, KindBinary, 0, 4)
	set(msgpcode.FixExt1, KindExt, 2, 0) // the type byte and the data
	set(msgpcode.FixExt2, KindExt, 3, 0)
	set(msgpcode.FixExt4, KindExt, 5, 0)
	set(msgpcode.FixExt8, KindExt, 9, 0)
	set(msgpcode.FixExt16, KindExt, 17, 0)
	set(msgpcode.Ext8, KindExt, 1, 1)
	set(msgpcode.Ext16, KindExt, 1, 2)
	set(msgpcode.Ext32, KindExt, 1, 4)
	t[msgpcode.Array16] = codeInfo{kind: KindArray, pre: 2, container: true, valid: true}
	t[msgpcode.Array32] = codeInfo{kind: KindArray, pre: 4, container: true, valid: true}
	t[msgpcode.Map16] = codeInfo{kind: KindMap, pre: 2, container: true, valid: true}
	t[msgpcode.Map32] = codeInfo{kind: KindMap, pre: 4, container: true, valid: true}
	t[0xc1] = codeInfo{} // never used
	return t
}()

// skip returns the offset after the value at b[p]; containers nest at
// most maxDepth deep, as for Next.
func skip(b []byte, p, depth int) (int, error) {
	if p >= len(b) {
		return 0, errShort
	}
	c := b[p]
	ci := &codes[c]
	p++
	if !ci.container {
		if ci.pre == 0 {
			if ci.size == 0 {
				if !ci.valid {
					return 0, fmt.Errorf("msgpack: invalid code=%x decoding value", c)
				}
				return p, nil
			}
			if p += int(ci.size); p > len(b) {
				return 0, errShort
			}
			return p, nil
		}
		pre := int(ci.pre)
		if len(b)-p < pre {
			return 0, errShort
		}
		n := be(b[p : p+pre])
		p += pre
		if n > uint64(len(b)-p) { // never overflows below
			return 0, errShort
		}
		if p += int(n) + int(ci.size); p > len(b) {
			return 0, errShort
		}
		return p, nil
	}
	items := int(ci.items)
	if ci.pre > 0 {
		pre := int(ci.pre)
		if len(b)-p < pre {
			return 0, errShort
		}
		items = int(be(b[p : p+pre]))
		if ci.kind == KindMap {
			items *= 2
		}
		p += pre
	}
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

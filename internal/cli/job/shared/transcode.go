package shared

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/tdctl/tdctl/td"
)

// transcode writes the rows as csv, tsv, json or jsonl straight from their
// msgpack bytes (td.Row): no value is boxed and nothing is allocated per
// row for nulls, booleans, numbers and strings. Arrays, maps, binary and
// extension values (rare in results) take the boxed path, formatted by
// the same functions as writeRowsBoxed, which stays the reference: the
// output is byte for byte the same (transcode_test.go).
func transcode(rows *td.RowReader, w io.Writer, format string, cols []string, header bool) error {
	t := transcoder{w: w, buf: make([]byte, 0, transcodeBuf+4096)}
	switch format {
	case "csv":
		if header {
			for i, c := range cols {
				if i > 0 {
					t.buf = append(t.buf, ',')
				}
				t.buf = appendCSVField(t.buf, []byte(c))
			}
			t.buf = append(t.buf, '\n')
		}
	case "tsv":
		if header {
			for i, c := range cols {
				if i > 0 {
					t.buf = append(t.buf, '\t')
				}
				t.buf = append(t.buf, c...)
			}
			t.buf = append(t.buf, '\n')
		}
	case "json":
		t.buf = append(t.buf, '[')
	}
	// the JSON object keys, "name": (columns beyond the schema: _col<N>)
	var keys [][]byte
	key := func(i int) []byte {
		for len(keys) <= i {
			name := "_col" + strconv.Itoa(len(keys))
			if len(keys) < len(cols) && cols[len(keys)] != "" {
				name = cols[len(keys)]
			}
			k, _ := json.Marshal(name)
			keys = append(keys, append(k, ':'))
		}
		return keys[i]
	}
	first := true
	for {
		row, err := rows.NextRow()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch format {
		case "csv":
			err = t.csvRow(row)
		case "tsv":
			err = t.tsvRow(row)
		default:
			if format == "json" {
				if first {
					t.buf = append(t.buf, '\n')
				} else {
					t.buf = append(t.buf, ",\n"...)
				}
			}
			err = t.jsonRow(row, key)
			if format == "jsonl" {
				t.buf = append(t.buf, '\n')
			}
		}
		if err != nil {
			return err
		}
		first = false
		if len(t.buf) >= transcodeBuf {
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	if format == "json" {
		if first {
			t.buf = append(t.buf, "]\n"...)
		} else {
			t.buf = append(t.buf, "\n]\n"...)
		}
	}
	return t.flush()
}

// transcodeBuf is how much output is gathered before a write: at least
// the size of WriteResult's bufio.Writer, which then passes it through
// without copying.
const transcodeBuf = 256 << 10

type transcoder struct {
	w   io.Writer
	buf []byte
}

func (t *transcoder) flush() error {
	if len(t.buf) == 0 {
		return nil
	}
	_, err := t.w.Write(t.buf)
	t.buf = t.buf[:0]
	return err
}

// appendText appends cell i as FormatValue renders it, passing text
// (strings and what takes the boxed path) through field: csv quoting or
// tsv's spaces.
func appendText(b []byte, row *td.Row, i int, field func([]byte, []byte) []byte) ([]byte, error) {
	switch row.Kind(i) {
	case td.KindNull:
		return b, nil
	case td.KindString:
		s, _ := row.Bytes(i)
		return field(b, s), nil
	case td.KindInt:
		n, _ := row.Int(i)
		return strconv.AppendInt(b, n, 10), nil
	case td.KindUint:
		n, _ := row.Uint(i)
		return strconv.AppendUint(b, n, 10), nil
	case td.KindFloat:
		x, _ := row.Float(i)
		if math.Abs(x) < 1e21 && !math.IsNaN(x) && !math.IsInf(x, 0) {
			return strconv.AppendFloat(b, x, 'f', -1, 64), nil
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case td.KindBool:
		x, _ := row.Bool(i)
		return strconv.AppendBool(b, x), nil
	}
	v, err := row.Value(i)
	if err != nil {
		return b, err
	}
	return field(b, []byte(FormatValue(v))), nil
}

// csvRow appends a row as encoding/csv writes it (comma, \n line ends).
// Numbers and booleans never need quotes.
func (t *transcoder) csvRow(row *td.Row) error {
	var err error
	for i := range row.Len() {
		if i > 0 {
			t.buf = append(t.buf, ',')
		}
		if t.buf, err = appendText(t.buf, row, i, appendCSVField); err != nil {
			return err
		}
	}
	t.buf = append(t.buf, '\n')
	return nil
}

// csvSpecial marks the bytes that make encoding/csv quote a field.
var csvSpecial = [256]bool{'\n': true, '\r': true, '"': true, ',': true}

// appendCSVField appends one field quoted exactly when and as encoding/csv
// quotes it (Comma ',', UseCRLF false).
func appendCSVField(b, f []byte) []byte {
	if !csvNeedsQuotes(f) {
		return append(b, f...)
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(f); i++ {
		if f[i] == '"' {
			b = append(b, f[start:i+1]...)
			b = append(b, '"')
			start = i + 1
		}
	}
	b = append(b, f[start:]...)
	return append(b, '"')
}

func csvNeedsQuotes(f []byte) bool {
	if len(f) == 0 {
		return false
	}
	// eight bytes at a time: a word holds byte c when w^(c*0x01…01) has
	// a zero byte
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	rest := f
	for len(rest) >= 8 {
		w := binary.LittleEndian.Uint64(rest)
		a, b, c, d := w^(lo*'\n'), w^(lo*'\r'), w^(lo*'"'), w^(lo*',')
		if ((a-lo)&^a|(b-lo)&^b|(c-lo)&^c|(d-lo)&^d)&hi != 0 {
			return true
		}
		rest = rest[8:]
	}
	for _, c := range rest {
		if csvSpecial[c] {
			return true
		}
	}
	if len(f) == 2 && f[0] == '\\' && f[1] == '.' {
		return true
	}
	if c := f[0]; c < utf8.RuneSelf {
		return c == ' ' || c == '\t' || c == '\v' || c == '\f' // \n and \r: above
	}
	r, _ := utf8.DecodeRune(f)
	return unicode.IsSpace(r)
}

// tsvRow appends a row as FormatValue + output.TSVField + tab join do.
func (t *transcoder) tsvRow(row *td.Row) error {
	var err error
	for i := range row.Len() {
		if i > 0 {
			t.buf = append(t.buf, '\t')
		}
		if t.buf, err = appendText(t.buf, row, i, appendTSVField); err != nil {
			return err
		}
	}
	t.buf = append(t.buf, '\n')
	return nil
}

// appendTSVField appends s with tabs and line breaks (\r\n counting as
// one) as spaces, as output.TSVField does.
func appendTSVField(b, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\t', '\n', '\r':
			b = append(b, s[start:i]...)
			b = append(b, ' ')
			if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	return append(b, s[start:]...)
}

// jsonRow appends a row as orderedRow.MarshalJSON through json.Marshal
// does: HTML-safe strings, ES6 numbers, NaN and ±Inf as strings.
func (t *transcoder) jsonRow(row *td.Row, key func(int) []byte) error {
	t.buf = append(t.buf, '{')
	for i := range row.Len() {
		if i > 0 {
			t.buf = append(t.buf, ',')
		}
		t.buf = append(t.buf, key(i)...)
		switch row.Kind(i) {
		case td.KindNull:
			t.buf = append(t.buf, "null"...)
		case td.KindString:
			s, _ := row.Bytes(i)
			t.buf = appendJSONString(t.buf, s)
		case td.KindInt:
			n, _ := row.Int(i)
			t.buf = strconv.AppendInt(t.buf, n, 10)
		case td.KindUint:
			n, _ := row.Uint(i)
			t.buf = strconv.AppendUint(t.buf, n, 10)
		case td.KindBool:
			x, _ := row.Bool(i)
			t.buf = strconv.AppendBool(t.buf, x)
		case td.KindFloat:
			x, _ := row.Float(i)
			t.buf = appendJSONFloat(t.buf, x)
		default:
			v, err := row.Value(i)
			if err != nil {
				return err
			}
			b, err := json.Marshal(jsonSafe(v))
			if err != nil {
				return err
			}
			t.buf = append(t.buf, b...)
		}
	}
	t.buf = append(t.buf, '}')
	return nil
}

// appendJSONFloat appends x as encoding/json writes a float64 (jsonSafe's
// string for NaN and ±Inf).
func appendJSONFloat(b []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		b = append(b, '"')
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
		return append(b, '"')
	}
	abs := math.Abs(x)
	f := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		f = 'e'
	}
	b = strconv.AppendFloat(b, x, f, -1, 64)
	if f == 'e' { // e-09 → e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the ASCII bytes json.Marshal copies as they are.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s quoted as json.Marshal quotes a string:
// HTML characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package td

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// RowReader decodes a job's msgpack.gz result row by row without holding the
// body in memory: one goroutine inflates gzip while the caller decodes
// msgpack, which keeps a 2-core machine near the gzip floor. Next and All
// give each row as []any; NextRow gives a reused view whose cells are read
// in place, without an allocation per row. Close it when done.
type RowReader struct {
	cols   []Column
	src    *ResultReader
	chunks chan chunk
	free   chan []byte
	stop   chan struct{} // closed by Close: the inflater quits
	src0   io.Reader     // the source as given
	cur    chunk
	pos    int
	dec    *msgpack.Decoder
	err    error
	cancel context.CancelFunc
	wg     sync.WaitGroup
	rows   int64
	view   Row    // NextRow's row
	carry  []byte // a row across buffers, for NextRow
}

type chunk struct {
	buf []byte
	err error
}

const (
	rowChunkSize  = 256 << 10
	rowChunkCount = 4
)

// Rows opens a finished job's result as decoded rows. Columns come from the
// job's hive_result_schema. Values are nil, bool, int64 (unsigned values that
// fit), uint64, float64, string, []any or map[string]any.
func (s *ResultsService) Rows(ctx context.Context, id string) (*RowReader, error) {
	job, err := s.client.Jobs.Show(ctx, id)
	if err != nil {
		return nil, err
	}
	if !job.Finished() {
		return nil, fmt.Errorf("td: job %s is %s: its result is not ready (wait for it first)", id, job.Status)
	}
	if job.Status != StatusSuccess {
		return nil, fmt.Errorf("td: job %s ended with status %s and has no result", id, job.Status)
	}
	ctx, cancel := context.WithCancel(ctx)
	src, err := s.Open(ctx, id, FormatMsgpackGz, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	return newRowReader(src, job.Schema, cancel)
}

// NewRowReader decodes rows from a msgpack.gz stream (for results saved to a
// file). cols may be nil.
func NewRowReader(r io.Reader, cols []Column) (*RowReader, error) {
	return newRowReader(r, cols, func() {})
}

func newRowReader(r io.Reader, cols []Column, cancel context.CancelFunc) (*RowReader, error) {
	rr := &RowReader{
		cols:   cols,
		chunks: make(chan chunk, rowChunkCount),
		free:   make(chan []byte, rowChunkCount+2),
		stop:   make(chan struct{}),
		cancel: cancel,
		src0:   r,
	}
	if src, ok := r.(*ResultReader); ok {
		rr.src = src
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		if rr.src != nil {
			rr.src.Close()
		}
		cancel()
		var ne *NetError
		if errors.As(err, &ne) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, &ProtocolError{Msg: "result is not valid msgpack.gz", Err: err}
	}
	zr.Multistream(true)
	for i := 0; i < rowChunkCount+2; i++ {
		rr.free <- make([]byte, rowChunkSize)
	}
	rr.wg.Add(1)
	go rr.inflate(zr)
	rr.dec = msgpack.NewDecoder(rr)
	rr.dec.UseLooseInterfaceDecoding(true)
	return rr, nil
}

// inflate runs on its own goroutine: gzip → chunks.
func (rr *RowReader) inflate(zr *gzip.Reader) {
	defer rr.wg.Done()
	defer close(rr.chunks)
	send := func(c chunk) bool {
		select {
		case rr.chunks <- c:
			return true
		case <-rr.stop:
			return false
		}
	}
	for {
		var buf []byte
		select {
		case buf = <-rr.free:
		case <-rr.stop:
			return
		}
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = zr.Read(buf[n:])
			n += m
		}
		if n > 0 && !send(chunk{buf: buf[:n]}) {
			return
		}
		switch {
		case err == io.EOF:
			send(chunk{err: io.EOF})
			return
		case errors.Is(err, io.ErrUnexpectedEOF):
			send(chunk{err: fmt.Errorf("%w: the gzip stream ended early", ErrTruncated)})
			return
		case err != nil:
			send(chunk{err: err})
			return
		}
	}
}

// Read implements io.Reader over the inflated chunks (for the decoder).
func (rr *RowReader) Read(p []byte) (int, error) {
	for rr.pos >= len(rr.cur.buf) {
		if err := rr.nextChunk(); err != nil {
			return 0, err
		}
	}
	n := copy(p, rr.cur.buf[rr.pos:])
	rr.pos += n
	return n, nil
}

// ReadByte implements io.ByteScanner so the decoder needs no extra buffer.
func (rr *RowReader) ReadByte() (byte, error) {
	for rr.pos >= len(rr.cur.buf) {
		if err := rr.nextChunk(); err != nil {
			return 0, err
		}
	}
	b := rr.cur.buf[rr.pos]
	rr.pos++
	return b, nil
}

// UnreadByte implements io.ByteScanner.
func (rr *RowReader) UnreadByte() error {
	if rr.pos == 0 {
		return errors.New("td: UnreadByte at chunk start")
	}
	rr.pos--
	return nil
}

func (rr *RowReader) nextChunk() error {
	if rr.cur.err != nil {
		return rr.cur.err
	}
	if rr.cur.buf != nil {
		rr.free <- rr.cur.buf[:cap(rr.cur.buf)]
	}
	c, ok := <-rr.chunks
	if !ok {
		rr.cur = chunk{err: io.EOF}
		return io.EOF
	}
	rr.cur, rr.pos = c, 0
	if c.err != nil {
		return c.err
	}
	return nil
}

// Columns returns the result's columns (nil when unknown).
func (rr *RowReader) Columns() []Column { return rr.cols }

// Count returns the number of rows decoded so far.
func (rr *RowReader) Count() int64 { return rr.rows }

// Next returns the next row, or io.EOF after the last one. A result cut
// short is an error matching ErrTruncated, never a silent end.
func (rr *RowReader) Next() ([]any, error) {
	if rr.err != nil {
		return nil, rr.err
	}
	// the end of the result comes before a row, never inside its header
	// (a lone array16 byte is a cut result, not the end)
	if _, err := rr.dec.PeekCode(); err == io.EOF && rr.pos >= len(rr.cur.buf) {
		rr.err = io.EOF
		return nil, io.EOF
	}
	n, err := rr.dec.DecodeArrayLen()
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("%w: a row ended early", ErrTruncated)
		}
		return nil, rr.fail(err)
	}
	if n < 0 {
		return nil, rr.fail(errors.New("nil row"))
	}
	// Lengths come from the data: never trust them for allocation.
	row := make([]any, 0, min(n, 4096))
	for i := 0; i < n; i++ {
		v, err := rr.value(0)
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("%w: a row ended early", ErrTruncated)
			}
			return nil, rr.fail(err)
		}
		row = append(row, v)
	}
	rr.rows++
	return row, nil
}

// maxDepth bounds nesting of arrays and maps inside a cell.
const maxDepth = 64

// value decodes one cell. Containers are decoded here rather than by the
// msgpack library, which preallocates whatever length the data claims.
func (rr *RowReader) value(depth int) (any, error) {
	return decodeValue(rr.dec, depth, rr.scalar)
}

// decodeValue decodes one value from dec (scalar, when not nil, is tried
// first: a fast path that consumes nothing when it returns false).
func decodeValue(dec *msgpack.Decoder, depth int, scalar func() (any, bool)) (any, error) {
	if scalar != nil {
		if v, ok := scalar(); ok {
			return v, nil
		}
	}
	c, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		if depth >= maxDepth {
			return nil, errors.New("values nested too deeply")
		}
		n, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, 0, min(n, 1024))
		for i := 0; i < n; i++ {
			v, err := decodeValue(dec, depth+1, scalar)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		if depth >= maxDepth {
			return nil, errors.New("values nested too deeply")
		}
		n, err := dec.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		out := make(map[string]any, min(n, 1024))
		for i := 0; i < n; i++ {
			k, err := decodeValue(dec, depth+1, scalar)
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec, depth+1, scalar)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			out[ks] = v
		}
		return out, nil
	}
	v, err := dec.DecodeInterfaceLoose()
	if err != nil {
		return nil, err
	}
	if u, ok := v.(uint64); ok && u <= math.MaxInt64 {
		v = int64(u)
	}
	return v, nil
}

// scalar decodes the next cell straight from the current chunk when it is
// a nil, bool, integer, float or string that lies whole inside it — nearly
// every cell of a query result — with the values the decoder's loose mode
// would give (integers as int64, uint64 above math.MaxInt64, float32 as
// float64). Anything else, or a cell across a chunk boundary, is left to
// the decoder (ok false, nothing consumed).
func (rr *RowReader) scalar() (v any, ok bool) {
	b := rr.cur.buf[rr.pos:]
	if len(b) == 0 {
		return nil, false
	}
	c := b[0]
	// size is the cell's bytes after the code: a fixed width, or a length
	// prefix of pre bytes followed by that many bytes (strings)
	size, pre := 0, 0
	switch {
	case c <= msgpcode.PosFixedNumHigh:
		rr.pos++
		return int64(c), true
	case c >= msgpcode.NegFixedNumLow:
		rr.pos++
		return int64(int8(c)), true
	case msgpcode.IsFixedString(c):
		size = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Nil:
		rr.pos++
		return nil, true
	case c == msgpcode.False || c == msgpcode.True:
		rr.pos++
		return c == msgpcode.True, true
	case c == msgpcode.Uint8 || c == msgpcode.Int8:
		size = 1
	case c == msgpcode.Uint16 || c == msgpcode.Int16:
		size = 2
	case c == msgpcode.Uint32 || c == msgpcode.Int32 || c == msgpcode.Float:
		size = 4
	case c == msgpcode.Uint64 || c == msgpcode.Int64 || c == msgpcode.Double:
		size = 8
	case c == msgpcode.Str8:
		pre = 1
	case c == msgpcode.Str16:
		pre = 2
	case c == msgpcode.Str32:
		pre = 4
	default:
		return nil, false
	}
	if pre > 0 {
		if len(b) < 1+pre {
			return nil, false
		}
		n := uint64(0)
		for _, x := range b[1 : 1+pre] {
			n = n<<8 | uint64(x)
		}
		if n > uint64(len(b)-1-pre) {
			return nil, false
		}
		s := string(b[1+pre : 1+pre+int(n)])
		rr.pos += 1 + pre + int(n)
		return s, true
	}
	if len(b) < 1+size {
		return nil, false
	}
	d := b[1 : 1+size]
	rr.pos += 1 + size
	if msgpcode.IsFixedString(c) {
		return string(d), true
	}
	u := uint64(0)
	for _, x := range d {
		u = u<<8 | uint64(x)
	}
	switch c {
	case msgpcode.Int8:
		return int64(int8(u)), true
	case msgpcode.Int16:
		return int64(int16(u)), true
	case msgpcode.Int32:
		return int64(int32(u)), true
	case msgpcode.Int64:
		return int64(u), true
	case msgpcode.Float:
		return float64(math.Float32frombits(uint32(u))), true
	case msgpcode.Double:
		return math.Float64frombits(u), true
	}
	if u <= math.MaxInt64 { // unsigned
		return int64(u), true
	}
	return u, true
}

func (rr *RowReader) fail(err error) error {
	if errors.Is(err, ErrTruncated) || rr.src != nil && rr.src.ctx.Err() != nil {
		rr.err = err
	} else if ne := (*NetError)(nil); errors.As(err, &ne) {
		rr.err = fmt.Errorf("td: decoding row %d: %w", rr.rows+1, err)
	} else {
		rr.err = &ProtocolError{Msg: fmt.Sprintf("decoding row %d", rr.rows+1), Err: err}
	}
	return rr.err
}

// All iterates over the remaining rows; it stops after yielding an error.
func (rr *RowReader) All() iter.Seq2[[]any, error] {
	return func(yield func([]any, error) bool) {
		for {
			row, err := rr.Next()
			if err == io.EOF {
				return
			}
			if !yield(row, err) || err != nil {
				return
			}
		}
	}
}

// Close stops the download and the inflating goroutine without reading
// the rest of the result. A source that is an io.Closer (other than a
// *ResultReader, which is aborted and closed) is closed to unblock a read.
func (rr *RowReader) Close() error {
	select {
	case <-rr.stop:
		return nil // closed already
	default:
	}
	rr.cancel()
	if rr.err == nil {
		rr.err = errors.New("td: row reader closed")
	}
	close(rr.stop)
	if rr.src != nil {
		rr.src.abort()
	} else if c, ok := rr.src0.(io.Closer); ok {
		c.Close()
	}
	rr.wg.Wait()
	if rr.src != nil {
		rr.src.Close()
	}
	return nil
}

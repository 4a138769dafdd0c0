package td

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// MaxParallel bounds DownloadOptions.Parallel.
const MaxParallel = 16

const (
	// autoParallel is the most connections a download opens when
	// DownloadOptions.Parallel is 0.
	autoParallel = 4
	// reorderBudget is the memory of Download's reorder buffer: the
	// ranges fetched ahead of the one being written, whatever the
	// result's size.
	reorderBudget = 12 << 20
)

// The automatic choice (DownloadOptions.Parallel 0). Variables, not
// constants, so that tests can use small results and short windows.
var (
	// autoParallelAbove is the result size above which a download may
	// add connections.
	autoParallelAbove int64 = 64 << 20
	// splitEvery is how often the one stream's rate is looked at.
	splitEvery = 200 * time.Millisecond
	// splitBelow (bytes/s): a stream at least this fast is limited by the
	// link or the CPUs, not by one connection's window, and more
	// connections would only share the same limit.
	splitBelow float64 = 256 << 20
	// splitWorth: connections are added only when the rest would take
	// longer than this at the stream's rate.
	splitWorth = time.Second
)

// ParallelFor is the most connections a download of a result of size
// bytes opens when DownloadOptions.Parallel is 0: 4 above 64 MiB, else 1.
// Above 64 MiB the download starts as one stream and adds the others only
// once that stream proves slow (see Download).
func ParallelFor(size int64) int {
	if size > autoParallelAbove {
		return autoParallel
	}
	return 1
}

// testChunkSize, when set (tests), is the size of every range.
var testChunkSize int64

// parallelism is how many connections a download uses at most.
func (o *DownloadOptions) parallelism() int {
	if o.Parallel > 0 {
		return min(o.Parallel, MaxParallel)
	}
	return ParallelFor(o.expectSize)
}

// chunkSize is the size of the ranges: the reorder buffer holds n+2 of
// them, within reorderBudget.
func chunkSize(n int) int64 {
	return min(max(int64(reorderBudget/(n+2)), 1<<20), 8<<20)
}

// DownloadAt writes a job's result at offsets [0, size) of w, fetching
// its ranges over DownloadOptions.Parallel connections at once (see
// Download for the default) and writing each piece where it belongs as it
// arrives, so memory use is one buffer per connection. A range cut mid-way
// resumes on its own. It returns only when every byte of the result is
// written (DownloadInfo.Bytes is the result's size) or with an error; on
// an error w holds an unspecified part of the result, and making the
// target whole or nothing (a temporary file renamed on success) is the
// caller's part.
func (s *ResultsService) DownloadAt(ctx context.Context, id string, format Format, w io.WriterAt, opts *DownloadOptions) (*DownloadInfo, error) {
	o := DownloadOptions{}
	if opts != nil {
		o = *opts
	}
	if err := s.knowSize(ctx, id, format, &o); err != nil {
		return nil, err
	}
	n := max(o.parallelism(), 1)
	if o.Parallel == 0 && n == 1 {
		// one stream, as Download (see DownloadOptions.Parallel)
		r, err := s.Open(ctx, id, format, &o)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return copyResult(r, id, &offsetWriter{w: w}, o.BufferSize)
	}
	return s.downloadParallel(ctx, id, format, nil, w, o, n, o.Parallel == 0)
}

// knowSize fills in the job's result_size for a msgpack.gz download.
func (s *ResultsService) knowSize(ctx context.Context, id string, format Format, o *DownloadOptions) error {
	if err := validID(id); err != nil {
		return err
	}
	if (format == FormatMsgpackGz || format == "") && o.expectSize == 0 {
		if st, err := s.client.Jobs.Status(ctx, id); err == nil && st.ResultSize != nil && *st.ResultSize > 0 {
			o.expectSize = *st.ResultSize
		}
	}
	return nil
}

// offsetWriter adapts an io.WriterAt to sequential writes from off.
type offsetWriter struct {
	w   io.WriterAt
	off int64
}

func (ow *offsetWriter) Write(p []byte) (int, error) {
	n, err := ow.w.WriteAt(p, ow.off)
	ow.off += int64(n)
	return n, err
}

// downloadParallel fetches the result in ranges over up to n
// connections. With wa set each range is written at its offset as it
// arrives; otherwise the ranges go to w in order through a reorder buffer
// of n+2 ranges.
//
// With auto unset the first range is asked for alone: its answer gives
// the size and the ETag the other ranges are asked with (If-Range), and a
// server that ignores ranges answers it with the whole result, read as one
// stream. With auto set the first request asks for everything from byte 0
// (Range: bytes=0-) and is read as one stream while its rate is watched
// (streamUntilSlow); only when it proves slow is it stopped at the next
// range boundary and the rest shared out over n connections, the first
// one among them once its part is done.
func (s *ResultsService) downloadParallel(ctx context.Context, id string, format Format, w io.Writer, wa io.WriterAt, o DownloadOptions, n int, auto bool) (*DownloadInfo, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if format == "" {
		format = FormatMsgpackGz
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return nil, err
	}
	chunk := chunkSize(n)
	if wa != nil {
		// no reorder buffer: bigger ranges, fewer requests (each costs a
		// round trip), still small enough to share the work out
		chunk = 16 << 20
	}
	if testChunkSize > 0 {
		chunk = testChunkSize
	}
	if o.MaxResumes <= 0 {
		o.MaxResumes = 20
	}
	progress := o.Progress
	o.Progress = nil
	var resumes atomic.Int64

	first := s.newReader(ctx, id, format, &o)
	first.probe, first.shared = true, &resumes
	if !auto {
		first.end = chunk
	}
	if err := first.open(); err != nil {
		first.cancel()
		return nil, err
	}
	if first.ranged {
		if first.total < 0 {
			first.Close()
			return nil, &ProtocolError{Method: "GET", Path: first.path, Msg: "the server answered a range without the result's size (Content-Range: bytes .../*)"}
		}
		if first.end > 0 {
			first.end = min(first.end, first.total)
		}
	}
	if !first.ranged || first.total <= chunk {
		// one stream: the server sent everything, or there is one range
		defer first.Close()
		first.opts.Progress = progress
		if wa != nil {
			w = &offsetWriter{w: wa}
		}
		info, err := copyResult(first, id, w, o.BufferSize)
		if info != nil {
			info.Resumes = int(resumes.Load())
		}
		return info, err
	}
	var streamed int64 // written by the one stream before the split
	if auto {
		first.opts.Progress = progress
		split, info, err := streamUntilSlow(first, id, w, wa, o.BufferSize, chunk)
		first.opts.Progress = nil
		if !split {
			first.Close()
			info.Resumes = int(resumes.Load())
			return info, err
		}
		streamed = first.offset
	}
	// read after the stream: one cut before its first byte asks for
	// everything again, and that answer is the one written
	total, etag := first.total, first.etag
	// range 0 is the rest of first's part, [streamed, base); the others
	// are chunk long from base, the last one shorter
	base := first.end
	chunks := 1 + int((total-base+chunk-1)/chunk)
	bounds := func(k int) (start, end int64) {
		if k == 0 {
			return streamed, base
		}
		start = base + int64(k-1)*chunk
		return start, min(start+chunk, total)
	}
	n = min(n, chunks)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errOnce  sync.Once
		firstErr error
		received atomic.Int64
		progMu   sync.Mutex
	)
	received.Store(streamed)
	fail := func(err error) {
		// first was opened under the caller's context: stop it too
		errOnce.Do(func() { firstErr = err; cancel(); first.abort() })
	}
	report := func(d int) {
		done := received.Add(int64(d))
		if progress != nil {
			progMu.Lock()
			progress(done, total)
			progMu.Unlock()
		}
	}

	// the reorder buffer: a range is claimed only with a slot free, and
	// the slot is given back once the range is written out
	window := n + 2
	slots := make(chan struct{}, window)
	bufs := make(chan []byte, window)
	type piece struct {
		k   int
		buf []byte
	}
	done := make(chan piece, window) // never blocks: at most window ranges are claimed and unwritten
	var (
		claimMu sync.Mutex
		next    = 1 // range 0 is first's
	)
	claim := func() (int, bool) {
		if wa == nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return 0, false
			}
		}
		claimMu.Lock()
		defer claimMu.Unlock()
		if next >= chunks || ctx.Err() != nil {
			if wa == nil {
				<-slots
			}
			return 0, false
		}
		k := next
		next++
		return k, true
	}
	getBuf := func() []byte {
		select {
		case b := <-bufs:
			return b
		default:
			return make([]byte, chunk)
		}
	}

	// fetch reads range k from r: to its offset in wa, or into a buffer
	// handed to the writer.
	fetch := func(k int, r *ResultReader) error {
		defer r.Close()
		if r.body == nil && r != first {
			// a new range; first, cut as it was stopped, resumes in Read
			// (counted, with back-off)
			if err := r.open(); err != nil {
				return err
			}
		}
		start, end := bounds(k)
		if wa != nil {
			buf := make([]byte, 256<<10)
			for {
				m, err := r.Read(buf)
				if m > 0 {
					if _, werr := wa.WriteAt(buf[:m], r.offset-int64(m)); werr != nil {
						return fmt.Errorf("td: writing result of job %s: %w", id, werr)
					}
					report(m)
				}
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
			}
		}
		size := end - start
		buf := getBuf()[:size]
		got := 0
		for got < len(buf) {
			m, err := r.Read(buf[got:])
			got += m
			report(m)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if int64(got) != size { // the reader checks its length; belt and braces
			return &ProtocolError{Method: "GET", Path: r.path, Err: ErrTruncated, Msg: fmt.Sprintf("range %d ended at %d of %d bytes", k, got, size)}
		}
		done <- piece{k, buf}
		return nil
	}
	rangeReader := func(k int) *ResultReader {
		r := s.newReader(ctx, id, format, &o)
		r.offset, r.end = bounds(k)
		r.granted = r.offset
		r.total, r.etag, r.shared = total, etag, &resumes
		return r
	}

	var wg sync.WaitGroup
	if wa == nil {
		slots <- struct{}{} // range 0's
	}
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			if i == 0 {
				if err := fetch(0, first); err != nil {
					fail(err)
					return
				}
			}
			for {
				k, ok := claim()
				if !ok {
					return
				}
				if err := fetch(k, rangeReader(k)); err != nil {
					fail(err)
					return
				}
			}
		}()
	}

	info := &DownloadInfo{ETag: etag, Parallel: n, Bytes: streamed}
	if wa == nil {
		// write the ranges out in order
		pending := map[int][]byte{}
		for k := 0; k < chunks; {
			if b, ok := pending[k]; ok {
				delete(pending, k)
				m, err := w.Write(b)
				info.Bytes += int64(m)
				if err == nil && m < len(b) {
					err = io.ErrShortWrite
				}
				if err != nil {
					fail(fmt.Errorf("td: writing result of job %s: %w", id, err))
					break
				}
				select {
				case bufs <- b[:cap(b)]:
				default:
				}
				<-slots
				k++
				continue
			}
			select {
			case p := <-done:
				pending[p.k] = p.buf
				continue
			case <-ctx.Done():
			}
			break
		}
	}
	wg.Wait()
	info.Resumes = int(resumes.Load())
	if firstErr != nil {
		return info, firstErr
	}
	if err := ctx.Err(); err != nil { // the caller's
		return info, err
	}
	if wa != nil {
		info.Bytes = received.Load()
	}
	if info.Bytes != total {
		return info, &ProtocolError{Method: "GET", Path: first.path, Err: ErrTruncated, Msg: fmt.Sprintf("got %d bytes of %d", info.Bytes, total)}
	}
	return info, nil
}

// streamUntilSlow reads first, a stream of the whole result, to w (or to
// wa at its offsets) while looking at its pace every splitEvery. When the
// stream is slower than splitBelow and the rest would take longer than
// splitWorth at its pace, it sets first's end to the next range boundary
// and returns split true: the caller shares out the rest. Otherwise it
// returns the finished, or failed, download.
//
// The pace decides, not the size alone: on a fast link (or loopback, where
// both ends share the same cores) more connections only divide the same
// throughput and cost a request per range, while on a long or throttled
// path each connection adds its own window. The pace is the network's:
// bytes over the time spent waiting in Read, so that a slow writer (the
// CLI's gzip check, a decoder, a pipe) is not taken for a slow link.
func streamUntilSlow(first *ResultReader, id string, w io.Writer, wa io.WriterAt, size int, chunk int64) (bool, *DownloadInfo, error) {
	if size <= 0 {
		size = 1 << 20
	}
	if wa != nil {
		w = &offsetWriter{w: wa}
	}
	buf := make([]byte, size)
	info := &DownloadInfo{ETag: first.etag, Parallel: 1}
	mark, markAt := first.offset, time.Now()
	var waited time.Duration // in Read since markAt
	for {
		t0 := time.Now()
		m, rerr := first.Read(buf)
		t1 := time.Now()
		waited += t1.Sub(t0)
		if m > 0 {
			k, werr := w.Write(buf[:m])
			info.Bytes += int64(k)
			if werr == nil && k < m {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return false, info, fmt.Errorf("td: writing result of job %s: %w", id, werr)
			}
		}
		if rerr == io.EOF {
			return false, info, nil
		}
		if rerr != nil {
			return false, info, rerr
		}
		if t1.Sub(markAt) >= splitEvery {
			pace := float64(first.offset-mark) / max(waited.Seconds(), 1e-9)
			rest := first.total - first.offset
			// more than two ranges left, or the split is not worth its requests
			if pace < splitBelow && rest > 2*chunk && float64(rest) > pace*splitWorth.Seconds() {
				first.end = (first.offset/chunk + 1) * chunk
				first.trim = true
				return true, info, nil
			}
			mark, markAt, waited = first.offset, t1, 0
		}
	}
}

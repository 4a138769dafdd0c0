package td

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
)

// ResultsService downloads, decodes and exports job results.
type ResultsService service

// Format is a result download format.
type Format string

// Result formats the API serves.
const (
	FormatMsgpackGz Format = "msgpack.gz" // gzip of concatenated msgpack arrays, one per row; the efficient one
	FormatMsgpack   Format = "msgpack"
	FormatJSON      Format = "json"
	FormatCSV       Format = "csv"
	FormatTSV       Format = "tsv"
)

// ParseFormat validates a result format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatMsgpackGz, FormatMsgpack, FormatJSON, FormatCSV, FormatTSV:
		return f, nil
	case "":
		return FormatMsgpackGz, nil
	}
	return "", invalidArg("unknown result format %q: use msgpack.gz, msgpack, json, csv or tsv", s)
}

// DownloadOptions tunes result downloads.
type DownloadOptions struct {
	// Progress, when set, is called as bytes arrive with the bytes so far and
	// the total size (-1 when the server did not say).
	Progress func(done, total int64)
	// MaxResumes bounds how often a cut connection is resumed in all
	// (default 20). Resumes in a row that receive nothing share the
	// client's retry budget (RetryPolicy).
	MaxResumes int
	// BufferSize is the copy buffer (default 1 MiB).
	BufferSize int
	// IdleTimeout resumes a download that received nothing for this long
	// (default: the client's read idle timeout, WithReadIdleTimeout): a
	// stalled connection is treated like a cut one.
	IdleTimeout time.Duration
	// Parallel is how many concurrent HTTP Range requests Download and
	// DownloadAt use. 1 is one stream. 0 chooses: a result of up to 64
	// MiB (or of unknown size) is one stream; a bigger msgpack.gz result
	// (the job reports its size) starts as one stream and, if that stream
	// is slower than 256 MB/s (bytes over the time spent waiting for
	// them) and the rest would take over a second at its pace, stops it at
	// the next range boundary and fetches the rest over 4 connections
	// (when more than two ranges are left). Each range resumes on its own after a cut;
	// MaxResumes bounds the resumes of all ranges together. See Download
	// for the memory this takes.
	Parallel int

	expectSize int64 // the result's known size (msgpack.gz result_size), 0 = unknown
}

// DownloadInfo describes a finished download.
type DownloadInfo struct {
	Bytes   int64  // bytes written
	ETag    string // the result's ETag
	Resumes int    // how many times a cut connection was resumed
	// Parallel is how many connections fetched ranges at once (1: one
	// stream, also when the server does not serve ranges).
	Parallel int
}

// ErrTruncated matches a result that ended before its advertised length and
// could not be resumed.
var ErrTruncated = errors.New("td: result truncated")

// Download streams a job's result in the given format to w. A connection
// cut mid-way is resumed where it stopped (Range + If-Range with the ETag),
// so no byte is fetched twice or lost; a short body is never reported as
// success. Memory use is one buffer, whatever the result size.
//
// With DownloadOptions.Parallel above 1 (or 0 for a msgpack.gz result
// above 64 MiB whose one stream proves slow: see DownloadOptions.Parallel)
// the result is fetched as ranges over that many connections at once and
// written to w in order through a reorder buffer of about 12 MiB, whatever
// the result size; each range resumes on its own after a cut, and the
// first error stops them all. DownloadAt writes the ranges at their
// offsets instead, with no buffer.
func (s *ResultsService) Download(ctx context.Context, id string, format Format, w io.Writer, opts *DownloadOptions) (*DownloadInfo, error) {
	o := DownloadOptions{}
	if opts != nil {
		o = *opts
	}
	if format == FormatMsgpackGz && o.expectSize == 0 {
		// The job's result_size is the msgpack.gz size: a body that ends
		// short of it is a cut, even when its Content-Length agreed.
		if st, err := s.client.Jobs.Status(ctx, id); err == nil && st.ResultSize != nil && *st.ResultSize > 0 {
			o.expectSize = *st.ResultSize
		}
	}
	if n := o.parallelism(); n > 1 {
		return s.downloadParallel(ctx, id, format, w, nil, o, n, o.Parallel == 0)
	}
	r, err := s.Open(ctx, id, format, &o)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return copyResult(r, id, w, o.BufferSize)
}

// copyResult copies r to w with a buffer of size bytes (default 1 MiB).
func copyResult(r *ResultReader, id string, w io.Writer, size int) (*DownloadInfo, error) {
	if size <= 0 {
		size = 1 << 20
	}
	buf := make([]byte, size)
	var written int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return &DownloadInfo{Bytes: written, ETag: r.etag, Resumes: r.resumes}, fmt.Errorf("td: writing result of job %s: %w", id, werr)
			}
			if m < n {
				return &DownloadInfo{Bytes: written, ETag: r.etag, Resumes: r.resumes}, fmt.Errorf("td: writing result of job %s: %w", id, io.ErrShortWrite)
			}
		}
		if rerr == io.EOF {
			return &DownloadInfo{Bytes: written, ETag: r.etag, Resumes: r.resumes, Parallel: 1}, nil
		}
		if rerr != nil {
			return &DownloadInfo{Bytes: written, ETag: r.etag, Resumes: r.resumes}, rerr
		}
	}
}

// ResultReader is a job's result as a stream that resumes after a cut
// connection. Close it when done.
type ResultReader struct {
	c       *Client
	ctx     context.Context
	cancel  context.CancelFunc
	budget  *budget
	granted int64 // offset at which the budget was last renewed
	lastErr error // why the last connection ended early
	path    string
	query   url.Values
	opts    DownloadOptions
	etag    string
	offset  int64
	end     int64         // a ranged reader's end offset (exclusive); 0 = the whole result
	total   int64         // -1 when unknown
	probe   bool          // a ranged first request that accepts a 200 (no range support)
	ranged  bool          // the server honours ranges (a 206 came back)
	trim    bool          // end was set while the body ran on past it (a split): stop there
	shared  *atomic.Int64 // resumes of all the ranges of a parallel download
	body    io.ReadCloser
	resumes int
	err     error
}

// Open starts streaming a job's result. The first request happens here, so
// an unknown job or an unfinished one fails now.
func (s *ResultsService) Open(ctx context.Context, id string, format Format, opts *DownloadOptions) (*ResultReader, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if format == "" {
		format = FormatMsgpackGz
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return nil, err
	}
	r := s.newReader(ctx, id, format, opts)
	if err := r.open(); err != nil {
		r.cancel()
		return nil, err
	}
	return r, nil
}

// newReader prepares a reader of the result; nothing is sent yet.
func (s *ResultsService) newReader(ctx context.Context, id string, format Format, opts *DownloadOptions) *ResultReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &ResultReader{c: s.client, ctx: ctx, cancel: cancel, path: path("/v3/job/result", id), query: url.Values{"format": {string(format)}}, total: -1}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.MaxResumes <= 0 {
		r.opts.MaxResumes = 20
	}
	if r.opts.IdleTimeout > 0 {
		r.ctx = context.WithValue(r.ctx, idleKey{}, r.opts.IdleTimeout)
	}
	r.budget = s.client.newBudget(true)
	return r
}

// limit is the offset at which the reader is done: its range's end, or
// the result's size (-1 when unknown).
func (r *ResultReader) limit() int64 {
	if r.end > 0 {
		return r.end
	}
	return r.total
}

// Size is the result's total size in bytes, -1 when the server did not say.
func (r *ResultReader) Size() int64 { return r.total }

// ETag is the result's entity tag.
func (r *ResultReader) ETag() string { return r.etag }

// Resumes is how often the stream was resumed after a cut.
func (r *ResultReader) Resumes() int { return r.resumes }

func (r *ResultReader) open() error {
	h := http.Header{}
	h.Set("Accept-Encoding", "identity")
	h.Set("Accept", "*/*")
	if r.offset > 0 || r.end > 0 || r.probe {
		// a probe with no end asks for everything as a range: the answer
		// says whether ranges are served
		rng := "bytes=" + strconv.FormatInt(r.offset, 10) + "-"
		if r.end > 0 {
			rng += strconv.FormatInt(r.end-1, 10)
		}
		h.Set("Range", rng)
		if r.etag != "" {
			h.Set("If-Range", r.etag)
		}
	}
	resp, err := r.c.do(r.ctx, &request{method: http.MethodGet, path: r.path, query: r.query, header: h, retry: true}, r.budget, nil)
	if err != nil {
		return err
	}
	if r.probe && r.offset == 0 && resp.StatusCode == http.StatusOK {
		// the server ignored the range: this is the whole result, read
		// as one stream
		r.probe, r.end = false, 0
	}
	if r.offset == 0 && r.end == 0 {
		r.etag = resp.Header.Get("ETag")
		r.total = resp.ContentLength
		if r.opts.expectSize > 0 && r.total != r.opts.expectSize && resp.StatusCode == http.StatusOK {
			// trust the job's result_size over a Content-Length that
			// disagrees: reading stops short and resumes from there
			r.total = r.opts.expectSize
		}
		if resp.StatusCode == http.StatusPartialContent {
			// the server ranged an unranged request; accept only a full range
			start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
			if !ok || start != 0 {
				resp.Body.Close()
				return &ProtocolError{Method: http.MethodGet, Path: r.path, Msg: fmt.Sprintf("unexpected partial answer %q", resp.Header.Get("Content-Range"))}
			}
			if r.probe && total >= 0 && r.opts.expectSize > 0 && total != r.opts.expectSize {
				resp.Body.Close()
				return &ProtocolError{Method: http.MethodGet, Path: r.path, Err: ErrTruncated,
					Msg: fmt.Sprintf("the server's result has %d bytes, the job's result_size is %d", total, r.opts.expectSize)}
			}
			r.total, r.ranged = total, true
		}
	} else {
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return &ProtocolError{Method: http.MethodGet, Path: r.path, Err: ErrTruncated,
				Msg: fmt.Sprintf("resuming at byte %d: the server answered %d instead of 206 (the result changed or ranges are not supported)", r.offset, resp.StatusCode)}
		}
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != r.offset {
			resp.Body.Close()
			return &ProtocolError{Method: http.MethodGet, Path: r.path, Err: ErrTruncated,
				Msg: fmt.Sprintf("resuming at byte %d: bad Content-Range %q", r.offset, resp.Header.Get("Content-Range"))}
		}
		if r.probe && total >= 0 && r.opts.expectSize > 0 && total != r.opts.expectSize {
			resp.Body.Close()
			return &ProtocolError{Method: http.MethodGet, Path: r.path, Err: ErrTruncated,
				Msg: fmt.Sprintf("the server's result has %d bytes, the job's result_size is %d", total, r.opts.expectSize)}
		}
		r.ranged = true
		if r.etag == "" {
			r.etag = resp.Header.Get("ETag")
		}
		if total >= 0 && r.total >= 0 && total != r.total {
			resp.Body.Close()
			return &ProtocolError{Method: http.MethodGet, Path: r.path, Err: ErrTruncated,
				Msg: fmt.Sprintf("the result changed while downloading (size %d, was %d)", total, r.total)}
		}
		if total >= 0 {
			r.total = total
		}
		if et := resp.Header.Get("ETag"); et != "" && r.etag != "" && et != r.etag {
			resp.Body.Close()
			return &ProtocolError{Method: http.MethodGet, Path: r.path, Err: ErrTruncated,
				Msg: fmt.Sprintf("the result changed while downloading (ETag %s, was %s)", et, r.etag)}
		}
	}
	// A stalled body fails the Read after the read idle timeout
	// (idleTransport), and Read resumes.
	r.body = resp.Body
	return nil
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be *: -1).
func parseContentRange(v string) (start, total int64, ok bool) {
	v = strings.TrimSpace(v)
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if tot == "*" {
		return start, -1, true
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return start, total, true
}

// Read reads the result, resuming transparently after a cut connection.
func (r *ResultReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		if r.trim {
			rest := r.end - r.offset
			if rest <= 0 {
				r.err = io.EOF
				return 0, io.EOF
			}
			if int64(len(p)) > rest {
				p = p[:rest]
			}
		}
		if r.body == nil {
			if err := r.resume(); err != nil {
				r.err = err
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.offset += int64(n)
		if n > 0 && r.opts.Progress != nil {
			r.opts.Progress(r.offset, r.total)
		}
		lim := r.limit()
		switch {
		case err == nil && lim >= 0 && r.offset > lim:
			err = io.EOF // more than asked for: the check below says so
		case err == nil:
			return n, nil
		}
		switch {
		case err == io.EOF && (lim < 0 || r.offset == lim):
			r.err = io.EOF
			return n, io.EOF
		case err == io.EOF && r.offset > lim:
			r.err = &ProtocolError{Method: http.MethodGet, Path: r.path, Msg: fmt.Sprintf("got %d bytes, more than the %d announced", r.offset, lim)}
			return n, r.err
		}
		// cut short (EOF before the announced length) or a read error
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			r.err = ctxErr
			return n, ctxErr
		}
		r.body.Close()
		r.body = nil
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.lastErr = hideDeadline(err)
		if r.c.logger != nil {
			r.c.logger.Info("td result download cut; resuming", "path", r.path, "offset", r.offset, "total", r.total, "error", r.c.red.redact(err.Error()))
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume reopens the stream where it stopped. Attempts that receive
// nothing draw from the retry budget; one that received bytes since the
// last request renews it.
func (r *ResultReader) resume() error {
	r.resumes++
	all := r.resumes
	if r.shared != nil {
		all = int(r.shared.Add(1))
	}
	giveUp := func(why string) error {
		return newNetError(http.MethodGet, r.path, fmt.Errorf("connection cut %d times at byte %d of %d, %s; giving up (last: %w): %w",
			all-1, r.offset, r.total, why, r.lastErr, ErrTruncated), r.c.red)
	}
	if all > r.opts.MaxResumes {
		return giveUp("the most resumes allowed")
	}
	if r.offset > r.granted {
		r.budget.Reset()
		r.granted = r.offset
	}
	if r.budget.Spent() {
		return giveUp("nothing received in the last attempts")
	}
	wait := r.budget.Backoff()
	if !backoff.Fits(r.ctx, wait) {
		return giveUp("no time left to resume before the deadline")
	}
	if err := sleepCtx(r.ctx, wait); err != nil {
		return err
	}
	return r.open()
}

// abort makes a Read in progress on another goroutine return; safe to call
// concurrently with Read.
func (r *ResultReader) abort() { r.cancel() }

// Close releases the connection. Do not call it while a Read is in
// progress on another goroutine.
func (r *ResultReader) Close() error {
	r.cancel()
	if r.err == nil {
		r.err = errors.New("td: result reader closed")
	}
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

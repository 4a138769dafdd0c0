package shared

import (
	"context"
	"io"
	"sync"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/td"
)

// downloadAt downloads a msgpack.gz result into out's temporary file, each
// range written at its offset (td.ResultsService.DownloadAt), while the
// file's contiguous start is fed to check as it grows: the gzip stream is
// verified during the download, not by reading the file again after it.
func downloadAt(ctx context.Context, c *td.Client, id string, out *cmdutil.OutputFile, check io.Writer, dl *td.DownloadOptions) error {
	p := newPrefixWriter(out)
	fed := make(chan error, 1)
	go func() { fed <- p.feed(check) }()
	_, err := c.Results.DownloadAt(ctx, id, td.FormatMsgpackGz, p, dl)
	p.end(err != nil)
	if ferr := <-fed; err == nil {
		err = ferr
	}
	return err
}

// prefixWriter is an io.WriterAt over a file that tracks the written
// parts; feed sends the file's contiguous start, as it grows, to a writer.
// Writes never overlap (each range goes on from where it was cut).
type prefixWriter struct {
	f interface {
		io.WriterAt
		io.ReaderAt
	}
	mu     sync.Mutex
	cond   *sync.Cond
	prefix int64           // [0, prefix) is written
	starts map[int64]int64 // written parts beyond prefix: start → end
	ends   map[int64]int64 // end → start
	done   bool            // no more writes
	failed bool            // the download failed: stop feeding
}

func newPrefixWriter(f interface {
	io.WriterAt
	io.ReaderAt
}) *prefixWriter {
	p := &prefixWriter{f: f, starts: map[int64]int64{}, ends: map[int64]int64{}}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *prefixWriter) WriteAt(b []byte, off int64) (int, error) {
	n, err := p.f.WriteAt(b, off)
	if n > 0 {
		p.mark(off, off+int64(n))
	}
	return n, err
}

// mark records [a, b) as written.
func (p *prefixWriter) mark(a, b int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.ends[a]; ok { // extends a part
		delete(p.ends, a)
		delete(p.starts, s)
		a = s
	}
	if e, ok := p.starts[b]; ok { // joins the next part
		delete(p.starts, b)
		delete(p.ends, e)
		b = e
	}
	if a != p.prefix {
		p.starts[a], p.ends[b] = b, a
		return
	}
	p.prefix = b
	p.cond.Broadcast()
}

// end says no more writes come; failed stops feeding at once.
func (p *prefixWriter) end(failed bool) {
	p.mu.Lock()
	p.done, p.failed = true, failed
	p.cond.Broadcast()
	p.mu.Unlock()
}

// feed copies the file's contiguous start to w as it grows, until end.
func (p *prefixWriter) feed(w io.Writer) error {
	buf := make([]byte, 1<<20)
	var off int64
	for {
		p.mu.Lock()
		for off == p.prefix && !p.done {
			p.cond.Wait()
		}
		upto, stop := p.prefix, p.failed || (p.done && off == p.prefix)
		p.mu.Unlock()
		if stop {
			return nil
		}
		for off < upto {
			n, err := p.f.ReadAt(buf[:min(int64(len(buf)), upto-off)], off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
				off += int64(n)
			}
			if err != nil && err != io.EOF {
				return err
			}
			if n == 0 {
				return io.ErrUnexpectedEOF
			}
		}
	}
}

// openResult opens a msgpack.gz result for the row decoders: one
// resumable stream, or, with dl.Parallel above 1 (or left at 0 for a
// result above 64 MiB, where td adds connections once one stream proves
// slow), ranges fetched at once and put back in order by td's bounded
// reorder buffer (ResultsService.Download) into a pipe.
func openResult(ctx context.Context, c *td.Client, job *td.Job, dl *td.DownloadOptions) (io.ReadCloser, error) {
	n := dl.Parallel
	if n == 0 && job.ResultSize != nil {
		n = td.ParallelFor(*job.ResultSize)
	}
	if n <= 1 {
		return c.Results.Open(ctx, job.ID, td.FormatMsgpackGz, dl)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	o := *dl // Parallel 0 stays the automatic choice
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := c.Results.Download(ctx, job.ID, td.FormatMsgpackGz, pw, &o)
		pw.CloseWithError(err) // nil: EOF
	}()
	return &pipedResult{PipeReader: pr, cancel: cancel, done: done}, nil
}

// pipedResult is the reading end of a download on its own goroutine;
// Close stops the download and waits for it.
type pipedResult struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *pipedResult) Close() error {
	p.cancel()
	p.PipeReader.Close()
	<-p.done
	return nil
}

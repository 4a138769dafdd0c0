package emulator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	nethttptest "net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Fault describes a misbehaviour the emulator injects into matching requests.
// A Fault with only Latency set delays the request and then answers normally.
//
// The rules, by what they imitate:
//
//   - Status (with RetryAfter, Body): an error answer instead of the real
//     one; the request is not processed. Status 200 with Body "{}" is a
//     malformed-but-valid answer (every field missing).
//   - AfterHandler: the request is processed (a job really created), then
//     its answer is lost (connection dropped), or replaced by Status (a
//     gateway's 502/504 after the backend did the work), or never sent
//     (with Hang).
//   - ResetAfterBytes: the answer is cut after N body bytes (RST).
//   - TruncateGzip: a result body cut in half with a consistent
//     Content-Length.
//   - Stall, StallAfterBytes: the answer pauses after N body bytes (a
//     stalled body); headers arrive first.
//   - Hang: the request is accepted and never answered (no status line).
//   - LagStatus: status, show and list answer with the job's status as a
//     lagging read replica would (e.g. "running" after the job finished).
//   - Latency: a slow answer.
type Fault struct {
	Method string // "GET", "POST"...; "" matches any method
	Path   string // prefix of the (unescaped) request path, e.g. "/v3/job/issue/"; "" matches any path
	Times  int    // how many matching requests it hits; 0 = every one

	Status     int    // answer with this status instead of handling the request (e.g. 503, 429)
	RetryAfter string // Retry-After header sent with Status (e.g. "2")
	Body       string // body sent with Status; default: a JSON error naming the fault

	// AfterHandler runs the real handler (so a job is really created) and
	// then drops the connection without sending any response: a lost
	// response. With Status, the handler's answer is replaced by that
	// status (and Body) instead: a gateway error after the work was done.
	// With Hang, no answer ever comes.
	AfterHandler bool
	// ResetAfterBytes sends this many bytes of the response body, then
	// closes the connection abruptly (RST). A shorter body is sent whole
	// before the reset.
	ResetAfterBytes int64
	// TruncateGzip makes result downloads send only the first half of the
	// requested bytes, with a consistent (shorter) Content-Length: the HTTP
	// exchange looks complete but the gzip stream is cut.
	TruncateGzip bool
	// Stall pauses the answer for this long after StallAfterBytes bytes of
	// its body (0: after the headers, before any body byte), then sends the
	// rest. A client that hangs up during the pause ends it; so does
	// closing the server.
	Stall           time.Duration
	StallAfterBytes int64
	// Hang accepts the request and never answers: not even a status line
	// is sent until the client hangs up or the server closes.
	Hang bool
	// LagStatus answers job status, show and list requests (and a saved
	// query's history) with every job's status replaced by this one, as a
	// read replica that has not caught up would: with a status that is not final ("queued",
	// "running"), end_at, duration, num_records and result_size are null.
	LagStatus string
	// Latency is waited before answering (or before the fault's other
	// effects); a cancelled request stops waiting.
	Latency time.Duration
}

// Faults is the scriptable fault list of a Server. It is safe for concurrent
// use. The first fault (in the order added) that matches a request applies.
type Faults struct {
	mu   sync.Mutex
	list []*faultEntry
	hits int

	doneOnce sync.Once
	done     chan struct{} // closed by stop: stalls and hangs end
}

// stopped is closed when the server shuts down: every stall and hang ends
// then, even one whose client is still connected (a body that was sent
// whole before its stall).
func (fs *Faults) stopped() <-chan struct{} {
	fs.doneOnce.Do(func() { fs.done = make(chan struct{}) })
	return fs.done
}

// stop ends every stall and hang, now and to come.
func (fs *Faults) stop() {
	fs.stopped()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	select {
	case <-fs.done:
	default:
		close(fs.done)
	}
}

type faultEntry struct {
	f    Fault
	left int // remaining hits; -1 = unlimited
}

// Add appends f to the list.
func (fs *Faults) Add(f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	left := f.Times
	if left <= 0 {
		left = -1
	}
	fs.list = append(fs.list, &faultEntry{f: f, left: left})
}

// Reset removes every fault.
func (fs *Faults) Reset() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.list = nil
}

// Hits reports how many requests faults have applied to so far.
func (fs *Faults) Hits() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.hits
}

func (fs *Faults) match(method, path string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, e := range fs.list {
		if e.f.Method != "" && !strings.EqualFold(e.f.Method, method) {
			continue
		}
		if e.f.Path != "" && !strings.HasPrefix(path, e.f.Path) {
			continue
		}
		if e.left > 0 {
			e.left--
			if e.left == 0 {
				fs.list = append(fs.list[:i:i], fs.list[i+1:]...)
			}
		}
		fs.hits++
		return e.f, true
	}
	return Fault{}, false
}

type ctxKey int

const truncateKey ctxKey = 1

// serveWithFault applies f to the request and runs next when the fault lets
// the request through.
func (s *Server) serveWithFault(w http.ResponseWriter, r *http.Request, f Fault, next http.HandlerFunc) {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case f.AfterHandler:
		next(&discardWriter{h: http.Header{}}, r)
		switch {
		case f.Hang:
			s.hang(r)
		case f.Status != 0:
			writeFaultStatus(w, f)
		default:
			abortConnection(w, false)
		}
	case f.Hang:
		s.hang(r)
	case f.Status != 0:
		writeFaultStatus(w, f)
	case f.ResetAfterBytes > 0:
		cw := &cutWriter{ResponseWriter: w, left: f.ResetAfterBytes}
		next(cw, r)
		// The body was shorter than the limit: still drop the connection,
		// so the fault is never silently a no-op.
		abortConnection(w, true)
	case f.Stall > 0:
		sw := &stallWriter{ResponseWriter: w, left: f.StallAfterBytes, stall: f.Stall, s: s, r: r}
		next(sw, r)
		sw.pause() // a body shorter than StallAfterBytes stalls at its end
	case f.TruncateGzip:
		next(w, r.WithContext(context.WithValue(r.Context(), truncateKey, true)))
	case f.LagStatus != "":
		s.serveLagging(w, r, f.LagStatus, next)
	default:
		next(w, r)
	}
}

func writeFaultStatus(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		if json.Valid([]byte(f.Body)) {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	writeError(w, f.Status, "injected fault: "+http.StatusText(f.Status), nil)
}

// hang waits until the client hangs up or the server closes, then drops the
// connection without an answer.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.faults.stopped():
	}
	panic(http.ErrAbortHandler)
}

// stallWriter lets left body bytes through, then pauses for stall once.
type stallWriter struct {
	http.ResponseWriter
	left    int64
	stall   time.Duration
	stalled bool
	s       *Server
	r       *http.Request
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if w.stalled || int64(len(p)) < w.left {
		n, err := w.ResponseWriter.Write(p)
		w.left -= int64(n)
		return n, err
	}
	n, err := w.ResponseWriter.Write(p[:w.left])
	if err != nil {
		return n, err
	}
	w.left = 0
	w.pause()
	m, err := w.ResponseWriter.Write(p[n:])
	return n + m, err
}

// pause flushes what was written (the headers at least) and waits; a client
// that hangs up meanwhile (or a closing server) ends the answer.
func (w *stallWriter) pause() {
	if w.stalled {
		return
	}
	w.stalled = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
	t := time.NewTimer(w.stall)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.r.Context().Done():
		panic(http.ErrAbortHandler)
	case <-w.s.faults.stopped():
		panic(http.ErrAbortHandler)
	}
}

func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveLagging runs next into a buffer and answers its JSON with every job's
// status replaced by status. Other answers pass unchanged.
func (s *Server) serveLagging(w http.ResponseWriter, r *http.Request, status string, next http.HandlerFunc) {
	plain := r.Clone(r.Context())
	plain.Header.Del("Accept-Encoding") // a plain JSON answer to rewrite
	rec := nethttptest.NewRecorder()
	next(rec, plain)
	var v map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	lag := func(j map[string]any) {
		if _, ok := j["status"]; !ok {
			return
		}
		j["status"] = status
		if status != statusSuccess && status != statusError && status != statusKilled {
			for _, k := range []string{"end_at", "duration", "num_records", "result_size"} {
				if _, ok := j[k]; ok {
					j[k] = nil
				}
			}
		}
	}
	lag(v)
	for _, list := range []string{"jobs", "history"} { // job list, a saved query's history
		jobs, _ := v[list].([]any)
		for _, j := range jobs {
			if m, ok := j.(map[string]any); ok {
				lag(m)
			}
		}
	}
	writeJSON(w, r, v)
}

// abortConnection closes the client connection without (more of) a response:
// it flushes what was written (when flush is set), hijacks the connection and resets it. Without
// a hijackable connection it aborts the handler the net/http way.
func abortConnection(w http.ResponseWriter, flush bool) {
	rc := http.NewResponseController(w)
	if flush {
		_ = rc.Flush()
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
	panic(http.ErrAbortHandler) // unwinds the handler; net/http ignores it silently
}

// discardWriter is the ResponseWriter of a handler whose response is lost.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// cutWriter lets through left body bytes, then resets the connection.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) < c.left {
		n, err := c.ResponseWriter.Write(p)
		c.left -= int64(n)
		return n, err
	}
	n, _ := c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	abortConnection(c.ResponseWriter, true)
	return n, errors.New("unreachable")
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// statusWriter records the status and body size for the request log. It
// forwards ReadFrom so that result files keep net/http's sendfile path.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(p)
	sw.bytes += int64(n)
	return n, err
}

func (sw *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if rf, ok := sw.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(src)
		sw.bytes += n
		return n, err
	}
	n, err := io.Copy(writerOnly{sw.ResponseWriter}, src)
	sw.bytes += n
	return n, err
}

func (sw *statusWriter) Flush() {
	_ = http.NewResponseController(sw.ResponseWriter).Flush()
}

func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(sw.ResponseWriter).Hijack()
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

type writerOnly struct{ io.Writer }

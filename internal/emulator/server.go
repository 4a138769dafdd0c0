package emulator

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	nethttptest "net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// Options configure a Server. The zero value is a usable in-memory emulator
// accepting any API key, whose jobs finish at once.
type Options struct {
	// APIKeys are the accepted keys; empty accepts any non-empty key.
	APIKeys []string
	// QueuedFor is how long a new job stays queued.
	QueuedFor time.Duration
	// RunningFor is how long a job then runs before it finishes.
	RunningFor time.Duration
	// Clock defaults to real time; tests may pass a *ManualClock.
	Clock Clock
	// DataDir, when set, holds the state (SQLite files, results, s3/) so it
	// survives Close and a later New on the same directory. "" keeps the
	// state in a temporary directory removed by Close. One Server at a
	// time may use a directory: New takes an exclusive lock on
	// DataDir/.lock (held until Close; the kernel drops it if the process
	// dies) and returns a *DataDirInUseError while another holds it.
	DataDir string
	// UserName is reported as user_name on jobs (default "user@example.com").
	UserName string
	// ConnBandwidth, when above 0, paces every response body to this many
	// bytes per second. An HTTP/1.1 connection carries one response at a
	// time, so this caps each connection (as a long-distance link or a
	// per-connection throttle does) while N connections get N times as
	// much: what makes parallel ranged downloads measurable on loopback.
	ConnBandwidth int64
	// Logf, when set, receives one line per request and per failed job
	// (calls are serialised). It never receives the API key or URL
	// passwords.
	Logf func(format string, args ...any)
}

// Server is the emulator. It implements http.Handler.
type Server struct {
	opts  Options
	clock Clock
	root  string
	temp  bool         // root is ours to remove
	lock  *flock.Flock // on DataDir/.lock; nil without DataDir
	logf  func(format string, args ...any)

	ctx    context.Context // cancelled by Close; bounds job executions
	cancel context.CancelFunc
	wg     sync.WaitGroup

	state *sql.DB // jobs and connections

	mu         sync.Mutex
	closed     bool
	jobs       map[int64]*job
	domainKeys map[string]int64
	conns      map[int64]*connection
	connNames  map[string]int64
	dbs        map[string]*database
	nextJob    int64
	nextConn   int64
	stops      []func()
	// schedResults holds saved queries' result URLs as given (the state
	// file has them masked; see schedules.go).
	schedResults map[string]string

	deriveMu sync.Mutex
	deriving map[string]*sync.Mutex

	faults Faults

	reqMu sync.Mutex
	reqs  []RequestRecord
}

// RequestRecord is what the emulator saw of one request.
type RequestRecord struct {
	Method  string
	Path    string      // unescaped path
	RawPath string      // path as sent (escaped)
	Query   url.Values  // query string values
	Form    url.Values  // query and form-body values together
	Header  http.Header // request headers without Authorization
	Time    time.Time   // on the server's clock
}

// New starts an emulator. With Options.DataDir set, it reopens the state kept
// there.
func New(opts Options) (*Server, error) {
	s := &Server{
		opts:       opts,
		clock:      opts.Clock,
		logf:       opts.Logf,
		jobs:       map[int64]*job{},
		domainKeys: map[string]int64{},
		conns:      map[int64]*connection{},
		connNames:  map[string]int64{},
		dbs:        map[string]*database{},
		nextJob:    1,
		nextConn:   1,
		deriving:   map[string]*sync.Mutex{},
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	} else {
		var logMu sync.Mutex // calls come from handlers and job goroutines
		logf := s.logf
		s.logf = func(format string, args ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			logf(format, args...)
		}
	}
	if s.opts.UserName == "" {
		s.opts.UserName = "user@example.com"
	}
	if opts.QueuedFor < 0 || opts.RunningFor < 0 {
		return nil, errors.New("emulator: Options.QueuedFor and Options.RunningFor must not be negative")
	}
	if opts.ConnBandwidth < 0 {
		return nil, errors.New("emulator: Options.ConnBandwidth must not be negative (0 = unlimited)")
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("emulator: creating Options.DataDir: %w", err)
		}
		s.root = opts.DataDir
		s.lock = flock.New(filepath.Join(opts.DataDir, ".lock"), flock.SetPermissions(0o600))
		ok, err := s.lock.TryLock()
		if err != nil {
			return nil, fmt.Errorf("emulator: locking Options.DataDir: %w", err)
		}
		if !ok {
			return nil, &DataDirInUseError{Dir: opts.DataDir}
		}
	} else {
		dir, err := os.MkdirTemp("", "emulator-")
		if err != nil {
			return nil, fmt.Errorf("emulator: creating a temporary state directory: %w", err)
		}
		s.root, s.temp = dir, true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.open(); err != nil {
		s.cancel()
		s.closeDBs()
		if s.temp {
			_ = os.RemoveAll(s.root)
		}
		s.unlock()
		return nil, err
	}
	return s, nil
}

// DataDirInUseError is New's answer while another Server (in this process or
// another, such as a running `tdctl dev-server --data DIR`) uses the same
// Options.DataDir: two emulators on one directory would hand out the same
// job ids.
type DataDirInUseError struct{ Dir string }

func (e *DataDirInUseError) Error() string {
	return fmt.Sprintf("emulator: data directory %s is in use by another emulator (a dev-server or a demo): stop it or use another directory", e.Dir)
}

func (s *Server) unlock() {
	if s.lock != nil {
		_ = s.lock.Unlock()
	}
}

// Close stops the emulator: it stops timers, waits for running jobs (which
// are cancelled), closes its databases and, without DataDir, removes its
// state. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.faults.stop()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	s.cancel()
	s.wg.Wait()
	err := s.closeDBs()
	if s.temp {
		if rerr := os.RemoveAll(s.root); rerr != nil && err == nil {
			err = rerr
		}
	}
	s.unlock()
	return err
}

func (s *Server) closeDBs() error {
	var errs []error
	s.mu.Lock()
	dbs := s.dbs
	s.dbs = map[string]*database{}
	s.mu.Unlock()
	for _, d := range dbs {
		errs = append(errs, d.db.Close())
	}
	if s.state != nil {
		errs = append(errs, s.state.Close())
	}
	return errors.Join(errs...)
}

// NewTestServer starts an emulator behind a net/http/httptest server and
// returns it with its base URL; both are closed when t ends.
func NewTestServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	ts := nethttptest.NewServer(s)
	t.Cleanup(func() {
		s.faults.stop() // stalls and hangs would hold ts.Close
		ts.CloseClientConnections()
		ts.Close()
		if err := s.Close(); err != nil {
			t.Errorf("emulator: Close: %v", err)
		}
	})
	return s, ts.URL
}

// Faults returns the server's scriptable fault list.
func (s *Server) Faults() *Faults { return &s.faults }

// Requests returns every request received so far, oldest first.
func (s *Server) Requests() []RequestRecord {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]RequestRecord(nil), s.reqs...)
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.opts.ConnBandwidth > 0 {
		w = newPacedWriter(w, r.Context(), s.opts.ConnBandwidth)
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if sw.status != 0 {
			s.logf("emulator: %s %s -> %d (%d bytes, %s)", r.Method, r.URL.Path, sw.status, sw.bytes, time.Since(start).Round(time.Microsecond))
		}
	}()
	formErr := parseForm(r)
	s.record(r)
	handler := func(w http.ResponseWriter, r *http.Request) {
		if formErr != nil {
			writeError(w, http.StatusBadRequest, "cannot read the request form: "+formErr.Error(), nil)
			return
		}
		s.route(w, r)
	}
	if f, ok := s.faults.match(r.Method, r.URL.Path); ok {
		s.serveWithFault(sw, r, f, handler)
		return
	}
	handler(sw, r)
}

// parseForm parses the query and a form body. A POST body sent without any
// Content-Type is read as a form too (lenient, like TD's servers); an empty
// (even chunked) body or an octet-stream body is fine.
func parseForm(r *http.Request) error {
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "" && r.Body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		defer r.Header.Del("Content-Type")
	}
	return r.ParseForm()
}

func (s *Server) record(r *http.Request) {
	h := r.Header.Clone()
	h.Del("Authorization")
	rec := RequestRecord{
		Method:  r.Method,
		Path:    r.URL.Path,
		RawPath: r.URL.EscapedPath(),
		Query:   r.URL.Query(),
		Form:    cloneValues(r.Form),
		Header:  h,
		Time:    s.clock.Now(),
	}
	s.reqMu.Lock()
	s.reqs = append(s.reqs, rec)
	s.reqMu.Unlock()
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (s *Server) authorized(r *http.Request) (bool, string) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return false, "missing API key: send the header \"Authorization: TD1 <apikey>\""
	}
	scheme, key, _ := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "TD1") || key == "" {
		return false, "malformed Authorization header: expected \"TD1 <apikey>\""
	}
	if len(s.opts.APIKeys) == 0 {
		return true, ""
	}
	for _, k := range s.opts.APIKeys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			return true, ""
		}
	}
	return false, "invalid API key"
}

// route dispatches on the escaped path, unescaping each segment, so that
// %2E or %2F inside a segment stay inside it and no path cleaning redirect
// ever happens.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if ok, msg := s.authorized(r); !ok {
		writeError(w, http.StatusUnauthorized, msg, nil)
		return
	}
	raw := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	segs := make([]string, len(raw))
	for i, p := range raw {
		u, err := url.PathUnescape(p)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad escape in path segment %q", p), nil)
			return
		}
		segs[i] = u
	}
	if len(segs) == 4 && segs[0] == "v4" && segs[1] == "queries" && segs[3] == "jobs" {
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path), nil)
			return
		}
		s.handleSavedQueryJobs(w, r, segs[2]) // digdag's run of a saved query by id
		return
	}
	if len(segs) < 2 || segs[0] != "v3" {
		writeError(w, http.StatusNotFound, "no such API route: "+r.URL.Path, nil)
		return
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	post := r.Method == http.MethodPost
	type route struct {
		n      int
		method bool
		h      func()
	}
	var rt *route
	switch p := segs[1:]; {
	case len(p) == 4 && p[0] == "job" && p[1] == "issue":
		rt = &route{4, post, func() { s.handleIssue(w, r, p[2], p[3]) }}
	case len(p) == 3 && p[0] == "job" && p[1] == "show":
		rt = &route{3, get, func() { s.handleShow(w, r, p[2]) }}
	case len(p) == 3 && p[0] == "job" && p[1] == "status":
		rt = &route{3, get, func() { s.handleStatus(w, r, p[2]) }}
	case len(p) == 3 && p[0] == "job" && p[1] == "status_by_domain_key":
		rt = &route{3, get, func() { s.handleStatusByDomainKey(w, r, p[2]) }}
	case len(p) == 2 && p[0] == "job" && p[1] == "list":
		rt = &route{2, get, func() { s.handleList(w, r) }}
	case len(p) == 3 && p[0] == "job" && p[1] == "kill":
		rt = &route{3, post, func() { s.handleKill(w, r, p[2]) }}
	case len(p) == 3 && p[0] == "job" && p[1] == "result":
		rt = &route{3, get, func() { s.handleResult(w, r, p[2]) }}
	case len(p) == 3 && p[0] == "job" && p[1] == "result_export":
		rt = &route{3, post, func() { s.handleResultExport(w, r, p[2]) }}
	case len(p) == 2 && p[0] == "connections" && p[1] == "lookup":
		rt = &route{2, get, func() { s.handleConnectionLookup(w, r) }}
	case len(p) == 2 && p[0] == "schedule" && p[1] == "list":
		rt = &route{2, get, func() { s.handleScheduleList(w, r) }}
	case len(p) == 3 && p[0] == "schedule" && p[1] == "create":
		rt = &route{3, post, func() { s.handleScheduleCreate(w, r, p[2]) }}
	case len(p) == 3 && p[0] == "schedule" && p[1] == "update":
		rt = &route{3, post, func() { s.handleScheduleUpdate(w, r, p[2]) }}
	case len(p) == 3 && p[0] == "schedule" && p[1] == "delete":
		rt = &route{3, post, func() { s.handleScheduleDelete(w, r, p[2]) }}
	case len(p) == 4 && p[0] == "schedule" && p[1] == "run":
		rt = &route{4, post, func() { s.handleScheduleRun(w, r, p[2], p[3]) }}
	case len(p) == 3 && p[0] == "schedule" && p[1] == "history":
		rt = &route{3, get, func() { s.handleScheduleHistory(w, r, p[2]) }}
	case len(p) == 2 && p[0] == "result" && p[1] == "list":
		rt = &route{2, get, func() { s.handleResultList(w, r) }}
	case len(p) == 2 && p[0] == "database" && p[1] == "list":
		rt = &route{2, get, func() { s.handleDatabaseList(w, r) }}
	case len(p) == 3 && p[0] == "table" && p[1] == "list":
		rt = &route{3, get, func() { s.handleTableList(w, r, p[2]) }}
	}
	if rt == nil {
		writeError(w, http.StatusNotFound, "no such API route: "+r.URL.Path, nil)
		return
	}
	if !rt.method {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path), nil)
		return
	}
	rt.h()
}

// writeJSON answers 200 with v, gzip-encoded when the client accepts it.
// gzipWriters are reused: a gzip.Writer allocates ~800 KB of deflate state,
// which made compressing the small JSON answers the emulator's main cost
// (bench/emulator).
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer: "+err.Error(), nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(w)
		_, _ = zw.Write(body)
		_ = zw.Close()
		zw.Reset(io.Discard) // drop the reference to w
		gzipWriters.Put(zw)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// writeError answers status with a JSON error body carrying both "error" and
// "message" (clients read one or the other), never gzip-encoded.
func writeError(w http.ResponseWriter, status int, msg string, details map[string]any) {
	body := map[string]any{"error": msg, "message": msg, "severity": "error"}
	if details != nil {
		body["details"] = details
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// formatTime renders t the TD way: "2016-07-26 08:14:46 UTC".
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func (s *Server) resultsDir() string { return filepath.Join(s.root, "results") }

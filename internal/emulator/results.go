package emulator

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// WriteMsgpackGz writes rows as a TD msgpack.gz result: a gzip stream of
// concatenated msgpack arrays, one per row. Values should be nil, bool,
// integers, floats, strings or []byte (composites are encoded as msgpack
// arrays/maps).
func WriteMsgpackGz(w io.Writer, rows func(yield func([]any) bool)) error {
	zw := gzip.NewWriter(w)
	enc := newRowEncoder(zw)
	var err error
	rows(func(row []any) bool {
		err = enc.Encode(row)
		return err == nil
	})
	if err != nil {
		_ = zw.Close()
		return err
	}
	return zw.Close()
}

func newRowEncoder(w io.Writer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(w)
	enc.UseCompactInts(true)
	return enc
}

// resultFile writes a msgpack.gz result to a temporary file renamed into
// place by commit.
type resultFile struct {
	path string
	f    *os.File
	bw   *bufio.Writer
	zw   *gzip.Writer
	enc  *msgpack.Encoder
	rows int64
	done bool
}

func createResultFile(path string) (*resultFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".result-*")
	if err != nil {
		return nil, err
	}
	rf := &resultFile{path: path, f: f, bw: bufio.NewWriterSize(f, 256<<10)}
	rf.zw = gzip.NewWriter(rf.bw)
	rf.enc = newRowEncoder(rf.zw)
	return rf, nil
}

func (rf *resultFile) write(row []any) error {
	rf.rows++
	return rf.enc.Encode(row)
}

// commit finishes the file and returns its size.
func (rf *resultFile) commit() (int64, error) {
	if err := rf.zw.Close(); err != nil {
		return 0, err
	}
	if err := rf.bw.Flush(); err != nil {
		return 0, err
	}
	st, err := rf.f.Stat()
	if err != nil {
		return 0, err
	}
	if err := rf.f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(rf.f.Name(), rf.path); err != nil {
		return 0, err
	}
	rf.done = true
	return st.Size(), nil
}

// abort removes an uncommitted file.
func (rf *resultFile) abort() {
	if !rf.done {
		_ = rf.f.Close()
		_ = os.Remove(rf.f.Name())
	}
}

// rowReader decodes a msgpack.gz result file row by row.
type rowReader struct {
	f   *os.File
	zr  *gzip.Reader
	dec *msgpack.Decoder
}

func openRows(path string) (*rowReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) { // empty file: no rows
			return &rowReader{}, nil
		}
		return nil, fmt.Errorf("reading result %s: %w", filepath.Base(path), err)
	}
	return &rowReader{f: f, zr: zr, dec: msgpack.NewDecoder(bufio.NewReaderSize(zr, 64<<10))}, nil
}

// Next returns the next row, or nil, nil at the end.
func (rr *rowReader) Next() ([]any, error) {
	if rr.dec == nil {
		return nil, nil
	}
	n, err := rr.dec.DecodeArrayLen()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decoding result row: %w", err)
	}
	if n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("decoding result row: bad row length %d", n)
	}
	row := make([]any, n)
	for i := range row {
		if row[i], err = rr.dec.DecodeInterfaceLoose(); err != nil {
			return nil, fmt.Errorf("decoding result row: %w", err)
		}
		if u, ok := row[i].(uint64); ok && u <= math.MaxInt64 {
			row[i] = int64(u) // compact ints: positive numbers arrive unsigned
		}
	}
	return row, nil
}

func (rr *rowReader) Close() error {
	if rr.f == nil {
		return nil
	}
	return rr.f.Close()
}

// readRows calls fn with every row of the msgpack.gz file at path.
func readRows(path string, fn func(row []any) error) error {
	rr, err := openRows(path)
	if err != nil {
		return err
	}
	defer rr.Close()
	for {
		row, err := rr.Next()
		if err != nil {
			return err
		}
		if row == nil {
			return nil
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// --- serving ---------------------------------------------------------------

var resultFormats = map[string]string{
	"msgpack.gz": "application/octet-stream",
	"msgpack":    "application/x-msgpack",
	"json":       "application/json",
	"csv":        "text/csv; charset=utf-8",
	"tsv":        "text/tab-separated-values; charset=utf-8",
}

func (s *Server) handleResult(w http.ResponseWriter, r *http.Request, idStr string) {
	format := r.Form.Get("format")
	if format == "" {
		format = "tsv"
	}
	ctype, ok := resultFormats[format]
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("unknown result format %q: use msgpack.gz, msgpack, json, csv or tsv", format), nil)
		return
	}
	j, ok := s.jobOr404(w, r, idStr)
	if !ok {
		return
	}
	id := j.ID
	if j.Status != statusSuccess || j.ResultPath == "" {
		msg := fmt.Sprintf("job %d has status %s: only a job that finished with success has a result", id, j.Status)
		if j.Status == statusSuccess {
			msg = fmt.Sprintf("job %d has no result (it is a result export job)", id)
		}
		writeError(w, http.StatusUnprocessableEntity, msg, nil)
		return
	}
	path, err := s.formatFile(&j, format)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("preparing the %s result of job %d: %v", format, id, err), nil)
		return
	}
	truncate, _ := r.Context().Value(truncateKey).(bool)
	serveFile(w, r, path, fmt.Sprintf("%d-%s", id, format), ctype, truncate)
}

// formatFile returns the file holding j's result in format, deriving it from
// the msgpack.gz file once.
func (s *Server) formatFile(j *job, format string) (string, error) {
	if format == "msgpack.gz" {
		return j.ResultPath, nil
	}
	path := filepath.Join(s.resultsDir(), fmt.Sprintf("%d.%s", j.ID, format))
	s.deriveMu.Lock()
	mu, ok := s.deriving[path]
	if !ok {
		mu = &sync.Mutex{}
		s.deriving[path] = mu
	}
	s.deriveMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := os.CreateTemp(s.resultsDir(), ".derive-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	bw := bufio.NewWriterSize(f, 256<<10)
	if err := deriveFormat(bw, j.ResultPath, format); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(f.Name(), path)
}

func deriveFormat(w io.Writer, src, format string) error {
	switch format {
	case "msgpack":
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = io.Copy(w, zr)
		return err
	case "json":
		enc := json.NewEncoder(w)
		return readRows(src, func(row []any) error { return enc.Encode(jsonSafe(row)) })
	case "csv":
		cw := csv.NewWriter(w)
		rec := []string{}
		err := readRows(src, func(row []any) error {
			rec = rec[:0]
			for _, v := range row {
				t, _ := cellText(v)
				rec = append(rec, t)
			}
			return cw.Write(rec)
		})
		cw.Flush()
		if err != nil {
			return err
		}
		return cw.Error()
	case "tsv":
		esc := strings.NewReplacer("\\", "\\\\", "\t", "\\t", "\n", "\\n", "\r", "\\r")
		bw := bufio.NewWriter(w)
		err := readRows(src, func(row []any) error {
			for i, v := range row {
				if i > 0 {
					bw.WriteByte('\t')
				}
				t, _ := cellText(v)
				esc.WriteString(bw, t)
			}
			return bw.WriteByte('\n')
		})
		if err != nil {
			return err
		}
		return bw.Flush()
	}
	return fmt.Errorf("unknown format %q", format)
}

// jsonSafe makes decoded msgpack values encodable as JSON.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonSafe(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonSafe(e)
		}
		return out
	}
	return v
}

// serveFile sends the file at path with an ETag, honouring a single
// "Range: bytes=..." (206 + Content-Range) and If-Range. The body goes
// through io.CopyN from the *os.File, so net/http can use sendfile.
func serveFile(w http.ResponseWriter, r *http.Request, path, tag, ctype string, truncate bool) {
	f, err := os.Open(path)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "opening the result: "+err.Error(), nil)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "opening the result: "+err.Error(), nil)
		return
	}
	size := st.Size()
	etag := fmt.Sprintf(`"%s-%x-%x"`, tag, size, st.ModTime().UnixNano())
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Last-Modified", st.ModTime().UTC().Format(http.TimeFormat))
	start, end, status := int64(0), size, http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && ifRangeMatches(r, etag) {
		s, e, ok, satisfiable := parseRange(rng, size)
		if !satisfiable {
			h.Del("ETag")
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf("range %q is outside the result (%d bytes)", rng, size), nil)
			return
		}
		if ok {
			start, end, status = s, e, http.StatusPartialContent
		}
	}
	if truncate {
		end = start + (end-start)/2
	}
	if status == http.StatusPartialContent {
		total := size
		if truncate {
			total = end
		}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, total))
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead || end <= start {
		return
	}
	if start > 0 {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return
		}
	}
	_, _ = io.CopyN(w, f, end-start)
}

// ifRangeMatches reports whether a Range header may be honoured: no If-Range,
// or an If-Range equal to the current (strong) ETag.
func ifRangeMatches(r *http.Request, etag string) bool {
	ir := strings.TrimSpace(r.Header.Get("If-Range"))
	return ir == "" || ir == etag
}

// parseRange reads a single byte range. ok=false (with satisfiable=true)
// means "ignore the header and send everything" (malformed or multiple
// ranges); satisfiable=false means 416.
func parseRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, true
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" { // suffix: last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, true
		}
		if n == 0 {
			return 0, 0, false, false
		}
		return max(0, size-n), size, true, true
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, false, true
	}
	if s >= size {
		return 0, 0, false, false
	}
	e := size
	if b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < s {
			return 0, 0, false, true
		}
		e = min(n+1, size)
	}
	return s, e, true, true
}

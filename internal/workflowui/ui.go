// Package workflowui serves `tdctl workflow ui`: server-rendered pages
// (html/template) of the local workflow runs — the list of runs, a run's
// task tree with its failures first-class, each task's own log, and the
// whole run's log split into per-task sections. A run still going updates
// in place over server-sent events; the only script is the few inline
// lines that apply those updates.
package workflowui

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/workflow"
)

// Source is where the UI reads runs: the same reader as `workflow logs`
// (workflowcmd.LocalRuns), every text it returns already masked.
type Source interface {
	// Runs lists the runs, newest first.
	Runs() ([]*workflow.Summary, error)
	// Run reads one run's record ("latest": the newest).
	Run(id string) (*workflow.Summary, error)
	// Log opens one task's log, secrets masked, and gives its size in
	// bytes; tail > 0 reads only the lines that start in its last tail
	// bytes.
	Log(rec *workflow.TaskRecord, tail int64) (io.ReadCloser, int64, error)
}

// Stamper is a Source that can tell cheaply whether a run changed: a live
// page re-renders only when Stamp changes (and every few seconds anyway,
// to see a run whose process died).
type Stamper interface {
	// Stamp changes when run id's record, or the log of its task n
	// (n >= 0), changes.
	Stamp(id string, n int) string
}

// Options configure the handler.
type Options struct {
	Source Source
	// Mask masks secrets in anything else the UI prints (error messages);
	// nil leaves text as it is.
	Mask func(string) string
	// AllowRemote serves requests whatever their Host header. Without it
	// only loopback names (localhost, 127.0.0.1, [::1]) are answered, so
	// that a web page cannot reach the UI through a DNS name it controls.
	AllowRemote bool
	// Interval is how often a live page checks its run (default 250 ms).
	Interval time.Duration
	// MaxLog caps the bytes of one task's log shown on its page (default
	// 4 MiB; the end is kept, the page says so and links the whole log).
	MaxLog int64
	// MaxSection caps each task's section of the whole-run log (default
	// 256 KiB, the end kept).
	MaxSection int64
}

//go:embed templates/*.html
var templateFS embed.FS

var funcs = template.FuncMap{
	"indent": func(depth int) string { return strconv.Itoa(depth*18+6) + "px" },
}

var tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))

type server struct {
	o   Options
	mux *http.ServeMux
}

// New returns the UI's handler.
func New(o Options) http.Handler {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.MaxLog <= 0 {
		o.MaxLog = 4 << 20
	}
	if o.MaxSection <= 0 {
		o.MaxSection = 256 << 10
	}
	if o.Mask == nil {
		o.Mask = func(s string) string { return s }
	}
	s := &server{o: o, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.runs)
	s.mux.HandleFunc("GET /runs/{id}", s.run)
	s.mux.HandleFunc("GET /runs/{id}/summary.json", s.summaryJSON)
	s.mux.HandleFunc("GET /runs/{id}/log", s.runLog)
	s.mux.HandleFunc("GET /runs/{id}/tasks/{n}", s.task)
	s.mux.HandleFunc("GET /runs/{id}/tasks/{n}/log.txt", s.taskLogText)
	s.mux.HandleFunc("GET /runs/{id}/events", s.events)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.o.AllowRemote && !loopbackHost(r.Host) {
		http.Error(w, "this UI answers to loopback names only (localhost, 127.0.0.1, [::1]); start it with --allow-remote to serve other names", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine's loopback.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// page is what every template gets.
type page struct {
	Title string
	Nonce string // the inline script's CSP nonce
	Live  string // the events URL of a page that updates live
	V     any
}

func (s *server) render(w http.ResponseWriter, status int, name string, p *page) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	p.Nonce = base64.StdEncoding.EncodeToString(nonce[:])
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		http.Error(w, s.o.Mask(err.Error()), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; script-src 'nonce-"+p.Nonce+"'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *server) fail(w http.ResponseWriter, status int, err error) {
	s.render(w, status, "error", &page{Title: http.StatusText(status), V: s.o.Mask(err.Error())})
}

type runsView struct {
	Dir  string
	Runs []runItem
}

type runItem struct {
	Sum      *workflow.Summary
	Started  string
	Duration string
	Tasks    int
	Failed   int
}

func (s *server) runs(w http.ResponseWriter, r *http.Request) {
	sums, err := s.o.Source.Runs()
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	v := &runsView{}
	now := time.Now()
	for _, sum := range sums {
		rv := buildRunView(sum, false, now)
		v.Runs = append(v.Runs, runItem{Sum: sum, Started: clock(sum.StartedAt), Duration: dur(sum.Duration), Tasks: rv.Tasks, Failed: rv.Failed})
	}
	s.render(w, http.StatusOK, "runs", &page{Title: "workflow runs", V: v})
}

// load reads a run, answering 404 when it is not there.
func (s *server) load(w http.ResponseWriter, r *http.Request) (*workflow.Summary, bool) {
	sum, err := s.o.Source.Run(r.PathValue("id"))
	if err != nil {
		s.fail(w, http.StatusNotFound, err)
		return nil, false
	}
	return sum, true
}

func (s *server) run(w http.ResponseWriter, r *http.Request) {
	sum, ok := s.load(w, r)
	if !ok {
		return
	}
	failedOnly := r.URL.Query().Get("failed") == "1"
	v := buildRunView(sum, failedOnly, time.Now())
	p := &page{Title: sum.Workflow + " " + sum.RunID, V: v}
	if sum.State == workflow.StateRunning {
		p.Live = "/runs/" + sum.RunID + "/events?view=run"
		if failedOnly {
			p.Live += "&failed=1"
		}
	}
	s.render(w, http.StatusOK, "run", p)
}

// summaryJSON is the run's record as `workflow logs RUN -o json` prints it.
func (s *server) summaryJSON(w http.ResponseWriter, r *http.Request) {
	sum, ok := s.load(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(sum)
}

// taskRec finds the record of /runs/{id}/tasks/{n}.
func (s *server) taskRec(w http.ResponseWriter, r *http.Request) (*workflow.Summary, int, bool) {
	sum, ok := s.load(w, r)
	if !ok {
		return nil, 0, false
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(sum.Tasks) {
		s.fail(w, http.StatusNotFound, fmt.Errorf("run %s has no task %q (it has %d task records, 0 to %d)", sum.RunID, r.PathValue("n"), len(sum.Tasks), len(sum.Tasks)-1))
		return nil, 0, false
	}
	return sum, n, true
}

// logText is a task's log, at most max bytes: the end is kept.
type logText struct {
	Text      string
	Size      int64 // bytes in the log
	Truncated bool
	Err       string
}

func (s *server) readLog(rec *workflow.TaskRecord, max int64) logText {
	rc, size, err := s.o.Source.Log(rec, max)
	if err != nil {
		return logText{Err: s.o.Mask(err.Error())}
	}
	defer rc.Close()
	var b strings.Builder
	_, err = io.Copy(&b, io.LimitReader(rc, 2*max)) // masking may lengthen lines
	lt := logText{Text: b.String(), Size: size, Truncated: size > max}
	if err != nil {
		lt.Err = s.o.Mask(err.Error())
	}
	return lt
}

type taskView struct {
	Sum      *workflow.Summary
	Rec      *workflow.TaskRecord
	N        int
	Row      string // the task's anchor on the run page
	Start    string
	Duration string
	Records  string
	Log      logText
	Attempts []attempt
}

func (s *server) taskView(sum *workflow.Summary, n int) *taskView {
	rec := sum.Tasks[n]
	v := &taskView{Sum: sum, Rec: rec, N: n, Start: clock(rec.StartedAt), Duration: dur(taskEnd(rec, time.Now()).Sub(rec.StartedAt)), Log: s.readLog(rec, s.o.MaxLog)}
	if rec.NumRecords != nil {
		v.Records = strconv.FormatInt(*rec.NumRecords, 10)
	}
	rv := buildRunView(sum, false, time.Now())
	for _, row := range rv.Rows {
		for _, a := range row.Attempts {
			if a.Rec == n {
				v.Row, v.Attempts = row.ID, row.Attempts
			}
		}
	}
	return v
}

func (s *server) task(w http.ResponseWriter, r *http.Request) {
	sum, n, ok := s.taskRec(w, r)
	if !ok {
		return
	}
	p := &page{Title: sum.Tasks[n].Path + " " + sum.RunID, V: s.taskView(sum, n)}
	if sum.Tasks[n].State == workflow.StateRunning {
		p.Live = fmt.Sprintf("/runs/%s/events?view=task&n=%d", sum.RunID, n)
	}
	s.render(w, http.StatusOK, "task", p)
}

// taskLogText is a task's whole log as text.
func (s *server) taskLogText(w http.ResponseWriter, r *http.Request) {
	sum, n, ok := s.taskRec(w, r)
	if !ok {
		return
	}
	rc, _, err := s.o.Source.Log(sum.Tasks[n], 0)
	if err != nil {
		s.fail(w, http.StatusNotFound, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.Copy(w, rc)
}

type section struct {
	N        int
	Rec      *workflow.TaskRecord
	Duration string
	Log      logText
}

type runLogView struct {
	Sum      *workflow.Summary
	Sections []section
	Max      int64
}

func (s *server) runLog(w http.ResponseWriter, r *http.Request) {
	sum, ok := s.load(w, r)
	if !ok {
		return
	}
	v := &runLogView{Sum: sum, Max: s.o.MaxSection}
	now := time.Now()
	for i, rec := range sum.Tasks {
		v.Sections = append(v.Sections, section{N: i, Rec: rec, Duration: dur(taskEnd(rec, now).Sub(rec.StartedAt)), Log: s.readLog(rec, s.o.MaxSection)})
	}
	s.render(w, http.StatusOK, "runlog", &page{Title: "log of " + sum.RunID, V: v})
}

// events streams a live page's changing parts (server-sent events): an
// "update" event holds {"html": {element id: inner HTML}} each time they
// change, and "done" ends the stream once the run (or task) has ended.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	id := r.PathValue("id")
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	tick := time.NewTicker(s.o.Interval)
	defer tick.Stop()
	last, lastStamp, lastRender := "", "", time.Time{}
	stamper, _ := s.o.Source.(Stamper)
	n := -1
	if q.Get("view") == "task" {
		n, _ = strconv.Atoi(q.Get("n"))
	}
	for {
		if stamper != nil {
			stamp := stamper.Stamp(id, n)
			if stamp == lastStamp && stamp != "" && time.Since(lastRender) < 5*time.Second {
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
				}
				continue
			}
			lastStamp = stamp
		}
		lastRender = time.Now()
		parts, done, err := s.fragments(id, q)
		if err != nil {
			fmt.Fprintf(w, "event: failure\ndata: %s\n\n", jsonString(s.o.Mask(err.Error())))
			fl.Flush()
			return
		}
		data, _ := json.Marshal(map[string]any{"html": parts})
		if string(data) != last {
			last = string(data)
			fmt.Fprintf(w, "event: update\ndata: %s\n\n", data)
			fl.Flush()
		}
		if done {
			fmt.Fprint(w, "event: done\ndata: {}\n\n")
			fl.Flush()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fragments renders the parts of a live page that change.
func (s *server) fragments(id string, q map[string][]string) (map[string]string, bool, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	sum, err := s.o.Source.Run(id)
	if err != nil {
		return nil, false, err
	}
	out := map[string]string{}
	exec := func(elem, name string, data any) error {
		var b bytes.Buffer
		if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
			return err
		}
		out[elem] = b.String()
		return nil
	}
	switch get("view") {
	case "run":
		v := buildRunView(sum, get("failed") == "1", time.Now())
		if err := exec("summary", "runsummary", v); err != nil {
			return nil, false, err
		}
		if err := exec("rows", "rows", v); err != nil {
			return nil, false, err
		}
		return out, sum.State != workflow.StateRunning, nil
	case "task":
		n, err := strconv.Atoi(get("n"))
		if err != nil || n < 0 || n >= len(sum.Tasks) {
			return nil, false, fmt.Errorf("run %s has no task %q", sum.RunID, get("n"))
		}
		v := s.taskView(sum, n)
		if err := exec("taskinfo", "taskinfo", v); err != nil {
			return nil, false, err
		}
		if err := exec("log", "tasklog", v); err != nil {
			return nil, false, err
		}
		return out, sum.Tasks[n].State != workflow.StateRunning, nil
	}
	return nil, false, errors.New("events: view must be run or task")
}

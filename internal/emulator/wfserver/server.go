// Package wfserver serves digdag's REST API (/api/projects, /api/attempts,
// /api/logs, /api/sessions, /api/schedules...) next to the TD API emulator,
// so that push → start → attempt → tasks → logs works with no account:
// `tdctl dev-server` and the tests use it.
//
// A pushed project archive (tar.gz) is kept with every revision; its
// top-level .dig files are its workflows, parsed by package workflow.
// Starting a workflow runs it with tdctl's own runner and operators
// (package workflow, internal/operators) inside the server, against the
// emulator's TD API and a param store in the data directory. Tasks and
// per-task logs are shown as digdag shows them; kill cancels a run; a new
// attempt of a session (digdag's retry) re-runs the workflow.
//
// It lives beside package emulator (which it wraps: every path outside
// /api/ goes to the emulator) because it imports the operators, whose
// tests import the emulator.
package wfserver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/internal/operators"
	"github.com/tdctl/tdctl/paramstore"
	_ "github.com/tdctl/tdctl/paramstore/sqlitestore" // the param store of runs
	"github.com/tdctl/tdctl/td"
)

// Options configure a Server.
type Options struct {
	// Emulator serves the TD API: every request outside /api/ goes to it,
	// and it decides which API keys /api/ accepts.
	Emulator *emulator.Server
	// DataDir holds the state (workflows.db, project files, runs, the
	// param store). Required.
	DataDir string
	// Endpoint is the TD API base URL runs use (the emulator's own URL).
	// "" uses the URL each start request came in on.
	Endpoint string
	// APIKey is the key scheduled runs use for TD (a started attempt uses
	// its caller's key; a project secret td.apikey wins over both).
	APIKey string
	// JobWait tunes td> job waits (nil = the operators' default).
	JobWait *td.WaitOptions
	// ShellGrace is sh>'s SIGTERM-to-SIGKILL grace on kill (0 = default).
	ShellGrace time.Duration
	// SchedulerTick is how often due schedules are started (0 = 1 s;
	// below 0 = never, for tests).
	SchedulerTick time.Duration
	// Logf, when set, receives one line per request and per attempt.
	Logf func(format string, args ...any)
}

// Server is the workflow API. It implements http.Handler.
type Server struct {
	opts Options
	emu  *emulator.Server
	db   *sql.DB
	dir  string
	logf func(string, ...any)

	params     *paramstore.Store
	paramsOnce sync.Once
	paramsErr  error

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[int64]context.CancelFunc // attempt id → cancel
	secrets map[int64]map[string]string  // project id → key → value, in memory only
	startMu sync.Mutex                   // one attempt insert at a time (session conflicts)
}

// New opens (or creates) the state in opts.DataDir. Attempts left running
// by a previous process are marked done and failed.
func New(opts Options) (*Server, error) {
	if opts.Emulator == nil {
		return nil, errors.New("wfserver: Options.Emulator is required")
	}
	if opts.DataDir == "" {
		return nil, errors.New("wfserver: Options.DataDir is required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("wfserver: %w", err)
	}
	db, err := openDB(opts.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, emu: opts.Emulator, db: db, dir: opts.DataDir, logf: opts.Logf, running: map[int64]context.CancelFunc{}}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	now := time.Now().Unix()
	if _, err := db.Exec(`UPDATE attempts SET done = 1, success = 0, finished_at = ? WHERE done = 0`, now); err != nil {
		db.Close()
		return nil, fmt.Errorf("wfserver: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if opts.SchedulerTick >= 0 {
		tick := opts.SchedulerTick
		if tick == 0 {
			tick = time.Second
		}
		s.wg.Add(1)
		go s.scheduler(tick)
	}
	return s, nil
}

// Close kills the running attempts, waits for them and closes the state.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	if s.params != nil {
		s.params.Close()
	}
	return s.db.Close()
}

// paramStore opens the runs' param store (SQLite in the data directory)
// on first use.
func (s *Server) paramStore() (operators.ParamStore, error) {
	s.paramsOnce.Do(func() {
		u := (&url.URL{Scheme: "sqlite", Path: filepath.ToSlash(filepath.Join(s.dir, "params.db"))}).String()
		s.params, s.paramsErr = paramstore.Open(s.ctx, u)
	})
	if s.paramsErr != nil {
		return nil, s.paramsErr
	}
	return s.params.Site(0), nil
}

// apiError is digdag's error body: {"message": ..., "status": N}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"encoding the response failed","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{status: http.StatusInternalServerError, msg: err.Error()}
	}
	writeJSON(w, ae.status, map[string]any{"message": ae.msg, "status": ae.status})
}

// ServeHTTP serves /api/ and hands every other path to the emulator.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api" && !strings.HasPrefix(r.URL.Path, "/api/") {
		s.emu.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.logf("wfserver: %s %s -> %d (%s)", r.Method, r.URL.Path, sw.status, time.Since(start).Round(time.Microsecond))
	}()
	if ok, msg := s.emu.Authorized(r); !ok {
		writeErr(sw, errorf(http.StatusUnauthorized, "%s", msg))
		return
	}
	var segs []string
	for _, p := range strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")[1:] {
		u, err := url.PathUnescape(p)
		if err != nil {
			writeErr(sw, errorf(http.StatusBadRequest, "bad escape in path segment %q", p))
			return
		}
		segs = append(segs, u)
	}
	if err := s.route(sw, r, segs); err != nil {
		writeErr(sw, err)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// route dispatches /api/<segs...>; a nil error means the handler answered.
func (s *Server) route(w http.ResponseWriter, r *http.Request, p []string) error {
	q := r.URL.Query()
	m := r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	n := len(p)
	is := func(want int, method string, parts ...string) bool {
		if n != want || m != method {
			return false
		}
		for i, part := range parts {
			if part != "*" && p[i] != part {
				return false
			}
		}
		return true
	}
	var v any
	var err error
	switch {
	case is(1, "GET", "version"):
		v = map[string]any{"version": "tdctl-dev-server"}
	case is(1, "GET", "projects"):
		v, err = s.listProjects(q)
	case is(1, "PUT", "projects"):
		v, err = s.putProject(r, q)
	case is(1, "GET", "project"):
		v, err = s.getProjectByName(q.Get("name"))
	case is(2, "GET", "projects"):
		v, err = withID(p[1], s.getProject)
	case is(2, "DELETE", "projects"):
		v, err = withID(p[1], s.deleteProject)
	case is(3, "GET", "projects", "*", "revisions"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.listRevisions(id, q) })
	case is(3, "GET", "projects", "*", "workflows"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.listWorkflowsOfProject(id, q.Get("revision"), q.Get("name")) })
	case is(3, "GET", "projects", "*", "workflow"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.getWorkflowOfProject(id, q.Get("name"), q.Get("revision")) })
	case is(4, "GET", "projects", "*", "workflows"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.getWorkflowOfProject(id, p[3], q.Get("revision")) })
	case is(3, "GET", "projects", "*", "archive"):
		return s.getArchive(w, p[1], q.Get("revision"))
	case is(3, "GET", "projects", "*", "schedules"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.listSchedules(id, q.Get("workflow"), q) })
	case is(3, "GET", "projects", "*", "sessions"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.listSessions(id, q.Get("workflow"), q) })
	case is(3, "GET", "projects", "*", "secrets"):
		v, err = withID(p[1], s.listSecrets)
	case is(4, "PUT", "projects", "*", "secrets"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.putSecret(id, p[3], r) })
	case is(4, "DELETE", "projects", "*", "secrets"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.deleteSecret(id, p[3]) })
	case is(1, "GET", "workflows"):
		v, err = s.listWorkflows(q)
	case is(2, "GET", "workflows"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.getWorkflow(id) })
	case is(3, "GET", "workflows", "*", "truncated_session_time"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.truncatedSessionTime(id, q) })
	case is(1, "GET", "sessions"):
		v, err = s.listSessions(0, "", q)
	case is(2, "GET", "sessions"):
		v, err = withID(p[1], s.getSession)
	case is(3, "GET", "sessions", "*", "attempts"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.listAttemptsOfSession(id, q) })
	case is(1, "GET", "attempts"):
		v, err = s.listAttempts(q)
	case is(1, "PUT", "attempts"):
		return s.startAttempt(w, r)
	case is(2, "GET", "attempts"):
		v, err = withID(p[1], s.getAttempt)
	case is(3, "GET", "attempts", "*", "retries"):
		v, err = withID(p[1], s.listRetries)
	case is(3, "GET", "attempts", "*", "tasks"):
		v, err = withID(p[1], s.listTasks)
	case is(3, "POST", "attempts", "*", "kill"):
		v, err = withID(p[1], s.killAttempt)
	case is(3, "GET", "logs", "*", "files"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.listLogFiles(id, q.Get("task")) })
	case is(4, "GET", "logs", "*", "files"):
		return s.getLogFile(w, p[1], p[3])
	case is(1, "GET", "schedules"):
		v, err = s.listSchedules(0, "", q)
	case is(2, "GET", "schedules"):
		v, err = withID(p[1], s.getSchedule)
	case is(3, "POST", "schedules", "*", "backfill"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.backfill(id, r) })
	case is(3, "POST", "schedules", "*", "disable"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.setScheduleDisabled(id, true) })
	case is(3, "POST", "schedules", "*", "enable"):
		v, err = withID(p[1], func(id int64) (any, error) { return s.setScheduleDisabled(id, false) })
	default:
		return s.noRoute(r, p)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// noRoute answers an unknown path 404 and a known path with another method
// 405, as digdag's JAX-RS server does. Schedule skip, which digdag has and
// this server does not serve, is a 501 naming it.
func (s *Server) noRoute(r *http.Request, p []string) error {
	if len(p) == 3 && p[0] == "schedules" && p[2] == "skip" {
		return errorf(http.StatusNotImplemented, "%s %s is not implemented by the dev-server (schedule %s)", r.Method, r.URL.Path, p[2])
	}
	for _, m := range []string{"GET", "PUT", "POST", "DELETE"} {
		if m == r.Method {
			continue
		}
		r2 := *r
		r2.Method = m
		if s.knownRoute(&r2, p) {
			return errorf(http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed")
		}
	}
	return errorf(http.StatusNotFound, "HTTP 404 Not Found")
}

func (s *Server) knownRoute(r *http.Request, p []string) bool {
	// the shapes route() serves, by method
	known := map[string][]string{
		"version": {"GET"}, "projects": {"GET", "PUT"}, "project": {"GET"}, "workflows": {"GET"},
		"sessions": {"GET"}, "attempts": {"GET", "PUT"}, "schedules": {"GET"},
	}
	if len(p) == 1 {
		for _, m := range known[p[0]] {
			if m == r.Method {
				return true
			}
		}
		return false
	}
	if len(p) == 2 {
		switch p[0] {
		case "projects":
			return r.Method == "GET" || r.Method == "DELETE"
		case "workflows", "sessions", "attempts", "schedules":
			return r.Method == "GET"
		}
		return false
	}
	if len(p) == 3 {
		switch p[0] + "/" + p[2] {
		case "attempts/kill", "schedules/disable", "schedules/enable", "schedules/backfill":
			return r.Method == "POST"
		case "projects/secrets", "projects/revisions", "projects/workflows", "projects/workflow", "projects/archive",
			"projects/schedules", "projects/sessions", "sessions/attempts", "attempts/retries", "attempts/tasks", "logs/files", "workflows/truncated_session_time":
			return r.Method == "GET"
		}
		return false
	}
	if len(p) == 4 {
		switch p[0] + "/" + p[2] {
		case "projects/secrets":
			return r.Method == "PUT" || r.Method == "DELETE"
		case "projects/workflows", "logs/files":
			return r.Method == "GET"
		}
	}
	return false
}

// withID parses a path id as digdag's JAX-RS resources do (a non-number is
// a 404: the path does not match).
func withID(seg string, f func(int64) (any, error)) (any, error) {
	id, err := strconv.ParseInt(seg, 10, 64)
	if err != nil {
		return nil, errorf(http.StatusNotFound, "HTTP 404 Not Found")
	}
	return f(id)
}

// pageSize reads page_size as digdag's QueryParamValidator does: default
// def, at most max (digdag's api.max_*_page_size default to the default).
func pageSize(q url.Values, def, max int) (int, error) {
	v := q.Get("page_size")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errorf(http.StatusBadRequest, "page_size must be a positive integer: %q", v)
	}
	if n > max {
		return 0, errorf(http.StatusBadRequest, "Your specified page_size is %d, but it is larger than MAX_PAGE_SIZE: %d. You must specify page_size with a number which is smaller than %d.", n, max, max)
	}
	return n, nil
}

func lastID(q url.Values) (int64, error) {
	v := q.Get("last_id")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusNotFound, "HTTP 404 Not Found") // JAX-RS: an unparsable query param
	}
	return n, nil
}

// --- projects -------------------------------------------------------

func (s *Server) restProject(p *project) (*restProject, error) {
	rev, err := s.revisionByName(p.ID, "")
	if err != nil {
		return nil, err
	}
	return &restProject{ID: idString(p.ID), Name: p.Name, Revision: rev.Name, CreatedAt: instant(p.CreatedAt),
		UpdatedAt: instant(rev.CreatedAt), DeletedAt: instantPtr(p.DeletedAt), ArchiveType: "db", ArchiveMd5: rev.MD5}, nil
}

func (s *Server) listProjects(q url.Values) (any, error) {
	last, err := lastID(q)
	if err != nil {
		return nil, err
	}
	ids, err := s.queryIDs(`SELECT id FROM projects WHERE deleted_at IS NULL AND id > ? ORDER BY id`, last)
	if err != nil {
		return nil, err
	}
	out := []*restProject{}
	name, pattern := q.Get("name"), q.Get("name_pattern")
	for _, id := range ids {
		p, err := s.project(id)
		if err != nil {
			return nil, err
		}
		if (name != "" && p.Name != name) || (pattern != "" && !strings.Contains(p.Name, pattern)) {
			continue
		}
		rp, err := s.restProject(p)
		if err != nil {
			return nil, err
		}
		out = append(out, rp)
		if c := q.Get("count"); c != "" {
			if n, _ := strconv.Atoi(c); n > 0 && len(out) >= n {
				break
			}
		}
	}
	return map[string]any{"projects": out}, nil
}

// liveProject returns a project that is not deleted, or digdag's 404.
func (s *Server) liveProject(id int64) (*project, error) {
	p, err := s.project(id)
	if errors.Is(err, errNotFound) {
		return nil, errorf(http.StatusNotFound, "project id=%d does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil {
		return nil, errorf(http.StatusNotFound, "Project id=%d is already deleted at %s", id, instant(*p.DeletedAt))
	}
	return p, nil
}

func (s *Server) getProject(id int64) (any, error) {
	p, err := s.liveProject(id)
	if err != nil {
		return nil, err
	}
	return s.restProject(p)
}

func (s *Server) getProjectByName(name string) (any, error) {
	if name == "" {
		return nil, errorf(http.StatusBadRequest, "name= is required")
	}
	p, err := s.liveProjectByName(name)
	if err != nil {
		return nil, err
	}
	return s.restProject(p)
}

// liveProjectByName returns a project that is not deleted, or a 404.
func (s *Server) liveProjectByName(name string) (*project, error) {
	p, err := s.projectByName(name)
	if errors.Is(err, errNotFound) || (err == nil && p.DeletedAt != nil) {
		return nil, errorf(http.StatusNotFound, "project name=%s does not exist", name)
	}
	return p, err
}

func (s *Server) deleteProject(id int64) (any, error) {
	p, err := s.liveProject(id)
	if err != nil {
		return nil, err
	}
	rp, err := s.restProject(p)
	if err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	if _, err := s.db.Exec(`UPDATE projects SET deleted_at = ? WHERE id = ?`, now, id); err != nil {
		return nil, err
	}
	if _, err := s.db.Exec(`DELETE FROM schedules WHERE project_id = ?`, id); err != nil {
		return nil, err
	}
	d := instant(unixTime(now))
	rp.DeletedAt = &d
	return rp, nil
}

func (s *Server) listRevisions(id int64, q url.Values) (any, error) {
	if _, err := s.liveProject(id); err != nil {
		return nil, err
	}
	revs, err := s.revisions(id)
	if err != nil {
		return nil, err
	}
	out := []*restRevision{}
	name := q.Get("name")
	for _, r := range revs {
		if name != "" && r.Name != name {
			continue
		}
		out = append(out, &restRevision{Revision: r.Name, CreatedAt: instant(r.CreatedAt), ArchiveType: "db", ArchiveMd5: r.MD5, UserInfo: map[string]any{}})
	}
	return map[string]any{"revisions": out}, nil
}

// --- workflows ------------------------------------------------------

func (s *Server) restWorkflow(w *workflowDef) (*restWorkflow, error) {
	p, err := s.project(w.ProjectID)
	if err != nil {
		return nil, err
	}
	var rev string
	if err := s.db.QueryRow(`SELECT name FROM revisions WHERE id = ?`, w.RevisionID).Scan(&rev); err != nil {
		return nil, err
	}
	return &restWorkflow{ID: idString(w.ID), Name: w.Name, Project: idAndName{idString(p.ID), p.Name}, Revision: rev,
		Timezone: w.Timezone, Config: json.RawMessage(w.Config)}, nil
}

func (s *Server) restWorkflows(ws []*workflowDef) ([]*restWorkflow, error) {
	return each(ws, s.restWorkflow)
}

func (s *Server) revisionOf(projectID int64, name string) (*revision, error) {
	rev, err := s.revisionByName(projectID, name)
	if errors.Is(err, errNotFound) {
		return nil, errorf(http.StatusNotFound, "revision=%s of project id=%d does not exist", name, projectID)
	}
	return rev, err
}

// workflowsOf returns a live project's revision (latest when revName is
// "") and its workflows.
func (s *Server) workflowsOf(id int64, revName string) (*revision, []*workflowDef, error) {
	if _, err := s.liveProject(id); err != nil {
		return nil, nil, err
	}
	rev, err := s.revisionOf(id, revName)
	if err != nil {
		return nil, nil, err
	}
	ws, err := s.workflowsOfRevision(rev.ID)
	return rev, ws, err
}

func (s *Server) listWorkflowsOfProject(id int64, revName, name string) (any, error) {
	_, ws, err := s.workflowsOf(id, revName)
	if err != nil {
		return nil, err
	}
	if name != "" {
		var keep []*workflowDef
		for _, w := range ws {
			if w.Name == name {
				keep = append(keep, w)
			}
		}
		ws = keep
	}
	out, err := s.restWorkflows(ws)
	if err != nil {
		return nil, err
	}
	return map[string]any{"workflows": out}, nil
}

func (s *Server) getWorkflowOfProject(id int64, name, revName string) (any, error) {
	if name == "" {
		return nil, errorf(http.StatusBadRequest, "name= is required")
	}
	rev, ws, err := s.workflowsOf(id, revName)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if w.Name == name {
			return s.restWorkflow(w)
		}
	}
	return nil, errorf(http.StatusNotFound, "workflow name=%s in revision=%s of project id=%d does not exist", name, rev.Name, id)
}

// latestWorkflows are the workflows of every live project's latest
// revision, by id.
func (s *Server) latestWorkflows() ([]*workflowDef, error) {
	return scanWorkflows(s.db.Query(`SELECT ` + workflowCols + ` FROM workflows w WHERE revision_id IN
		(SELECT MAX(r.id) FROM revisions r JOIN projects p ON p.id = r.project_id WHERE p.deleted_at IS NULL GROUP BY r.project_id)
		ORDER BY id`))
}

func (s *Server) listWorkflows(q url.Values) (any, error) {
	ws, err := s.latestWorkflows()
	if err != nil {
		return nil, err
	}
	last, err := lastID(q)
	if err != nil {
		return nil, err
	}
	if q.Get("order") == "desc" {
		sort.Slice(ws, func(i, j int) bool { return ws[i].ID > ws[j].ID })
	}
	count := 100
	if c, err := strconv.Atoi(q.Get("count")); err == nil && c > 0 {
		count = c
	}
	pattern := q.Get("name_pattern")
	var keep []*workflowDef
	for _, w := range ws {
		if last > 0 && ((q.Get("order") == "desc" && w.ID >= last) || (q.Get("order") != "desc" && w.ID <= last)) {
			continue
		}
		if pattern != "" && !strings.Contains(w.Name, pattern) {
			continue
		}
		keep = append(keep, w)
		if len(keep) == count {
			break
		}
	}
	out, err := s.restWorkflows(keep)
	if err != nil {
		return nil, err
	}
	return map[string]any{"workflows": out}, nil
}

func (s *Server) getWorkflow(id int64) (any, error) {
	w, err := s.workflowByID(id)
	if errors.Is(err, errNotFound) {
		return nil, errorf(http.StatusNotFound, "workflow id=%d does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	return s.restWorkflow(w)
}

// --- secrets --------------------------------------------------------

// validSecretKey is digdag's SecretValidation key rule: letters, digits,
// '_', '-' and '.', starting with a letter, at most 255 characters.
func validSecretKey(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i, c := range k {
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if i == 0 && !letter {
			return false
		}
		if !letter && !(c >= '0' && c <= '9') && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func (s *Server) putSecret(id int64, key string, r *http.Request) (any, error) {
	var req struct {
		Value *string `json:"value"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Value == nil || !validSecretKey(key) || len(*req.Value) > 16*1024 {
		return nil, errorf(http.StatusBadRequest, "Invalid secret")
	}
	p, err := s.liveProject(id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.secrets == nil {
		s.secrets = map[int64]map[string]string{}
	}
	if s.secrets[id] == nil {
		s.secrets[id] = map[string]string{}
	}
	s.secrets[id][key] = *req.Value
	s.mu.Unlock()
	return &restSecret{Key: key, Project: idAndName{idString(p.ID), p.Name}}, nil
}

func (s *Server) deleteSecret(id int64, key string) (any, error) {
	if !validSecretKey(key) {
		return nil, errorf(http.StatusBadRequest, "Invalid secret")
	}
	p, err := s.liveProject(id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	delete(s.secrets[id], key)
	s.mu.Unlock()
	return &restSecret{Key: key, Project: idAndName{idString(p.ID), p.Name}}, nil
}

// listSecrets lists the keys; values are never returned, as in digdag.
func (s *Server) listSecrets(id int64) (any, error) {
	if _, err := s.liveProject(id); err != nil {
		return nil, err
	}
	m, err := s.secretsOf(id)
	if err != nil {
		return nil, err
	}
	out := []restSecretMetadata{}
	for k := range m {
		out = append(out, restSecretMetadata{Key: k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return map[string]any{"secrets": out}, nil
}

// truncatedSessionTime is GET /api/workflows/{id}/truncated_session_time:
// session_time (an instant with offset, or a local time read in the
// workflow's zone) truncated by mode (hour, day; schedule: the first
// session at or after it; next_schedule: the session after it).
func (s *Server) truncatedSessionTime(id int64, q url.Values) (any, error) {
	raw := q.Get("session_time")
	mode := q.Get("mode")
	var t time.Time
	if raw != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, raw); err != nil {
			t = time.Time{}
		}
	}
	switch mode {
	case "", "hour", "day", "schedule", "next_schedule":
	default:
		// a query param JAX-RS cannot convert is a 404
		return nil, errorf(http.StatusNotFound, "Unknown session time truncate option: %s", mode)
	}
	w, err := s.workflowByID(id)
	if errors.Is(err, errNotFound) {
		return nil, errorf(http.StatusNotFound, "workflow id=%d does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	loc := s.location(w.Timezone)
	if raw != "" && t.IsZero() {
		for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
			if lt, err := time.ParseInLocation(layout, raw, loc); err == nil {
				t = lt
				break
			}
		}
		if t.IsZero() {
			return nil, errorf(http.StatusNotFound, "Invalid timestamp format: %s", raw)
		}
	}
	if raw == "" {
		return nil, errorf(http.StatusBadRequest, "session_time= is required")
	}
	switch mode {
	case "hour":
		lt := t.In(loc)
		t = time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), 0, 0, 0, loc)
	case "day":
		lt := t.In(loc)
		t = time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	case "schedule", "next_schedule":
		wf, err := s.parseWorkflow(w)
		if err != nil {
			return nil, err
		}
		if wf.Schedule == nil {
			return nil, errorf(http.StatusBadRequest, "session_time_truncate=%s is set but schedule is not set to this workflow", mode)
		}
		if mode == "schedule" {
			t = wf.Schedule.Next(t.Add(-time.Second))
		} else {
			t = wf.Schedule.Next(t)
		}
	}
	rw, err := s.restWorkflow(w)
	if err != nil {
		return nil, err
	}
	return map[string]any{"project": rw.Project, "revision": rw.Revision, "sessionTime": offsetTime(t, loc), "timezone": w.Timezone}, nil
}

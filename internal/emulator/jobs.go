package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Job statuses.
const (
	statusQueued  = "queued"
	statusRunning = "running"
	statusSuccess = "success"
	statusError   = "error"
	statusKilled  = "killed"
)

// Job kinds.
const (
	kindQuery    = "query"    // runs SQL (and exports when issued with a result target)
	kindExport   = "export"   // exports another job's result
	kindFinished = "finished" // registered by AddFinishedJob
)

// job is the emulator's record of one job; it is persisted as JSON.
type job struct {
	ID            int64
	Kind          string
	Type          string
	Database      string
	Query         string
	Result        string // result URL as given (echoed by show)
	ConnID        int64  // result_connection_id as given
	ConnSettings  string // result_connection_settings as given
	Target        *target
	Priority      int
	RetryLimit    int
	DomainKey     string
	EngineVersion string
	PoolName      string
	ScheduledTime int64
	Schedule      string `json:",omitempty"` // the saved query a run started it for
	Form          url.Values

	CreatedAt  time.Time
	UpdatedAt  time.Time
	QueuedFor  time.Duration
	RunningFor time.Duration
	Status     string
	StartAt    *time.Time
	EndAt      *time.Time
	NumRecords *int64
	ResultSize *int64
	Schema     []Column
	Cmdout     string
	Stderr     string
	ResultPath string // msgpack.gz result file

	// Redacted is set on a job read back from the state file whose secrets
	// were masked there (see persistLocked).
	Redacted bool `json:",omitempty"`

	ExportTarget *int64 // export job: the job whose result it exports
	LinkedExport *int64 // the latest export job of this job's result

	exec *execution
}

func (j *job) final() bool {
	return j.Status == statusSuccess || j.Status == statusError || j.Status == statusKilled
}

// snapshot copies j for use outside s.mu.
func (j *job) snapshot() job {
	c := *j
	c.exec = nil
	c.Schema = append([]Column(nil), j.Schema...)
	c.Form = cloneValues(j.Form)
	return c
}

// execution is the work of a job, run once in the background.
type execution struct {
	done     chan struct{}
	ok       bool
	canceled bool
	errMsg   string
	res      queryResult
	exported int64
	cmdout   string
	at       time.Time
}

// --- lifecycle --------------------------------------------------------------

// scheduleLocked arranges for j to advance in the background when the clock
// supports timers. s.mu is held.
func (s *Server) scheduleLocked(j *job) {
	tc, ok := s.clock.(timerClock)
	if !ok || s.closed {
		return
	}
	now := s.clock.Now()
	runAt := j.CreatedAt.Add(j.QueuedFor)
	endAt := runAt.Add(j.RunningFor)
	id := j.ID
	s.stops = append(s.stops,
		tc.afterFunc(max(0, runAt.Sub(now)), func() { s.tick(id) }),
		tc.afterFunc(max(0, endAt.Sub(now)), func() { s.tick(id) }))
}

func (s *Server) tick(id int64) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	_, _, _ = s.lookup(s.ctx, id)
}

// advanceLocked brings j up to date with the clock. When the clock says j
// has finished but its work is still running, it returns a channel to wait
// on. s.mu is held.
func (s *Server) advanceLocked(j *job) <-chan struct{} {
	if j.final() || s.closed {
		return nil
	}
	now := s.clock.Now()
	runAt := j.CreatedAt.Add(j.QueuedFor)
	if now.Before(runAt) {
		return nil
	}
	if j.Status == statusQueued || j.Status == "" {
		t := runAt
		j.Status, j.StartAt, j.UpdatedAt = statusRunning, &t, runAt
		s.persistLocked(j)
	}
	if j.exec == nil {
		s.startExecLocked(j)
	}
	endAt := runAt.Add(j.RunningFor)
	if now.Before(endAt) {
		return nil
	}
	ex := j.exec
	select {
	case <-ex.done:
	default:
		return ex.done
	}
	if ex.canceled {
		return nil // the server is closing: the job stays running (and runs again after a restart)
	}
	end := endAt
	if ex.at.After(end) {
		end = ex.at
	}
	j.EndAt, j.UpdatedAt = &end, end
	j.Cmdout = ex.cmdout
	if ex.ok {
		j.Status = statusSuccess
		switch j.Kind {
		case kindQuery:
			n, size := ex.res.rows, ex.res.size
			j.NumRecords, j.ResultSize, j.Schema = &n, &size, ex.res.schema
		case kindExport:
			n, size := ex.exported, int64(0)
			j.NumRecords, j.ResultSize = &n, &size
		}
	} else {
		j.Status = statusError
		j.Stderr = ex.errMsg
		if j.Kind == kindQuery {
			_ = os.Remove(j.ResultPath)
		}
	}
	s.persistLocked(j)
	return nil
}

type execParams struct {
	id       int64
	kind     string
	typ      string
	database string
	query    string
	out      string
	target   *target
	srcPath  string
	srcRows  []Column
	srcID    int64
}

// startExecLocked starts j's work in the background. s.mu is held.
func (s *Server) startExecLocked(j *job) {
	ex := &execution{done: make(chan struct{})}
	j.exec = ex
	p := execParams{id: j.ID, kind: j.Kind, typ: j.Type, database: j.Database, query: withScheduledTime(j.Query, j.ScheduledTime), out: j.ResultPath, target: j.Target}
	if j.Kind == kindExport && j.ExportTarget != nil {
		p.srcID = *j.ExportTarget
		if src, ok := s.jobs[p.srcID]; ok {
			p.srcPath, p.srcRows = src.ResultPath, src.Schema
		}
	}
	s.wg.Add(1)
	go s.execute(p, ex)
}

func (s *Server) execute(p execParams, ex *execution) {
	defer s.wg.Done()
	defer close(ex.done)
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Minute)
	defer cancel()
	var log strings.Builder
	fail := func(format string, args ...any) {
		ex.ok = false
		ex.errMsg = fmt.Sprintf(format, args...)
		s.logf("emulator: job %d failed: %s", p.id, ex.errMsg)
	}
	switch p.kind {
	case kindQuery:
		fmt.Fprintf(&log, "Started %s job %d on database %s\n", p.typ, p.id, p.database)
		res, err := s.runQuery(ctx, p.database, p.typ, p.query, p.out)
		if err != nil {
			fail("Query failed: %s", scrub(err.Error()))
			break
		}
		ex.ok, ex.res = true, res
		fmt.Fprintf(&log, "Query finished: %d rows, %d bytes of msgpack.gz\n", res.rows, res.size)
		if p.target != nil {
			n, msg, err := s.export(ctx, p.out, res.schema, p.target, p.id)
			if err != nil {
				fail("Query succeeded (%d rows) but the result export failed: %s", res.rows, err.Error())
				break
			}
			ex.exported = n
			log.WriteString(msg + "\n")
		}
	case kindExport:
		fmt.Fprintf(&log, "Started result export of job %d\n", p.srcID)
		if p.srcPath == "" {
			fail("job %d has no result to export", p.srcID)
			break
		}
		n, msg, err := s.export(ctx, p.srcPath, p.srcRows, p.target, p.id)
		if err != nil {
			fail("Result export failed: %s", err.Error())
			break
		}
		ex.ok, ex.exported = true, n
		log.WriteString(msg + "\n")
	default:
		fail("job %d cannot run (kind %q)", p.id, p.kind)
	}
	if s.ctx.Err() != nil {
		ex.canceled = true
	}
	ex.cmdout = log.String()
	ex.at = s.clock.Now()
}

// lookup returns an up-to-date copy of job id, waiting for its work when the
// clock says it is over.
func (s *Server) lookup(ctx context.Context, id int64) (job, bool, error) {
	var snap job
	found, err := s.withJob(ctx, id, func(j *job) { snap = j.snapshot() })
	return snap, found, err
}

// jobOr404 looks up the job named in the path; when there is none it answers
// 404 (and when the client went away, nothing) and reports false.
func (s *Server) jobOr404(w http.ResponseWriter, r *http.Request, idStr string) (job, bool) {
	id, ok := parseJobID(idStr)
	if !ok {
		jobNotFound(w, idStr)
		return job{}, false
	}
	j, found, err := s.lookup(r.Context(), id)
	if err != nil {
		return job{}, false // client gone
	}
	if !found {
		jobNotFound(w, idStr)
		return job{}, false
	}
	return j, true
}

// withJob runs fn on the up-to-date job id with s.mu held.
func (s *Server) withJob(ctx context.Context, id int64, fn func(j *job)) (bool, error) {
	for {
		s.mu.Lock()
		j, ok := s.jobs[id]
		if !ok {
			s.mu.Unlock()
			return false, nil
		}
		wait := s.advanceLocked(j)
		if wait == nil {
			fn(j)
			s.mu.Unlock()
			return true, nil
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// --- JSON shapes -----------------------------------------------------------

type debugJSON struct {
	Cmdout string `json:"cmdout"`
	Stderr string `json:"stderr"`
}

// showJSON has exactly the keys of /v3/job/show (list drops debug).
type showJSON struct {
	JobID                   string     `json:"job_id"`
	Type                    string     `json:"type"`
	Organization            *string    `json:"organization"`
	UserName                string     `json:"user_name"`
	Database                string     `json:"database"`
	Status                  string     `json:"status"`
	Query                   string     `json:"query"`
	Debug                   *debugJSON `json:"debug,omitempty"`
	URL                     string     `json:"url"`
	Duration                *int64     `json:"duration"`
	CreatedAt               string     `json:"created_at"`
	UpdatedAt               string     `json:"updated_at"`
	StartAt                 *string    `json:"start_at"`
	EndAt                   *string    `json:"end_at"`
	CPUTime                 *int64     `json:"cpu_time"`
	ResultSize              *int64     `json:"result_size"`
	NumRecords              *int64     `json:"num_records"`
	Result                  string     `json:"result"`
	Priority                int        `json:"priority"`
	RetryLimit              int        `json:"retry_limit"`
	HiveResultSchema        *string    `json:"hive_result_schema"`
	ResultExportTargetJobID *int64     `json:"result_export_target_job_id"`
	LinkedResultExportJobID *int64     `json:"linked_result_export_job_id"`
}

// statusJSON has exactly the keys of /v3/job/status.
type statusJSON struct {
	JobID      string  `json:"job_id"`
	Status     string  `json:"status"`
	CreatedAt  string  `json:"created_at"`
	UpdatedAt  string  `json:"updated_at"`
	StartAt    *string `json:"start_at"`
	EndAt      *string `json:"end_at"`
	Duration   *int64  `json:"duration"`
	CPUTime    *int64  `json:"cpu_time"`
	ResultSize *int64  `json:"result_size"`
	NumRecords *int64  `json:"num_records"`
}

func timePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func (j *job) duration() *int64 {
	if !j.final() || j.EndAt == nil {
		return nil
	}
	d := int64(0)
	if j.StartAt != nil {
		d = int64(j.EndAt.Sub(*j.StartAt).Round(time.Second) / time.Second)
	}
	return &d
}

func (j *job) finishedOnly(v *int64) *int64 {
	if !j.final() {
		return nil
	}
	return v
}

func (s *Server) showOf(r *http.Request, j *job, withDebug bool) showJSON {
	out := showJSON{
		JobID:                   strconv.FormatInt(j.ID, 10),
		Type:                    j.Type,
		UserName:                s.opts.UserName,
		Database:                j.Database,
		Status:                  j.Status,
		Query:                   j.Query,
		URL:                     jobURL(r, j.ID),
		Duration:                j.duration(),
		CreatedAt:               formatTime(j.CreatedAt),
		UpdatedAt:               formatTime(j.UpdatedAt),
		StartAt:                 timePtr(j.StartAt),
		EndAt:                   timePtr(j.EndAt),
		ResultSize:              j.finishedOnly(j.ResultSize),
		NumRecords:              j.finishedOnly(j.NumRecords),
		Result:                  j.Result,
		Priority:                j.Priority,
		RetryLimit:              j.RetryLimit,
		ResultExportTargetJobID: j.ExportTarget,
		LinkedResultExportJobID: j.LinkedExport,
	}
	if j.Status == statusSuccess && j.Kind != kindExport {
		pairs := make([][2]string, len(j.Schema))
		for i, c := range j.Schema {
			pairs[i] = [2]string{c.Name, c.Type}
		}
		b, _ := json.Marshal(pairs)
		sch := string(b)
		out.HiveResultSchema = &sch
	}
	if withDebug {
		out.Debug = &debugJSON{Cmdout: j.Cmdout, Stderr: j.Stderr}
	}
	return out
}

func statusOf(j *job) statusJSON {
	return statusJSON{
		JobID:      strconv.FormatInt(j.ID, 10),
		Status:     j.Status,
		CreatedAt:  formatTime(j.CreatedAt),
		UpdatedAt:  formatTime(j.UpdatedAt),
		StartAt:    timePtr(j.StartAt),
		EndAt:      timePtr(j.EndAt),
		Duration:   j.duration(),
		ResultSize: j.finishedOnly(j.ResultSize),
		NumRecords: j.finishedOnly(j.NumRecords),
	}
}

func jobURL(r *http.Request, id int64) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/jobs/%d", scheme, r.Host, id)
}

// --- handlers --------------------------------------------------------------

func parseJobID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

func jobNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id), nil)
}

// intField reads an optional integer form field (missing = 0).
func intField(form url.Values, name string, lo, hi int) (int, string) {
	v := strings.TrimSpace(form.Get(name))
	if v == "" {
		return 0, ""
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Sprintf("%s must be an integer from %d to %d, got %q", name, lo, hi, v)
	}
	return n, ""
}

func (s *Server) handleIssue(w http.ResponseWriter, r *http.Request, typ, dbName string) {
	switch typ {
	case "hive", "presto", "trino":
	default:
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("unknown job type %q: use hive, presto or trino", typ), nil)
		return
	}
	if _, ok := s.database(dbName); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("database %q not found", dbName), nil)
		return
	}
	f := r.Form
	query := f.Get("query")
	if strings.TrimSpace(query) == "" {
		writeError(w, http.StatusUnprocessableEntity, "query is required: send the SQL in the form field \"query\"", nil)
		return
	}
	priority, msg := intField(f, "priority", -2, 2)
	if msg != "" {
		writeError(w, http.StatusUnprocessableEntity, msg, nil)
		return
	}
	retry, msg := intField(f, "retry_limit", 0, 100)
	if msg != "" {
		writeError(w, http.StatusUnprocessableEntity, msg, nil)
		return
	}
	var scheduled int64
	if v := strings.TrimSpace(f.Get("scheduled_time")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("scheduled_time must be unix seconds, got %q", v), nil)
			return
		}
		scheduled = n
	}
	tgt, status, msg := s.resolveTarget(f, false)
	if status != 0 {
		writeError(w, status, msg, nil)
		return
	}
	j := &job{
		Kind: kindQuery, Type: typ, Database: dbName, Query: query,
		Result: f.Get("result"), ConnSettings: f.Get("result_connection_settings"), Target: tgt,
		Priority: priority, RetryLimit: retry, DomainKey: f.Get("domain_key"),
		EngineVersion: f.Get("engine_version"), PoolName: f.Get("pool_name"), ScheduledTime: scheduled,
		Form: cloneValues(f),
	}
	if tgt != nil {
		j.ConnID = tgt.ConnID
	}
	id, ok := s.addJobOrAnswer(w, j)
	if !ok {
		return
	}
	sid := strconv.FormatInt(id, 10)
	writeJSON(w, r, map[string]string{"job": sid, "job_id": sid, "database": dbName})
}

// addJobOrAnswer adds j; when it cannot (the store failed, or j's domain
// key names another job) it answers the request itself and ok is false.
func (s *Server) addJobOrAnswer(w http.ResponseWriter, j *job) (id int64, ok bool) {
	id, conflict, err := s.addJob(j)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return 0, false
	}
	if conflict != 0 {
		writeConflict(w, j.DomainKey, conflict)
		return 0, false
	}
	return id, true
}

func writeConflict(w http.ResponseWriter, key string, id int64) {
	writeError(w, http.StatusConflict,
		fmt.Sprintf("domain_key %q is already used by job %d", key, id),
		map[string]any{"conflicts_with": strconv.FormatInt(id, 10)})
}

// addJob registers a new job (assigning id, times and result path) unless
// its domain key is taken, in which case it returns the holder's id.
func (s *Server) addJob(j *job) (id, conflict int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, errors.New("the emulator is shutting down")
	}
	if j.DomainKey != "" {
		if other, ok := s.domainKeys[j.DomainKey]; ok {
			return 0, other, nil
		}
	}
	j.ID = s.nextJob
	s.nextJob++
	now := s.clock.Now()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	j.UpdatedAt = j.CreatedAt
	if j.Status == "" {
		j.Status = statusQueued
		j.QueuedFor, j.RunningFor = s.opts.QueuedFor, s.opts.RunningFor
	}
	if j.Kind == kindQuery {
		j.ResultPath = filepath.Join(s.resultsDir(), fmt.Sprintf("%d.msgpack.gz", j.ID))
	}
	if j.Form == nil {
		j.Form = url.Values{}
	}
	s.jobs[j.ID] = j
	if j.DomainKey != "" {
		s.domainKeys[j.DomainKey] = j.ID
	}
	if j.Kind == kindExport && j.ExportTarget != nil {
		if src, ok := s.jobs[*j.ExportTarget]; ok {
			id := j.ID
			src.LinkedExport = &id
			s.persistLocked(src)
		}
	}
	s.persistLocked(j)
	if !j.final() {
		s.scheduleLocked(j)
	}
	return j.ID, 0, nil
}

func (s *Server) handleShow(w http.ResponseWriter, r *http.Request, idStr string) {
	j, ok := s.jobOr404(w, r, idStr)
	if !ok {
		return
	}
	writeJSON(w, r, s.showOf(r, &j, true))
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, idStr string) {
	j, ok := s.jobOr404(w, r, idStr)
	if !ok {
		return
	}
	writeJSON(w, r, statusOf(&j))
}

func (s *Server) handleStatusByDomainKey(w http.ResponseWriter, r *http.Request, key string) {
	s.mu.Lock()
	id, ok := s.domainKeys[key]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no job was issued with domain_key %q", key), nil)
		return
	}
	j, found, err := s.lookup(r.Context(), id)
	if err != nil {
		return
	}
	if !found {
		jobNotFound(w, strconv.FormatInt(id, 10))
		return
	}
	writeJSON(w, r, statusOf(&j))
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	f := r.Form
	from, to := 0, -1
	if v := f.Get("from"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("from must be a non-negative integer, got %q", v), nil)
			return
		}
		from = n
	}
	if v := f.Get("to"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("to must be a non-negative integer, got %q", v), nil)
			return
		}
		to = n
	}
	if to < 0 {
		to = from + 19
	}
	status := f.Get("status")
	switch status {
	case "", statusQueued, "booting", statusRunning, statusSuccess, statusError, statusKilled:
	default:
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("unknown status %q: use queued, running, success, error or killed", status), nil)
		return
	}
	s.mu.Lock()
	ids := make([]int64, 0, len(s.jobs))
	for id := range s.jobs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Slice(ids, func(a, b int) bool { return ids[a] > ids[b] })
	var matching []job
	for _, id := range ids {
		j, found, err := s.lookup(r.Context(), id)
		if err != nil {
			return
		}
		if found && (status == "" || j.Status == status) {
			matching = append(matching, j)
		}
	}
	jobs := []showJSON{}
	for i := from; i <= to && i < len(matching); i++ {
		jobs = append(jobs, s.showOf(r, &matching[i], false))
	}
	writeJSON(w, r, map[string]any{"jobs": jobs, "count": len(matching), "from": from, "to": to})
}

func (s *Server) handleKill(w http.ResponseWriter, r *http.Request, idStr string) {
	id, ok := parseJobID(idStr)
	if !ok {
		jobNotFound(w, idStr)
		return
	}
	var former string
	found, err := s.withJob(r.Context(), id, func(j *job) {
		former = j.Status
		if j.final() {
			return // TD answers with the final status and changes nothing
		}
		now := s.clock.Now()
		j.Status, j.EndAt, j.UpdatedAt = statusKilled, &now, now
		j.Stderr = "Killed by a request to /v3/job/kill"
		s.persistLocked(j)
	})
	if err != nil {
		return
	}
	if !found {
		jobNotFound(w, idStr)
		return
	}
	writeJSON(w, r, map[string]string{"job_id": strconv.FormatInt(id, 10), "former_status": former})
}

func (s *Server) handleResultExport(w http.ResponseWriter, r *http.Request, idStr string) {
	src, ok := s.jobOr404(w, r, idStr)
	if !ok {
		return
	}
	id := src.ID
	if src.Status != statusSuccess {
		writeError(w, http.StatusUnprocessableEntity,
			fmt.Sprintf("job %d has status %s: only a job that finished with success has a result to export (wait for it first)", id, src.Status), nil)
		return
	}
	f := r.Form
	tgt, status, msg := s.resolveTarget(f, true)
	if status != 0 {
		writeError(w, status, msg, nil)
		return
	}
	srcID := id
	j := &job{
		Kind: kindExport, Type: "result_export", Database: src.Database, Query: src.Query,
		Result: f.Get("result"), ConnSettings: f.Get("result_connection_settings"), ConnID: tgt.ConnID, Target: tgt,
		DomainKey: f.Get("domain_key"), ExportTarget: &srcID, Form: cloneValues(f),
	}
	if p, msg := intField(f, "priority", -2, 2); msg == "" {
		j.Priority = p
	}
	if n, msg := intField(f, "retry_limit", 0, 100); msg == "" {
		j.RetryLimit = n
	}
	newID, ok := s.addJobOrAnswer(w, j)
	if !ok {
		return
	}
	writeJSON(w, r, map[string]string{"job_id": strconv.FormatInt(newID, 10)})
}

func (s *Server) handleConnectionLookup(w http.ResponseWriter, r *http.Request) {
	name := r.Form.Get("name")
	if name == "" {
		writeError(w, http.StatusUnprocessableEntity, "name is required: GET /v3/connections/lookup?name=NAME", nil)
		return
	}
	s.mu.Lock()
	var c *connection
	if id, ok := s.connNames[name]; ok {
		c = s.conns[id]
	}
	s.mu.Unlock()
	if c == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("connection %q not found", name), nil)
		return
	}
	writeJSON(w, r, map[string]any{"id": c.ID, "name": c.Name, "url": c.URL})
}

func (s *Server) handleDatabaseList(w http.ResponseWriter, r *http.Request) {
	dbs := []map[string]any{}
	for _, name := range s.databaseNames() {
		d, ok := s.database(name)
		if !ok {
			continue
		}
		tables, err := s.tables(r.Context(), d)
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("listing database %s: %v", name, err), nil)
			return
		}
		var count int64
		for _, t := range tables {
			count += t.count
		}
		ts := formatTime(d.created)
		dbs = append(dbs, map[string]any{"name": name, "count": count, "created_at": ts, "updated_at": ts, "permission": "administrator", "delete_protected": false})
	}
	writeJSON(w, r, map[string]any{"databases": dbs})
}

func (s *Server) handleTableList(w http.ResponseWriter, r *http.Request, dbName string) {
	d, ok := s.database(dbName)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("database %q not found", dbName), nil)
		return
	}
	tables, err := s.tables(r.Context(), d)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("listing tables of %s: %v", dbName, err), nil)
		return
	}
	out := []map[string]any{}
	ts := formatTime(d.created)
	for _, t := range tables {
		pairs := make([][2]string, len(t.cols))
		for i, c := range t.cols {
			pairs[i] = [2]string{c.Name, c.Type}
		}
		b, _ := json.Marshal(pairs)
		out = append(out, map[string]any{"name": t.name, "type": "log", "count": t.count, "schema": string(b), "created_at": ts, "updated_at": ts})
	}
	writeJSON(w, r, map[string]any{"database": dbName, "tables": out})
}

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
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tdctl/tdctl/internal/operators"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// runsDir is the runner's directory of one attempt (its run record
// summary.json and task logs).
func (s *Server) runsDir(attemptID int64) string {
	return filepath.Join(s.dir, "runs", strconv.FormatInt(attemptID, 10))
}

func (s *Server) location(tz string) *time.Location {
	if loc, _, err := workflow.ParseZone(tz); err == nil {
		return loc
	}
	return time.UTC
}

func (s *Server) restAttempt(a *attemptRow) (*restSessionAttempt, error) {
	p, err := s.project(a.ProjectID)
	if err != nil {
		return nil, err
	}
	wid := idString(a.WorkflowID)
	ra := &restSessionAttempt{ID: idString(a.ID), Index: a.Index, Project: idAndName{idString(p.ID), p.Name},
		Workflow: nameOptionalID{Name: a.WorkflowName, ID: &wid}, SessionID: idString(a.SessionID), SessionUUID: a.SessionUUID,
		SessionTime: offsetTime(a.SessionTime, s.location(a.Timezone)), RetryAttemptName: a.RetryAttemptName,
		Done: a.Done, Success: a.Success, CancelRequested: a.CancelRequested, Params: json.RawMessage(a.Params),
		CreatedAt: instant(a.CreatedAt), FinishedAt: instantPtr(a.FinishedAt)}
	switch {
	case a.Success:
		ra.Status = "success"
	case a.Done && a.CancelRequested:
		ra.Status = "killed"
	case a.Done:
		ra.Status = "error"
	default:
		ra.Status = "running"
	}
	return ra, nil
}

func (s *Server) restAttempts(as []*attemptRow) (any, error) {
	out, err := each(as, s.restAttempt)
	if err != nil {
		return nil, err
	}
	return map[string]any{"attempts": out}, nil
}

func (s *Server) findAttempt(id int64) (*attemptRow, error) {
	a, err := s.attempt(id)
	if errors.Is(err, errNotFound) {
		return nil, errorf(http.StatusNotFound, "attempt id=%d does not exist", id)
	}
	return a, err
}

func (s *Server) getAttempt(id int64) (any, error) {
	a, err := s.findAttempt(id)
	if err != nil {
		return nil, err
	}
	return s.restAttempt(a)
}

// listAttempts is GET /api/attempts: newest first; without
// include_retried only the latest attempt of each session.
func (s *Server) listAttempts(q url.Values) (any, error) {
	size, err := pageSize(q, 100, 100)
	if err != nil {
		return nil, err
	}
	last, err := lastID(q)
	if err != nil {
		return nil, err
	}
	where := []string{"1 = 1"}
	var args []any
	if name := q.Get("project"); name != "" {
		p, err := s.liveProjectByName(name)
		if err != nil {
			return nil, err
		}
		where, args = append(where, "s.project_id = ?"), append(args, p.ID)
		if wf := q.Get("workflow"); wf != "" {
			where, args = append(where, "s.workflow_name = ?"), append(args, wf)
		}
	}
	if last > 0 {
		where, args = append(where, "a.id < ?"), append(args, last)
	}
	if inc, _ := strconv.ParseBool(q.Get("include_retried")); !inc {
		where = append(where, "a.id = (SELECT MAX(id) FROM attempts WHERE session_id = a.session_id)")
	}
	args = append(args, size)
	as, err := scanAttempts(s.db.Query(`SELECT `+attemptCols+` FROM attempts a JOIN sessions s ON s.id = a.session_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY a.id DESC LIMIT ?`, args...))
	if err != nil {
		return nil, err
	}
	return s.restAttempts(as)
}

// listRetries is GET /api/attempts/{id}/retries: every attempt of the
// attempt's session.
func (s *Server) listRetries(id int64) (any, error) {
	a, err := s.findAttempt(id)
	if err != nil {
		return nil, err
	}
	as, err := scanAttempts(s.db.Query(`SELECT `+attemptCols+` FROM attempts a JOIN sessions s ON s.id = a.session_id
		WHERE a.session_id = ? ORDER BY a.id DESC`, a.SessionID))
	if err != nil {
		return nil, err
	}
	return s.restAttempts(as)
}

func parseID(raw json.RawMessage) (int64, bool) {
	var str string
	if json.Unmarshal(raw, &str) != nil {
		str = string(raw)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
	return n, err == nil && n > 0
}

// startAttempt is PUT /api/attempts: a new session (or a new attempt of the
// session at that session time, with a retryAttemptName). An attempt
// whose session already has one of that name (or, without a name, any
// unnamed one) is a 409 with that attempt, as in digdag.
func (s *Server) startAttempt(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	var req restAttemptRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return errorf(http.StatusBadRequest, "the body is not a session attempt request: %v", err)
	}
	if len(req.WorkflowID) == 0 {
		return errorf(http.StatusBadRequest, "workflowId is required")
	}
	wfID, ok := parseID(req.WorkflowID)
	if !ok {
		return errorf(http.StatusBadRequest, "workflowId %s is not a workflow id", req.WorkflowID)
	}
	if req.SessionTime == "" {
		return errorf(http.StatusBadRequest, "sessionTime is required")
	}
	st, err := time.Parse(time.RFC3339, req.SessionTime)
	if err != nil {
		return errorf(http.StatusBadRequest, "sessionTime %q: expected an instant like 2016-01-02T03:04:05Z", req.SessionTime)
	}
	def, err := s.workflowByID(wfID)
	if errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "workflow id=%d does not exist", wfID)
	}
	if err != nil {
		return err
	}
	var res *resume
	if req.Resume != nil {
		if res, err = s.resumeOf(def, req.Resume.Mode, req.Resume.AttemptID, req.Resume.From); err != nil {
			return err
		}
	}
	if _, err := s.liveProject(def.ProjectID); err != nil {
		return err
	}
	if req.Params == nil {
		req.Params = map[string]any{}
	}
	params, err := json.Marshal(req.Params)
	if err != nil {
		return errorf(http.StatusBadRequest, "params: %v", err)
	}
	key := apiKeyOf(r)
	a, conflict, err := s.newAttempt(def, st, req.RetryAttemptName, string(params), key, s.endpoint(r), res)
	if err != nil {
		return err
	}
	ra, err := s.restAttempt(a)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if conflict {
		status = http.StatusConflict
	}
	writeJSON(w, status, ra)
	return nil
}

// endpoint is the TD API URL of the runs a request starts.
func (s *Server) endpoint(r *http.Request) string {
	if s.opts.Endpoint != "" {
		return s.opts.Endpoint
	}
	return "http://" + r.Host
}

func apiKeyOf(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return strings.TrimSpace(key)
}

// newAttempt records an attempt and starts it; conflict reports an existing
// attempt of the same session and name (returned instead, not started).
func (s *Server) newAttempt(def *workflowDef, sessionTime time.Time, name *string, params, key, endpoint string, res *resume) (*attemptRow, bool, error) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.ctx.Err() != nil {
		return nil, false, errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	tx, err := s.db.Begin()
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	var sessionID int64
	err = tx.QueryRow(`SELECT id FROM sessions WHERE project_id = ? AND workflow_name = ? AND session_time = ?`,
		def.ProjectID, def.Name, sessionTime.Unix()).Scan(&sessionID)
	if errors.Is(err, sql.ErrNoRows) {
		res, err := tx.Exec(`INSERT INTO sessions (project_id, workflow_name, session_time, uuid) VALUES (?, ?, ?, ?)`,
			def.ProjectID, def.Name, sessionTime.Unix(), uuid.NewString())
		if err != nil {
			return nil, false, err
		}
		sessionID, _ = res.LastInsertId()
	} else if err != nil {
		return nil, false, err
	}
	var same sql.NullInt64
	if err := tx.QueryRow(`SELECT MAX(id) FROM attempts WHERE session_id = ? AND retry_attempt_name IS ?`, sessionID, name).Scan(&same); err != nil {
		return nil, false, err
	}
	if same.Valid {
		tx.Rollback() // the only connection: free it before reading
		a, err := s.attempt(same.Int64)
		return a, true, err
	}
	var idx int
	if err := tx.QueryRow(`SELECT COALESCE(MAX(idx), 0) + 1 FROM attempts WHERE session_id = ?`, sessionID).Scan(&idx); err != nil {
		return nil, false, err
	}
	var resumedFrom *int64
	if res != nil {
		resumedFrom = &res.attemptID
	}
	ins, err := tx.Exec(`INSERT INTO attempts (session_id, workflow_id, idx, retry_attempt_name, params, timezone, created_at, resumed_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		sessionID, def.ID, idx, name, params, def.Timezone, time.Now().Unix(), resumedFrom)
	if err != nil {
		return nil, false, err
	}
	id, _ := ins.LastInsertId()
	if err := tx.Commit(); err != nil {
		return nil, false, err
	}
	a, err := s.attempt(id)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.running[id] = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.run(ctx, a, def, key, endpoint, res)
	}()
	return a, false, nil
}

// runErrorFile holds why an attempt failed before its workflow ran (the
// revision's files could not be read, the workflow no longer parses).
const runErrorFile = "attempt-error.txt"

// run runs one attempt with the runner and operators of `tdctl workflow
// run`, then records its end.
func (s *Server) run(ctx context.Context, a *attemptRow, def *workflowDef, key, endpoint string, res *resume) {
	dir := s.runsDir(a.ID)
	success := false
	defer func() {
		s.mu.Lock()
		delete(s.running, a.ID)
		s.mu.Unlock()
		if _, err := s.db.Exec(`UPDATE attempts SET done = 1, success = ?, finished_at = ? WHERE id = ?`, success, time.Now().Unix(), a.ID); err != nil {
			s.logf("wfserver: attempt %d: recording its end: %v", a.ID, err)
		}
	}()
	fail := func(err error) {
		// file:line relative to the project, as pushed
		msg := td.Redact(strings.ReplaceAll(err.Error(), s.projectDir(def.ProjectID, def.RevisionID)+string(filepath.Separator), ""))
		s.logf("wfserver: attempt %d: %s", a.ID, msg)
		_ = os.MkdirAll(dir, 0o700)
		_ = workflow.WriteFileAtomic(filepath.Join(dir, runErrorFile), []byte(msg))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fail(err)
		return
	}
	wf, err := s.parseWorkflow(def)
	if err != nil {
		fail(err)
		return
	}
	secrets, err := s.secretsOf(a.ProjectID)
	if err != nil {
		fail(err)
		return
	}
	if _, ok := secrets["td.apikey"]; !ok && key != "" {
		secrets["td.apikey"] = key
	}
	var params map[string]any
	_ = json.Unmarshal([]byte(a.Params), &params)
	env := &operators.Env{
		TD: func() (*td.Client, error) {
			return td.NewClient(secrets["td.apikey"], td.WithEndpoint(endpoint))
		},
		Wait:       s.opts.JobWait,
		ParamStore: s.paramStore,
		ShellGrace: s.opts.ShellGrace,
	}
	si := &workflow.SessionInfo{SessionID: a.SessionID, AttemptID: a.ID, ProjectID: a.ProjectID, SessionUUID: a.SessionUUID}
	if a.RetryAttemptName != nil {
		si.RetryAttemptName = *a.RetryAttemptName
	}
	// last_executed_session_*: the latest other session of the workflow
	// started before this attempt
	var last sql.NullInt64
	if err := s.db.QueryRow(`SELECT s.session_time FROM attempts a JOIN sessions s ON s.id = a.session_id
		WHERE s.project_id = ? AND s.workflow_name = ? AND a.session_id <> ? AND a.id < ? ORDER BY a.id DESC LIMIT 1`,
		a.ProjectID, a.WorkflowName, a.SessionID, a.ID).Scan(&last); err == nil && last.Valid {
		t := unixTime(last.Int64)
		si.LastExecuted = &t
	}
	r := &workflow.Runner{Operators: operators.Operators(env), Secrets: workflow.SecretMap(secrets), Params: params,
		SessionTime: a.SessionTime, RunsDir: dir, Session: si}
	s.logf("wfserver: attempt %d of %s started", a.ID, def.Name)
	if res != nil {
		_, err = r.Resume(ctx, wf, res.prev, res.opt)
	} else {
		_, err = r.Run(ctx, wf)
	}
	if err != nil && !errors.As(err, new(*workflow.RunError)) {
		fail(err) // the run did not start
		return
	}
	success = err == nil
	s.logf("wfserver: attempt %d of %s ended (success=%v)", a.ID, def.Name, success)
}

// parseWorkflow reads a workflow from its revision's unpacked files.
func (s *Server) parseWorkflow(def *workflowDef) (*workflow.Workflow, error) {
	file := filepath.Join(s.projectDir(def.ProjectID, def.RevisionID), def.Name+".dig")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading workflow %s: %w", def.Name, err)
	}
	return workflow.Parse(file, data)
}

// killAttempt is POST /api/attempts/{id}/kill: it cancels the run (sh>
// scripts get SIGTERM, td> jobs are killed by the operator) and answers
// the attempt as it was before; a finished attempt is a 409.
func (s *Server) killAttempt(id int64) (any, error) {
	a, err := s.findAttempt(id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cancel, ok := s.running[id]
	s.mu.Unlock()
	if !ok || a.Done || a.CancelRequested {
		return nil, errorf(http.StatusConflict, "Session attempt already killed or finished")
	}
	if _, err := s.db.Exec(`UPDATE attempts SET cancel_requested = 1 WHERE id = ?`, id); err != nil {
		return nil, err
	}
	cancel()
	return s.restAttempt(a)
}

// --- sessions -------------------------------------------------------

func (s *Server) restSession(sessionID int64) (*restSession, error) {
	as, err := scanAttempts(s.db.Query(`SELECT `+attemptCols+` FROM attempts a JOIN sessions s ON s.id = a.session_id
		WHERE a.session_id = ? ORDER BY a.id DESC LIMIT 1`, sessionID))
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, errorf(http.StatusNotFound, "session id=%d does not exist", sessionID)
	}
	ra, err := s.restAttempt(as[0])
	if err != nil {
		return nil, err
	}
	return &restSession{ID: idString(sessionID), Project: ra.Project, Workflow: ra.Workflow, SessionUUID: ra.SessionUUID,
		SessionTime: ra.SessionTime, LastAttempt: &restSessionLastAttempt{ID: ra.ID, RetryAttemptName: ra.RetryAttemptName,
			Done: ra.Done, Success: ra.Success, CancelRequested: ra.CancelRequested, Params: ra.Params,
			CreatedAt: ra.CreatedAt, FinishedAt: ra.FinishedAt}}, nil
}

func (s *Server) getSession(id int64) (any, error) { return s.restSession(id) }

// listSessions lists sessions newest first, of a project (and workflow)
// when projectID is set.
func (s *Server) listSessions(projectID int64, wfName string, q url.Values) (any, error) {
	size, err := pageSize(q, 100, 100)
	if err != nil {
		return nil, err
	}
	last, err := lastID(q)
	if err != nil {
		return nil, err
	}
	where, args := []string{"1 = 1"}, []any{}
	if projectID > 0 {
		if _, err := s.liveProject(projectID); err != nil {
			return nil, err
		}
		where, args = append(where, "project_id = ?"), append(args, projectID)
		if wfName != "" {
			where, args = append(where, "workflow_name = ?"), append(args, wfName)
		}
	}
	if last > 0 {
		where, args = append(where, "id < ?"), append(args, last)
	}
	args = append(args, size)
	ids, err := s.queryIDs(`SELECT id FROM sessions WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	out, err := each(ids, s.restSession)
	if err != nil {
		return nil, err
	}
	return map[string]any{"sessions": out}, nil
}

func (s *Server) listAttemptsOfSession(id int64, q url.Values) (any, error) {
	if _, err := s.restSession(id); err != nil {
		return nil, err
	}
	size, err := pageSize(q, 100, 100)
	if err != nil {
		return nil, err
	}
	last, err := lastID(q)
	if err != nil {
		return nil, err
	}
	if last == 0 {
		last = 1<<63 - 1
	}
	as, err := scanAttempts(s.db.Query(`SELECT `+attemptCols+` FROM attempts a JOIN sessions s ON s.id = a.session_id
		WHERE a.session_id = ? AND a.id < ? ORDER BY a.id DESC LIMIT ?`, id, last, size))
	if err != nil {
		return nil, err
	}
	return s.restAttempts(as)
}

// resume is what a new attempt restores: the run of an earlier attempt
// and which of its tasks run again.
type resume struct {
	attemptID int64
	prev      *workflow.Summary
	opt       workflow.ResumeOptions
}

// resumeOf reads a request's resume as digdag's retry sends it: mode
// "failed" (retry --resume: the tasks that succeeded are not run again)
// or "from" (retry --resume-from TASK: that task and those after it run
// again, the ones before it are restored), of attemptId.
func (s *Server) resumeOf(def *workflowDef, mode string, rawID json.RawMessage, from string) (*resume, error) {
	prevID, ok := parseID(rawID)
	if !ok {
		return nil, errorf(http.StatusBadRequest, "resume.attemptId %s is not an attempt id", rawID)
	}
	prev, err := s.findAttempt(prevID)
	if err != nil {
		return nil, err
	}
	if prev.ProjectID != def.ProjectID || prev.WorkflowName != def.Name {
		return nil, errorf(http.StatusBadRequest, "attempt id=%d is not an attempt of workflow %s", prevID, def.Name)
	}
	if !prev.Done {
		return nil, errorf(http.StatusConflict, "attempt id=%d is still running: kill it or wait for it before resuming it", prevID)
	}
	res := &resume{attemptID: prevID}
	switch mode {
	case "failed":
		if prev.Success {
			return nil, errorf(http.StatusBadRequest, "Resuming successfully completed attempts is not supported")
		}
	case "from":
		if from == "" {
			return nil, errorf(http.StatusBadRequest, "resume.from is required with mode \"from\"")
		}
		res.opt.From, res.opt.Strict = from, true
		wf, err := s.parseWorkflow(def)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "%v", err)
		}
		if !hasTask(wf.Root, from) {
			return nil, errorf(http.StatusBadRequest, "no task of workflow %s matches %q", def.Name, from)
		}
	default:
		return nil, errorf(http.StatusBadRequest, "Unknown resuming mode: %s", mode)
	}
	sum, _ := s.attemptRun(prev)
	res.prev = sum // nil when the attempt never ran a task: everything runs
	return res, nil
}

// hasTask tells whether name is a task's full name or the end of one
// (+task), as digdag's task patterns match.
func hasTask(t *workflow.Task, name string) bool {
	if t.Path == name || strings.HasSuffix(t.Path, "+"+strings.TrimPrefix(name, "+")) {
		return true
	}
	for _, c := range t.Children {
		if hasTask(c, name) {
			return true
		}
	}
	return (t.Do != nil && hasTask(t.Do, name)) || (t.Error != nil && hasTask(t.Error, name))
}

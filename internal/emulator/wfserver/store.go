package wfserver

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// The workflow server's state lives in one SQLite file (workflows.db in
// its data directory): projects and their revisions (each with its
// archive), the workflows of each revision, schedules, sessions, attempts
// and project secrets. Task states and logs are the runner's own records
// under runs/ (see attempt.runsDir).

const schema = `
CREATE TABLE IF NOT EXISTS projects (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	deleted_at INTEGER
);
CREATE TABLE IF NOT EXISTS revisions (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id INTEGER NOT NULL,
	name TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	md5 BLOB NOT NULL,
	archive BLOB NOT NULL,
	UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS workflows (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	revision_id INTEGER NOT NULL,
	project_id INTEGER NOT NULL,
	name TEXT NOT NULL,
	timezone TEXT NOT NULL,
	config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id INTEGER NOT NULL,
	workflow_name TEXT NOT NULL,
	workflow_id INTEGER NOT NULL,
	next_run_time INTEGER NOT NULL,
	next_schedule_time INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	disabled_at INTEGER,
	UNIQUE (project_id, workflow_name)
);
CREATE TABLE IF NOT EXISTS sessions (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id INTEGER NOT NULL,
	workflow_name TEXT NOT NULL,
	session_time INTEGER NOT NULL,
	uuid TEXT NOT NULL,
	UNIQUE (project_id, workflow_name, session_time)
);
CREATE TABLE IF NOT EXISTS attempts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id INTEGER NOT NULL,
	workflow_id INTEGER NOT NULL,
	idx INTEGER NOT NULL,
	retry_attempt_name TEXT,
	params TEXT NOT NULL,
	timezone TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	finished_at INTEGER,
	done INTEGER NOT NULL DEFAULT 0,
	success INTEGER NOT NULL DEFAULT 0,
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	resumed_from INTEGER
);
-- project secrets are kept in memory only; a data directory written
-- before that may hold a table of them: it goes
DROP TABLE IF EXISTS secrets;
`

func openDB(dir string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "workflows.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; requests are short
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("wfserver: creating the schema: %w", err)
	}
	return db, nil
}

// unix times are stored in seconds, digdag's precision.
func unixTime(n int64) time.Time { return time.Unix(n, 0).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := unixTime(n.Int64)
	return &t
}

type project struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	DeletedAt *time.Time
}

type revision struct {
	ID        int64
	ProjectID int64
	Name      string
	CreatedAt time.Time
	MD5       []byte
}

type workflowDef struct {
	ID         int64
	RevisionID int64
	ProjectID  int64
	Name       string
	Timezone   string
	Config     string
}

type attemptRow struct {
	ID               int64
	SessionID        int64
	WorkflowID       int64
	Index            int
	RetryAttemptName *string
	Params           string
	Timezone         string
	CreatedAt        time.Time
	FinishedAt       *time.Time
	Done, Success    bool
	CancelRequested  bool
	ResumedFrom      *int64
	// of its session
	ProjectID    int64
	WorkflowName string
	SessionTime  time.Time
	SessionUUID  string
}

var errNotFound = errors.New("not found")

func (s *Server) project(id int64) (*project, error) {
	var p project
	var created int64
	var deleted sql.NullInt64
	err := s.db.QueryRow(`SELECT id, name, created_at, deleted_at FROM projects WHERE id = ?`, id).Scan(&p.ID, &p.Name, &created, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt, p.DeletedAt = unixTime(created), nullTime(deleted)
	return &p, nil
}

func (s *Server) projectByName(name string) (*project, error) {
	var id int64
	err := s.db.QueryRow(`SELECT id FROM projects WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.project(id)
}

// revisionByName returns the project's revision of that name, or its
// latest when name is "".
func (s *Server) revisionByName(projectID int64, name string) (*revision, error) {
	q := `SELECT id, project_id, name, created_at, md5 FROM revisions WHERE project_id = ? ORDER BY id DESC LIMIT 1`
	args := []any{projectID}
	if name != "" {
		q = `SELECT id, project_id, name, created_at, md5 FROM revisions WHERE project_id = ? AND name = ?`
		args = append(args, name)
	}
	var r revision
	var created int64
	err := s.db.QueryRow(q, args...).Scan(&r.ID, &r.ProjectID, &r.Name, &created, &r.MD5)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	r.CreatedAt = unixTime(created)
	return &r, nil
}

func (s *Server) revisions(projectID int64) ([]*revision, error) {
	rows, err := s.db.Query(`SELECT id, project_id, name, created_at, md5 FROM revisions WHERE project_id = ? ORDER BY id DESC`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*revision
	for rows.Next() {
		var r revision
		var created int64
		if err := rows.Scan(&r.ID, &r.ProjectID, &r.Name, &created, &r.MD5); err != nil {
			return nil, err
		}
		r.CreatedAt = unixTime(created)
		out = append(out, &r)
	}
	return out, rows.Err()
}

const workflowCols = `id, revision_id, project_id, name, timezone, config`

func scanWorkflows(rows *sql.Rows, err error) ([]*workflowDef, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*workflowDef
	for rows.Next() {
		var w workflowDef
		if err := rows.Scan(&w.ID, &w.RevisionID, &w.ProjectID, &w.Name, &w.Timezone, &w.Config); err != nil {
			return nil, err
		}
		out = append(out, &w)
	}
	return out, rows.Err()
}

func (s *Server) workflowByID(id int64) (*workflowDef, error) {
	ws, err := scanWorkflows(s.db.Query(`SELECT `+workflowCols+` FROM workflows WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, errNotFound
	}
	return ws[0], nil
}

func (s *Server) workflowsOfRevision(revisionID int64) ([]*workflowDef, error) {
	return scanWorkflows(s.db.Query(`SELECT `+workflowCols+` FROM workflows WHERE revision_id = ? ORDER BY name`, revisionID))
}

const attemptCols = `a.id, a.session_id, a.workflow_id, a.idx, a.retry_attempt_name, a.params, a.timezone, a.created_at,
	a.finished_at, a.done, a.success, a.cancel_requested, a.resumed_from, s.project_id, s.workflow_name, s.session_time, s.uuid`

func scanAttempts(rows *sql.Rows, err error) ([]*attemptRow, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*attemptRow
	for rows.Next() {
		var a attemptRow
		var name sql.NullString
		var created, sessionTime int64
		var finished, resumed sql.NullInt64
		if err := rows.Scan(&a.ID, &a.SessionID, &a.WorkflowID, &a.Index, &name, &a.Params, &a.Timezone, &created,
			&finished, &a.Done, &a.Success, &a.CancelRequested, &resumed, &a.ProjectID, &a.WorkflowName, &sessionTime, &a.SessionUUID); err != nil {
			return nil, err
		}
		if name.Valid {
			a.RetryAttemptName = &name.String
		}
		if resumed.Valid {
			a.ResumedFrom = &resumed.Int64
		}
		a.CreatedAt, a.FinishedAt, a.SessionTime = unixTime(created), nullTime(finished), unixTime(sessionTime)
		out = append(out, &a)
	}
	return out, rows.Err()
}

func (s *Server) attempt(id int64) (*attemptRow, error) {
	as, err := scanAttempts(s.db.Query(`SELECT `+attemptCols+` FROM attempts a JOIN sessions s ON s.id = a.session_id WHERE a.id = ?`, id))
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, errNotFound
	}
	return as[0], nil
}

// secretsOf returns a copy of a project's secrets. They live in memory
// only, never in the data directory (a restart forgets them: set them
// again), as the emulator keeps connection passwords.
func (s *Server) secretsOf(projectID int64) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.secrets[projectID] {
		out[k] = v
	}
	return out, nil
}

// queryIDs runs a query of one id column.
func (s *Server) queryIDs(query string, args ...any) ([]int64, error) {
	rows, err := s.db.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// each maps f over in (an empty list, never nil, for JSON's []).
func each[T, U any](in []T, f func(T) (U, error)) ([]U, error) {
	out := make([]U, 0, len(in))
	for _, x := range in {
		y, err := f(x)
		if err != nil {
			return nil, err
		}
		out = append(out, y)
	}
	return out, nil
}

package emulator

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"

	"github.com/tdctl/tdctl/td"
)

// sqliteDriver is a private modernc.org/sqlite driver, so the TD functions
// registered on it reach the emulator's connections only.
var (
	sqliteDriver     = &sqlite.Driver{}
	registerFuncOnce sync.Once
)

type connector struct{ dsn string }

func (c connector) Connect(context.Context) (driver.Conn, error) { return sqliteDriver.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return sqliteDriver }

func openSQLite(path string) (*sql.DB, error) {
	registerFuncOnce.Do(registerTDFunctions)
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db := sql.OpenDB(connector{dsn: dsn})
	// One connection per database: databases attached on demand stay
	// attached, and SQLite writes are serialised anyway.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// database is one TD database: one SQLite file.
type database struct {
	name    string
	path    string
	db      *sql.DB
	created time.Time
}

var reDBName = lazyRE(`^[A-Za-z0-9_]{1,128}$`)

func validName(kind, name string) error {
	if !reDBName().MatchString(name) {
		return fmt.Errorf("invalid %s name %q: use letters, digits and underscores (at most 128)", kind, name)
	}
	return nil
}

func (s *Server) databasesDir() string { return filepath.Join(s.root, "databases") }

// open loads or creates the state under s.root.
func (s *Server) open() error {
	for _, d := range []string{s.databasesDir(), s.resultsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("emulator: %w", err)
		}
	}
	st, err := openSQLite(filepath.Join(s.root, "state.sqlite"))
	if err != nil {
		return fmt.Errorf("emulator: opening state: %w", err)
	}
	s.state = st
	if _, err := st.Exec(`CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS connections (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL, settings TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("emulator: creating state tables: %w", err)
	}
	if err := s.openSchedules(); err != nil {
		return fmt.Errorf("emulator: creating state tables: %w", err)
	}
	// Databases: one file each.
	entries, err := os.ReadDir(s.databasesDir())
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sqlite")
		if !ok || e.IsDir() || validName("database", name) != nil {
			continue
		}
		if err := s.openDatabase(name); err != nil {
			return err
		}
	}
	if _, ok := s.dbs["sample_datasets"]; !ok {
		if err := writeSampleDatasets(filepath.Join(s.databasesDir(), "sample_datasets.sqlite")); err != nil {
			return fmt.Errorf("emulator: creating sample_datasets: %w", err)
		}
		if err := s.openDatabase("sample_datasets"); err != nil {
			return err
		}
	}
	// Connections.
	rows, err := st.Query(`SELECT id, name, url, settings FROM connections`)
	if err != nil {
		return fmt.Errorf("emulator: loading connections: %w", err)
	}
	for rows.Next() {
		c := &connection{}
		var settings string
		if err := rows.Scan(&c.ID, &c.Name, &c.URL, &settings); err != nil {
			rows.Close()
			return fmt.Errorf("emulator: loading connections: %w", err)
		}
		_ = json.Unmarshal([]byte(settings), &c.Settings)
		s.conns[c.ID] = c
		s.connNames[c.Name] = c.ID
		s.nextConn = max(s.nextConn, c.ID+1)
	}
	rows.Close()
	// Jobs.
	rows, err = st.Query(`SELECT id, data FROM jobs ORDER BY id`)
	if err != nil {
		return fmt.Errorf("emulator: loading jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var data string
		if err := rows.Scan(&id, &data); err != nil {
			return fmt.Errorf("emulator: loading jobs: %w", err)
		}
		j := &job{}
		if err := json.Unmarshal([]byte(data), j); err != nil {
			return fmt.Errorf("emulator: loading job %d: %w", id, err)
		}
		s.jobs[j.ID] = j
		if j.DomainKey != "" {
			s.domainKeys[j.DomainKey] = j.ID
		}
		s.nextJob = max(s.nextJob, j.ID+1)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("emulator: loading jobs: %w", err)
	}
	// Jobs left unfinished by a previous run go on, but for exports whose
	// credentials were not kept on disk.
	for _, j := range s.jobs {
		if !j.final() && j.Redacted {
			s.failRedactedLocked(j)
		}
		if !j.final() {
			s.scheduleLocked(j)
		}
	}
	return nil
}

func (s *Server) openDatabase(name string) error {
	path := filepath.Join(s.databasesDir(), name+".sqlite")
	db, err := openSQLite(path)
	if err != nil {
		return fmt.Errorf("emulator: opening database %s: %w", name, err)
	}
	created := s.clock.Now()
	if fi, err := os.Stat(path); err == nil {
		created = fi.ModTime()
	}
	s.dbs[name] = &database{name: name, path: path, db: db, created: created}
	return nil
}

// CreateDatabase creates an empty TD database (a no-op when it exists).
func (s *Server) CreateDatabase(name string) error {
	if err := validName("database", name); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("emulator: server closed")
	}
	if _, ok := s.dbs[name]; ok {
		return nil
	}
	return s.openDatabase(name)
}

func (s *Server) database(name string) (*database, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dbs[name]
	return d, ok
}

func (s *Server) databaseNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.dbs))
	for n := range s.dbs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// persistLocked writes j to the state database. s.mu is held.
//
// state.sqlite is a plain file under --data, so the secrets a job was given
// — result URL passwords, the API key of a td://KEY@ URL, passwords in
// connection settings — are masked in what is written (td.Redact). A job
// still waiting to export when the server stops cannot run after a restart
// without them: load fails it (see failRedactedLocked).
func (s *Server) persistLocked(j *job) {
	data, err := json.Marshal(redactedJob(j))
	if err == nil {
		_, err = s.state.Exec(`INSERT OR REPLACE INTO jobs (id, data) VALUES (?, ?)`, j.ID, string(data))
	}
	if err != nil {
		s.logf("emulator: saving job %d: %v", j.ID, err)
	}
}

// redactedJob returns a copy of j for the state file, with its secrets
// masked and Redacted set when that changed anything.
func redactedJob(j *job) *job {
	c := j.snapshot()
	c.Result = td.Redact(j.Result)
	c.ConnSettings = td.Redact(j.ConnSettings)
	changed := c.Result != j.Result || c.ConnSettings != j.ConnSettings
	for k, vs := range c.Form {
		for i, v := range vs {
			if r := td.Redact(v); r != v {
				c.Form[k][i], changed = r, true
			}
		}
	}
	if j.Target != nil {
		t := *j.Target
		t.URL = td.Redact(j.Target.URL)
		if t.URL != j.Target.URL {
			changed = true
		}
		if len(j.Target.Settings) > 0 {
			b, _ := json.Marshal(j.Target.Settings)
			if r := td.Redact(string(b)); r != string(b) {
				changed = true
				t.Settings = nil
				if json.Unmarshal([]byte(r), &t.Settings) != nil {
					t.Settings = map[string]any{"redacted": td.Mask}
				}
			}
		}
		c.Target = &t
	}
	c.Redacted = c.Redacted || changed
	return &c
}

// failRedactedLocked ends a job loaded from the state file that had not
// run yet and whose target's credentials were masked on disk. s.mu is held.
func (s *Server) failRedactedLocked(j *job) {
	now := s.clock.Now()
	j.Status, j.EndAt, j.UpdatedAt = statusError, &now, now
	j.Stderr = "the emulator restarted before this job ran: its result URL or connection settings held credentials, which are not kept on disk; issue it again"
	s.persistLocked(j)
}

// connection is a saved result output target.
type connection struct {
	ID       int64
	Name     string
	URL      string
	Settings map[string]any
}

// AddConnection registers (or, for an existing name, updates) a named
// connection whose URL gives the type (td, postgresql, s3...) and settings
// its defaults (e.g. {"table": "t", "mode": "replace"} or {"bucket": "b"}).
// It returns the connection id.
func (s *Server) AddConnection(name, rawURL string, settings map[string]any) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.connNames[name]
	if !ok {
		id = s.nextConn
		s.nextConn++
	}
	c := &connection{ID: id, Name: name, URL: rawURL, Settings: map[string]any{}}
	for k, v := range settings {
		c.Settings[k] = v
	}
	s.conns[id] = c
	s.connNames[name] = id
	// On disk with its credentials masked, like jobs (persistLocked): after
	// a restart, a connection that had a password must be added again.
	b, _ := json.Marshal(c.Settings)
	if _, err := s.state.Exec(`INSERT OR REPLACE INTO connections (id, name, url, settings) VALUES (?, ?, ?, ?)`, id, name, td.Redact(rawURL), td.Redact(string(b))); err != nil {
		s.logf("emulator: saving connection %q: %v", name, err)
	}
	return id
}

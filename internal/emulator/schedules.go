package emulator

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// schedule is a saved query, kept in the state database (table schedules).
// Its result URL is stored masked (td.Redact) like a job's; the URL as
// given lives in memory only (Server.schedResults), so a saved query whose
// URL held a password cannot run after a restart until it is updated.
type schedule struct {
	ID         int64     `json:"-"`
	Name       string    `json:"name"`
	Cron       string    `json:"cron"`
	Timezone   string    `json:"timezone"`
	Delay      int       `json:"delay"`
	Type       string    `json:"type"`
	Database   string    `json:"database"`
	Query      string    `json:"query"`
	Priority   int       `json:"priority"`
	RetryLimit int       `json:"retry_limit"`
	Result     string    `json:"result"`
	CreatedAt  time.Time `json:"created_at"`
}

// openSchedules creates the schedules table of the state database.
func (s *Server) openSchedules() error {
	_, err := s.state.Exec(`CREATE TABLE IF NOT EXISTS schedules (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL)`)
	return err
}

func (s *Server) loadSchedule(name string) (*schedule, error) {
	var sc schedule
	var data string
	err := s.state.QueryRow(`SELECT id, data FROM schedules WHERE name = ?`, name).Scan(&sc.ID, &data)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(data), &sc); err != nil {
		return nil, err
	}
	return &sc, nil
}

func (s *Server) loadScheduleByID(id int64) (*schedule, error) {
	var name string
	if err := s.state.QueryRow(`SELECT name FROM schedules WHERE id = ?`, id).Scan(&name); err != nil {
		return nil, err
	}
	return s.loadSchedule(name)
}

func (s *Server) saveSchedule(sc *schedule, insert bool) error {
	given := sc.Result
	stored := *sc
	stored.Result = td.Redact(given)
	data, err := json.Marshal(&stored)
	if err != nil {
		return err
	}
	if insert {
		res, err := s.state.Exec(`INSERT INTO schedules (name, data) VALUES (?, ?)`, sc.Name, string(data))
		if err != nil {
			return err
		}
		sc.ID, _ = res.LastInsertId()
	} else if _, err := s.state.Exec(`UPDATE schedules SET data = ? WHERE name = ?`, string(data), sc.Name); err != nil {
		return err
	}
	s.mu.Lock()
	if s.schedResults == nil {
		s.schedResults = map[string]string{}
	}
	s.schedResults[sc.Name] = given
	s.mu.Unlock()
	return nil
}

// resultOf is the result URL a run uses: the one given, when it is still
// in memory, else the stored one unless it was masked.
func (s *Server) resultOf(sc *schedule) (string, bool) {
	s.mu.Lock()
	given, ok := s.schedResults[sc.Name]
	s.mu.Unlock()
	if ok {
		return given, true
	}
	return sc.Result, !strings.Contains(sc.Result, td.Mask)
}

func (s *Server) scheduleOr404(w http.ResponseWriter, name string) (*schedule, bool) {
	sc, err := s.loadSchedule(name)
	if errors.Is(err, sql.ErrNoRows) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Schedule '%s' does not exist", name), nil)
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the saved query: "+err.Error(), nil)
		return nil, false
	}
	return sc, true
}

// applyScheduleForm sets what the form gives; a non-empty message is a
// 422 (or, for an unknown database, a 404).
func (s *Server) applyScheduleForm(sc *schedule, r *http.Request) (int, string) {
	f := r.Form
	if _, ok := f["query"]; ok {
		sc.Query = f.Get("query")
	}
	for key, dst := range map[string]*string{"database": &sc.Database, "type": &sc.Type, "cron": &sc.Cron, "timezone": &sc.Timezone, "result": &sc.Result} {
		if _, ok := f[key]; ok {
			*dst = strings.TrimSpace(f.Get(key))
		}
	}
	for key, rng := range map[string][3]int{"delay": {0, 1 << 30}, "priority": {-2, 2}, "retry_limit": {0, 100}} {
		if _, ok := f[key]; !ok {
			continue
		}
		n, msg := intField(f, key, rng[0], rng[1])
		if msg != "" {
			return http.StatusUnprocessableEntity, msg
		}
		*map[string]*int{"delay": &sc.Delay, "priority": &sc.Priority, "retry_limit": &sc.RetryLimit}[key] = n
	}
	if sc.Type == "" {
		sc.Type = "presto"
	}
	if sc.Timezone == "" {
		sc.Timezone = "UTC"
	}
	switch sc.Type {
	case "hive", "presto", "trino":
	default:
		return http.StatusUnprocessableEntity, fmt.Sprintf("unknown type %q: use presto, trino or hive", sc.Type)
	}
	if strings.TrimSpace(sc.Query) == "" {
		return http.StatusUnprocessableEntity, "query is required: send the SQL in the form field \"query\""
	}
	if sc.Database == "" {
		return http.StatusUnprocessableEntity, "database is required"
	}
	if _, ok := s.database(sc.Database); !ok {
		return http.StatusNotFound, fmt.Sprintf("database %q not found", sc.Database)
	}
	loc, err := time.LoadLocation(sc.Timezone)
	if err != nil {
		return http.StatusUnprocessableEntity, fmt.Sprintf("unknown timezone %q: use an IANA name such as UTC or Asia/Tokyo", sc.Timezone)
	}
	if sc.Cron != "" {
		if _, err := workflow.CronNext(sc.Cron, loc, s.clock.Now()); err != nil {
			return http.StatusUnprocessableEntity, fmt.Sprintf("invalid cron %q: %v", sc.Cron, err)
		}
	}
	return 0, ""
}

// nextTime is the saved query's next cron time after t (nil without cron).
func (sc *schedule) nextTime(t time.Time) *time.Time {
	if sc.Cron == "" {
		return nil
	}
	loc, err := time.LoadLocation(sc.Timezone)
	if err != nil {
		return nil
	}
	n, err := workflow.CronNext(sc.Cron, loc, t)
	if err != nil {
		return nil
	}
	return &n
}

// nullable is s, or JSON null when s is empty (cron and result: the API
// sends null for a saved query without them).
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// scheduleJSON has exactly the keys of create and update answers.
func (s *Server) scheduleJSON(sc *schedule) map[string]any {
	return map[string]any{
		"id": sc.ID, "name": sc.Name, "cron": nullable(sc.Cron), "timezone": sc.Timezone, "delay": sc.Delay,
		"created_at": formatTime(sc.CreatedAt), "type": sc.Type, "query": sc.Query, "database": sc.Database,
		"user_name": s.opts.UserName, "priority": sc.Priority, "retry_limit": sc.RetryLimit,
		"result": td.Redact(sc.Result), "start": timePtr(sc.nextTime(s.clock.Now())),
	}
}

func (s *Server) handleScheduleList(w http.ResponseWriter, r *http.Request) {
	rows, err := s.state.QueryContext(r.Context(), `SELECT id, data FROM schedules ORDER BY name`)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "listing saved queries: "+err.Error(), nil)
		return
	}
	defer rows.Close()
	out := []map[string]any{}
	now := s.clock.Now()
	for rows.Next() {
		var sc schedule
		var data string
		if rows.Scan(&sc.ID, &data) != nil || json.Unmarshal([]byte(data), &sc) != nil {
			continue
		}
		out = append(out, map[string]any{
			"name": sc.Name, "cron": nullable(sc.Cron), "timezone": sc.Timezone, "delay": sc.Delay,
			"created_at": formatTime(sc.CreatedAt), "type": sc.Type, "query": sc.Query, "database": sc.Database,
			"user_name": s.opts.UserName, "priority": sc.Priority, "retry_limit": sc.RetryLimit,
			"result": td.Redact(sc.Result), "next_time": timePtr(sc.nextTime(now)),
		})
	}
	writeJSON(w, r, map[string]any{"schedules": out})
}

var reScheduleName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

func (s *Server) handleScheduleCreate(w http.ResponseWriter, r *http.Request, name string) {
	if !reScheduleName.MatchString(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid saved query name %q: use letters, digits, _ . and - (at most 255)", name), nil)
		return
	}
	if _, err := s.loadSchedule(name); err == nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("Schedule '%s' already exists", name), nil)
		return
	}
	sc := &schedule{Name: name, CreatedAt: s.clock.Now()}
	if status, msg := s.applyScheduleForm(sc, r); status != 0 {
		writeError(w, status, msg, nil)
		return
	}
	if err := s.saveSchedule(sc, true); err != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("Schedule '%s' could not be created: %v", name, err), nil)
		return
	}
	writeJSON(w, r, s.scheduleJSON(sc))
}

func (s *Server) handleScheduleUpdate(w http.ResponseWriter, r *http.Request, name string) {
	sc, ok := s.scheduleOr404(w, name)
	if !ok {
		return
	}
	if given, ok := s.resultOf(sc); ok {
		sc.Result = given
	}
	if status, msg := s.applyScheduleForm(sc, r); status != 0 {
		writeError(w, status, msg, nil)
		return
	}
	if err := s.saveSchedule(sc, false); err != nil {
		writeError(w, http.StatusInternalServerError, "saving the saved query: "+err.Error(), nil)
		return
	}
	writeJSON(w, r, s.scheduleJSON(sc))
}

func (s *Server) handleScheduleDelete(w http.ResponseWriter, r *http.Request, name string) {
	sc, ok := s.scheduleOr404(w, name)
	if !ok {
		return
	}
	if _, err := s.state.Exec(`DELETE FROM schedules WHERE name = ?`, name); err != nil {
		writeError(w, http.StatusInternalServerError, "deleting the saved query: "+err.Error(), nil)
		return
	}
	s.mu.Lock()
	delete(s.schedResults, name)
	s.mu.Unlock()
	writeJSON(w, r, map[string]any{
		"name": sc.Name, "cron": nullable(sc.Cron), "timezone": sc.Timezone, "delay": sc.Delay,
		"created_at": formatTime(sc.CreatedAt), "type": sc.Type, "query": sc.Query, "database": sc.Database,
		"user_name": s.opts.UserName,
	})
}

// runTimes are the times num runs from t are for: t, then the cron times
// after it (a saved query without cron runs num times for t).
func (sc *schedule) runTimes(t time.Time, num int) []time.Time {
	out := []time.Time{t}
	for len(out) < num {
		n := sc.nextTime(out[len(out)-1])
		if n == nil {
			n = &t
		}
		out = append(out, *n)
	}
	return out
}

// startRun issues the saved query's job for scheduled time t. A non-zero
// status is an error answer; for a reused domain key the conflict is the
// job that holds it.
func (s *Server) startRun(sc *schedule, t time.Time, domainKey string) (id, conflict int64, status int, msg string) {
	result, ok := s.resultOf(sc)
	if !ok {
		return 0, 0, http.StatusUnprocessableEntity, fmt.Sprintf("saved query %q: its result URL held credentials, which the emulator does not keep across restarts: update it with the result URL again", sc.Name)
	}
	if _, ok := s.database(sc.Database); !ok {
		return 0, 0, http.StatusNotFound, fmt.Sprintf("database %q of saved query %q not found", sc.Database, sc.Name)
	}
	j := &job{
		Kind: kindQuery, Type: sc.Type, Database: sc.Database, Query: sc.Query, Result: result,
		Priority: sc.Priority, RetryLimit: sc.RetryLimit, DomainKey: domainKey,
		ScheduledTime: t.Unix(), Schedule: sc.Name,
	}
	if result != "" {
		tgt, st, m := s.resolveTarget(map[string][]string{"result": {result}}, false)
		if st != 0 {
			return 0, 0, st, fmt.Sprintf("saved query %q: %s", sc.Name, m)
		}
		j.Target = tgt
	}
	id, conflict, err := s.addJob(j)
	if err != nil {
		return 0, 0, http.StatusServiceUnavailable, err.Error()
	}
	return id, conflict, 0, ""
}

func (s *Server) handleScheduleRun(w http.ResponseWriter, r *http.Request, name, timeStr string) {
	sc, ok := s.scheduleOr404(w, name)
	if !ok {
		return
	}
	unix, err := strconv.ParseInt(timeStr, 10, 64)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("time must be unix seconds, got %q", timeStr), nil)
		return
	}
	num := 1
	if v := strings.TrimSpace(r.Form.Get("num")); v != "" {
		if num, err = strconv.Atoi(v); err != nil || num < 1 || num > 1000 {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("num must be an integer from 1 to 1000, got %q", v), nil)
			return
		}
	}
	key := r.Form.Get("domain_key")
	if key != "" && num > 1 {
		writeError(w, http.StatusUnprocessableEntity, "domain_key needs num 1: one key names one job", nil)
		return
	}
	jobs := []map[string]any{}
	for _, t := range sc.runTimes(time.Unix(unix, 0).UTC(), num) {
		id, conflict, status, msg := s.startRun(sc, t, key)
		if conflict != 0 {
			writeConflict(w, key, conflict)
			return
		}
		if status != 0 {
			writeError(w, status, msg, nil)
			return
		}
		jobs = append(jobs, map[string]any{"job_id": id, "type": sc.Type, "scheduled_at": formatTime(t)})
	}
	writeJSON(w, r, map[string]any{"jobs": jobs})
}

// handleSavedQueryJobs is POST /v4/queries/:id/jobs: a run by id with a
// JSON body {"scheduled_time": RFC 3339, "domain_key": ...}, answered with
// {"id": JOB_ID}.
func (s *Server) handleSavedQueryJobs(w http.ResponseWriter, r *http.Request, idStr string) {
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("saved query %s not found", idStr), nil)
		return
	}
	var body struct {
		ScheduledTime string `json:"scheduled_time"`
		DomainKey     string `json:"domain_key"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be JSON such as {\"scheduled_time\": \"2016-01-01T00:00:00Z\"}: "+err.Error(), nil)
		return
	}
	t, err := time.Parse(time.RFC3339, body.ScheduledTime)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("scheduled_time must be an RFC 3339 time, got %q", body.ScheduledTime), nil)
		return
	}
	sc, err := s.loadScheduleByID(id)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("saved query %d not found", id), nil)
		return
	}
	jobID, conflict, status, msg := s.startRun(sc, t.UTC(), body.DomainKey)
	if conflict != 0 {
		writeConflict(w, body.DomainKey, conflict)
		return
	}
	if status != 0 {
		writeError(w, status, msg, nil)
		return
	}
	writeJSON(w, r, map[string]any{"id": strconv.FormatInt(jobID, 10)})
}

func (s *Server) handleScheduleHistory(w http.ResponseWriter, r *http.Request, name string) {
	if _, ok := s.scheduleOr404(w, name); !ok {
		return
	}
	from, to := 0, -1
	for key, dst := range map[string]*int{"from": &from, "to": &to} {
		if v := r.Form.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s must be a non-negative integer, got %q", key, v), nil)
				return
			}
			*dst = n
		}
	}
	if to < 0 {
		to = from + 19
	}
	s.mu.Lock()
	var ids []int64
	for id, j := range s.jobs {
		if j.Schedule == name {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	// newest scheduled time first, as TD lists a saved query's runs
	var runs []job
	for _, id := range ids {
		j, found, err := s.lookup(r.Context(), id)
		if err != nil {
			return
		}
		if found {
			runs = append(runs, j)
		}
	}
	sort.Slice(runs, func(a, b int) bool {
		if runs[a].ScheduledTime != runs[b].ScheduledTime {
			return runs[a].ScheduledTime > runs[b].ScheduledTime
		}
		return runs[a].ID > runs[b].ID
	})
	out := []map[string]any{}
	for i := from; i <= to && i < len(runs); i++ {
		sh := s.showOf(r, &runs[i], false)
		b, _ := json.Marshal(sh)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delete(m, "linked_result_export_job_id")
		delete(m, "result_export_target_job_id")
		m["result"] = td.Redact(runs[i].Result)
		m["scheduled_at"] = formatTime(time.Unix(runs[i].ScheduledTime, 0))
		out = append(out, m)
	}
	writeJSON(w, r, map[string]any{"history": out, "count": len(runs), "from": from, "to": to})
}

func (s *Server) handleResultList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := []map[string]string{}
	for _, c := range s.conns {
		out = append(out, map[string]string{"name": c.Name, "url": td.Redact(c.URL), "organization": ""})
	}
	s.mu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a]["name"] < out[b]["name"] })
	writeJSON(w, r, map[string]any{"results": out})
}

// reScheduledTime is TD_SCHEDULED_TIME(), which a job issued for a
// scheduled time (a saved query's run, scheduled_time on issue) reads as
// that time in unix seconds.
var reScheduledTime = regexp.MustCompile(`(?i)\bTD_SCHEDULED_TIME\s*\(\s*\)`)

// withScheduledTime replaces TD_SCHEDULED_TIME() in query by unix.
func withScheduledTime(query string, unix int64) string {
	if unix == 0 {
		return query
	}
	return reScheduledTime.ReplaceAllString(query, strconv.FormatInt(unix, 10))
}

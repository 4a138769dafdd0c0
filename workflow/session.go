package workflow

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sessions and time zones, as digdag has them.
//
// A run's session time is its logical time; every task sees it, and the
// times derived from it, as built-in params (see RuntimeParams). The
// workflow's `timezone:` (default UTC) says in which zone they are written
// and in which zone `--session-time 2016-03-13` is read.

// ParseZone reads a `timezone:` value the way digdag does (java.time's
// ZoneId.of): a region name (Asia/Tokyo, America/Los_Angeles, UTC), an
// offset (+09:00, -08, +0530, Z) or a prefixed offset (UTC+09:00,
// GMT-8). It returns the location and digdag's name for it, the value of
// the built-in `timezone` param (+9 is "+09:00", +00:00 is "Z"). An unknown
// name is an error, never UTC.
func ParseZone(s string) (*time.Location, string, error) {
	bad := fmt.Errorf("unknown time zone name %q (use a region like Asia/Tokyo or America/Los_Angeles, UTC, or an offset like +09:00)", s)
	switch {
	case s == "Z":
		return time.FixedZone("Z", 0), "Z", nil
	case strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-"):
		secs, id, ok := parseOffset(s)
		if !ok {
			return nil, "", bad
		}
		return time.FixedZone(id, secs), id, nil
	case s == "UTC" || s == "GMT" || s == "UT":
		return time.FixedZone(s, 0), s, nil
	}
	for _, prefix := range []string{"UTC", "GMT", "UT"} {
		rest, ok := strings.CutPrefix(s, prefix)
		if !ok || rest == "" || (rest[0] != '+' && rest[0] != '-') {
			continue
		}
		secs, id, ok := parseOffset(rest)
		if !ok {
			return nil, "", bad
		}
		if secs == 0 {
			return time.FixedZone(prefix, 0), prefix, nil
		}
		return time.FixedZone(prefix+id, secs), prefix + id, nil
	}
	// Go's "Local" (and "") mean something java.time does not know
	if !regionName.MatchString(s) || s == "Local" {
		return nil, "", bad
	}
	if loc, ok := zones.Load(s); ok {
		return loc.(*time.Location), s, nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, "", bad
	}
	zones.Store(s, loc)
	return loc, s, nil
}

// zones holds the region zones loaded so far: time.LoadLocation reads the
// zone file on every call, and ${...} asks for the params' timezone at
// every expression. Only names that loaded are kept (a few hundred exist).
var zones sync.Map // name → *time.Location

var regionName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9~/._+-]+$`)

// parseOffset reads ±h, ±hh, ±hh:mm, ±hhmm, ±hh:mm:ss or ±hhmmss (at most
// 18 hours) and returns the seconds and the normalized name (+09:00).
func parseOffset(s string) (int, string, bool) {
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	body := s[1:]
	var h, m, sec string
	switch len(body) {
	case 1, 2:
		h = body
	case 4:
		h, m = body[:2], body[2:]
	case 5:
		if body[2] != ':' {
			return 0, "", false
		}
		h, m = body[:2], body[3:]
	case 6:
		h, m, sec = body[:2], body[2:4], body[4:]
	case 8:
		if body[2] != ':' || body[5] != ':' {
			return 0, "", false
		}
		h, m, sec = body[:2], body[3:5], body[6:]
	default:
		return 0, "", false
	}
	num := func(x string, limit int) (int, bool) {
		if x == "" {
			return 0, true
		}
		for _, c := range x {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		n, _ := strconv.Atoi(x)
		return n, n <= limit
	}
	hh, ok1 := num(h, 18)
	mm, ok2 := num(m, 59)
	ss, ok3 := num(sec, 59)
	total := hh*3600 + mm*60 + ss
	if !ok1 || !ok2 || !ok3 || total > 18*3600 {
		return 0, "", false
	}
	if total == 0 {
		return 0, "Z", true
	}
	id := fmt.Sprintf("%c%02d:%02d", "+-"[(1-sign)/2], hh, mm)
	if ss != 0 {
		id += fmt.Sprintf(":%02d", ss)
	}
	return sign * total, id, true
}

// Location is the workflow's time zone (UTC when `timezone:` is not set).
func (wf *Workflow) Location() *time.Location {
	if wf.loc == nil {
		return time.UTC
	}
	return wf.loc
}

// ZoneName is digdag's name for the workflow's time zone ("UTC" when not
// set), the built-in `timezone` param.
func (wf *Workflow) ZoneName() string {
	if wf.Timezone == "" {
		return "UTC"
	}
	return wf.Timezone
}

// DefaultSessionTime is the session time of a run given none, as `digdag
// run` picks a new one: the schedule's last session time at now when the
// workflow has a `schedule:`, else today's midnight in the workflow's zone.
// (digdag run reuses the session time of a run saved in .digdag/status, to
// resume it; tdctl does not resume runs, so each run gets a new session
// unless --session-time last asks for the previous one.)
func (wf *Workflow) DefaultSessionTime(now time.Time) time.Time {
	if wf.Schedule != nil {
		return wf.Schedule.Last(now)
	}
	n := now.In(wf.Location())
	return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, n.Location())
}

// ParseSessionTime reads a --session-time value: digdag's forms
// "yyyy-MM-dd" and "yyyy-MM-dd HH:mm:ss", read in the workflow's time
// zone (so a Los Angeles workflow's 2016-03-13 is midnight there), digdag's
// words daily (today's midnight), hourly (this hour), schedule (the
// schedule's last session time) and last (the session of this workflow's
// latest run in runsDir, else the default), or an RFC 3339 time (a
// tdctl extension). "" is the default session (DefaultSessionTime).
func (wf *Workflow) ParseSessionTime(s string, now time.Time, runsDir string) (time.Time, error) {
	loc := wf.Location()
	n := now.In(loc)
	switch s {
	case "":
		return wf.DefaultSessionTime(now), nil
	case "daily":
		return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc), nil
	case "hourly":
		// truncate in the zone: an offset of +05:30 has hours at :30
		return time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), 0, 0, 0, loc), nil
	case "schedule":
		if wf.Schedule == nil {
			return time.Time{}, fmt.Errorf("--session schedule is set but schedule is not set to this workflow (add a schedule: or give a date)")
		}
		return wf.Schedule.Last(now), nil
	case "last":
		if prev := lastRun(runsDir, wf); prev != nil {
			return prev.SessionTime, nil
		}
		return wf.DefaultSessionTime(now), nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--session-time %q: use \"yyyy-MM-dd\" or \"yyyy-MM-dd HH:mm:ss\" (read in the workflow's timezone %s), RFC 3339 (2016-03-13T00:00:00-08:00), daily, hourly, schedule or last", s, wf.ZoneName())
}

// Built-in params: the names digdag's RuntimeParams sets for every task.
// last_session_* and next_session_* exist only when the workflow has a
// schedule; error only in an _error task.
var (
	sessionSuffixes = []string{"time", "date", "date_compact", "local_time", "tz_offset", "unixtime"}
	baseBuiltins    = []string{"timezone", "session_uuid", "session_id", "project_id", "retry_attempt_name", "attempt_id", "task_name"}
)

// BuiltinNames lists the built-in params of wf's tasks.
func BuiltinNames(wf *Workflow) []string {
	out := append([]string{}, baseBuiltins...)
	prefixes := []string{"session_", "last_executed_session_"}
	if wf != nil && wf.Schedule != nil {
		prefixes = append(prefixes, "last_session_", "next_session_")
	}
	for _, p := range prefixes {
		for _, s := range sessionSuffixes {
			out = append(out, p+s)
		}
	}
	return out
}

// IsBuiltin reports whether name (or the top-level name of a dotted one)
// is a built-in param of wf's tasks: -p and _export cannot set it.
// last_session_* and next_session_* are built-ins only with a schedule:
// without one, digdag takes last_session_time and next_session_time from
// -p and derives their other forms (RuntimeParamsIT), and so does tdctl.
func (wf *Workflow) IsBuiltin(name string) bool {
	name, _, _ = strings.Cut(name, ".")
	for _, b := range BuiltinNames(wf) {
		if name == b {
			return true
		}
	}
	return false
}

// BuiltinError is the message for an attempt to set a built-in param.
func BuiltinError(where, name string) error {
	return fmt.Errorf("%s sets %s, a built-in param digdag sets for every task (it cannot be overwritten): use another name", where, name)
}

// digdag's formats (RuntimeParams)
const (
	fmtSessionTime = "2006-01-02T15:04:05-07:00"
	fmtDate        = "2006-01-02"
	fmtDateCompact = "20060102"
	fmtLocalTime   = "2006-01-02 15:04:05"
	fmtTzOffset    = "-0700"
)

func setTimeParams(s Scope, prefix string, t time.Time) {
	s[prefix+"time"] = t.Format(fmtSessionTime)
	s[prefix+"date"] = t.Format(fmtDate)
	s[prefix+"date_compact"] = t.Format(fmtDateCompact)
	s[prefix+"local_time"] = t.Format(fmtLocalTime)
	s[prefix+"tz_offset"] = t.Format(fmtTzOffset)
	s[prefix+"unixtime"] = t.Unix()
}

// session is what a run knows of its session before its tasks run.
type session struct {
	time         time.Time
	id, attempt  int64
	uuid         string
	lastExecuted *time.Time
	project      int64  // 0: a local run's 1
	retryName    string // "": null
}

// runtimeParams are the built-in params every task of the run sees
// (task_name is set per task); params are the run's -p.
func runtimeParams(wf *Workflow, s *session, params map[string]any) Scope {
	loc := wf.Location()
	st := s.time.In(loc)
	p := Scope{
		"timezone":           wf.ZoneName(),
		"session_uuid":       s.uuid,
		"session_id":         s.id,
		"project_id":         max(s.project, 1), // a local run has one project, as digdag run's
		"retry_attempt_name": nil,
		"attempt_id":         s.attempt,
	}
	if s.retryName != "" {
		p["retry_attempt_name"] = s.retryName
	}
	setTimeParams(p, "session_", st)
	if wf.Schedule != nil {
		setTimeParams(p, "last_session_", wf.Schedule.Last(s.time).In(loc))
		setTimeParams(p, "next_session_", wf.Schedule.Next(s.time).In(loc))
	}
	if wf.Schedule == nil {
		// digdag's RuntimeParams derives last_session_*/next_session_* from
		// a last_session_time/next_session_time param (-p) when it parses
		for _, prefix := range []string{"last_session_", "next_session_"} {
			v, ok := params[prefix+"time"].(string)
			if !ok {
				continue
			}
			if t, err := time.Parse(fmtSessionTime, v); err == nil {
				setTimeParams(p, prefix, t.In(loc))
				p[prefix+"time"] = v
			}
		}
	}
	if s.lastExecuted != nil {
		setTimeParams(p, "last_executed_session_", s.lastExecuted.In(loc))
	} else {
		// before the first run: "" everywhere, but the zone's offset at
		// the epoch (as digdag has it)
		for _, suf := range sessionSuffixes {
			p["last_executed_session_"+suf] = ""
		}
		p["last_executed_session_tz_offset"] = time.Unix(0, 0).In(loc).Format(fmtTzOffset)
	}
	return p
}

// newSession finds what the local run history says of a new run of wf at
// session time t: the attempt number (one more than the runs in runsDir),
// the session id and uuid (those of the latest run of wf when it had the
// same session time — a new attempt of that session — else new ones), and
// the session time of the latest earlier run of wf (last_executed_session).
func newSession(runsDir string, wf *Workflow, t time.Time) *session {
	s := &session{time: t}
	entries, _ := os.ReadDir(runsDir)
	for _, e := range entries {
		if e.IsDir() {
			s.attempt++
		}
	}
	s.attempt++
	s.id = s.attempt
	s.uuid = newUUID()
	if prev := lastRun(runsDir, wf); prev != nil {
		st := prev.SessionTime
		s.lastExecuted = &st
		if prev.SessionTime.Equal(t) && prev.SessionID > 0 && prev.SessionUUID != "" {
			s.id, s.uuid = prev.SessionID, prev.SessionUUID
		}
	}
	return s
}

// lastRun is the latest recorded run of wf (same name, same file) in
// runsDir, or nil. Run ids sort by their start second; runs started in the
// same second are told apart by their start time.
func lastRun(runsDir string, wf *Workflow) *Summary {
	if runsDir == "" {
		return nil
	}
	entries, err := os.ReadDir(runsDir)
	if err != nil {
		return nil
	}
	abs := absPath(wf.File)
	var best *Summary
	second := ""
	for i := len(entries) - 1; i >= 0; i-- {
		name := entries[i].Name()
		if !entries[i].IsDir() {
			continue
		}
		sec, _, _ := strings.Cut(name, "-")
		if best != nil && sec != second {
			break // an earlier second: best is the latest
		}
		data, err := os.ReadFile(filepath.Join(runsDir, name, "summary.json"))
		if err != nil {
			continue
		}
		var s Summary
		if json.Unmarshal(data, &s) != nil || s.Workflow != wf.Name || (s.Path != "" && s.Path != abs) {
			continue
		}
		if best == nil || s.StartedAt.After(best.StartedAt) {
			best, second = &s, sec
		}
	}
	return best
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// digdagTaskName is a task's name as digdag gives it: the run's path
// without the attempt marks tdctl adds to retried tasks ("+wf+a#2+b" is
// "+wf+a+b": digdag's retried task keeps its name).
func digdagTaskName(path string) string {
	return retryMark.ReplaceAllString(path, "$1")
}

var retryMark = regexp.MustCompile(`#[0-9]+($|[+^])`)

// forEachName is the name digdag gives a for_each> iteration:
// "+for-" then, for each key, KEYINDEX=KEY=VALUEINDEX=VALUE joined by &,
// keys and values cut to 8 characters and URL-encoded ("+" as %20: a task
// name cannot hold it). keys are in file order; m holds the lists.
func forEachName(keys []string, m map[string]any, combo map[string]any) string {
	var b strings.Builder
	b.WriteString("+for-")
	for ki, k := range keys {
		if ki > 0 {
			b.WriteByte('&')
		}
		list, _ := forEachList(m[k])
		vi := 0
		for j, item := range list {
			if reflectEqual(item, combo[k]) {
				vi = j
				break
			}
		}
		fmt.Fprintf(&b, "%d=%s=%d=%s", ki, nameTag(k), vi, nameTag(jsonText(combo[k])))
	}
	return b.String()
}

func reflectEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// jsonText is a value as digdag names it: a string as is, anything else
// as JSON.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Format(v)
	}
	return string(data)
}

// nameTag cuts s to 8 characters and encodes it as Java's URLEncoder
// (letters, digits and .-*_ kept, every other byte %XX), with %20 for a
// space.
func nameTag(s string) string {
	if r := []rune(s); len(r) > 8 {
		s = string(r[:8])
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

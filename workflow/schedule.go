package workflow

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Schedule is a workflow's `schedule:`, as digdag's schedulers read it:
// hourly>, daily>, weekly>, monthly>, minutes_interval> and cron>. Each is a
// cron pattern (the session times) and a delay (when digdag's scheduler
// would start the session: daily>: 07:00:00 has sessions at midnight,
// started at 07:00). tdctl does not run workflows on a schedule; the
// schedule gives the built-in last_session_* and next_session_* params and
// the default session time.
type Schedule struct {
	Kind    string // "daily", "cron"...
	Command string // the value of "kind>:"
	cron    *cronPattern
	delay   int64 // seconds
	loc     *time.Location
	start   *time.Time
	end     *time.Time
}

// scheduleEnd is where digdag puts the "next" session of a schedule whose
// end: has passed (9999-01-01T00:00:00Z).
var scheduleEnd = time.Unix(253370764800, 0).UTC()

// schedule keys every scheduler accepts (digdag's ScheduleExecutor); the
// skip_* ones only matter to a scheduler, which tdctl is not.
var scheduleCommonKeys = []string{"start", "end", "skip_on_overtime", "skip_delayed_by"}

// parseSchedule reads a `schedule:` mapping in the zone loc. Errors carry
// digdag's messages.
func parseSchedule(n *yaml.Node, loc *time.Location) (*Schedule, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("schedule: must be a mapping, e.g. schedule: {daily>: 07:00:00}")
	}
	s := &Schedule{loc: loc}
	keys := map[string]*yaml.Node{}
	var order []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		v := deref(n.Content[i+1])
		if strings.HasSuffix(k, ">") && s.Kind == "" {
			s.Kind, s.Command = strings.TrimSuffix(k, ">"), v.Value
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("schedule: %s needs a value like %s", k, scheduleExample(s.Kind))
			}
			continue
		}
		keys[k] = v
		order = append(order, k)
	}
	if s.Kind == "" {
		if t, ok := keys["_type"]; ok {
			s.Kind = t.Value
			delete(keys, "_type")
			if at, ok := keys["at"]; ok && s.Kind != "cron" && s.Kind != "minutes_interval" {
				s.Command = at.Value
				delete(keys, "at")
			} else if c, ok := keys["_command"]; ok {
				s.Command = c.Value
				delete(keys, "_command")
			}
		} else {
			return nil, fmt.Errorf("schedule: requires 'type>: at' parameter, e.g. daily>: 07:00:00 (one of hourly>, daily>, weekly>, monthly>, minutes_interval>, cron>)")
		}
	}
	allowed := map[string]bool{}
	for _, k := range scheduleCommonKeys {
		allowed[k] = true
	}
	switch s.Kind {
	case "cron", "minutes_interval":
		allowed["delay"] = true
	}
	for _, k := range order {
		if _, still := keys[k]; !still || allowed[k] {
			continue
		}
		known := []string{s.Kind + ">"}
		for a := range allowed {
			known = append(known, a)
		}
		if m := ClosestKey(k, known); m != "" {
			return nil, fmt.Errorf("schedule: parameter %s is not used by %s> (did you mean %s?)", k, s.Kind, m)
		}
		return nil, fmt.Errorf("schedule: parameter %s is not used by %s>", k, s.Kind)
	}
	var pattern string
	var err error
	switch s.Kind {
	case "hourly":
		pattern = "0 * * * *"
		s.delay, err = parseHourlyAt(s.Command)
	case "daily":
		pattern = "0 0 * * *"
		s.delay, err = parseAt("daily>", s.Command)
	case "weekly":
		day, at, ok := strings.Cut(s.Command, ",")
		day, at = strings.TrimSpace(day), strings.TrimSpace(at)
		if !ok {
			return nil, fmt.Errorf("weekly>: scheduler requires day,hh:mm:ss format: %s", s.Command)
		}
		if d, e := strconv.Atoi(day); e == nil && d < 0 {
			return nil, fmt.Errorf("weekly>: invalid day: %s", day)
		}
		if s.delay, err = parseAt("weekly>", at); err != nil {
			return nil, err
		}
		pattern = "0 0 * * " + day
		if _, e := parseCron(pattern); e != nil {
			return nil, fmt.Errorf("weekly>: scheduler requires day,hh:mm:ss format: %s", s.Command)
		}
	case "monthly":
		day, at, ok := strings.Cut(s.Command, ",")
		d, e := strconv.Atoi(day)
		if !ok || e != nil {
			return nil, fmt.Errorf("monthly>: scheduler requires day,hh:mm:ss format: %s", s.Command)
		}
		s.delay, err = parseAt("monthly>", at)
		pattern = fmt.Sprintf("0 0 %d * *", d)
	case "minutes_interval":
		m, e := strconv.Atoi(strings.TrimSpace(s.Command))
		if e != nil || m <= 0 {
			return nil, fmt.Errorf("minutes_interval>: expected a positive whole number of minutes, got %q", s.Command)
		}
		pattern = fmt.Sprintf("*/%d * * * *", m)
	case "cron":
		pattern = s.Command
	case "":
		return nil, fmt.Errorf("schedule: requires 'type>: at' parameter")
	default:
		return nil, fmt.Errorf("Unknown scheduler type: %s (known: hourly>, daily>, weekly>, monthly>, minutes_interval>, cron>)", s.Kind)
	}
	if err != nil {
		return nil, err
	}
	if d, ok := keys["delay"]; ok && allowed["delay"] {
		if s.delay, err = strconv.ParseInt(strings.TrimSpace(d.Value), 10, 64); err != nil {
			return nil, fmt.Errorf("schedule: delay must be a whole number of seconds, got %q", d.Value)
		}
	}
	if s.cron, err = parseCron(pattern); err != nil {
		return nil, fmt.Errorf("%s>: %v", s.Kind, err)
	}
	if ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); s.next(ref).Equal(scheduleEnd) {
		return nil, fmt.Errorf("%s>: %s never matches a date (no month has that day)", s.Kind, s.Command)
	}
	if v, ok := keys["start"]; ok {
		d, err := parseScheduleDate("start", v.Value, loc)
		if err != nil {
			return nil, err
		}
		s.start = &d
	}
	if v, ok := keys["end"]; ok {
		d, err := parseScheduleDate("end", v.Value, loc)
		if err != nil {
			return nil, err
		}
		d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc) // the end day is included
		s.end = &d
	}
	if s.start != nil && s.end != nil && !s.start.Before(*s.end) {
		return nil, fmt.Errorf("The schedule of end is earlier than start")
	}
	return s, nil
}

func scheduleExample(kind string) string {
	switch kind {
	case "hourly":
		return "30:00"
	case "weekly":
		return "Sun,09:00:00"
	case "monthly":
		return "1,09:00:00"
	case "minutes_interval":
		return "30"
	case "cron":
		return "'42 4 1 * *'"
	}
	return "07:00:00"
}

// parseScheduleDate reads start:/end: (uuuu-MM-dd, a day that exists).
func parseScheduleDate(key, v string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("Invalid %s: %s (use yyyy-MM-dd)", key, v)
	}
	return t, nil
}

// parseAt reads hh:mm:ss into seconds. As digdag, each part is any integer
// (25:00:00 is a day and an hour).
func parseAt(kind, at string) (int64, error) {
	f := strings.Split(at, ":")
	if len(f) != 3 {
		return 0, fmt.Errorf("%s scheduler requires hh:mm:ss format: %s", kind, at)
	}
	var secs int64
	for i, mul := range []int64{3600, 60, 1} {
		n, err := javaInt(f[i])
		if err != nil {
			return 0, fmt.Errorf("%s scheduler requires hh:mm:ss format: %s", kind, at)
		}
		secs += n * mul
	}
	return secs, nil
}

func parseHourlyAt(at string) (int64, error) {
	f := strings.Split(at, ":")
	if len(f) != 2 {
		return 0, fmt.Errorf("hourly>: scheduler requires mm:ss format: %s", at)
	}
	m, err1 := javaInt(f[0])
	s, err2 := javaInt(f[1])
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("hourly>: scheduler requires mm:ss format: %s", at)
	}
	return m*60 + s, nil
}

// javaInt reads an int as Java's Integer.parseInt: an optional sign and
// digits, nothing else.
func javaInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	return n, err
}

// next is the first session time strictly after t (cron4j's Predictor:
// minutes, in the schedule's zone).
func (s *Schedule) next(t time.Time) time.Time { return s.cron.next(t, s.loc) }

// Next is the session after the session at t (digdag's
// nextScheduleTime): the first after t, moved to start: when the run
// would come before it, or 9999-01-01 once end: has passed.
func (s *Schedule) Next(t time.Time) time.Time {
	next := s.next(t)
	run := next.Add(time.Duration(s.delay) * time.Second)
	if s.end != nil && !s.end.After(run) {
		return scheduleEnd
	}
	if s.start != nil && s.start.After(run) {
		return s.next(s.start.Add(-time.Second)).UTC()
	}
	return next.UTC()
}

// Last is the session before the session at t (digdag's
// lastScheduleTime): the latest session time before t. Like digdag, it
// steps back by the schedule's estimated interval, then forward.
func (s *Schedule) Last(t time.Time) time.Time {
	next := s.next(t)
	interval := s.next(next).Sub(next)
	if interval <= 0 { // no session after t
		interval = time.Minute
	}
	before := t.Add(-interval)
	for {
		before = before.Add(-interval)
		if before.Before(t) {
			break
		}
	}
	nb := s.next(before)
	for nb.Before(t) {
		before = nb
		nb = s.next(before)
	}
	return before.Truncate(time.Second).UTC()
}

// cronPattern is a cron4j scheduling pattern, as digdag uses it: five
// fields (minute hour day-of-month month day-of-week), each a list of
// values, ranges (wrapping ranges like 22-2 included) and steps; month and
// day names (jan, sun); L for the last day of the month; several patterns
// joined by |. Unlike Vixie cron, a time matches when every field matches
// (day of month AND day of week).
type cronPattern struct{ alts []cronAlt }

type cronAlt struct {
	minute, hour, dom, month, dow uint64
	lastDom                       bool
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

func parseCron(pattern string) (*cronPattern, error) {
	p := &cronPattern{}
	for _, part := range strings.Split(pattern, "|") {
		f := strings.Fields(part)
		if len(f) != 5 {
			return nil, fmt.Errorf("invalid pattern %q: a cron pattern has 5 fields (minute hour day-of-month month day-of-week), e.g. '42 4 1 * *'", pattern)
		}
		var a cronAlt
		var err error
		fields := []struct {
			name     string
			dst      *uint64
			min, max int
			names    []string
			base     int
		}{
			{"minutes", &a.minute, 0, 59, nil, 0},
			{"hours", &a.hour, 0, 23, nil, 0},
			{"days of month", &a.dom, 1, 31, nil, 0},
			{"months", &a.month, 1, 12, monthNames, 1},
			{"days of week", &a.dow, 0, 7, dayNames, 0},
		}
		for i, fd := range fields {
			*fd.dst, err = parseCronField(f[i], fd.min, fd.max, fd.names, fd.base, i == 2, &a.lastDom)
			if err != nil {
				return nil, fmt.Errorf("invalid pattern %q: error parsing %s field: %v", pattern, fd.name, err)
			}
		}
		if a.dow&(1<<7) != 0 { // 7 is Sunday too
			a.dow |= 1
		}
		p.alts = append(p.alts, a)
	}
	return p, nil
}

func parseCronField(f string, min, max int, names []string, base int, dom bool, last *bool) (uint64, error) {
	var bits uint64
	value := func(s string) (int, error) {
		for i, n := range names {
			if strings.EqualFold(s, n) {
				return i + base, nil
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("invalid value %q", s)
		}
		if n < min || n > max {
			return 0, fmt.Errorf("value %d out of range [%d, %d]", n, min, max)
		}
		return n, nil
	}
	for _, el := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(el, "/")
		step := 1
		if hasStep {
			var err error
			if step, err = strconv.Atoi(stepStr); err != nil || step <= 0 {
				return 0, fmt.Errorf("invalid step %q", stepStr)
			}
		}
		var vals []int
		switch {
		case rng == "*":
			for v := min; v <= max; v++ {
				vals = append(vals, v)
			}
		case dom && strings.EqualFold(rng, "L"):
			*last = true
			continue
		case strings.Contains(rng, "-"):
			lo, hi, _ := strings.Cut(rng, "-")
			a, err := value(lo)
			if err != nil {
				return 0, err
			}
			b, err := value(hi)
			if err != nil {
				return 0, err
			}
			if a <= b {
				for v := a; v <= b; v++ {
					vals = append(vals, v)
				}
			} else { // wraps: 22-2 is 22, 23, 0, 1, 2
				for v := a; v <= max; v++ {
					vals = append(vals, v)
				}
				for v := min; v <= b; v++ {
					vals = append(vals, v)
				}
			}
		default:
			v, err := value(rng)
			if err != nil {
				return 0, err
			}
			vals = []int{v}
		}
		for i := 0; i < len(vals); i += step {
			bits |= 1 << uint(vals[i])
		}
	}
	return bits, nil
}

func (a *cronAlt) dayMatches(t time.Time) bool {
	d := t.Day()
	domOK := a.dom&(1<<uint(d)) != 0
	if !domOK && a.lastDom {
		domOK = t.AddDate(0, 0, 1).Day() == 1
	}
	return domOK && a.dow&(1<<uint(t.Weekday())) != 0
}

// next is the first minute strictly after t matching the pattern.
func (p *cronPattern) next(t time.Time, loc *time.Location) time.Time {
	var best time.Time
	for i := range p.alts {
		n := p.alts[i].next(t, loc)
		if best.IsZero() || n.Before(best) {
			best = n
		}
	}
	return best
}

func (a *cronAlt) next(after time.Time, loc *time.Location) time.Time {
	t := after.In(loc).Truncate(time.Minute).Add(time.Minute)
	// Truncate works on absolute time; offsets with seconds aside, that is
	// the local minute too
	limit := t.AddDate(10, 0, 0) // a pattern that never matches (31 feb)
	for t.Before(limit) {
		switch {
		case a.month&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !a.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case a.hour&(1<<uint(t.Hour())) == 0:
			n := time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			if !n.After(t) {
				n = t.Add(time.Hour).Truncate(time.Hour)
			}
			t = n
		case a.minute&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return scheduleEnd
}

// CronNext returns the first minute strictly after t that matches the
// five-field cron pattern in loc (TD's saved queries use the same patterns,
// plus @hourly, @daily, @weekly, @monthly and @yearly, read here too).
func CronNext(pattern string, loc *time.Location, t time.Time) (time.Time, error) {
	if alias, ok := map[string]string{"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
		"@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}[strings.TrimSpace(pattern)]; ok {
		pattern = alias
	}
	p, err := parseCron(pattern)
	if err != nil {
		return time.Time{}, err
	}
	return p.next(t, loc), nil
}

// Delay is the schedule's `delay:` (digdag's run time is the session time
// plus this).
func (s *Schedule) Delay() time.Duration { return time.Duration(s.delay) * time.Second }

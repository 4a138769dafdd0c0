package workflow

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// moment is the date value behind the moment API that ${...} offers:
// digdag's templates load moment.js 2.21; this is the part of its API
// workflows use, written in Go (see docs/design.md). A moment is mutable,
// as in moment.js: add() changes it and returns it.
type moment struct {
	t       time.Time // the instant, in the zone it displays in
	utc     bool      // utc mode: format() ends in Z
	invalid bool
}

var (
	momentSym = goja.NewSymbol("tdctl.moment")
)

// loadZone reads a zone as timezone: takes it (ParseZone).
func loadZone(name string) (*time.Location, error) {
	loc, _, err := ParseZone(name)
	return loc, err
}

// offsetMinutes reads an offset (+09:00, +0900, +9) as minutes east of UTC.
func offsetMinutes(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	secs, _, ok := parseOffset(s)
	return secs / 60, ok
}

func installMoment(e *Engine) {
	rt := e.rt
	proto := rt.NewObject()
	wrap := func(m *moment) goja.Value {
		obj := rt.NewObject()
		_ = obj.SetPrototype(proto)
		_ = obj.DefineDataPropertySymbol(momentSym, rt.ToValue(m), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
		return obj
	}
	asMoment := func(v goja.Value) (*moment, bool) {
		if obj, ok := v.(*goja.Object); ok {
			if h := obj.GetSymbol(momentSym); h != nil {
				m, ok := h.Export().(*moment)
				return m, ok
			}
		}
		return nil, false
	}
	// create reads moment()'s arguments into a moment.
	create := func(args []goja.Value, utc bool) *moment {
		zone := e.zone
		if utc {
			zone = time.UTC
		}
		m := &moment{utc: utc}
		if len(args) == 0 || goja.IsUndefined(args[0]) {
			m.t = time.Now().In(zone)
			return m
		}
		a := args[0]
		if goja.IsNull(a) {
			m.invalid = true
			return m
		}
		if o, ok := asMoment(a); ok {
			c := *o
			if utc {
				c.t, c.utc = c.t.In(time.UTC), true
			}
			return &c
		}
		switch x := a.Export().(type) {
		case time.Time: // a JavaScript Date
			m.t = x.In(zone)
			return m
		case int64:
			m.t = time.UnixMilli(x).In(zone)
			return m
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				m.invalid = true
				return m
			}
			m.t = time.UnixMilli(int64(x)).In(zone)
			return m
		case []any:
			parts := [7]int{0, 0, 1, 0, 0, 0, 0}
			for i, p := range x {
				if i < 7 {
					n, _ := strconv.Atoi(fmt.Sprint(p))
					parts[i] = n
				}
			}
			m.t = time.Date(parts[0], time.Month(parts[1]+1), parts[2], parts[3], parts[4], parts[5], parts[6]*1e6, zone)
			return m
		case string:
			var t time.Time
			var ok bool
			if len(args) > 1 && !goja.IsUndefined(args[1]) {
				t, ok = parseWithFormat(x, args[1].String(), zone)
			} else {
				t, ok = parseISO(x, zone)
			}
			if !ok {
				m.invalid = true
				return m
			}
			m.t = t.In(zone)
			return m
		}
		m.invalid = true
		return m
	}
	fn := func(utc bool) func(goja.FunctionCall) goja.Value {
		return func(call goja.FunctionCall) goja.Value { return wrap(create(call.Arguments, utc)) }
	}
	mo := rt.ToValue(fn(false)).(*goja.Object)
	_ = mo.Set("utc", fn(true))
	_ = mo.Set("unix", func(sec float64) goja.Value {
		return wrap(&moment{t: time.UnixMilli(int64(math.Floor(sec * 1000))).In(e.zone)})
	})
	_ = mo.Set("isMoment", func(v goja.Value) bool { _, ok := asMoment(v); return ok })
	_ = mo.Set("version", "2.21.0")
	_ = mo.Set("prototype", proto)
	_ = rt.Set("moment", mo)

	this := func(call goja.FunctionCall) *moment {
		m, ok := asMoment(call.This)
		if !ok {
			panic(rt.NewTypeError("not a moment"))
		}
		return m
	}
	other := func(v goja.Value) *moment {
		if o, ok := asMoment(v); ok {
			return o
		}
		return create([]goja.Value{v}, false)
	}
	method := func(name string, f func(m *moment, call goja.FunctionCall) goja.Value) {
		_ = proto.Set(name, func(call goja.FunctionCall) goja.Value { return f(this(call), call) })
	}
	self := func(call goja.FunctionCall) goja.Value { return call.This }
	num := func(v goja.Value) float64 { return v.ToFloat() }

	method("format", func(m *moment, call goja.FunctionCall) goja.Value {
		f := ""
		if a := call.Argument(0); !goja.IsUndefined(a) && !goja.IsNull(a) {
			f = a.String()
		}
		return rt.ToValue(m.format(f))
	})
	addSub := func(sign float64) func(m *moment, call goja.FunctionCall) goja.Value {
		return func(m *moment, call goja.FunctionCall) goja.Value {
			if m.invalid {
				return self(call)
			}
			a, b := call.Argument(0), call.Argument(1)
			if obj, ok := a.(*goja.Object); ok && a.ExportType() != nil && a.ExportType().Kind().String() == "map" {
				for _, k := range obj.Keys() {
					m.add(sign*num(obj.Get(k)), k)
				}
				return self(call)
			}
			if _, err := strconv.ParseFloat(a.String(), 64); err != nil && !goja.IsUndefined(b) {
				a, b = b, a // add('days', 1), the old argument order moment.js still takes
			}
			unit := "ms"
			if !goja.IsUndefined(b) {
				unit = b.String()
			}
			n := num(a)
			if math.IsNaN(n) {
				n = 0
			}
			m.add(sign*n, unit)
			return self(call)
		}
	}
	method("add", addSub(1))
	method("subtract", addSub(-1))
	method("startOf", func(m *moment, call goja.FunctionCall) goja.Value {
		m.startOf(call.Argument(0).String())
		return self(call)
	})
	method("endOf", func(m *moment, call goja.FunctionCall) goja.Value {
		m.endOf(call.Argument(0).String())
		return self(call)
	})
	method("clone", func(m *moment, call goja.FunctionCall) goja.Value { c := *m; return wrap(&c) })
	method("utc", func(m *moment, call goja.FunctionCall) goja.Value {
		m.t, m.utc = m.t.In(time.UTC), true
		return self(call)
	})
	method("local", func(m *moment, call goja.FunctionCall) goja.Value {
		m.t, m.utc = m.t.In(e.zone), false
		return self(call)
	})
	method("tz", func(m *moment, call goja.FunctionCall) goja.Value {
		if goja.IsUndefined(call.Argument(0)) {
			return rt.ToValue(m.t.Location().String())
		}
		loc, err := loadZone(call.Argument(0).String())
		if err != nil {
			panic(rt.NewTypeError("moment.tz: unknown time zone %q", call.Argument(0).String()))
		}
		m.t, m.utc = m.t.In(loc), false
		return self(call)
	})
	method("utcOffset", func(m *moment, call goja.FunctionCall) goja.Value {
		a := call.Argument(0)
		if goja.IsUndefined(a) {
			_, off := m.t.Zone()
			return rt.ToValue(off / 60)
		}
		var mins int
		if off, ok := offsetMinutes(a.String()); ok {
			mins = off
		} else {
			n := num(a)
			if math.Abs(n) < 16 {
				n *= 60
			}
			mins = int(n)
		}
		if mins == 0 {
			m.t = m.t.In(time.UTC)
		} else {
			m.t = m.t.In(time.FixedZone("", mins*60))
		}
		m.utc = false
		return self(call)
	})
	method("isUTC", func(m *moment, call goja.FunctionCall) goja.Value { return rt.ToValue(m.utc) })
	method("isUtc", func(m *moment, call goja.FunctionCall) goja.Value { return rt.ToValue(m.utc) })
	method("isValid", func(m *moment, call goja.FunctionCall) goja.Value { return rt.ToValue(!m.invalid) })
	method("valueOf", func(m *moment, call goja.FunctionCall) goja.Value {
		if m.invalid {
			return rt.ToValue(math.NaN())
		}
		return rt.ToValue(m.t.UnixMilli())
	})
	method("unix", func(m *moment, call goja.FunctionCall) goja.Value {
		if m.invalid {
			return rt.ToValue(math.NaN())
		}
		return rt.ToValue(int64(math.Floor(float64(m.t.UnixMilli()) / 1000)))
	})
	method("toDate", func(m *moment, call goja.FunctionCall) goja.Value {
		d, _ := rt.New(rt.Get("Date"), rt.ToValue(m.t.UnixMilli()))
		return d
	})
	method("toISOString", func(m *moment, call goja.FunctionCall) goja.Value {
		if m.invalid {
			return goja.Null()
		}
		return rt.ToValue(m.isoString())
	})
	method("toJSON", func(m *moment, call goja.FunctionCall) goja.Value {
		if m.invalid {
			return goja.Null()
		}
		return rt.ToValue(m.isoString())
	})
	method("toString", func(m *moment, call goja.FunctionCall) goja.Value {
		if m.invalid {
			return rt.ToValue("Invalid date")
		}
		return rt.ToValue(m.format("ddd MMM DD YYYY HH:mm:ss [GMT]ZZ"))
	})
	compare := func(name string, test func(a, b *moment, unit string) bool) {
		method(name, func(m *moment, call goja.FunctionCall) goja.Value {
			o := other(call.Argument(0))
			if m.invalid || o.invalid {
				return rt.ToValue(false)
			}
			unit := ""
			if u := call.Argument(1); !goja.IsUndefined(u) {
				unit = u.String()
			}
			return rt.ToValue(test(m, o, unit))
		})
	}
	ms := func(m *moment) int64 { return m.t.UnixMilli() }
	start := func(m *moment, unit string) int64 { c := *m; c.startOf(unit); return ms(&c) }
	end := func(m *moment, unit string) int64 { c := *m; c.endOf(unit); return ms(&c) }
	compare("isBefore", func(a, b *moment, u string) bool {
		if u == "" {
			return ms(a) < ms(b)
		}
		return end(a, u) < ms(b)
	})
	compare("isAfter", func(a, b *moment, u string) bool {
		if u == "" {
			return ms(a) > ms(b)
		}
		return ms(b) < start(a, u)
	})
	compare("isSame", func(a, b *moment, u string) bool {
		if u == "" {
			return ms(a) == ms(b)
		}
		return start(a, u) <= ms(b) && ms(b) <= end(a, u)
	})
	compare("isSameOrBefore", func(a, b *moment, u string) bool {
		if u == "" {
			return ms(a) <= ms(b)
		}
		return end(a, u) < ms(b) || (start(a, u) <= ms(b) && ms(b) <= end(a, u))
	})
	compare("isSameOrAfter", func(a, b *moment, u string) bool {
		if u == "" {
			return ms(a) >= ms(b)
		}
		return ms(b) < start(a, u) || (start(a, u) <= ms(b) && ms(b) <= end(a, u))
	})
	method("diff", func(m *moment, call goja.FunctionCall) goja.Value {
		o := other(call.Argument(0))
		if m.invalid || o.invalid {
			return rt.ToValue(math.NaN())
		}
		unit := "ms"
		if u := call.Argument(1); !goja.IsUndefined(u) {
			unit = u.String()
		}
		d := m.diff(o, normalizeUnit(unit))
		if !call.Argument(2).ToBoolean() {
			d = math.Trunc(d)
		}
		if d == 0 {
			d = 0 // never -0
		}
		return rt.ToValue(d)
	})
	// getters and setters: year(), year(2017), ...
	field := func(name string, get func(t time.Time) int, set func(t time.Time, n int) time.Time) {
		method(name, func(m *moment, call goja.FunctionCall) goja.Value {
			if goja.IsUndefined(call.Argument(0)) {
				if m.invalid {
					return rt.ToValue(math.NaN())
				}
				return rt.ToValue(get(m.t))
			}
			if !m.invalid {
				m.t = set(m.t, int(num(call.Argument(0))))
			}
			return self(call)
		})
	}
	withParts := func(t time.Time, f func(p *[7]int)) time.Time {
		y, mo, d := t.Date()
		p := [7]int{y, int(mo), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond()}
		f(&p)
		return time.Date(p[0], time.Month(p[1]), p[2], p[3], p[4], p[5], p[6], t.Location())
	}
	field("year", func(t time.Time) int { return t.Year() }, func(t time.Time, n int) time.Time {
		return withParts(t, func(p *[7]int) { p[0] = n; p[2] = min(p[2], daysIn(n, time.Month(p[1]))) })
	})
	field("month", func(t time.Time) int { return int(t.Month()) - 1 }, func(t time.Time, n int) time.Time {
		return withParts(t, func(p *[7]int) {
			p[0] += floorDiv(n, 12)
			p[1] = n - floorDiv(n, 12)*12 + 1
			p[2] = min(p[2], daysIn(p[0], time.Month(p[1])))
		})
	})
	field("date", func(t time.Time) int { return t.Day() }, func(t time.Time, n int) time.Time {
		return withParts(t, func(p *[7]int) { p[2] = n })
	})
	field("day", func(t time.Time) int { return int(t.Weekday()) }, func(t time.Time, n int) time.Time {
		return t.AddDate(0, 0, n-int(t.Weekday()))
	})
	field("hour", func(t time.Time) int { return t.Hour() }, func(t time.Time, n int) time.Time {
		return withParts(t, func(p *[7]int) { p[3] = n })
	})
	field("minute", func(t time.Time) int { return t.Minute() }, func(t time.Time, n int) time.Time {
		return withParts(t, func(p *[7]int) { p[4] = n })
	})
	field("second", func(t time.Time) int { return t.Second() }, func(t time.Time, n int) time.Time {
		return withParts(t, func(p *[7]int) { p[5] = n })
	})
	field("millisecond", func(t time.Time) int { return t.Nanosecond() / 1e6 }, func(t time.Time, n int) time.Time {
		return withParts(t, func(p *[7]int) { p[6] = n * 1e6 })
	})
	field("dayOfYear", func(t time.Time) int { return t.YearDay() }, func(t time.Time, n int) time.Time {
		return t.AddDate(0, 0, n-t.YearDay())
	})
	field("isoWeekday", func(t time.Time) int { return isoWeekday(t) }, func(t time.Time, n int) time.Time {
		return t.AddDate(0, 0, n-isoWeekday(t))
	})
	field("quarter", func(t time.Time) int { return (int(t.Month()) + 2) / 3 }, func(t time.Time, n int) time.Time {
		return addMonths(t, (n-(int(t.Month())+2)/3)*3)
	})
	method("week", func(m *moment, call goja.FunctionCall) goja.Value { w, _ := localeWeek(m.t); return rt.ToValue(w) })
	method("isoWeek", func(m *moment, call goja.FunctionCall) goja.Value { _, w := m.t.ISOWeek(); return rt.ToValue(w) })
	method("weekday", func(m *moment, call goja.FunctionCall) goja.Value { return rt.ToValue(int(m.t.Weekday())) })
	method("daysInMonth", func(m *moment, call goja.FunctionCall) goja.Value {
		return rt.ToValue(daysIn(m.t.Year(), m.t.Month()))
	})
	method("isLeapYear", func(m *moment, call goja.FunctionCall) goja.Value {
		return rt.ToValue(daysIn(m.t.Year(), time.February) == 29)
	})
	// moment's own names for the getters
	for alias, name := range map[string]string{"years": "year", "months": "month", "dates": "date", "days": "day",
		"hours": "hour", "minutes": "minute", "seconds": "second", "milliseconds": "millisecond", "weeks": "week", "isoWeeks": "isoWeek"} {
		_ = proto.Set(alias, proto.Get(name))
	}
	_ = proto.Set("get", func(call goja.FunctionCall) goja.Value {
		f, ok := goja.AssertFunction(proto.Get(momentGetter(call.Argument(0).String())))
		if !ok {
			panic(rt.NewTypeError("moment.get: unknown unit %q", call.Argument(0).String()))
		}
		v, err := f(call.This)
		if err != nil {
			panic(err)
		}
		return v
	})
	_ = proto.Set("set", func(call goja.FunctionCall) goja.Value {
		f, ok := goja.AssertFunction(proto.Get(momentGetter(call.Argument(0).String())))
		if !ok {
			panic(rt.NewTypeError("moment.set: unknown unit %q", call.Argument(0).String()))
		}
		v, err := f(call.This, call.Argument(1))
		if err != nil {
			panic(err)
		}
		return v
	})
}

func momentGetter(unit string) string {
	switch u := normalizeUnit(unit); u {
	case "day":
		return "day"
	default:
		return u
	}
}

// normalizeUnit maps moment's unit names and abbreviations (days, d, D...)
// to one name.
func normalizeUnit(u string) string {
	switch u {
	case "y", "year", "years", "Y":
		return "year"
	case "Q", "quarter", "quarters":
		return "quarter"
	case "M", "month", "months":
		return "month"
	case "w", "week", "weeks":
		return "week"
	case "W", "isoWeek", "isoWeeks", "isoweek", "isoweeks":
		return "isoWeek"
	case "d", "day", "days":
		return "day"
	case "D", "date", "dates":
		return "date"
	case "h", "hour", "hours":
		return "hour"
	case "m", "minute", "minutes":
		return "minute"
	case "s", "second", "seconds":
		return "second"
	case "ms", "millisecond", "milliseconds":
		return "millisecond"
	}
	l := strings.ToLower(u)
	if l != u {
		return normalizeUnit(l)
	}
	return u
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// addMonths adds n months keeping the wall clock, the day clamped to the
// month's last (Jan 31 + 1 month = Feb 28/29), as moment.js does.
func addMonths(t time.Time, n int) time.Time {
	y, mo, d := t.Date()
	total := int(mo) - 1 + n
	ny := y + floorDiv(total, 12)
	nm := time.Month(total - floorDiv(total, 12)*12 + 1)
	return time.Date(ny, nm, min(d, daysIn(ny, nm)), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (m *moment) add(n float64, unit string) {
	switch normalizeUnit(unit) {
	case "year":
		m.t = addMonths(m.t, int(math.Round(n*12)))
	case "quarter":
		m.t = addMonths(m.t, int(math.Round(n*3)))
	case "month":
		m.t = addMonths(m.t, int(math.Round(n)))
	case "week", "isoWeek":
		m.t = m.t.AddDate(0, 0, int(math.Round(n*7)))
	case "day", "date":
		m.t = m.t.AddDate(0, 0, int(math.Round(n)))
	case "hour":
		m.t = m.t.Add(time.Duration(math.Round(n*float64(time.Hour)/1e6)) * time.Millisecond)
	case "minute":
		m.t = m.t.Add(time.Duration(math.Round(n*float64(time.Minute)/1e6)) * time.Millisecond)
	case "second":
		m.t = m.t.Add(time.Duration(math.Round(n*1000)) * time.Millisecond)
	case "millisecond":
		m.t = m.t.Add(time.Duration(math.Round(n)) * time.Millisecond)
	}
	// moment.js ignores a unit it does not know
}

func isoWeekday(t time.Time) int {
	if t.Weekday() == time.Sunday {
		return 7
	}
	return int(t.Weekday())
}

func (m *moment) startOf(unit string) {
	if m.invalid {
		return
	}
	t := m.t
	y, mo, d := t.Date()
	loc := t.Location()
	switch normalizeUnit(unit) {
	case "year":
		m.t = time.Date(y, 1, 1, 0, 0, 0, 0, loc)
	case "quarter":
		m.t = time.Date(y, time.Month((int(mo)-1)/3*3+1), 1, 0, 0, 0, 0, loc)
	case "month":
		m.t = time.Date(y, mo, 1, 0, 0, 0, 0, loc)
	case "week":
		m.t = time.Date(y, mo, d-int(t.Weekday()), 0, 0, 0, 0, loc)
	case "isoWeek":
		m.t = time.Date(y, mo, d-(isoWeekday(t)-1), 0, 0, 0, 0, loc)
	case "day", "date":
		m.t = time.Date(y, mo, d, 0, 0, 0, 0, loc)
	case "hour":
		m.t = t.Truncate(time.Hour)
		if _, off := t.Zone(); off%3600 != 0 {
			m.t = time.Date(y, mo, d, t.Hour(), 0, 0, 0, loc)
		}
	case "minute":
		m.t = time.Date(y, mo, d, t.Hour(), t.Minute(), 0, 0, loc)
	case "second":
		m.t = time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), 0, loc)
	}
}

func (m *moment) endOf(unit string) {
	if m.invalid {
		return
	}
	u := normalizeUnit(unit)
	switch u {
	case "year", "quarter", "month", "week", "isoWeek", "day", "date", "hour", "minute", "second":
	default:
		return
	}
	m.startOf(u)
	if u == "isoWeek" {
		u = "week"
	}
	m.add(1, u)
	m.t = m.t.Add(-time.Millisecond)
}

func (m *moment) isoString() string {
	return m.t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// diff is m - o in unit, as a float (moment.js's rules: months compare
// calendar positions; days and weeks ignore a change of UTC offset).
func (m *moment) diff(o *moment, unit string) float64 {
	switch unit {
	case "year", "quarter", "month":
		d := monthDiff(m, o)
		switch unit {
		case "year":
			return d / 12
		case "quarter":
			return d / 3
		}
		return d
	}
	delta := float64(m.t.UnixMilli() - o.t.UnixMilli())
	_, mo := m.t.Zone()
	_, oo := o.t.Zone()
	zoneDelta := float64(oo-mo) * 1000
	switch unit {
	case "second":
		return delta / 1e3
	case "minute":
		return delta / 6e4
	case "hour":
		return delta / 36e5
	case "day", "date":
		return (delta - zoneDelta) / 864e5
	case "week", "isoWeek":
		return (delta - zoneDelta) / 6048e5
	}
	return delta
}

func monthDiff(a, b *moment) float64 {
	whole := (b.t.Year()-a.t.Year())*12 + int(b.t.Month()-a.t.Month())
	anchor := addMonths(a.t, whole)
	bm := float64(b.t.UnixMilli())
	am := float64(anchor.UnixMilli())
	var adjust float64
	if bm-am < 0 {
		anchor2 := float64(addMonths(a.t, whole-1).UnixMilli())
		adjust = (bm - am) / (am - anchor2)
	} else {
		anchor2 := float64(addMonths(a.t, whole+1).UnixMilli())
		adjust = (bm - am) / (anchor2 - am)
	}
	return -(float64(whole) + adjust)
}

// localeWeek is the week of the year and its year in moment's default
// (en) locale: weeks start on Sunday and the week holding January 1st is
// week 1.
func localeWeek(t time.Time) (week, year int) {
	const dow, doy = 0, 6
	offset := func(y int) int {
		fwd := 7 + dow - doy
		fwdlw := (7 + int(time.Date(y, 1, fwd, 0, 0, 0, 0, time.UTC).Weekday()) - dow) % 7
		return -fwdlw + fwd - 1
	}
	weeksIn := func(y int) int {
		days := 365
		if daysIn(y, time.February) == 29 {
			days = 366
		}
		return (days - offset(y) + offset(y+1)) / 7
	}
	y := t.Year()
	w := int(math.Floor(float64(t.YearDay()-offset(y)-1)/7)) + 1
	switch {
	case w < 1:
		return w + weeksIn(y-1), y - 1
	case w > weeksIn(y):
		return w - weeksIn(y), y + 1
	}
	return w, y
}

var (
	localeTokenRe = regexp.MustCompile(`(\[[^\[]*\])|(\\)?(LTS|LT|LL?L?L?|l{1,4})`)
	formatTokenRe = regexp.MustCompile(`(\[[^\[]*\])|(\\)?([Hh]mm(ss)?|Mo|MM?M?M?|Do|DDDo|DD?D?D?|ddd?d?|do?|w[o|w]?|W[o|W]?|Qo?|YYYYYY|YYYYY|YYYY|YY|gg(ggg?)?|GG(GGG?)?|e|E|a|A|hh?|HH?|kk?|mm?|ss?|S{1,9}|x|X|zz?|ZZ?|.)`)
	localeFormats = map[string]string{
		"LT": "h:mm A", "LTS": "h:mm:ss A", "L": "MM/DD/YYYY", "LL": "MMMM D, YYYY",
		"LLL": "MMMM D, YYYY h:mm A", "LLLL": "dddd, MMMM D, YYYY h:mm A",
		"l": "M/D/YYYY", "ll": "MMM D, YYYY", "lll": "MMM D, YYYY h:mm A", "llll": "ddd, MMM D, YYYY h:mm A",
	}
	weekdayMin = []string{"Su", "Mo", "Tu", "We", "Th", "Fr", "Sa"}
)

func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}

func pad(n, width int) string {
	s := strconv.Itoa(abs(n))
	for len(s) < width {
		s = "0" + s
	}
	if n < 0 {
		return "-" + s
	}
	return s
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func offsetText(t time.Time, sep string) string {
	_, off := t.Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	return sign + pad(off/3600, 2) + sep + pad(off%3600/60, 2)
}

// format renders m with moment.js's format tokens; "" is moment's default
// format (ISO 8601 with the offset, or Z in utc mode).
func (m *moment) format(f string) string {
	if m.invalid {
		return "Invalid date"
	}
	if f == "" {
		f = "YYYY-MM-DDTHH:mm:ssZ"
		if m.utc {
			f = "YYYY-MM-DDTHH:mm:ss[Z]"
		}
	}
	for i := 0; i < 5 && localeTokenRe.MatchString(f); i++ {
		f = localeTokenRe.ReplaceAllStringFunc(f, func(tok string) string {
			if lf, ok := localeFormats[tok]; ok {
				return lf
			}
			return tok
		})
	}
	t := m.t
	var b strings.Builder
	for _, sm := range formatTokenRe.FindAllStringSubmatch(f, -1) {
		if sm[1] != "" {
			b.WriteString(sm[1][1 : len(sm[1])-1])
			continue
		}
		if sm[2] != "" {
			b.WriteString(sm[3])
			continue
		}
		b.WriteString(m.token(sm[3], t))
	}
	return b.String()
}

func (m *moment) token(tok string, t time.Time) string {
	h12 := t.Hour() % 12
	if h12 == 0 {
		h12 = 12
	}
	switch tok {
	case "YYYYYY":
		s := pad(abs(t.Year()), 6)
		if t.Year() < 0 {
			return "-" + s
		}
		return "+" + s
	case "YYYYY":
		return pad(t.Year(), 5)
	case "YYYY":
		if t.Year() > 9999 {
			return "+" + strconv.Itoa(t.Year())
		}
		return pad(t.Year(), 4)
	case "YY":
		return pad(abs(t.Year())%100, 2)
	case "Q":
		return strconv.Itoa((int(t.Month()) + 2) / 3)
	case "Qo":
		return ordinal((int(t.Month()) + 2) / 3)
	case "M":
		return strconv.Itoa(int(t.Month()))
	case "Mo":
		return ordinal(int(t.Month()))
	case "MM":
		return pad(int(t.Month()), 2)
	case "MMM":
		return t.Month().String()[:3]
	case "MMMM":
		return t.Month().String()
	case "D":
		return strconv.Itoa(t.Day())
	case "Do":
		return ordinal(t.Day())
	case "DD":
		return pad(t.Day(), 2)
	case "DDD":
		return strconv.Itoa(t.YearDay())
	case "DDDo":
		return ordinal(t.YearDay())
	case "DDDD":
		return pad(t.YearDay(), 3)
	case "d", "e":
		return strconv.Itoa(int(t.Weekday()))
	case "do":
		return ordinal(int(t.Weekday()))
	case "dd":
		return weekdayMin[t.Weekday()]
	case "ddd":
		return t.Weekday().String()[:3]
	case "dddd":
		return t.Weekday().String()
	case "E":
		return strconv.Itoa(isoWeekday(t))
	case "w", "ww", "wo":
		w, _ := localeWeek(t)
		switch tok {
		case "ww":
			return pad(w, 2)
		case "wo":
			return ordinal(w)
		}
		return strconv.Itoa(w)
	case "W", "WW", "Wo":
		_, w := t.ISOWeek()
		switch tok {
		case "WW":
			return pad(w, 2)
		case "Wo":
			return ordinal(w)
		}
		return strconv.Itoa(w)
	case "gg", "gggg", "ggggg":
		_, y := localeWeek(t)
		if tok == "gg" {
			return pad(y%100, 2)
		}
		return pad(y, len(tok))
	case "GG", "GGGG", "GGGGG":
		y, _ := t.ISOWeek()
		if tok == "GG" {
			return pad(y%100, 2)
		}
		return pad(y, len(tok))
	case "A":
		if t.Hour() < 12 {
			return "AM"
		}
		return "PM"
	case "a":
		if t.Hour() < 12 {
			return "am"
		}
		return "pm"
	case "H":
		return strconv.Itoa(t.Hour())
	case "HH":
		return pad(t.Hour(), 2)
	case "h":
		return strconv.Itoa(h12)
	case "hh":
		return pad(h12, 2)
	case "k":
		return strconv.Itoa(t.Hour() + 1)
	case "kk":
		return pad(t.Hour()+1, 2)
	case "hmm":
		return strconv.Itoa(h12) + pad(t.Minute(), 2)
	case "hmmss":
		return strconv.Itoa(h12) + pad(t.Minute(), 2) + pad(t.Second(), 2)
	case "Hmm":
		return strconv.Itoa(t.Hour()) + pad(t.Minute(), 2)
	case "Hmmss":
		return strconv.Itoa(t.Hour()) + pad(t.Minute(), 2) + pad(t.Second(), 2)
	case "m":
		return strconv.Itoa(t.Minute())
	case "mm":
		return pad(t.Minute(), 2)
	case "s":
		return strconv.Itoa(t.Second())
	case "ss":
		return pad(t.Second(), 2)
	case "Z":
		return offsetText(t, ":")
	case "ZZ":
		return offsetText(t, "")
	case "X":
		return strconv.FormatInt(int64(math.Floor(float64(t.UnixMilli())/1000)), 10)
	case "x":
		return strconv.FormatInt(t.UnixMilli(), 10)
	case "z", "zz":
		if m.utc {
			return "UTC"
		}
		return ""
	}
	if tok[0] == 'S' { // fractions of a second, as many digits as S's
		frac := pad(t.Nanosecond()/1e6, 3) + "000000"
		return frac[:len(tok)]
	}
	return tok
}

var isoRe = regexp.MustCompile(`^\s*([+-]\d{6}|\d{4})-?(\d\d)(?:-?(\d\d))?(?:[T ](\d\d)(?::?(\d\d)(?::?(\d\d)(?:[.,](\d+))?)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)?)?\s*$`)

// parseISO reads the ISO 8601 forms moment(string) reads; a time without
// an offset is in zone.
func parseISO(s string, zone *time.Location) (time.Time, bool) {
	m := isoRe.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	n := func(s string, def int) int {
		if s == "" {
			return def
		}
		v, _ := strconv.Atoi(s)
		return v
	}
	y, mo, d := n(m[1], 0), n(m[2], 1), n(m[3], 1)
	h, mi, sec := n(m[4], 0), n(m[5], 0), n(m[6], 0)
	ns := 0
	if m[7] != "" {
		ns = n((m[7] + "000000000")[:9], 0)
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, time.Month(mo)) || h > 24 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	loc := zone
	switch {
	case m[8] == "Z":
		loc = time.UTC
	case m[8] != "":
		off, _ := offsetMinutes(m[8])
		loc = time.FixedZone("", off*60)
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc), true
}

var parseTokenRe = regexp.MustCompile(`(\[[^\[]*\])|(YYYY|YY|MMMM|MMM|MM|M|DDDD|DD|Do|D|HH|H|hh|h|mm|m|ss|s|SSS|SS|S|ZZ|Z|X|x|A|a|.)`)

// parseWithFormat reads s laid out as moment format f (moment(s, f)), not
// strictly: separators need not match.
func parseWithFormat(s, f string, zone *time.Location) (time.Time, bool) {
	y, mo, d, h, mi, sec, ms := time.Now().In(zone).Year(), 1, 1, 0, 0, 0, 0
	var loc *time.Location
	pm := -1
	pos := 0
	digits := func(max int) (int, bool) {
		for pos < len(s) && (s[pos] < '0' || s[pos] > '9') && s[pos] != '-' {
			pos++
		}
		st := pos
		for pos < len(s) && pos-st < max && s[pos] >= '0' && s[pos] <= '9' {
			pos++
		}
		if st == pos {
			return 0, false
		}
		v, _ := strconv.Atoi(s[st:pos])
		return v, true
	}
	for _, sm := range parseTokenRe.FindAllStringSubmatch(f, -1) {
		tok := sm[2]
		if sm[1] != "" {
			pos += min(len(sm[1])-2, len(s)-pos)
			continue
		}
		var ok bool
		switch tok {
		case "YYYY":
			y, ok = digits(4)
		case "YY":
			y, ok = digits(2)
			if y < 69 {
				y += 2000
			} else {
				y += 1900
			}
		case "MM", "M":
			mo, ok = digits(2)
		case "MMM", "MMMM":
			for i := 1; i <= 12; i++ {
				name := time.Month(i).String()
				rest := strings.ToLower(s[pos:])
				if strings.HasPrefix(rest, strings.ToLower(name)) {
					mo, ok, pos = i, true, pos+len(name)
					break
				}
				if strings.HasPrefix(rest, strings.ToLower(name[:3])) {
					mo, ok, pos = i, true, pos+3
					break
				}
			}
		case "DD", "D", "Do":
			d, ok = digits(2)
			if tok == "Do" {
				for pos < len(s) && s[pos] >= 'a' && s[pos] <= 'z' {
					pos++
				}
			}
		case "HH", "H", "hh", "h":
			h, ok = digits(2)
		case "mm", "m":
			mi, ok = digits(2)
		case "ss", "s":
			sec, ok = digits(2)
		case "SSS", "SS", "S":
			ms, ok = digits(len(tok))
			for i := len(tok); i < 3; i++ {
				ms *= 10
			}
		case "Z", "ZZ":
			rest := s[pos:]
			if strings.HasPrefix(strings.TrimSpace(rest), "Z") {
				loc, ok, pos = time.UTC, true, pos+strings.Index(rest, "Z")+1
			} else if mm := regexp.MustCompile(`[+-]\d\d:?\d\d`).FindStringIndex(rest); mm != nil {
				off, _ := offsetMinutes(rest[mm[0]:mm[1]])
				loc, ok, pos = time.FixedZone("", off*60), true, pos+mm[1]
			}
		case "X", "x":
			st := pos
			for pos < len(s) && (s[pos] >= '0' && s[pos] <= '9' || s[pos] == '.' || s[pos] == '-') {
				pos++
			}
			v, err := strconv.ParseFloat(s[st:pos], 64)
			if err != nil {
				return time.Time{}, false
			}
			if tok == "X" {
				v *= 1000
			}
			return time.UnixMilli(int64(v)), true
		case "A", "a":
			rest := strings.ToLower(s[pos:])
			if strings.HasPrefix(strings.TrimSpace(rest), "pm") {
				pm, ok = 1, true
			} else if strings.HasPrefix(strings.TrimSpace(rest), "am") {
				pm, ok = 0, true
			}
			if ok {
				pos += strings.Index(rest, "m") + 1
			}
		default:
			if pos < len(s) && s[pos] == tok[0] {
				pos++
			}
			continue
		}
		if !ok {
			return time.Time{}, false
		}
	}
	if pm == 1 && h < 12 {
		h += 12
	} else if pm == 0 && h == 12 {
		h = 0
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, time.Month(mo)) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	if loc == nil {
		loc = zone
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ms*1e6, loc), true
}

package workflow

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureScopes runs wf with an operator "grab" that records the scope
// each task sees, by task path.
func captureScopes(t *testing.T, r *Runner, wf *Workflow) map[string]Scope {
	t.Helper()
	var mu sync.Mutex
	got := map[string]Scope{}
	r.Operators["grab"] = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		mu.Lock()
		defer mu.Unlock()
		got[tc.Instance] = tc.Scope.Clone()
		return nil, nil
	})
	_, err := r.Run(context.Background(), wf)
	require.NoError(t, err)
	return got
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04:05 -0700", s)
	require.NoError(t, err)
	return v.UTC()
}

// digdag-tests BuiltInVariablesIT: `digdag run -t "2016-01-02 03:04:05"` of
// a UTC workflow with schedule daily>: 07:00:00 sees these values.
func TestBuiltinsLikeBuiltInVariablesIT(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, "timezone: UTC\nschedule:\n  daily>: 07:00:00\n+get_variables:\n  +task_name:\n    grab>:\n")
	st, err := wf.ParseSessionTime("2016-01-02 03:04:05", time.Now(), r.RunsDir)
	require.NoError(t, err)
	r.SessionTime = st
	s := captureScopes(t, r, wf)["+test+get_variables+task_name"]
	want := map[string]string{
		"session_tz_offset":         "+0000",
		"session_time":              "2016-01-02T03:04:05+00:00",
		"session_id":                "1",
		"timezone":                  "UTC",
		"session_local_time":        "2016-01-02 03:04:05",
		"last_session_date":         "2016-01-02",
		"session_date_compact":      "20160102",
		"last_session_time":         "2016-01-02T00:00:00+00:00",
		"session_unixtime":          "1451703845",
		"last_session_date_compact": "20160102",
		"session_date":              "2016-01-02",
		"last_session_local_time":   "2016-01-02 00:00:00",
		"last_session_tz_offset":    "+0000",
		"next_session_date_compact": "20160103",
		"next_session_date":         "2016-01-03",
		"last_session_unixtime":     "1451692800",
		"next_session_time":         "2016-01-03T00:00:00+00:00",
		"next_session_local_time":   "2016-01-03 00:00:00",
		"next_session_tz_offset":    "+0000",
		"next_session_unixtime":     "1451779200",
		"task_name":                 "+test+get_variables+task_name",
		"attempt_id":                "1",
		"project_id":                "1",
		// first run: no earlier session (RuntimeParams' empty values)
		"last_executed_session_time":      "",
		"last_executed_session_unixtime":  "",
		"last_executed_session_tz_offset": "+0000",
	}
	for k, v := range want {
		assert.Equal(t, v, Format(s[k]), k)
	}
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, s["session_uuid"])
	assert.IsType(t, int64(0), s["session_id"], "session_id is an integer")
	assert.Nil(t, s["retry_attempt_name"])
	// exactly digdag's set: no built-in beyond RuntimeParams'
	assert.NotContains(t, s, "workflow_name")
	for _, n := range BuiltinNames(wf) {
		assert.Contains(t, s, n)
	}
}

// digdag docs, workflow_definition.rst "Using ${variables}": a Los Angeles
// session 2016-01-30, hourly and daily schedules.
func TestLastNextSessionLikeDocs(t *testing.T) {
	for _, c := range []struct{ sched, last, next string }{
		{"hourly>: '00:00'", "2016-01-29T23:00:00-08:00", "2016-01-30T01:00:00-08:00"},
		{"daily>: 07:00:00", "2016-01-29T00:00:00-08:00", "2016-01-31T00:00:00-08:00"},
	} {
		var out bytes.Buffer
		r := newRunner(t, &out)
		wf := parse(t, "timezone: America/Los_Angeles\nschedule:\n  "+c.sched+"\n+a:\n  grab>:\n")
		st, err := wf.ParseSessionTime("2016-01-30", time.Now(), r.RunsDir)
		require.NoError(t, err)
		r.SessionTime = st
		s := captureScopes(t, r, wf)["+test+a"]
		assert.Equal(t, "2016-01-30T00:00:00-08:00", s["session_time"])
		assert.Equal(t, int64(1454140800), s["session_unixtime"])
		assert.Equal(t, "-0800", s["session_tz_offset"])
		assert.Equal(t, c.last, s["last_session_time"], c.sched)
		assert.Equal(t, c.next, s["next_session_time"], c.sched)
		assert.Equal(t, "America/Los_Angeles", s["timezone"])
	}
}

// The case (digdag run's --session "yyyy-MM-dd" is read in the
// workflow's zone, Run.SESSION_TIME_ARG_PARSER.withZone): a Los Angeles
// workflow run for 2016-03-13 processes 2016-03-13, not the 12th.
func TestSessionTimeReadInWorkflowZone(t *testing.T) {
	wf := parse(t, "timezone: America/Los_Angeles\n+a:\n  echo>: x\n")
	st, err := wf.ParseSessionTime("2016-03-13", time.Now(), "")
	require.NoError(t, err)
	assert.Equal(t, "2016-03-13T00:00:00-08:00", st.In(wf.Location()).Format(fmtSessionTime))
	st, err = wf.ParseSessionTime("2016-03-13 12:00:00", time.Now(), "")
	require.NoError(t, err)
	assert.Equal(t, "2016-03-13T12:00:00-07:00", st.In(wf.Location()).Format(fmtSessionTime), "after the DST switch")
	st, err = wf.ParseSessionTime("2016-03-13T00:00:00+09:00", time.Now(), "")
	require.NoError(t, err)
	assert.Equal(t, "2016-03-12T07:00:00-08:00", st.In(wf.Location()).Format(fmtSessionTime), "RFC 3339 keeps its offset")
	_, err = wf.ParseSessionTime("13/03/2016", time.Now(), "")
	assert.ErrorContains(t, err, `--session-time "13/03/2016": use "yyyy-MM-dd" or "yyyy-MM-dd HH:mm:ss"`)

	// digdag run's default without a schedule: today's midnight in the zone
	now := mustTime(t, "2016-03-13 05:20:00 +0000") // 2016-03-12 21:20 in LA
	assert.Equal(t, "2016-03-12T00:00:00-08:00", wf.DefaultSessionTime(now).In(wf.Location()).Format(fmtSessionTime))
	// with one: the schedule's last session time at now (Run.parseSessionTime "last")
	wf = parse(t, "timezone: Asia/Tokyo\nschedule:\n  hourly>: '30:00'\n+a:\n  echo>: x\n")
	assert.Equal(t, "2016-03-13T14:00:00+09:00", wf.DefaultSessionTime(now).In(wf.Location()).Format(fmtSessionTime))
	st, err = wf.ParseSessionTime("daily", now, "")
	require.NoError(t, err)
	assert.Equal(t, "2016-03-13T00:00:00+09:00", st.In(wf.Location()).Format(fmtSessionTime))
	_, err = parse(t, "+a:\n  echo>: x\n").ParseSessionTime("schedule", now, "")
	assert.ErrorContains(t, err, "--session schedule is set but schedule is not set to this workflow")
}

// java.time's ZoneId.of, which digdag's `timezone:` goes through.
func TestTimezoneForms(t *testing.T) {
	for in, want := range map[string]string{
		"Asia/Tokyo": "Asia/Tokyo", "UTC": "UTC", "+09:00": "+09:00", "+9": "+09:00", "-0830": "-08:30",
		"+00:00": "Z", "Z": "Z", "UTC+9": "UTC+09:00", "GMT": "GMT",
	} {
		wf, err := Parse("t.dig", []byte("timezone: '"+in+"'\n+a:\n  grab>:\n"))
		require.NoError(t, err, in)
		assert.Equal(t, want, wf.ZoneName(), in)
	}
	wf := parse(t, "timezone: '+09:00'\n+a:\n  echo>: x\n")
	st, err := wf.ParseSessionTime("2016-01-30", time.Now(), "")
	require.NoError(t, err)
	assert.Equal(t, "2016-01-30T00:00:00+09:00", st.In(wf.Location()).Format(fmtSessionTime))
	for _, bad := range []string{"Mars/Olympus", "Local", "", "+19:00", "asia/tokyo", "JST+9"} {
		_, err := Parse("t.dig", []byte("timezone: '"+bad+"'\n+a:\n  echo>: x\n"))
		assert.ErrorContains(t, err, "t.dig:1: timezone: unknown time zone name", bad)
	}
}

// digdag-standards scheduler tests and factories: each scheduler's
// messages, and the session times they give.
func TestScheduleParsing(t *testing.T) {
	bad := map[string]string{
		"daily>: '7:00'":                        "daily> scheduler requires hh:mm:ss format: 7:00",
		"daily>: 'aa:00:00'":                    "daily> scheduler requires hh:mm:ss format: aa:00:00",
		"hourly>: '10'":                         "hourly>: scheduler requires mm:ss format: 10",
		"weekly>: 'Sun'":                        "weekly>: scheduler requires day,hh:mm:ss format: Sun",
		"weekly>: 'Xyz,09:00:00'":               "weekly>: scheduler requires day,hh:mm:ss format: Xyz,09:00:00",
		"weekly>: '-1,09:00:00'":                "weekly>: invalid day: -1",
		"monthly>: 'x,09:00:00'":                "monthly>: scheduler requires day,hh:mm:ss format: x,09:00:00",
		"minutes_interval>: 'often'":            "minutes_interval>: expected a positive whole number of minutes",
		"cron>: '61 * * * *'":                   "cron>: invalid pattern \"61 * * * *\": error parsing minutes field",
		"cron>: '* * *'":                        "a cron pattern has 5 fields",
		"cron>: '0 0 31 2 *'":                   "never matches",
		"yearly>: x":                            "Unknown scheduler type: yearly",
		"at: 07:00:00":                          "requires 'type>: at' parameter",
		"{daily>: 07:00:00, delya: 1}":          "parameter delya is not used by daily>",
		"{cron>: '0 * * * *', delays: 1}":       "parameter delays is not used by cron> (did you mean delay?)",
		"{daily>: 07:00:00, start: 2016-02-30}": "Invalid start: 2016-02-30",
		"{daily>: 07:00:00, start: 2016-03-02, end: 2016-03-01}": "The schedule of end is earlier than start",
	}
	for sched, msg := range bad {
		_, err := Parse("s.dig", []byte("schedule:\n  "+sched+"\n+a:\n  echo>: x\n"))
		assert.ErrorContains(t, err, msg, sched)
	}
	at := mustTime(t, "2019-02-24 14:20:10 +0900")
	// scheduling_workflow.rst "Schedule Examples" (system clock 2019-02-24
	// 14:20:10 +0900): the first session times; ours are the sessions
	// after the last one before now.
	for sched, first := range map[string]string{
		"hourly>: '32:32'":        "2019-02-24 15:00:00 +0900", // 14:00 has begun: its session is the last
		"daily>: '10:32:32'":      "2019-02-25 00:00:00 +0900",
		"weekly>: '2,10:32:32'":   "2019-02-26 00:00:00 +0900",
		"monthly>: '2,10:32:32'":  "2019-03-02 00:00:00 +0900",
		"cron>: '42 4 1 * *'":     "2019-03-01 04:42:00 +0900",
		"minutes_interval>: 45":   "2019-02-24 14:45:00 +0900",
		"weekly>: 'Sun,09:00:00'": "2019-03-03 00:00:00 +0900",
	} {
		wf, err := Parse("s.dig", []byte("timezone: Asia/Tokyo\nschedule:\n  "+sched+"\n+a:\n  echo>: x\n"))
		require.NoError(t, err, sched)
		assert.Equal(t, mustTime(t, first), wf.Schedule.Next(at), sched)
	}
}

// DailySchedulerTest.firstScheduleTimeDst and CronSchedulerTest: sessions
// across a DST switch and cron4j's day-of-month AND day-of-week.
func TestScheduleTimes(t *testing.T) {
	wf := parse(t, "timezone: America/Los_Angeles\nschedule:\n  daily>: 10:00:00\n+a:\n  echo>: x\n")
	s := wf.Schedule
	assert.Equal(t, mustTime(t, "2016-03-13 00:00:00 -0800"), s.Last(mustTime(t, "2016-03-14 00:00:00 -0700")))
	assert.Equal(t, mustTime(t, "2016-03-14 00:00:00 -0700"), s.Next(mustTime(t, "2016-03-13 00:00:00 -0800")))
	assert.Equal(t, mustTime(t, "2016-03-13 00:00:00 -0800"), s.Last(mustTime(t, "2016-03-13 16:31:03 -0700")))

	// cron4j matches day of month AND day of week: Friday the 13th
	// (Vixie cron would also fire on every 13th and every Friday)
	wf = parse(t, "schedule:\n  cron>: '0 0 13 * fri'\n+a:\n  echo>: x\n")
	assert.Equal(t, mustTime(t, "2016-05-13 00:00:00 +0000"), wf.Schedule.Next(mustTime(t, "2016-01-01 00:00:00 +0000")))
	// L, lists, steps, wrapping ranges and |
	wf = parse(t, "schedule:\n  cron>: '30 22-1/2 L * *|0 12 1 jan *'\n+a:\n  echo>: x\n")
	assert.Equal(t, mustTime(t, "2016-01-01 12:00:00 +0000"), wf.Schedule.Next(mustTime(t, "2015-12-31 23:00:00 +0000")))
	assert.Equal(t, mustTime(t, "2016-01-31 00:30:00 +0000"), wf.Schedule.Next(mustTime(t, "2016-01-01 12:00:00 +0000")), "22-1/2 is 22 and 0")
	assert.Equal(t, mustTime(t, "2016-01-31 22:30:00 +0000"), wf.Schedule.Next(mustTime(t, "2016-01-31 00:30:00 +0000")))
	assert.Equal(t, mustTime(t, "2016-01-31 00:30:00 +0000"), wf.Schedule.Last(mustTime(t, "2016-01-31 22:30:00 +0000")))

	// start:/end: (ScheduleConfigHelper): next sessions begin at start and
	// end after the end day; 9999-01-01 is digdag's "no next session"
	wf = parse(t, "schedule:\n  daily>: 01:00:00\n  start: 2016-02-01\n  end: 2016-02-03\n+a:\n  echo>: x\n")
	assert.Equal(t, mustTime(t, "2016-02-01 00:00:00 +0000"), wf.Schedule.Next(mustTime(t, "2016-01-01 00:00:00 +0000")))
	assert.Equal(t, mustTime(t, "2016-02-03 00:00:00 +0000"), wf.Schedule.Next(mustTime(t, "2016-02-02 00:00:00 +0000")))
	assert.Equal(t, scheduleEnd, wf.Schedule.Next(mustTime(t, "2016-02-03 00:00:00 +0000")))
}

// RuntimeParamsIT.testParamWithoutSchedule: -p cannot replace a built-in
// (digdag silently keeps its own; tdctl refuses), and neither can _export.
func TestBuiltinsCannotBeOverwritten(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Params = map[string]any{"session_time": "2010-02-02T11:22:33+00:00"}
	_, err := r.Run(context.Background(), parse(t, "+a:\n  echo>: x\n"))
	assert.ErrorContains(t, err, "-p sets session_time, a built-in param digdag sets for every task (it cannot be overwritten)")

	// RuntimeParamsIT.testParamWithoutSchedule: with no schedule,
	// last_session_time and next_session_time come from -p, with their
	// derived forms; with a schedule they are built-ins
	r.Params = map[string]any{"last_session_time": "2010-01-01T11:22:33+00:00", "next_session_time": "2010-03-03T11:22:33+00:00"}
	s := captureScopes(t, r, parse(t, "+a:\n  grab>: ${last_session_date} ${next_session_unixtime}\n"))["+test+a"]
	assert.Equal(t, "2010-01-01T11:22:33+00:00", s["last_session_time"])
	assert.Equal(t, "2010-01-01", s["last_session_date"])
	assert.Equal(t, "2010-03-03T11:22:33+00:00", s["next_session_time"])
	assert.Equal(t, int64(1267615353), s["next_session_unixtime"])
	_, err = r.Run(context.Background(), parse(t, "schedule:\n  daily>: 01:00:00\n+a:\n  echo>: x\n"))
	assert.ErrorContains(t, err, "-p sets last_session_time, a built-in param")

	_, err = Parse("e.dig", []byte("_export:\n  task_name: x\n+a:\n  echo>: x\n"))
	assert.ErrorContains(t, err, "e.dig:2: _export sets task_name, a built-in param")
	// nor can a task store one (a sh> ::set-param, a param_get>)
	r.Params = nil
	_, err = r.Run(context.Background(), parse(t, "+a:\n  set>: {session_date: x}\n"))
	assert.ErrorContains(t, err, "set> sets session_date, a built-in param")
	// a name that only looks like one is fine
	r.Params = map[string]any{"session_name": "x"}
	_, err = r.Run(context.Background(), parse(t, "+a:\n  echo>: ${session_name}\n"))
	assert.NoError(t, err)
}

// last_executed_session_* comes from this workflow's earlier runs; a new
// attempt of the same session keeps session_id and session_uuid.
func TestLastExecutedSessionFromHistory(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	src := "timezone: Asia/Tokyo\n+a:\n  grab>:\n"
	wf := parse(t, src)
	r.SessionTime = mustTime(t, "2016-01-30 00:00:00 +0900")
	first := captureScopes(t, r, wf)["+test+a"]
	assert.Equal(t, "", first["last_executed_session_time"])
	assert.Equal(t, "+0900", first["last_executed_session_tz_offset"])

	second := captureScopes(t, r, wf)["+test+a"] // a new attempt of that session
	assert.Equal(t, "2016-01-30T00:00:00+09:00", second["last_executed_session_time"])
	assert.Equal(t, int64(1454079600), second["last_executed_session_unixtime"])
	assert.Equal(t, first["session_id"], second["session_id"])
	assert.Equal(t, first["session_uuid"], second["session_uuid"])
	assert.Equal(t, int64(2), second["attempt_id"])

	r.SessionTime = mustTime(t, "2016-01-31 00:00:00 +0900")
	third := captureScopes(t, r, wf)["+test+a"]
	assert.Equal(t, "2016-01-30", third["last_executed_session_date"])
	assert.Equal(t, int64(3), third["session_id"], "a new session")
	assert.NotEqual(t, first["session_uuid"], third["session_uuid"])

	// --session-time last: the session of the latest run
	st, err := wf.ParseSessionTime("last", time.Now(), r.RunsDir)
	require.NoError(t, err)
	assert.Equal(t, mustTime(t, "2016-01-31 00:00:00 +0900"), st.UTC())

	// another workflow's runs are not this one's
	other, err := Parse("other.dig", []byte(src))
	require.NoError(t, err)
	assert.Equal(t, "", captureScopes(t, r, other)["+other+a"]["last_executed_session_time"])
}

// ForEachOperatorFactory.buildTaskName: +loop^sub+for-0=key=0=value, and
// _error tasks as ^error.
func TestTaskNamesLikeDigdag(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	wf := parse(t, `
+parent:
  +child_task0:
    grab>:
+loop:
  for_each>:
    fruit: [apple, "big banana"]
    n: [1]
  _do:
    +show:
      grab>:
`)
	got := captureScopes(t, r, wf)
	for path, want := range map[string]string{
		"+test+parent+child_task0":                             "+test+parent+child_task0",
		"+test+loop^sub+for-0=fruit=0=apple&1=n=0=1+show":      "+test+loop^sub+for-0=fruit=0=apple&1=n=0=1+show",
		"+test+loop^sub+for-0=fruit=1=big%20bana&1=n=0=1+show": "+test+loop^sub+for-0=fruit=1=big%20bana&1=n=0=1+show",
	} {
		require.Contains(t, got, path)
		assert.Equal(t, want, got[path]["task_name"])
	}
}

func TestCronNext(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	for _, c := range []struct {
		pattern string
		loc     *time.Location
		want    time.Time
	}{
		{"0 * * * *", time.UTC, time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)},
		{"@daily", time.UTC, time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)},
		{"@hourly", time.UTC, time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)},
		{"@monthly", time.UTC, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"0 0 * * *", tokyo, time.Date(2024, 5, 1, 15, 0, 0, 0, time.UTC)},
	} {
		got, err := CronNext(c.pattern, c.loc, at)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("CronNext(%q, %s) = %v, %v; want %v", c.pattern, c.loc, got, err, c.want)
		}
	}
	if _, err := CronNext("61 * * * *", time.UTC, at); err == nil {
		t.Error("minute 61 accepted")
	}
}

// A region zone is read from the zone files once: ${...} asks for the
// params' timezone at every expression, and time.LoadLocation opens and
// parses the zone file on every call (it made JavaScript in a 1000-task
// for_each> twice as slow as dotted names).
func TestParseZoneLoadsARegionOnce(t *testing.T) {
	a, _, err := ParseZone("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := ParseZone("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("Asia/Tokyo was loaded twice")
	}
	if _, _, err := ParseZone("Asia/Nowhere"); err == nil {
		t.Fatal("an unknown region was accepted")
	}
	if _, ok := zones.Load("Asia/Nowhere"); ok {
		t.Fatal("an unknown region was kept")
	}
}

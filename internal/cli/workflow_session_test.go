package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// digdag run's --session "yyyy-MM-dd" is read in the workflow's timezone
// (digdag-cli Run: SESSION_TIME_ARG_PARSER.withZone(timeZone)): a Los
// Angeles workflow run for 2016-03-13 processes 2016-03-13 (it processed
// the 12th when the date was read as UTC).
func TestWorkflowSessionTimeInWorkflowZone(t *testing.T) {
	e, _, _ := wfEnv(t)
	dig := filepath.Join(t.TempDir(), "la.dig")
	require.NoError(t, os.WriteFile(dig, []byte("timezone: America/Los_Angeles\n+show:\n  echo>: ${session_date} ${session_time}\n"), 0o644))
	r := e.run("workflow", "run", dig, "--session-time", "2016-03-13")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "+la+show: 2016-03-13 2016-03-13T00:00:00-08:00\n")

	r = e.run("workflow", "run", dig, "--session-time", "2016-03-13 12:00:00")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "+la+show: 2016-03-13 2016-03-13T12:00:00-07:00\n")

	// an unknown zone is an error before anything runs, never UTC
	require.NoError(t, os.WriteFile(dig, []byte("timezone: America/Los_Angles\n+show:\n  echo>: ${session_date}\n"), 0o644))
	r = e.run("workflow", "run", dig, "--session-time", "2016-03-13")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `la.dig:1: timezone: unknown time zone name "America/Los_Angles"`)
	assert.NotContains(t, r.stdout, "2016-03-13")
}

// digdag-tests BuiltInVariablesIT (and its built_in_variables.dig, in our
// words): `run -t "2016-01-02 03:04:05"` of a UTC workflow scheduled
// daily>: 07:00:00 prints digdag's values.
func TestWorkflowBuiltInVariablesIT(t *testing.T) {
	e, _, _ := wfEnv(t)
	dig := filepath.Join(t.TempDir(), "built_in_variables.dig")
	names := []string{"timezone", "session_id", "session_time", "session_date", "session_date_compact",
		"session_local_time", "session_tz_offset", "session_unixtime", "last_session_time", "last_session_date",
		"last_session_date_compact", "last_session_local_time", "last_session_tz_offset", "last_session_unixtime",
		"next_session_time", "next_session_date", "next_session_date_compact", "next_session_local_time",
		"next_session_tz_offset", "next_session_unixtime", "task_name", "attempt_id"}
	src := "timezone: UTC\nschedule:\n  daily>: 07:00:00\n+get_variables:\n"
	for _, n := range names {
		src += "  +" + n + ":\n    echo>: \"" + n + ": ${" + n + "}\"\n"
	}
	require.NoError(t, os.WriteFile(dig, []byte(src), 0o644))
	r := e.run("workflow", "run", dig, "-t", "2016-01-02 03:04:05") // digdag run's -t
	require.Equal(t, 0, r.code, r.stderr)
	for _, line := range []string{
		"session_tz_offset: +0000", "session_time: 2016-01-02T03:04:05+00:00", "session_id: 1", "timezone: UTC",
		"session_local_time: 2016-01-02 03:04:05", "last_session_date: 2016-01-02", "session_date_compact: 20160102",
		"last_session_time: 2016-01-02T00:00:00+00:00", "session_unixtime: 1451703845",
		"last_session_date_compact: 20160102", "session_date: 2016-01-02", "last_session_local_time: 2016-01-02 00:00:00",
		"last_session_tz_offset: +0000", "next_session_date_compact: 20160103", "next_session_date: 2016-01-03",
		"last_session_unixtime: 1451692800", "next_session_time: 2016-01-03T00:00:00+00:00",
		"next_session_local_time: 2016-01-03 00:00:00", "next_session_tz_offset: +0000",
		"next_session_unixtime: 1451779200", "task_name: +built_in_variables+get_variables+task_name", "attempt_id: 1",
	} {
		assert.Contains(t, r.stdout, line+"\n")
	}
}

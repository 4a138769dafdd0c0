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

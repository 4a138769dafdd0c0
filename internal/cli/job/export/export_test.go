package export

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/td"
)

// parse runs argv through the command with a runF that captures options.
func parse(t *testing.T, argv ...string) (*ExportOptions, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	var got *ExportOptions
	cmd := NewCmdExport(factory.New(ios), func(o *ExportOptions) error { got = o; return nil })
	cmd.SetArgs(argv)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	_, err := cmd.ExecuteC()
	return got, err
}

func TestFlagPairing(t *testing.T) {
	dir := t.TempDir()
	sf := filepath.Join(dir, "s.json")
	require.NoError(t, os.WriteFile(sf, []byte(`{"path":"/from-file/"}`), 0o600))
	o, err := parse(t, "--job-id", "12",
		"--result-url", "td://@/db/a",
		"--connection", "my_s3", "--settings", `{"bucket":"b"}`,
		"--result-url", "postgresql://u:pw@h/db/t",
		"--connection", "42", "--settings", "@"+sf,
		"--connection", "bare",
		"--wait", "--timeout", "5m", "--kill-on-interrupt")
	require.NoError(t, err)
	assert.Equal(t, "12", o.JobID)
	assert.True(t, o.DoWait)
	assert.True(t, o.Wait.KillOnInterrupt)
	require.Len(t, o.Targets, 5)
	assert.Equal(t, td.ExportTarget{ResultURL: "td://@/db/a"}, o.Targets[0])
	assert.Equal(t, &td.ConnectionTarget{Name: "my_s3", Settings: map[string]any{"bucket": "b"}}, o.Targets[1].Connection)
	assert.Equal(t, "postgresql://u:pw@h/db/t", o.Targets[2].ResultURL)
	assert.Equal(t, &td.ConnectionTarget{ID: 42, Settings: map[string]any{"path": "/from-file/"}}, o.Targets[3].Connection)
	assert.Equal(t, &td.ConnectionTarget{Name: "bare", Settings: map[string]any{}}, o.Targets[4].Connection)
}

func TestJobIDAsArgument(t *testing.T) {
	o, err := parse(t, "77", "--result-url", "td://@/db/a")
	require.NoError(t, err)
	assert.Equal(t, "77", o.JobID)
	assert.False(t, o.DoWait)
}

func TestFlagErrors(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"--result-url", "td://@/db/a"}, "pass --job-id"},
		{[]string{"--job-id", "1"}, "no destination"},
		{[]string{"--job-id", "abc", "--result-url", "td://@/db/a"}, "invalid job id"},
		{[]string{"1", "--job-id", "2", "--result-url", "td://@/db/a"}, "two job ids"},
		{[]string{"--job-id", "1", "--settings", "{}"}, "must follow the --connection"},
		{[]string{"--job-id", "1", "--result-url", "td://@/db/a", "--settings", "{}"}, "must follow the --connection"},
		{[]string{"--job-id", "1", "--connection", "c", "--settings", "{}", "--settings", "{}"}, "second --settings"},
		{[]string{"--job-id", "1", "--connection", "c", "--settings", "[1]"}, "JSON object"},
		{[]string{"--job-id", "1", "--connection", "c", "--settings", "@/nonexistent.json"}, "reading settings"},
		{[]string{"--job-id", "1", "--result-url", "not-a-url"}, "not a result URL"},
		{[]string{"--job-id", "1", "--connection", "-3"}, "must be positive"},
		{[]string{"--job-id", "1", "--result-url", "td://@/db/a", "--timeout", "-1s"}, "--timeout"},
	}
	for _, c := range cases {
		_, err := parse(t, c.argv...)
		require.Error(t, err, c.argv)
		assert.Contains(t, err.Error(), c.want, c.argv)
	}
}

func TestURLPasswordNotInErrors(t *testing.T) {
	_, err := parse(t, "--job-id", "1", "--result-url", "mysql//user:hunter2@h/db/t")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

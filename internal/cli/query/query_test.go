package query

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
)

func parse(t *testing.T, stdin string, argv ...string) (*QueryOptions, error) {
	t.Helper()
	ios, in, _, _ := iostreams.Test()
	in.WriteString(stdin)
	var got *QueryOptions
	cmd := NewCmdQuery(factory.New(ios), func(o *QueryOptions) error { got = o; return nil })
	cmd.SetArgs(argv)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	_, err := cmd.ExecuteC()
	return got, err
}

func TestRubyFlags(t *testing.T) {
	o, err := parse(t, "", "-d", "db", "-T", "hive", "-w", "-P", "-1", "-R", "3", "-r", "td://@/db/t",
		"--domain-key", "k1", "--engine-version", "stable", "--pool", "p", "-o", "out.csv", "-f", "csv", "-c", "SELECT 1")
	require.NoError(t, err)
	assert.Equal(t, "db", o.Database)
	assert.Equal(t, "hive", o.Type)
	assert.True(t, o.DoWait)
	require.NotNil(t, o.Priority)
	assert.Equal(t, -1, *o.Priority, "negative priorities are kept")
	require.NotNil(t, o.RetryLimit)
	assert.Equal(t, 3, *o.RetryLimit)
	assert.Equal(t, "td://@/db/t", o.ResultURL)
	assert.Equal(t, "k1", o.DomainKey)
	assert.Equal(t, "stable", o.EngineVersion)
	assert.Equal(t, "p", o.Pool)
	assert.Equal(t, "out.csv", o.Result.File)
	assert.Equal(t, "csv", o.Result.Format)
	assert.True(t, o.Result.ColumnHeader)
	assert.Equal(t, "SELECT 1", o.SQL)
}

func TestDefaultsAndStdin(t *testing.T) {
	o, err := parse(t, "SELECT 2\n", "-d", "db", "-")
	require.NoError(t, err)
	assert.Equal(t, "SELECT 2\n", o.SQL)
	assert.Equal(t, "presto", o.Type)
	assert.Nil(t, o.Priority, "no -P leaves the server default")
	assert.Nil(t, o.RetryLimit)
	assert.False(t, o.DoWait)
}

func TestResultFlagsImplyWait(t *testing.T) {
	o, err := parse(t, "", "-d", "db", "-o", "x.tsv", "SELECT 1")
	require.NoError(t, err)
	assert.True(t, o.DoWait)
}

func TestPriorityNames(t *testing.T) {
	for name, want := range map[string]int{"VERY LOW": -2, "low": -1, "NORMAL": 0, "high": 1, "very-high": 2, "2": 2} {
		o, err := parse(t, "", "-d", "db", "-P", name, "SELECT 1")
		require.NoError(t, err, name)
		assert.Equal(t, want, *o.Priority, name)
	}
}

func TestQueryFlagErrors(t *testing.T) {
	cases := []struct {
		stdin string
		argv  []string
		want  string
	}{
		{"", []string{"-d", "db"}, "give the SQL"},
		{"  \n", []string{"-d", "db", "-"}, "query is empty"},
		{"", []string{"-d", "db", "-T", "spark", "SELECT 1"}, "invalid -T"},
		{"", []string{"-d", "db", "-P", "3", "SELECT 1"}, "invalid -P"},
		{"", []string{"-d", "db", "-R", "-1", "SELECT 1"}, "invalid -R"},
		{"", []string{"-d", "db", "-f", "xml", "SELECT 1"}, "invalid --format"},
		{"", []string{"-d", "db", "-f", "msgpack", "SELECT 1"}, "use msgpack.gz"},
	}
	for _, c := range cases {
		_, err := parse(t, c.stdin, c.argv...)
		require.Error(t, err, c.argv)
		assert.Contains(t, err.Error(), c.want, c.argv)
	}
}

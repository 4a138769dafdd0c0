package paramcmd

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/paramstore"
)

// captured holds the options a command would have run with.
type captured struct {
	get *GetOptions
	set *SetOptions
	del *DeleteOptions
	lst *ListOptions
	exp *ExportOptions
	imp *ImportOptions
}

// parse runs `param ARGV...` with every run function replaced: argv →
// options, nothing opened.
func parse(t *testing.T, env map[string]string, stdin string, argv ...string) (*captured, error) {
	t.Helper()
	ios, in, _, _ := iostreams.Test()
	in.WriteString(stdin)
	f := factory.New(ios)
	f.Getenv = func(k string) string { return env[k] }
	f.HomeDir = t.TempDir()
	c := &captured{}
	cmd := newCmdParam(f, runFuncs{
		get:    func(o *GetOptions) error { c.get = o; return nil },
		set:    func(o *SetOptions) error { c.set = o; return nil },
		delete: func(o *DeleteOptions) error { c.del = o; return nil },
		list:   func(o *ListOptions) error { c.lst = o; return nil },
		export: func(o *ExportOptions) error { c.exp = o; return nil },
		imp:    func(o *ImportOptions) error { c.imp = o; return nil },
	})
	root := &cobra.Command{Use: "tdctl", SilenceErrors: true, SilenceUsage: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmdutil.NewFlagError(err) })
	root.AddCommand(cmd)
	root.SetArgs(append([]string{"param"}, argv...))
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetIn(ios.In)
	_, err := root.ExecuteContextC(context.Background())
	return c, err
}

const pgURL = "postgres://u:pw@db/x"

func TestStoreAndSiteResolution(t *testing.T) {
	def, err := paramstore.DefaultURL()
	require.NoError(t, err)

	// defaults: the embedded SQLite file, site 0
	c, err := parse(t, nil, "", "get", "k")
	require.NoError(t, err)
	assert.Equal(t, def, c.get.Store.URL)
	assert.Equal(t, int32(0), c.get.Store.Site)
	assert.NotNil(t, c.get.Store.Open)

	// environment
	env := map[string]string{EnvStore: pgURL, EnvSite: "42"}
	c, err = parse(t, env, "", "get", "k")
	require.NoError(t, err)
	assert.Equal(t, pgURL, c.get.Store.URL)
	assert.Equal(t, int32(42), c.get.Store.Site)
	assert.Equal(t, "postgres://u:xxxxx@db/x", c.get.Store.Redacted())

	// flags beat the environment, before or after the subcommand
	c, err = parse(t, env, "", "--store", "redis://r:6379/1", "get", "k", "--site", "0")
	require.NoError(t, err)
	assert.Equal(t, "redis://r:6379/1", c.get.Store.URL)
	assert.Equal(t, int32(0), c.get.Store.Site, "--site 0 given explicitly wins over TDCTL_SITE")
	c, err = parse(t, env, "", "list", "--site=-3")
	require.NoError(t, err)
	assert.Equal(t, int32(-3), c.lst.Store.Site)
	assert.Equal(t, pgURL, c.lst.Store.URL)

	_, err = parse(t, map[string]string{EnvSite: "one"}, "", "get", "k")
	var ce *cmdutil.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), `TDCTL_SITE="one" is not a site id`)
	_, err = parse(t, map[string]string{EnvSite: "4294967296"}, "", "get", "k")
	require.ErrorAs(t, err, &ce)

	_, err = parse(t, nil, "", "get", "k", "--store", "")
	var fe *cmdutil.FlagError
	require.ErrorAs(t, err, &fe)
	assert.Contains(t, err.Error(), "--store is empty")
	_, err = parse(t, nil, "", "get", "k", "--site", "x")
	require.ErrorAs(t, err, &fe)
}

func TestGetArgs(t *testing.T) {
	c, err := parse(t, nil, "", "get", "last_time")
	require.NoError(t, err)
	assert.Equal(t, "last_time", c.get.Key)
	assert.Equal(t, output.FormatAuto, c.get.Format)

	c, err = parse(t, nil, "", "get", "k", "-o", "json")
	require.NoError(t, err)
	assert.Equal(t, output.FormatJSON, c.get.Format)

	for _, argv := range [][]string{
		{"get"}, {"get", "a", "b"}, {"get", "k", "-o", "table"}, {"get", ""}, {"get", "a\x00b"},
	} {
		_, err := parse(t, nil, "", argv...)
		require.Error(t, err, argv)
		var se *StoreError
		assert.False(t, errors.As(err, &se), "%v: a usage error, not a store error: %v", argv, err)
	}
	_, err = parse(t, nil, "", "get", "")
	assert.Contains(t, err.Error(), `KEY "": the key is empty`)
}

func TestSetArgs(t *testing.T) {
	cases := []struct {
		argv  []string
		stdin string
		want  string // the stored JSON
	}{
		{[]string{"set", "k", "hello"}, "", `"hello"`},
		{[]string{"set", "k", "42"}, "", `42`},
		{[]string{"set", "k", "1.50"}, "", `1.50`},
		{[]string{"set", "k", "true"}, "", `true`},
		{[]string{"set", "k", "null"}, "", `null`},
		{[]string{"set", "k", ` {"a": [1, 2]} `}, "", `{"a": [1, 2]}`},
		{[]string{"set", "k", `"quoted"`}, "", `"quoted"`},
		{[]string{"set", "k", "007"}, "", `"007"`},     // not JSON: a string
		{[]string{"set", "k", "{oops"}, "", `"{oops"`}, // not JSON: a string
		{[]string{"set", "k", ""}, "", `""`},
		{[]string{"set", "k", "42", "--string"}, "", `"42"`},
		{[]string{"set", "k", `{"a":1}`, "--string"}, "", `"{\"a\":1}"`},
		{[]string{"set", "k", "-"}, "[1,2]\n", `[1,2]`},
		{[]string{"set", "k", "-"}, "two\nlines\r\n", `"two\nlines"`},
		{[]string{"set", "k", "-", "--string"}, "7\n", `"7"`},
		{[]string{"set", "k", "-"}, "", `""`},
	}
	for _, tc := range cases {
		c, err := parse(t, nil, tc.stdin, tc.argv...)
		require.NoError(t, err, tc.argv)
		assert.Equal(t, "k", c.set.Key)
		assert.Equal(t, tc.want, string(c.set.Value), "%q stdin %q", tc.argv, tc.stdin)
		assert.True(t, json.Valid(c.set.Value))
		assert.Zero(t, c.set.TTL)
	}

	c, err := parse(t, nil, "", "set", "k", "v", "--ttl", "24h")
	require.NoError(t, err)
	assert.Equal(t, 24*time.Hour, c.set.TTL)

	for _, argv := range [][]string{
		{"set", "k"}, {"set", "k", "v", "w"}, {"set", "k", "v", "--ttl", "0"}, {"set", "k", "v", "--ttl", "-1h"},
		{"set", "k", "v", "--ttl", "soon"}, {"set", "", "v"},
	} {
		_, err := parse(t, nil, "", argv...)
		require.Error(t, err, argv)
	}
	_, err = parse(t, nil, "", "set", "k", "v", "--ttl", "0")
	assert.Contains(t, err.Error(), "--ttl 0s: give a positive duration")
}

func TestDeleteListExportImportArgs(t *testing.T) {
	c, err := parse(t, nil, "", "delete", "k")
	require.NoError(t, err)
	assert.Equal(t, "k", c.del.Key)
	assert.False(t, c.del.IgnoreMissing)
	c, err = parse(t, nil, "", "rm", "k", "--ignore-missing")
	require.NoError(t, err)
	assert.True(t, c.del.IgnoreMissing)

	c, err = parse(t, nil, "", "list")
	require.NoError(t, err)
	assert.Equal(t, "", c.lst.Prefix)
	assert.Equal(t, 0, c.lst.Limit, "all by default")
	c, err = parse(t, nil, "", "ls", "daily.", "--limit", "5", "-o", "jsonl")
	require.NoError(t, err)
	assert.Equal(t, "daily.", c.lst.Prefix)
	assert.Equal(t, 5, c.lst.Limit)
	assert.Equal(t, output.FormatJSONL, c.lst.Format)
	_, err = parse(t, nil, "", "list", "--limit", "-1")
	assert.ErrorContains(t, err, "--limit -1")
	_, err = parse(t, nil, "", "list", "a", "b")
	assert.Error(t, err)

	c, err = parse(t, nil, "", "export")
	require.NoError(t, err)
	assert.Equal(t, output.FormatJSON, c.exp.Format, "json by default, also on a terminal")
	c, err = parse(t, nil, "", "export", "p.", "-o", "jsonl")
	require.NoError(t, err)
	assert.Equal(t, "p.", c.exp.Prefix)
	assert.Equal(t, output.FormatJSONL, c.exp.Format)
	_, err = parse(t, nil, "", "export", "-o", "csv")
	assert.ErrorContains(t, err, "use json or jsonl")

	c, err = parse(t, nil, "", "import", "-")
	require.NoError(t, err)
	assert.Equal(t, "-", c.imp.File)
	assert.False(t, c.imp.DryRun)
	c, err = parse(t, nil, "", "import", "backup.json", "--dry-run", "--ttl", "720h", "-o", "json")
	require.NoError(t, err)
	assert.Equal(t, "backup.json", c.imp.File)
	assert.True(t, c.imp.DryRun)
	assert.Equal(t, 720*time.Hour, c.imp.TTL)
	assert.Equal(t, output.FormatJSON, c.imp.Format)
	_, err = parse(t, nil, "", "import")
	assert.Error(t, err)
	_, err = parse(t, nil, "", "import", "f", "--ttl", "0s")
	assert.Error(t, err)

	_, err = parse(t, nil, "", "frobnicate")
	var fe *cmdutil.FlagError
	require.ErrorAs(t, err, &fe)
	assert.Contains(t, err.Error(), `unknown command "frobnicate"`)
}

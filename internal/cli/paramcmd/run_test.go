package paramcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
)

// env is one test's store, site and terminal state; run executes
// `tdctl param ...` through a root command built like tdctl's.
type env struct {
	t      *testing.T
	vars   map[string]string
	tty    bool
	stdin  string
	secret string // must never be printed
}

type result struct {
	stdout, stderr string
	err            error
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(e.stdin)
	ios.SetStdoutTTY(e.tty)
	ios.SetStderrTTY(e.tty)
	f := factory.New(ios)
	f.Getenv = func(k string) string { return e.vars[k] }
	f.HomeDir = e.t.TempDir()
	root := &cobra.Command{Use: "tdctl", SilenceErrors: true, SilenceUsage: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmdutil.NewFlagError(err) })
	root.AddCommand(NewCmdParam(f))
	root.SetArgs(append([]string{"param"}, args...))
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetIn(ios.In)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := root.ExecuteContextC(ctx)
	r := result{stdout: out.String(), stderr: errOut.String(), err: err}
	if e.secret != "" {
		for _, s := range []string{r.stdout, r.stderr, fmt.Sprint(err)} {
			assert.NotContains(e.t, s, e.secret, "the store password leaked: %v", args)
		}
	}
	return r
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	require.NoError(e.t, r.err, "%v: stderr %s", args, r.stderr)
	return r.stdout
}

// backend is one store the run tests use: its URL and the site to use.
type backend struct {
	name string
	open func(t *testing.T) (url string, site int32)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (string, int32) {
		return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "params.db")), 0
	}},
	{"postgres", func(t *testing.T) (string, int32) {
		conn, err := pgx.Connect(t.Context(), paramstoretest.PostgresURL())
		paramstoretest.RequireServer(t, "PostgreSQL", err)
		conn.Close(context.Background())
		return paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+paramstoretest.FreshSchema(t, "paramcmd_test_")), 7
	}},
	{"redis", func(t *testing.T) (string, int32) {
		return paramstoretest.RedisURL(), paramstoretest.FreshRedisSite(t, paramstoretest.RedisClient(t))
	}},
}

// forEachBackend runs fn on a fresh store of every backend, selected by
// the environment as a user would (TDCTL_PARAM_STORE, TDCTL_SITE).
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url, site := b.open(t)
			fn(t, &env{t: t, vars: map[string]string{EnvStore: url, EnvSite: strconv.Itoa(int(site))}})
		})
	}
}

func TestGetSetRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		cases := []struct {
			args      []string
			stdin     string
			text      string // param get
			jsonValue string // param get -o jsonl
		}{
			{[]string{"hello world"}, "", "hello world", `"hello world"`},
			{[]string{"42"}, "", "42", `42`},
			{[]string{"42", "--string"}, "", "42", `"42"`},
			{[]string{"1.50"}, "", "1.50", `1.50`},
			{[]string{"12345678901234567890123"}, "", "12345678901234567890123", `12345678901234567890123`},
			{[]string{"true"}, "", "true", `true`},
			{[]string{"null"}, "", "null", `null`},
			{[]string{`{"b": [1, "x"], "a": null}`}, "", `{"b":[1,"x"],"a":null}`, `{"b":[1,"x"],"a":null}`},
			{[]string{`{"a":1}`, "--string"}, "", `{"a":1}`, `"{\"a\":1}"`},
			{[]string{`"quoted"`}, "", "quoted", `"quoted"`},
			{[]string{""}, "", "", `""`},
			{[]string{"-"}, "é <&> \"q\" \\ tab\there\n", "é <&> \"q\" \\ tab\there", `"é <&> \"q\" \\ tab\there"`},
			{[]string{"-"}, `{"from":"stdin"}` + "\n", `{"from":"stdin"}`, `{"from":"stdin"}`},
		}
		for i, tc := range cases {
			key := fmt.Sprintf("k%d", i)
			e.stdin = tc.stdin
			assert.Empty(t, e.ok(append([]string{"set", key}, tc.args...)...), "set prints nothing when piped")
			assert.Equal(t, tc.text+"\n", e.ok("get", key), "%v", tc.args)
			assert.Equal(t, tc.jsonValue+"\n", e.ok("get", key, "-o", "jsonl"), "%v", tc.args)
		}
		e.stdin = ""

		// -o json is the JSON value, indented
		e.ok("set", "obj", `{"a":{"b":1}}`)
		assert.Equal(t, "{\n  \"a\": {\n    \"b\": 1\n  }\n}\n", e.ok("get", "obj", "-o", "json"))

		// overwrite, then a terminal confirmation
		e.tty = true
		out := e.ok("set", "k1", "43", "--ttl", "24h")
		assert.Contains(t, out, "Set k1 (number, site "+e.vars[EnvSite]+", expires in 24h)")
		out = e.ok("set", "k1", "44")
		assert.Contains(t, out, "expires in 90d")
		e.tty = false
		assert.Equal(t, "44\n", e.ok("get", "k1"))
	})
}

func TestMissingKeyAndDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		r := e.run("get", "nope")
		require.Error(t, r.err)
		var ns *NotSetError
		require.ErrorAs(t, r.err, &ns)
		assert.ErrorIs(t, r.err, paramstore.ErrNotFound)
		assert.Equal(t, fmt.Sprintf("param nope not set (site %s, store %s)", e.vars[EnvSite], e.vars[EnvStore]), r.err.Error())
		assert.Equal(t, cmdutil.ExitUsage, ns.ExitCode())
		assert.Empty(t, r.stdout)

		// an empty string is set, not missing
		e.ok("set", "empty", "")
		assert.Equal(t, "\n", e.ok("get", "empty"))

		// sites do not see each other's params
		e.ok("set", "mine", "1")
		r = e.run("get", "mine", "--site", "12345")
		require.ErrorAs(t, r.err, &ns)
		assert.Contains(t, r.err.Error(), "(site 12345,")

		e.ok("delete", "mine")
		r = e.run("get", "mine")
		require.ErrorAs(t, r.err, &ns)
		r = e.run("delete", "mine")
		require.ErrorAs(t, r.err, &ns)
		assert.Contains(t, r.err.Error(), "param mine not set")
		assert.Empty(t, e.ok("delete", "mine", "--ignore-missing"))

		e.tty = true
		e.ok("set", "x y", "1")
		assert.Equal(t, "Deleted \"x y\" (site "+e.vars[EnvSite]+")\n", e.ok("delete", "x y"))
		assert.Equal(t, "\"x y\" was not set (site "+e.vars[EnvSite]+")\n", e.ok("rm", "x y", "--ignore-missing"))
	})
}

func TestTTLExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.ok("set", "short", "v", "--ttl", "1s")
		e.ok("set", "long", "v")
		assert.Equal(t, "v\n", e.ok("get", "short"))
		time.Sleep(1100 * time.Millisecond)
		var ns *NotSetError
		require.ErrorAs(t, e.run("get", "short").err, &ns, "expired after --ttl")
		assert.Equal(t, "v\n", e.ok("get", "long"))
	})
}

func TestList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.tty = true
		r := e.run("list")
		require.NoError(t, r.err)
		assert.Contains(t, r.stderr, "no params (site "+e.vars[EnvSite])

		e.ok("set", "b.two", "2")
		e.ok("set", "a.one", "one\ttab")
		e.ok("set", "b.three", `{"x": [1, 2]}`)
		e.ok("set", "b.four", "4", "--string")
		e.ok("set", "c", "null")

		// piped: KEY<TAB>VALUE, key order, tabs made spaces
		e.tty = false
		assert.Equal(t, "a.one\tone tab\nb.four\t4\nb.three\t{\"x\":[1,2]}\nb.two\t2\nc\tnull\n", e.ok("list"))
		assert.Equal(t, "b.four\t4\nb.three\t{\"x\":[1,2]}\nb.two\t2\n", e.ok("list", "b."))
		assert.Equal(t, "b.four\t4\nb.three\t{\"x\":[1,2]}\n", e.ok("list", "b.", "--limit", "2"))
		assert.Empty(t, e.ok("list", "zzz"))

		// terminal: a table with a header
		e.tty = true
		r = e.run("list", "b.", "--limit", "2")
		require.NoError(t, r.err)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		require.Len(t, lines, 3, r.stdout)
		assert.Regexp(t, `^\s*KEY\s+VALUE\s*$`, lines[0])
		assert.Regexp(t, `^\s*b\.four\s+4\s*$`, lines[1])
		assert.Regexp(t, `^\s*b\.three\s+\{"x":\[1,2\]\}\s*$`, lines[2])
		assert.Contains(t, r.stderr, "showing the first 2")

		// json keeps types and exact text
		e.tty = false
		var items []Item
		require.NoError(t, json.Unmarshal([]byte(e.ok("list", "-o", "json")), &items))
		require.Len(t, items, 5)
		assert.Equal(t, "a.one", items[0].Key)
		assert.JSONEq(t, `"one\ttab"`, string(items[0].Value))
		assert.JSONEq(t, `"4"`, string(items[1].Value))
		assert.JSONEq(t, `{"x":[1,2]}`, string(items[2].Value))
		assert.Equal(t, `2`, string(items[3].Value))
		assert.Equal(t, `null`, string(items[4].Value))
		assert.Equal(t, `{"key":"b.three","value":{"x":[1,2]}}`+"\n"+`{"key":"b.two","value":2}`+"\n", e.ok("list", "b.t", "-o", "jsonl"))
		assert.Equal(t, "[]\n", e.ok("list", "zzz", "-o", "json"))
		assert.Equal(t, "key,value\nb.two,2\n", e.ok("list", "b.tw", "-o", "csv"))
	})
}

// TestListPages lists more params than one store page holds.
func TestListPages(t *testing.T) {
	e := &env{t: t, vars: map[string]string{EnvStore: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "p.db"))}}
	var b strings.Builder
	b.WriteString("{")
	n := paramstore.MaxListLimit + 5
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%05d": %d`, i, i)
	}
	b.WriteString("}")
	e.stdin = b.String()
	e.ok("import", "-")
	out := e.ok("list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, n)
	assert.Equal(t, "k00000\t0", lines[0])
	assert.Equal(t, fmt.Sprintf("k%05d\t%d", n-1, n-1), lines[n-1])
	lines = strings.Split(strings.TrimSuffix(e.ok("list", "--limit", strconv.Itoa(paramstore.MaxListLimit+2)), "\n"), "\n")
	require.Len(t, lines, paramstore.MaxListLimit+2)
	assert.Equal(t, fmt.Sprintf("k%05d\t%d", paramstore.MaxListLimit+1, paramstore.MaxListLimit+1), lines[len(lines)-1])
}

func TestExportImport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		assert.Equal(t, "{}\n", e.ok("export"))
		e.ok("set", "s", "é <&> \"q\"\nline")
		e.ok("set", "n", "12345678901234567890.000")
		e.ok("set", "o", `{"z": 1, "a": [true, null]}`)
		e.ok("set", "str42", "42", "--string")
		e.ok("set", "other.x", "1")

		exported := e.ok("export")
		assert.Equal(t, `{
  "n": 12345678901234567890.000,
  "o": {
    "z": 1,
    "a": [
      true,
      null
    ]
  },
  "other.x": 1,
  "s": "é <&> \"q\"\nline",
  "str42": "42"
}
`, exported)
		assert.True(t, json.Valid([]byte(exported)))
		jsonl := e.ok("export", "-o", "jsonl")
		assert.Equal(t, `{"n":12345678901234567890.000}
{"o":{"z":1,"a":[true,null]}}
{"other.x":1}
{"s":"é <&> \"q\"\nline"}
{"str42":"42"}
`, jsonl)
		assert.Equal(t, "{\n  \"other.x\": 1\n}\n", e.ok("export", "other."))

		// into another site of the same store, from a file and from stdin
		file := filepath.Join(t.TempDir(), "backup.json")
		require.NoError(t, os.WriteFile(file, []byte(exported), 0o600))
		otherSite := siteOf(e) + 1
		if strings.HasPrefix(e.vars[EnvStore], "redis") {
			otherSite = paramstoretest.FreshRedisSite(t, paramstoretest.RedisClient(t))
		}
		other := &env{t: t, vars: map[string]string{EnvStore: e.vars[EnvStore], EnvSite: strconv.Itoa(int(otherSite))}}
		r := other.run("import", file)
		require.NoError(t, r.err)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "imported 5 params from "+file+" (site "+other.vars[EnvSite]+", store ")
		assert.Equal(t, exported, other.ok("export"))
		assert.Equal(t, "42\n", other.ok("get", "str42"))
		assert.Equal(t, `"42"`+"\n", other.ok("get", "str42", "-o", "jsonl"), "a string stays a string")

		// jsonl from stdin overwrites; --dry-run first writes nothing
		other.stdin = `{"s": "changed"}` + "\n" + `{"new": [1]}` + "\n" + `{"n": 12345678901234567890.000}`
		r = other.run("import", "-", "--dry-run")
		require.NoError(t, r.err)
		assert.Equal(t, "s\tupdate\nnew\tadd\nn\tsame\n", r.stdout)
		assert.Contains(t, r.stderr, "dry run: would import 3 params from stdin (1 new, 1 changed, 1 unchanged;")
		assert.Contains(t, r.stderr, "nothing written")
		assert.Equal(t, exported, other.ok("export"), "--dry-run wrote nothing")
		r = other.run("import", "-", "--dry-run", "-o", "jsonl")
		require.NoError(t, r.err)
		assert.Equal(t, `{"key":"s","action":"update"}`+"\n"+`{"key":"new","action":"add"}`+"\n"+`{"key":"n","action":"same"}`+"\n", r.stdout)
		r = other.run("import", "-")
		require.NoError(t, r.err)
		assert.Contains(t, r.stderr, "imported 3 params from stdin")
		assert.Equal(t, "changed\n", other.ok("get", "s"))
		assert.Equal(t, "[1]\n", other.ok("get", "new"))

		// the first site is untouched
		assert.Equal(t, exported, e.ok("export"))
	})
}

func siteOf(e *env) int32 {
	n, _ := strconv.Atoi(e.vars[EnvSite])
	return int32(n)
}

// TestFailingImportWritesNothing: a bad file is refused before the store
// is touched, and a write the store refuses leaves every key as it was.
func TestFailingImportWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.ok("set", "keep", "old")
		before := e.ok("export")
		bad := []struct{ in, want string }{
			{``, "stdin is empty: expected JSON objects of key → value"},
			{"  \n", "stdin is empty"},
			{`{"a": 1, "keep": "new"`, "stdin:1: the JSON ends early"},
			{`{"a": 1, "keep": "new"} [1]`, `stdin:1: found an array: expected JSON objects`},
			{`{"a": 1, "keep": "new"}` + "\n" + `{"a": 2}`, `stdin:2: param a is given twice`},
			{`{"a": 1,` + "\n" + `"keep": new}`, "stdin:2: param keep: invalid JSON: invalid character 'e' in literal null"},
			{`{"a": 1, "": 2}`, `stdin:1: key "": the key is empty`},
			{`"just a string"`, "stdin:1: found a string"},
			{`{"a": 1, "` + strings.Repeat("k", paramstore.MaxKeyLen+1) + `": 2}`, "the limit is 1024"},
		}
		for _, tc := range bad {
			e.stdin = tc.in
			r := e.run("import", "-")
			require.Error(t, r.err, tc.in)
			assert.Contains(t, r.err.Error(), tc.want, tc.in)
			var se *StoreError
			assert.False(t, errors.As(r.err, &se), "a bad file is not a store failure")
			assert.Equal(t, before, e.ok("export"), "nothing written for %q", tc.in)
		}
		_, err := os.Stat(filepath.Join(t.TempDir(), "none.json"))
		require.Error(t, err)
		r := e.run("import", filepath.Join(t.TempDir(), "none.json"))
		assert.ErrorIs(t, r.err, os.ErrNotExist)
	})
}

// TestImportAllOrNothingInStore: the store itself refuses a write
// midway (a PostgreSQL trigger rejecting one key): no key is written.
func TestImportAllOrNothingInStore(t *testing.T) {
	schema := paramstoretest.FreshSchema(t, "paramcmd_test_")
	url := paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema)
	e := &env{t: t, vars: map[string]string{EnvStore: url}}
	r := e.run("set", "a", "old")
	paramstoretest.RequireServer(t, "PostgreSQL", r.err)
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), `
		CREATE FUNCTION refuse_m() RETURNS trigger AS $$
		BEGIN
			IF NEW.key = 'm' THEN RAISE EXCEPTION 'no m here'; END IF;
			RETURN NEW;
		END $$ LANGUAGE plpgsql;
		CREATE TRIGGER refuse_m BEFORE INSERT OR UPDATE ON params FOR EACH ROW EXECUTE FUNCTION refuse_m();`)
	require.NoError(t, err)

	e.stdin = `{"a": "new", "m": 1, "z": 2}`
	r = e.run("import", "-")
	require.Error(t, r.err)
	var se *StoreError
	require.ErrorAs(t, r.err, &se, "a failed write is a store error (exit 2)")
	assert.Equal(t, cmdutil.ExitAPI, se.ExitCode())
	assert.Contains(t, r.err.Error(), "no m here")
	assert.Equal(t, "{\n  \"a\": \"old\"\n}\n", e.ok("export"), "no key of the import was written")
}

// TestStoreDigdagLayout: strings set from the CLI are what digdag reads
// (value_type 0); other JSON is value_type 2.
func TestStoreDigdagLayout(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		url := paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+paramstoretest.FreshSchema(t, "paramcmd_test_"))
		e := &env{t: t, vars: map[string]string{EnvStore: url, EnvSite: "3"}}
		r := e.run("set", "s", "42", "--string")
		paramstoretest.RequireServer(t, "PostgreSQL", r.err)
		e.ok("set", "n", "42")
		conn, err := pgx.Connect(t.Context(), url)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		rows, err := conn.Query(t.Context(), `SELECT key, value, value_type FROM params WHERE site_id = 3 ORDER BY key`)
		require.NoError(t, err)
		var got []string
		for rows.Next() {
			var k, v string
			var vt int
			require.NoError(t, rows.Scan(&k, &v, &vt))
			got = append(got, fmt.Sprintf("%s %s %d", k, v, vt))
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, []string{`n {"value":42} 2`, `s {"value":"42"} 0`}, got)
	})
	t.Run("redis", func(t *testing.T) {
		c := paramstoretest.RedisClient(t)
		site := paramstoretest.FreshRedisSite(t, c)
		e := &env{t: t, vars: map[string]string{EnvStore: paramstoretest.RedisURL(), EnvSite: strconv.Itoa(int(site))}}
		e.ok("set", "s", "42", "--string")
		e.ok("set", "n", "42", "--ttl", "1h")
		s, err := c.Get(t.Context(), fmt.Sprintf("%d:s", site)).Result()
		require.NoError(t, err)
		assert.Equal(t, `{"value_type":0,"value":{"value":"42"}}`, s)
		n, err := c.Get(t.Context(), fmt.Sprintf("%d:n", site)).Result()
		require.NoError(t, err)
		assert.Equal(t, `{"value_type":2,"value":{"value":42}}`, n)
		ttl, err := c.TTL(t.Context(), fmt.Sprintf("%d:n", site)).Result()
		require.NoError(t, err)
		assert.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 5)
		ttl, err = c.TTL(t.Context(), fmt.Sprintf("%d:s", site)).Result()
		require.NoError(t, err)
		assert.InDelta(t, paramstore.DefaultTTL.Seconds(), ttl.Seconds(), 5)
	})
}

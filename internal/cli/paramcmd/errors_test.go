package paramcmd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
)

const password = "Sup3r-s3cret-pw"

// closedPort is a local TCP port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestUnreachableStoreIsExit2WithoutPassword(t *testing.T) {
	addr := closedPort(t)
	for _, url := range []string{
		"postgres://postgres:" + password + "@" + addr + "/test?connect_timeout=5",
		"postgres://postgres@" + addr + "/test?password=" + password,
		"redis://:" + password + "@" + addr + "/0",
	} {
		e := &env{t: t, vars: map[string]string{EnvStore: url}, secret: password}
		argvs := [][]string{{"get", "k"}, {"set", "k", "v"}, {"list"}, {"delete", "k"}, {"export"}}
		if strings.HasPrefix(url, "redis") {
			argvs = argvs[:1] // go-redis takes ~2s to give up on a closed port
		}
		for _, argv := range argvs {
			r := e.run(argv...)
			require.Error(t, r.err, url)
			var se *StoreError
			require.ErrorAs(t, r.err, &se, "%v: %v", argv, r.err)
			assert.Equal(t, cmdutil.ExitAPI, se.ExitCode())
			assert.ErrorIs(t, r.err, paramstore.ErrUnavailable)
			assert.Contains(t, r.err.Error(), "cannot connect")
			assert.Empty(t, r.stdout)
		}
		if !strings.HasPrefix(url, "redis") {
			e.stdin = `{"a": 1}`
			r := e.run("import", "-")
			var se *StoreError
			require.ErrorAs(t, r.err, &se)
		}
	}
}

func TestPasswordNeverPrinted(t *testing.T) {
	// PostgreSQL here trusts every login, so a URL with a password works:
	// every message that names the store masks it.
	schema := paramstoretest.FreshSchema(t, "paramcmd_test_")
	url := "postgres://postgres:" + password + "@" + strings.TrimPrefix(paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema), "postgres://postgres@")
	require.Contains(t, url, password)
	e := &env{t: t, vars: map[string]string{EnvStore: url}, secret: password}
	r := e.run("get", "k")
	paramstoretest.RequireServer(t, "PostgreSQL", ignoreNotSet(r.err))
	var ns *NotSetError
	require.ErrorAs(t, r.err, &ns)
	assert.Contains(t, r.err.Error(), "store postgres://postgres:xxxxx@")
	e.tty = true
	r = e.run("list")
	require.NoError(t, r.err)
	assert.Contains(t, r.stderr, "postgres://postgres:xxxxx@")
	e.stdin = `{"a": 1}`
	r = e.run("import", "-", "--dry-run")
	require.NoError(t, r.err)
	assert.Contains(t, r.stderr, "postgres://postgres:xxxxx@")
	r = e.run("import", "-")
	require.NoError(t, r.err)
	assert.Contains(t, r.stderr, "imported 1 param from stdin (site 0, store postgres://postgres:xxxxx@")

	// a URL that does not parse
	e = &env{t: t, vars: map[string]string{EnvStore: "postgres://u:" + password + "@host:port/db"}, secret: password}
	r = e.run("get", "k")
	var ce *cmdutil.ConfigError
	require.ErrorAs(t, r.err, &ce, "a bad URL is a configuration error (exit 1): %v", r.err)
	assert.ErrorIs(t, r.err, paramstore.ErrBadURL)
}

func ignoreNotSet(err error) error {
	if errors.Is(err, paramstore.ErrNotFound) {
		return nil
	}
	return err
}

func TestBadURLAndSchema(t *testing.T) {
	for url, want := range map[string]string{
		"mysql://db/x":            `unknown store URL scheme "mysql"`,
		"params.db":               "is not a store URL",
		"sqlite://relative/p.db":  "three slashes",
		"redis://h/0?ttl=forever": `ttl="forever"`,
	} {
		e := &env{t: t, vars: map[string]string{EnvStore: url}}
		r := e.run("get", "k")
		var ce *cmdutil.ConfigError
		require.ErrorAs(t, r.err, &ce, url)
		assert.Contains(t, r.err.Error(), want)
	}

	// a params table that is not digdag's: a store error (exit 2)
	schema := paramstoretest.FreshSchema(t, "paramcmd_test_")
	conn, err := pgx.Connect(t.Context(), paramstoretest.PostgresURL())
	paramstoretest.RequireServer(t, "PostgreSQL", err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), `CREATE SCHEMA `+schema+`; CREATE TABLE `+schema+`.params (key text, value jsonb, site_id int)`)
	require.NoError(t, err)
	e := &env{t: t, vars: map[string]string{EnvStore: paramstoretest.WithQuery(paramstoretest.PostgresURL(), "search_path="+schema)}}
	r := e.run("list")
	var se *StoreError
	require.ErrorAs(t, r.err, &se, "%v", r.err)
	assert.ErrorIs(t, r.err, paramstore.ErrSchema)

	// an invalid value from the store's point of view is a usage error
	e = &env{t: t, vars: map[string]string{EnvStore: "sqlite://" + t.TempDir() + "/p.db"}}
	r = e.run("set", "k", "v", "--ttl", "1us")
	var fe *cmdutil.FlagError
	require.ErrorAs(t, r.err, &fe, "%v", r.err)
	assert.Contains(t, r.err.Error(), "TTL 1µs is out of range")
}

// TestRedisDialErrorsNotLogged: go-redis logs failed dials to stderr on
// its own; through the CLI only the command's error is printed. It runs
// the command in a child process, where go-redis's default logger writes
// to the real stderr.
func TestRedisDialErrorsNotLogged(t *testing.T) {
	url := "redis://" + closedPort(t) + "/0"
	child := func(mode string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRedisHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PARAMCMD_HELPER="+mode, "PARAMCMD_URL="+url)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "stdout %s stderr %s", out, stderr.String())
		assert.Contains(t, string(out), "PASS")
		return stderr.String()
	}
	// The control: opened directly, go-redis does log the failed dial.
	assert.Contains(t, child("direct"), "redis: connection pool: failed to dial")
	assert.NotContains(t, child("cli"), "redis:")
}

// TestRedisHelper is the child process of TestRedisDialErrorsNotLogged.
func TestRedisHelper(t *testing.T) {
	mode := os.Getenv("PARAMCMD_HELPER")
	url := os.Getenv("PARAMCMD_URL")
	switch mode {
	case "":
		t.Skip("run by TestRedisDialErrorsNotLogged")
	case "direct":
		_, err := paramstore.Open(t.Context(), url)
		require.ErrorIs(t, err, paramstore.ErrUnavailable)
	case "cli":
		ios, _, out, errOut := iostreams.Test()
		f := factory.New(ios)
		f.Getenv = func(k string) string { return map[string]string{EnvStore: url}[k] }
		cmd := NewCmdParam(f)
		cmd.SetArgs([]string{"get", "k"})
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		cmd.SetOut(ios.Out)
		cmd.SetErr(ios.ErrOut)
		err := cmd.ExecuteContext(t.Context())
		require.ErrorIs(t, err, paramstore.ErrUnavailable)
		require.Empty(t, out.String())
		require.Empty(t, errOut.String())
	}
}

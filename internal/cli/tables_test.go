package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDBTableSchemaCommands(t *testing.T) {
	e := newEnv(t, fast())
	ok := func(args ...string) result {
		t.Helper()
		r := e.run(args...)
		require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
		return r
	}
	ok("db", "create", "shop")
	r := e.run("db", "create", "shop")
	assert.Equal(t, 2, r.code, "an existing database is an API error")
	assert.Contains(t, r.stderr, `database "shop" already exists`)
	r = e.run("db", "create", "Bad-Name")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "lower-case letters")

	var db map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok("db", "show", "shop", "-o", "json").stdout), &db))
	assert.Equal(t, "shop", db["name"])
	assert.Contains(t, db, "delete_protected", "-o json carries the API's field names")
	assert.Equal(t, 2, e.run("db", "show", "nope").code)
	assert.Contains(t, ok("db", "list").stdout, "sample_datasets")

	ok("table", "create", "shop", "items", "--expire-days", "30")
	ok("table", "create", "shop", "items_staging")
	ok("schema", "set", "shop", "items_staging", "item:string", "qty:long")
	r = e.run("schema", "add", "shop", "items_staging", "qty:long")
	assert.Equal(t, 1, r.code, "a column the table has is refused")
	r = e.run("schema", "set", "shop", "items_staging", "time:long")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "reserved")
	r = e.run("schema", "add", "shop", "items_staging", "qty")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "NAME:TYPE")
	ok("schema", "add", "shop", "items_staging", "note:string")
	assert.Equal(t, "item\tstring\nqty\tlong\nnote\tstring\n", ok("schema", "show", "shop", "items_staging").stdout)

	id := strings.TrimSpace(ok("query", "-d", "shop", "INSERT INTO items_staging (time, item, qty) VALUES (3600, 'apple', 1), (7200, 'pear', 2)").stdout)
	ok("job", "wait", id)

	tail := ok("table", "tail", "shop", "items_staging", "-n", "1").stdout
	assert.Equal(t, "7200\tpear\t\t2\n", tail, "time first, then columns by name: item, note, qty")
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok("table", "tail", "shop", "items_staging", "-o", "json").stdout), &rows))
	require.Len(t, rows, 2)

	ok("table", "swap", "shop", "items", "items_staging")
	var show map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok("table", "show", "shop", "items", "-o", "json").stdout), &show))
	assert.Equal(t, float64(2), show["count"])
	assert.Equal(t, []any{map[string]any{"name": "item", "type": "string"}, map[string]any{"name": "qty", "type": "long"},
		map[string]any{"name": "note", "type": "string"}}, show["schema"])
	assert.Nil(t, show["expire_days"], "settings follow the data: the staging table never expired")
	assert.Equal(t, 1, e.run("table", "swap", "shop", "items", "items").code)

	assert.Contains(t, ok("table", "list").stdout, "sample_datasets\tnasdaq\tlog\t5000\t", "without DATABASE: every database's tables")
	list := ok("table", "list", "shop").stdout
	assert.Contains(t, list, "shop\titems\tlog\t2\t")
	assert.Equal(t, 2, e.run("table", "rename", "shop", "items_staging", "items").code, "the name is taken")
	ok("table", "rename", "shop", "items_staging", "items_old")
	ok("table", "expire", "shop", "items_old", "0")
	assert.Equal(t, 1, e.run("table", "expire", "shop", "items_old", "-3").code)

	pd := e.run("table", "partial-delete", "shop", "items", "--from", "1970-01-01 00:00:00", "--to", "7200", "--wait", "-o", "json")
	require.Equal(t, 0, pd.code, pd.stderr)
	var issued map[string]any
	require.NoError(t, json.Unmarshal([]byte(pd.stdout), &issued))
	assert.Equal(t, "success", issued["status"])
	var left []map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok("table", "tail", "shop", "items", "-o", "json").stdout), &left))
	assert.Len(t, left, 1, "the row at 3600 is deleted, the one at 7200 kept")
	r = e.run("table", "partial-delete", "shop", "items", "--from", "1800", "--to", "7200")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "whole hours")

	r = e.run("table", "delete", "shop", "nope")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "shop.nope does not exist")
	r = e.run("db", "delete", "shop")
	assert.Equal(t, 1, r.code, "a database with tables needs --force")
	assert.Contains(t, r.stderr, "--force")
	ok("table", "delete", "shop", "items_old")
	ok("db", "delete", "shop", "--force")
	assert.Equal(t, 2, e.run("table", "list", "shop").code)
}

func TestTableExportCommand(t *testing.T) {
	e := newEnv(t, fast())
	const secret = "topsecretawsvalue123"
	r := e.run("table", "export", "sample_datasets", "nasdaq", "-b", "bkt")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "AWS credentials are required")
	e.vars["AWS_ACCESS_KEY_ID"] = "AKIAEXAMPLE"
	e.vars["AWS_SECRET_ACCESS_KEY"] = secret
	r = e.run("table", "export", "sample_datasets", "nasdaq", "-b", "bkt", "-F", "parquet")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "unknown file format")
	r = e.run("table", "export", "sample_datasets", "nasdaq", "-b", "bkt", "--from", "2014-01-02", "--to", "2014-01-03", "--wait", "-o", "json", "--debug")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, secret)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, "success", out["status"])
	assert.Equal(t, "nasdaq", out["table"])
	r = e.run("table", "export", "sample_datasets", "nope", "-b", "bkt")
	assert.Equal(t, 2, r.code)
}

package cli

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/emulator"
)

// badInput is one row of the README's Troubleshooting table: a malformed
// value given to a command or an operator, and the exact error it gets.
type badInput struct {
	input  string   // the table's first column
	args   []string // "{dig}" stands for the path of dig, "{job}" for a finished job, "{running}" for a running one
	dig    string   // a workflow file's text
	tdconf string   // ~/.td/td.conf's text
	stdin  string   // a file to read as stdin
	vars   map[string]string
	code   int
	msg    string // stderr's last line, the test's own paths and run ids written as DIR, ~ and RUN
}

// badInputs is what the README documents; TestBadInputTableIsTheREADMEs
// keeps the two equal.
var badInputs = []badInput{
	// query
	{input: "`tdctl query 'select 1'`", args: []string{"query", "select 1"}, code: 1,
		msg: `no database: pass -d DATABASE (or set database: in a tdctl profile) (see 'tdctl query --help')`},
	{input: "`tdctl query -d db -P 5 ...`", args: []string{"query", "-d", "db", "-P", "5", "select 1"}, code: 1,
		msg: `invalid -P/--priority "5": use -2..2 or VERY_LOW, LOW, NORMAL, HIGH, VERY_HIGH (see 'tdctl query --help')`},
	{input: "`tdctl query -d db -T spark ...`", args: []string{"query", "-d", "db", "-T", "spark", "select 1"}, code: 1,
		msg: `invalid -T/--type "spark": use presto, trino or hive (see 'tdctl query --help')`},
	{input: "`tdctl query -d db -R x ...`", args: []string{"query", "-d", "db", "-R", "x", "select 1"}, code: 1,
		msg: `invalid -R/--retry "x": give a whole number >= 0 (see 'tdctl query --help')`},
	{input: "`tdctl query -d db -r 'mysql//u:pw@h/db/t' ...`", args: []string{"query", "-d", "db", "-r", "mysql//u:pw@h/db/t", "select 1"}, code: 1,
		msg: "-r/--result: not a result URL: expected scheme://..., e.g. td://@/db/table (see 'tdctl query --help')"},
	{input: "`tdctl query -d db` (no SQL)", args: []string{"query", "-d", "db"}, code: 1,
		msg: "give the SQL as one argument (quote it), or - to read it from stdin (see 'tdctl query --help')"},
	{input: "`tdctl query -d db - < /dev/zero`", args: []string{"query", "-d", "db", "-"}, stdin: "/dev/zero", code: 1,
		msg: `the query on stdin is larger than 64 MiB: give a smaller input`},
	{input: "`tdctl query -d no_such_db ...`", args: []string{"query", "-d", "no_such_db", "select 1"}, code: 2,
		msg: `td: POST /v3/job/issue/presto/no_such_db: 404 Not Found: database "no_such_db" not found`},
	// job
	{input: "`tdctl job show abc`", args: []string{"job", "show", "abc"}, code: 1,
		msg: `invalid job id "abc": job ids are numbers, e.g. 12345 (see 'tdctl job show --help')`},
	{input: "`tdctl job show 999999`", args: []string{"job", "show", "999999"}, code: 2,
		msg: "td: GET /v3/job/show/999999: 404 Not Found: job 999999 not found"},
	{input: "`tdctl job kill`", args: []string{"job", "kill"}, code: 1,
		msg: "missing argument: usage: tdctl job kill JOB_ID (see 'tdctl job kill --help')"},
	{input: "`tdctl job wait ID --poll-interval -1s`", args: []string{"job", "wait", "{job}", "--poll-interval", "-1s"}, code: 1,
		msg: "--poll-interval must be positive, e.g. 1s (see 'tdctl job wait --help')"},
	{input: "`tdctl job list --status done`", args: []string{"job", "list", "--status", "done"}, code: 1,
		msg: `invalid --status "done": use queued, running, success or error (see 'tdctl job list --help')`},
	{input: "`tdctl job list --limit -3`", args: []string{"job", "list", "--limit", "-3"}, code: 1,
		msg: "--limit must be 0 (all) or more (see 'tdctl job list --help')"},
	{input: "`tdctl job result ID -f xml`", args: []string{"job", "result", "{job}", "-f", "xml"}, code: 1,
		msg: `invalid --format "xml": use one of table, tsv, csv, json, jsonl, msgpack.gz (see 'tdctl job result --help')`},
	{input: "`tdctl job result ID -o /no/such/dir/x.csv`", args: []string{"job", "result", "{job}", "-o", "/no/such/dir/x.csv"}, code: 1,
		msg: "cannot write -o /no/such/dir/x.csv: /no/such/dir: no such file or directory (see 'tdctl job result --help')"},
	{input: "`tdctl job result ID --parallel 99`", args: []string{"job", "result", "{job}", "--parallel", "99"}, code: 1,
		msg: "invalid --parallel 99: use 1 to 16 connections (or leave it out to choose from the result's size and pace) (see 'tdctl job result --help')"},
	{input: "`tdctl job result ID -o DIR` (a directory)", args: []string{"job", "result", "{job}", "-o", "DIR"}, code: 1,
		msg: "cannot write -o DIR: it is a directory (see 'tdctl job result --help')"},
	{input: "`tdctl job show $'123\\r'` (an id read from a CRLF file)", args: []string{"job", "show", "123\r"}, code: 1,
		msg: `invalid job id "123\r": job ids are numbers, e.g. 12345; strip the white space around it (a \r comes from CRLF line ends) (see 'tdctl job show --help')`},
	{input: "`tdctl job export --job-id ' 123' ...`", args: []string{"job", "export", "--job-id", " 123", "--result-url", "td://@/db/t"}, code: 1,
		msg: `invalid job id " 123" of --job-id: job ids are numbers, e.g. 12345; strip the white space around it (a \r comes from CRLF line ends) (see 'tdctl job export --help')`},
	{input: "`tdctl job wait $'\\e[2J1'` (an escape sequence)", args: []string{"job", "wait", "\x1b[2J1"}, code: 1,
		msg: `invalid job id "\x1b[2J1": job ids are numbers, e.g. 12345 (see 'tdctl job wait --help')`},
	{input: "`tdctl job num-records ID` while the job runs", args: []string{"job", "num-records", "{running}"}, code: 5,
		msg: `job {running} is running: it has not finished yet (pass --wait to wait for it)`},
	{input: "`job export ID --result-url 'mysql//u:pw@h/db'`", args: []string{"job", "export", "{job}", "--result-url", "mysql//u:pw@h/db"}, code: 1,
		msg: "--result-url #1: not a result URL: expected scheme://..., e.g. td://@/db/table (see 'tdctl job export --help')"},
	{input: "`job export ID --settings '{\"a\":1}'` with no `--connection`", args: []string{"job", "export", "{job}", "--settings", `{"a":1}`}, code: 1,
		msg: `--settings must follow the --connection it belongs to (a --result-url carries its options in the URL) (see 'tdctl job export --help')`},
	{input: "`job export ID --connection x --settings '{bad'`", args: []string{"job", "export", "{job}", "--connection", "x", "--settings", "{bad"}, code: 1,
		msg: `--settings of connection x: settings must be a JSON object such as {"bucket":"b","path":"/logs/"} (invalid character 'b' looking for beginning of object key string) (see 'tdctl job export --help')`},
	{input: "`job export ID --connection x --settings @/dev/zero`", args: []string{"job", "export", "{job}", "--connection", "x", "--settings", "@/dev/zero"}, code: 1,
		msg: `--settings of connection x: @/dev/zero is larger than 64 MiB: give a smaller input (see 'tdctl job export --help')`},
	{input: "`job export ID` (no destination)", args: []string{"job", "export", "{job}"}, code: 1,
		msg: "no destination: add --result-url URL or --connection NAME|ID [--settings JSON] (see 'tdctl job export --help')"},
	{input: "`job export ID --connection no_such_connection`", args: []string{"job", "export", "{job}", "--connection", "no_such_connection"}, code: 2,
		msg: `export to connection no_such_connection: td: GET /v3/connections/lookup: 404 Not Found: no connection named "no_such_connection" (check the name in the TD console under Integrations)`},
	// saved queries, connections, api
	{input: "`tdctl sched create q @daily 'select 1'`", args: []string{"sched", "create", "q", "@daily", "select 1"}, code: 1,
		msg: "the database is missing: add -d DATABASE (see 'tdctl sched create --help')"},
	{input: "`tdctl sched run q yesterday`", args: []string{"sched", "run", "q", "yesterday"}, code: 1,
		msg: `invalid TIME "yesterday": use RFC 3339 (2024-05-01T01:00:00Z), "2024-05-01 01:00:00", 2024-05-01, unix seconds or now (see 'tdctl sched run --help')`},
	{input: "`tdctl sched run no_such_query 2024-05-01`", args: []string{"sched", "run", "no_such_query", "2024-05-01"}, code: 2,
		msg: `td: POST /v3/schedule/run/no_such_query/1714521600: 404 Not Found: no saved query named "no_such_query"`},
	{input: "`tdctl connection show nope`", args: []string{"connection", "show", "nope"}, code: 2,
		msg: `td: GET /v3/result/list: 404 Not Found: no connection named "nope"`},
	{input: "`tdctl api https://api.example.com/v3/job/list`", args: []string{"api", "https://api.example.com/v3/job/list"}, code: 1,
		msg: "give a path such as /v3/job/list, not a URL: requests go to the configured endpoint (--endpoint, TD_API_SERVER) (see 'tdctl api --help')"},
	{input: "`tdctl api /v3/x -f password`", args: []string{"api", "/v3/x", "-f", "password"}, code: 1,
		msg: "invalid -f/--field (number 1): use key=value (see 'tdctl api --help')"},
	// databases, tables, schemas
	{input: "`tdctl db create Sales-2024`", args: []string{"db", "create", "Sales-2024"}, code: 1,
		msg: `invalid database name "Sales-2024": use 3 to 255 lower-case letters, digits and underscores (see 'tdctl db create --help')`},
	{input: "`tdctl table show sample_datasets nope`", args: []string{"table", "show", "sample_datasets", "nope"}, code: 2,
		msg: `td: GET /v3/table/show/sample_datasets/nope: 404 Not Found: table sample_datasets.nope does not exist`},
	{input: "`tdctl schema set db t time:long`", args: []string{"schema", "set", "db", "t", "time:long"}, code: 1,
		msg: `column 1: name "time" is reserved: TD tables have an implicit time column (see 'tdctl schema set --help')`},
	{input: "`tdctl schema add db t user_id`", args: []string{"schema", "add", "db", "t", "user_id"}, code: 1,
		msg: `invalid column "user_id": write NAME:TYPE, for example user_id:long (see 'tdctl schema add --help')`},
	{input: "`tdctl table partial-delete db t --from 2024-01-01T00:30:00Z --to 2024-01-02`", args: []string{"table", "partial-delete", "db", "t", "--from", "2024-01-01T00:30:00Z", "--to", "2024-01-02"}, code: 1,
		msg: `--from and --to must be on whole hours (got 2024-01-01 00:30:00 UTC and 2024-01-02 00:00:00 UTC) (see 'tdctl table partial-delete --help')`},
	{input: "`tdctl table tail db t -n 0`", args: []string{"table", "tail", "db", "t", "-n", "0"}, code: 1,
		msg: `--count must be between 1 and 10000, got 0 (see 'tdctl table tail --help')`},
	{input: "`tdctl table export db t -b bkt` (no AWS keys)", args: []string{"table", "export", "db", "t", "-b", "bkt"}, code: 1,
		msg: `AWS credentials are required: --aws-key-id and --aws-secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see 'tdctl table export --help')`},
	// configuration
	{input: "no API key anywhere", args: []string{"job", "list"}, vars: map[string]string{"TD_API_KEY": ""}, code: 1,
		msg: `no API key: set TD_API_KEY (or TDCTL_API_KEY), pass --apikey, add [account] apikey to ~/.td/td.conf (what 'td account' writes) or a profile to ~/.config/tdctl/config.yaml; to try tdctl without an account run 'tdctl dev-server'`},
	{input: "`~/.td/td.conf` with an escape sequence in a value", args: []string{"job", "list"}, vars: map[string]string{"TD_API_KEY": ""},
		tdconf: "[account]\n  apikey = 1/abc\x1b[2Jdef\n", code: 1,
		msg: `~/.td/td.conf:2: the value of apikey holds a control character (U+001B): td.conf values are plain text`},
	{input: "`~/.td/td.conf` larger than 1 MiB", args: []string{"job", "list"}, tdconf: strings.Repeat("# comment\n", 110000), code: 1,
		msg: `~/.td/td.conf is larger than 1 MiB: give a smaller input`},
	{input: "`TD_API_SERVER=ftp://x`", args: []string{"job", "list"}, vars: map[string]string{"TD_API_SERVER": "ftp://x"}, code: 1,
		msg: `invalid endpoint "ftp://x": scheme must be http or https (endpoint set by env TD_API_SERVER)`},
	{input: "`tdctl --endpoint ap01 job list` (no such site)", args: []string{"--endpoint", "ap01", "job", "list"}, code: 1,
		msg: `invalid endpoint "ap01": not a known site; use a site (us01, jp01, eu01, ap02, ap03; also us, jp, tokyo, eu, kr), a host such as api.treasuredata.com, or a URL (endpoint set by flag --endpoint)`},
	{input: "`TD_API_KEY` with a control character", args: []string{"job", "list"}, vars: map[string]string{"TD_API_KEY": "1/abc\x7fdef"}, code: 1,
		msg: `the API key holds a control character (U+007F); check how it was copied (API key set by env TD_API_KEY)`},
	{input: "`tdctl --profile nope job list`", args: []string{"--profile", "nope", "job", "list"}, code: 1,
		msg: `profile "nope" (flag --profile) is not defined in ~/.config/tdctl/config.yaml (the file does not exist); add it under profiles: or drop --profile/TDCTL_PROFILE`},
	{input: "`tdctl completion tcsh`", args: []string{"completion", "tcsh"}, code: 1,
		msg: `unsupported shell "tcsh": use bash, zsh or fish (see 'tdctl completion --help')`},
	{input: "`tdctl dev-server --conn-bandwidth fast`", args: []string{"dev-server", "--conn-bandwidth", "fast"}, code: 1,
		msg: `invalid --conn-bandwidth "fast": give bytes per second per connection, e.g. 50MB (SI) or 64MiB (see 'tdctl dev-server --help')`},
	{input: "`tdctl dev-server --addr nope`", args: []string{"dev-server", "--addr", "nope"}, code: 1,
		msg: `invalid --addr "nope": expected HOST:PORT, e.g. 127.0.0.1:8080 or 127.0.0.1:0 (see 'tdctl dev-server --help')`},
	{input: "`tdctl demo --data /proc/x`", args: []string{"demo", "--data", "/proc/x"}, code: 1,
		msg: `cannot create the demo's data directory /proc/x: no such file or directory; pass --data DIR`},
	// params
	{input: "`param get k --store mysql://x`", args: []string{"param", "get", "k", "--store", "mysql://x"}, code: 1,
		msg: `paramstore: unknown store URL scheme "mysql"; use postgres://user@host/db, redis://host:6379/0 or sqlite:///abs/path/params.db`},
	{input: "`TDCTL_SITE=3abc tdctl param get k` (or `workflow run`)", args: []string{"param", "get", "k", "--store", "sqlite://DIR/p.db"}, vars: map[string]string{"TDCTL_SITE": "3abc"}, code: 1,
		msg: `TDCTL_SITE="3abc" is not a site id: give an integer such as 0 (digdag's site_id)`},
	{input: "`param get k --store postgres://u:pw@127.0.0.1:1/db` (nothing listens there)", args: []string{"param", "get", "k", "--store", "postgres://u:pw@127.0.0.1:1/db"}, code: 2,
		msg: "paramstore postgres: cannot connect to 127.0.0.1:1 (user \"u\", database \"db\"); check that PostgreSQL runs there and the URL's host, port, user, password and database: failed to connect to `user=u database=db`: 127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused"},
	{input: "`param set k v --ttl -1s`", args: []string{"param", "set", "k", "v", "--ttl", "-1s", "--store", "sqlite://DIR/p.db"}, code: 1,
		msg: "--ttl -1s: give a positive duration such as 24h or 90m (see 'tdctl param set --help')"},
	{input: "`param set k $'\\xff'` (not UTF-8)", args: []string{"param", "set", "k", "\xff", "--store", "sqlite://DIR/p.db"}, code: 1,
		msg: "VALUE (byte 0xff at offset 0) is not valid UTF-8: params hold text or JSON (stored, the bad bytes would become U+FFFD) (see 'tdctl param set --help')"},
	{input: "`param get $'k\\e[31m'` (an escape sequence in a key)", args: []string{"param", "get", "k\x1b[31m", "--store", "sqlite://DIR/p.db"}, code: 1,
		msg: `param "k\x1b[31m" not set (site 0, store sqlite://DIR/p.db)`},
	{input: "`param get never_set`", args: []string{"param", "get", "never_set", "--store", "sqlite://DIR/p.db"}, code: 1,
		msg: `param never_set not set (site 0, store sqlite://DIR/p.db)`},
	{input: "`param set k - < /dev/zero`", args: []string{"param", "set", "k", "-", "--store", "sqlite://DIR/p.db"}, stdin: "/dev/zero", code: 1,
		msg: `the value on stdin is larger than 64 MiB: give a smaller input`},
	{input: "`param import missing.json`", args: []string{"param", "import", "DIR/missing.json", "--store", "sqlite://DIR/p.db"}, code: 1,
		msg: `cannot read DIR/missing.json: no such file or directory (see 'tdctl param import --help')`},
	// workflows: found by `workflow check` (and so before `workflow run` runs anything)
	{input: "`${nope}` in a .dig", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  echo>: ${nope}\n", code: 1,
		msg: "a.dig:2: +a+a: param ${nope} is not defined: set it with _export, -p nope=VALUE, or a task before this one"},
	{input: "an unclosed `${` in a .dig", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  echo>: day ${session_date\n", code: 1,
		msg: `a.dig:2: +a+a: unclosed ${ in "${session_date": add the closing }`},
	{input: "a JavaScript syntax error in `${...}`", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  echo>: ${1 +}\n", code: 1,
		msg: `a.dig:2: +a+a: cannot evaluate ${1 +}: SyntaxError: Unexpected token ) at the end`},
	{input: "`${moment(nope).format()}` (an undefined name in an expression)", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  echo>: ${moment(nope).format()}\n", code: 1,
		msg: "a.dig:2: +a+a: param ${nope} is not defined: set it with _export, -p nope=VALUE, or a task before this one"},
	{input: "a task with `sh>` and `echo>`", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  sh>: x\n  echo>: y\n", code: 1,
		msg: "a.dig:3: task +a has two operators (sh> and echo>): split it into two +tasks"},
	{input: "an unknown operator", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  mysql>: x\n", code: 1,
		msg: `a.dig:2: +a+a: unknown operator mysql> (known: call>, echo>, fail>, for_each>, for_range>, http>, if>, loop>, param_get>, param_set>, pg>, py>, redshift>, require>, sh>, td>, td_ddl>, td_for_each>, td_partial_delete>, td_result_export>, td_run>, td_table_export>, td_wait>, td_wait_table>, wait>)`},
	{input: "`rb>` (a digdag operator tdctl lacks)", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  rb>: Tasks.step1\n", code: 1,
		msg: `a.dig:2: +a+a: rb> is a digdag operator tdctl does not support (tdctl has call>, echo>, fail>, for_each>, for_range>, http>, if>, loop>, param_get>, param_set>, pg>, py>, redshift>, require>, sh>, td>, td_ddl>, td_for_each>, td_partial_delete>, td_result_export>, td_run>, td_table_export>, td_wait>, td_wait_table>, wait>)`},
	{input: "`loop>` whose count is no number", args: []string{"workflow", "check", "{dig}"}, dig: "+l:\n  loop>: three\n  _do:\n    echo>: ${i}\n", code: 1,
		msg: `a.dig:2: +a+l: loop> must be a whole number ≥ 0 (got three)`},
	{input: "`if>` without `_do` or `_else_do`", args: []string{"workflow", "check", "{dig}"}, dig: "+c:\n  if>: true\n", code: 1,
		msg: `a.dig:2: +a+c: if> needs _do (tasks to run when true) or _else_do (when false)`},
	{input: "`call>` of a file that is not there", args: []string{"workflow", "check", "{dig}"}, dig: "+c:\n  call>: other.dig\n", code: 1,
		msg: `a.dig:2: +a+c: call> other.dig: no such workflow file in DIR`},
	{input: "`${secret:pw}` not set", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  echo>: ${secret:pw}\n", code: 1,
		msg: `a.dig:2: +a+a: secret "pw" is not set: export TDCTL_SECRET_PW or add it to the secrets file (--secrets)`},
	{input: "`td>` with `priority: 9`", args: []string{"workflow", "check", "{dig}"}, dig: "+q:\n  td>:\n    data: select 1\n  database: db\n  priority: 9\n", code: 1,
		msg: `a.dig:2: +a+q: td>: priority 9 out of range: use -2 (very low) to 2 (very high)`},
	{input: "`td>` with a query file that is not there", args: []string{"workflow", "check", "{dig}"}, dig: "+q:\n  td>: queries/none.sql\n  database: db\n", code: 1,
		msg: `a.dig:2: +a+q: td>: query file queries/none.sql: no such file or directory`},
	{input: "`td_result_export>` with no `job_id`", args: []string{"workflow", "check", "{dig}"}, dig: "+e:\n  td_result_export>:\n  result_url: td://@/db/t\n", code: 1,
		msg: `a.dig:2: +a+e: td_result_export> needs job_id (e.g. job_id: ${td.last_job_id})`},
	{input: "`td_result_export>` with `result_settings` but a `result_url`", args: []string{"workflow", "check", "{dig}"},
		dig: "+e:\n  td_result_export>:\n  job_id: 1\n  result_url: td://@/db/t\n  result_settings:\n    bucket: b\n", code: 1,
		msg: `a.dig:2: +a+e: td_result_export>: result_settings needs result_connection (a result_url carries its options in the URL)`},
	{input: "`param_set>: x` (no keys)", args: []string{"workflow", "check", "{dig}"}, dig: "+s:\n  param_set>: x\n", code: 1,
		msg: `a.dig:2: +a+s: param_set> takes no value (x): give its keys beside it, e.g. last_executed_time: ${session_time} (store key: value) on the line after param_set>:, at the same indent`},
	{input: "`td>` with `databse: db` (a typo)", args: []string{"workflow", "check", "{dig}"}, dig: "+q:\n  td>:\n    data: select 1\n  databse: db\n", code: 1,
		msg: `a.dig:2: +a+q: unknown td> key databse (did you mean database?)`},
	{input: "`docker: {imag: ...}` (a typo)", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  sh>: ./job.sh\n  docker:\n    imag: python:3\n", code: 1,
		msg: `a.dig:2: +a+a: docker: unknown key "imag" (did you mean image?)`},
	{input: "`py>: step1` (no module)", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  py>: step1\n", code: 1,
		msg: `a.dig:2: +a+a: py> needs a module and a method, e.g. py>: tasks.MyWorkflow.step1 or py>: tasks.step1 (tasks.py or tasks/__init__.py beside the .dig file)`},
	{input: "`for_each>` of a value that is no list", args: []string{"workflow", "check", "{dig}"}, dig: "+l:\n  for_each>:\n    v: 3\n  _do:\n    echo>: ${v}\n", code: 1,
		msg: `a.dig:3: +a+l: for_each> v must be a list (got 3)`},
	{input: "`sh>` with `_k8s: {image: alpine, memory: lots}`", args: []string{"workflow", "check", "{dig}"},
		dig: "+k:\n  sh>: ./job.sh\n  _k8s:\n    image: alpine\n    memory: lots\n", code: 1,
		msg: `a.dig:2: +a+k: _k8s memory: "lots" is not a quantity; use e.g. "512Mi" or "2Gi"`},
	{input: "`timezone: Asia/Tokio` (an unknown zone)", args: []string{"workflow", "check", "{dig}"}, dig: "timezone: Asia/Tokio\n+a:\n  echo>: x\n", code: 1,
		msg: `a.dig:1: timezone: unknown time zone name "Asia/Tokio" (use a region like Asia/Tokyo, UTC, or an offset like +09:00)`},
	{input: "`schedule: {daily>: 7:00}`", args: []string{"workflow", "check", "{dig}"}, dig: "schedule:\n  daily>: '7:00'\n+a:\n  echo>: x\n", code: 1,
		msg: `a.dig:2: schedule: daily> scheduler requires hh:mm:ss format: 7:00`},
	{input: "`-p session_time=...` (a built-in)", args: []string{"workflow", "check", "{dig}", "-p", "session_time=2016-01-01"}, dig: "+a:\n  echo>: x\n", code: 1,
		msg: `a.dig: -p sets session_time, a built-in param digdag sets for every task (it cannot be overwritten): use another name`},
	{input: "`--session-time 13/03/2016`", args: []string{"workflow", "run", "{dig}", "--session-time", "13/03/2016"}, dig: "+a:\n  echo>: x\n", code: 1,
		msg: `--session-time "13/03/2016": use "yyyy-MM-dd" or "yyyy-MM-dd HH:mm:ss" (read in the workflow's timezone UTC), RFC 3339 (2016-03-13T00:00:00-08:00), daily, hourly, schedule or last (see 'tdctl workflow run --help')`},
	{input: "`_retry: lots`", args: []string{"workflow", "check", "{dig}"}, dig: "+r:\n  _retry: lots\n  echo>: x\n", code: 1,
		msg: `a.dig:2: _retry must be a number of retries or {limit: N, interval: SECONDS, interval_type: constant|exponential} (got lots)`},
	{input: "a YAML alias inside its own anchor (`_export: &x {y: *x}`)", args: []string{"workflow", "check", "{dig}"}, dig: "_export: &x {y: *x}\n+a:\n  echo>: hi\n", code: 1,
		msg: "a.dig:1: YAML alias *x is inside the value of its own anchor &x (line 1): a recursive alias has no end; write the value out"},
	{input: "an alias bomb (anchors of nine aliases of the one before, nine deep)", args: []string{"workflow", "run", "{dig}"}, dig: aliasBomb, code: 1,
		msg: "a.dig:7: YAML aliases add more than 100000 nodes to this document: write the values out or use fewer nested aliases"},
	{input: "a file that includes itself (`!include : a.dig` in a.dig)", args: []string{"workflow", "check", "{dig}"}, dig: "+a:\n  !include : a.dig\n", code: 1,
		msg: "a.dig:2: !include a.dig: the file includes itself (through a.dig); remove the loop"},
	{input: "`td>` with no database (found when the task runs)", args: []string{"workflow", "run", "{dig}"}, dig: "+q:\n  td>:\n  data: select 1\n", code: 3,
		msg: `workflow failed (run RUN): td>: no database: add database: NAME or _export: {td: {database: NAME}}`},
	{input: "`tdctl workflow logs nope`", args: []string{"workflow", "logs", "nope"}, code: 1,
		msg: `workflow: run nope not found in ~/runs (list runs with: ls ~/runs) (see 'tdctl workflow logs --help')`},
	{input: "`tdctl workflow retry nope`", args: []string{"workflow", "retry", "nope"}, code: 1,
		msg: `workflow: run nope not found in ~/runs (list runs with: ls ~/runs) (see 'tdctl workflow retry --help')`},
	// the workflow server's commands, refused before any request
	{input: "`tdctl workflow attempt abc`", args: []string{"workflow", "attempt", "abc"}, code: 1,
		msg: `attempt id "abc": the server's attempt ids are numbers (see 'tdctl workflow attempt --help')`},
	{input: "`tdctl workflow start p wf --session 13/03/2016`", args: []string{"workflow", "start", "p", "wf", "--session", "13/03/2016"}, code: 1,
		msg: `--session "13/03/2016": give now, hourly, daily, last, "yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss" or an RFC 3339 time (see 'tdctl workflow start --help')`},
	{input: "`tdctl workflow retry 12 --runs-dir DIR` (a local run's flag)", args: []string{"workflow", "retry", "12", "--runs-dir", "DIR"}, code: 1,
		msg: `--runs-dir is for a local run; 12 is an attempt on the workflow server (see 'tdctl workflow retry --help')`},
	{input: "`TDCTL_WORKFLOW_ENDPOINT=ap01 tdctl workflow attempts`", args: []string{"workflow", "attempts"}, vars: map[string]string{"TDCTL_WORKFLOW_ENDPOINT": "ap01"}, code: 1,
		msg: `invalid workflow endpoint: invalid endpoint "ap01": not a known site; use a site (us01, jp01, eu01, ap02, ap03; also us, jp, tokyo, eu, kr), a host such as api.treasuredata.com, or a URL (workflow endpoint set by env TDCTL_WORKFLOW_ENDPOINT)`},
	{input: "`tdctl workflow secrets set --project p k < /dev/null`", args: []string{"workflow", "secrets", "set", "--project", "p", "k"}, code: 1,
		msg: `the value of k is empty (see 'tdctl workflow secrets set --help')`},
	{input: "`tdctl workflow run a.dig --start +lod` (a typo)", args: []string{"workflow", "run", "{dig}", "--start", "+lod"}, dig: "+load:\n  echo>: x\n+report:\n  echo>: y\n", code: 1,
		msg: `--start +lod: no task +lod in workflow a (did you mean +a+load?) (see 'tdctl workflow run --help')`},
	{input: "`tdctl workflow run a.dig --save DIR` (a digdag run flag tdctl lacks)", args: []string{"workflow", "run", "{dig}", "--save", "DIR"}, dig: "+a:\n  echo>: x\n", code: 1,
		msg: `--save is not supported: tdctl keeps every run's record under --runs-dir (env TDCTL_RUNS_DIR) (see 'tdctl workflow run --help')`},
	{input: "`tdctl workflow ui --addr 0.0.0.0:8080`", args: []string{"workflow", "ui", "--addr", "0.0.0.0:8080"}, code: 1,
		msg: `--addr 0.0.0.0:8080 is not a loopback address and the UI has no login (anyone who can reach it reads every run's logs): pass --allow-remote to serve it there anyway (see 'tdctl workflow ui --help')`},
	{input: "`tdctl workflow ui --addr :8080`", args: []string{"workflow", "ui", "--addr", ":8080"}, code: 1,
		msg: `--addr :8080 is not a loopback address and the UI has no login (anyone who can reach it reads every run's logs): pass --allow-remote to serve it there anyway (see 'tdctl workflow ui --help')`},
	// Kubernetes
	{input: "`tdctl k8s run -- echo`", args: []string{"k8s", "run", "--", "echo"}, code: 1,
		msg: "--image is required, e.g. --image python:3.13-slim (see 'tdctl k8s run --help')"},
	{input: "`tdctl k8s run --image alpine --memory lots -- true`", args: []string{"k8s", "run", "--image", "alpine", "--memory", "lots", "--", "true"}, code: 1,
		msg: `--memory: "lots" is not a quantity; use e.g. "512Mi" or "2Gi" (see 'tdctl k8s run --help')`},
	{input: "`tdctl k8s run --image alpine --run-as-user -1 -- true`", args: []string{"k8s", "run", "--image", "alpine", "--run-as-user", "-1", "--", "true"}, code: 1,
		msg: "--run-as-user: -1 is negative; give a uid above 0, 0 to run as root, or leave it unset for 65532 (see 'tdctl k8s run --help')"},
}

// aliasBomb is a .dig of under 600 bytes whose aliases expand to 9^10 strings.
var aliasBomb = func() string {
	var b strings.Builder
	b.WriteString("_export:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		prev := fmt.Sprintf("*l%d", i-1)
		fmt.Fprintf(&b, "  l%d: &l%d [%s%s]\n", i, i, strings.Repeat(prev+", ", 8), prev)
	}
	b.WriteString("+t:\n  echo>: ${l9}\n")
	return b.String()
}()

var runIDRe = regexp.MustCompile(`\d{8}T\d{6}Z-[0-9a-f]{6}`)

// TestBadInput runs every row of badInputs: the exit code and the exact
// error line, and the malformed value's secrets never echoed.
func TestBadInput(t *testing.T) {
	done := newEnv(t, fast())
	job := done.issue("SELECT 1 AS a")
	done.waitOK(job)
	slow := newEnv(t, emulator.Options{RunningFor: time.Hour})
	running := slow.issue("SELECT 1 AS a")

	for _, c := range badInputs {
		t.Run(c.input, func(t *testing.T) {
			e := done
			if strings.Contains(strings.Join(c.args, " "), "{running}") {
				e = slow
			}
			e = e.fork(t)
			dir := t.TempDir()
			var args []string
			for _, a := range c.args {
				a = strings.NewReplacer("{job}", job, "{running}", running, "{dig}", filepath.Join(dir, "a.dig"), "DIR", dir).Replace(a)
				args = append(args, a)
			}
			if c.dig != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "a.dig"), []byte(c.dig), 0o644))
			}
			if c.tdconf != "" {
				require.NoError(t, os.MkdirAll(filepath.Join(e.home, ".td"), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(e.home, ".td", "td.conf"), []byte(c.tdconf), 0o600))
			}
			if c.stdin != "" {
				in, err := os.Open(c.stdin)
				require.NoError(t, err)
				defer in.Close()
				e.outFile = func(ios *iostreams.IOStreams) { ios.In = in }
			}
			for k, v := range c.vars {
				if v == "" {
					delete(e.vars, k)
				} else {
					e.vars[k] = v
				}
			}
			r := e.run(args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := strings.NewReplacer(filepath.Join(dir, "a.dig"), "a.dig", dir, "DIR", e.home, "~").Replace(lines[len(lines)-1])
			last = runIDRe.ReplaceAllString(last, "RUN")
			want := strings.NewReplacer("{job}", job, "{running}", running).Replace(c.msg)
			assert.Equal(t, c.code, r.code, "exit code; stderr: %s", r.stderr)
			assert.Equal(t, want, last, "stderr: %s", r.stderr)
			for _, secret := range []string{"pw@", "abc\x1b", "abc\x7f"} {
				assert.NotContains(t, r.stderr+r.stdout, secret, "the malformed value is not echoed")
			}
		})
	}
}

// fork is e for subtest t, with a home and variables of its own.
func (e *env) fork(t *testing.T) *env {
	c := *e
	c.t, c.home, c.vars = t, t.TempDir(), maps.Clone(e.vars)
	c.vars["XDG_CONFIG_HOME"] = filepath.Join(c.home, ".config")
	c.vars["TDCTL_RUNS_DIR"] = filepath.Join(c.home, "runs")
	return &c
}

// readmeTableMarker starts the README's Troubleshooting table.
const readmeTableMarker = "<!-- generated from internal/cli/badinput_test.go: UPDATE_README=1 go test ./internal/cli -run TestBadInputTableIsTheREADMEs -->"

var seeHelpRe = regexp.MustCompile(` \(see 'tdctl [a-z0-9 -]+ --help'\)$`)

// badInputTable is the README's table of badInputs: each message as the
// test asserts it, without the "(see 'tdctl CMD --help')" that ends usage
// errors.
func badInputTable() string {
	var b strings.Builder
	b.WriteString(readmeTableMarker + "\n\n| input | message [exit code] |\n|---|---|\n")
	for _, c := range badInputs {
		msg := seeHelpRe.ReplaceAllString(c.msg, "")
		msg = strings.NewReplacer("{job}", "ID", "{running}", "ID").Replace(msg)
		open, end := "`", "`"
		if strings.Contains(msg, "`") { // a code span that holds backticks
			open, end = "`` ", " ``"
		}
		fmt.Fprintf(&b, "| %s | %s%s%s [%d] |\n", c.input, open, strings.ReplaceAll(msg, "|", `\|`), end, c.code)
	}
	return b.String()
}

// TestBadInputTableIsTheREADMEs keeps the README's Troubleshooting table
// the one badInputs asserts (UPDATE_README=1 rewrites it).
func TestBadInputTableIsTheREADMEs(t *testing.T) {
	const path = "../../README.md"
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	readme := string(data)
	start := strings.Index(readme, readmeTableMarker)
	require.NotEqual(t, -1, start, "README.md has no %q", readmeTableMarker)
	// the table ends at the first blank line after its rows
	block := readme[start:]
	if i := strings.Index(block, "|\n\n"); i != -1 {
		block = block[:i+2]
	}
	want := badInputTable()
	if block == want {
		return
	}
	if os.Getenv("UPDATE_README") != "" {
		require.NoError(t, os.WriteFile(path, []byte(readme[:start]+want+readme[start+len(block):]), 0o644))
		return
	}
	assert.Equal(t, want, block, "README.md's Troubleshooting table is not badInputs: rerun with UPDATE_README=1")
}

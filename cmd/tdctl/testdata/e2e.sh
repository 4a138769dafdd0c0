#!/usr/bin/env bash
# End-to-end script run by e2e_test.go: every tdctl command as a process
# against `tdctl dev-server`, checking outputs and exit codes the way a CI
# script would. Needs TDCTL (the binary), TD_API_SERVER and TD_API_KEY, and
# SLOW_SERVER: a second dev-server whose jobs stay running (for job kill).
set -uo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_code() { # expect_code WANT CMD...
  local want=$1; shift
  "$@" >"$out" 2>"$err"; local got=$?
  [ "$got" = "$want" ] || fail "$* exited $got, want $want; stderr: $(cat "$err")"
}
out=$(mktemp); err=$(mktemp); trap 'rm -f "$out" "$err"' EXIT
t=$TDCTL

# version, completion
expect_code 0 $t version; grep -q '^tdctl ' "$out" || fail "version: $(cat "$out")"
for sh in bash zsh fish; do expect_code 0 $t completion $sh; grep -q tdctl "$out" || fail "completion $sh"; done
expect_code 1 $t completion tcsh

# query without -w: the job id alone on stdout
job=$($t query -d sample_datasets 'SELECT 1 AS a, 2 AS b') || fail "query exited $?"
[[ $job =~ ^[0-9]+$ ]] || fail "query printed '$job', want a job id"

# wait, status, num-records, show, result
expect_code 0 $t job wait "$job" --poll-interval 100ms -o json
grep -q '"status": "success"' "$out" || fail "wait -o json: $(cat "$out")"
[ "$($t job status "$job")" = success ] || fail "status"
n=$($t job num-records "$job") || fail "num-records exited $?"
[ "$n" = 1 ] || fail "num-records printed '$n', want 1"
$t job show "$job" -o json | grep -q '"num_records": 1' || fail "show -o json"
[ "$($t job result "$job" -f csv -c)" = "$(printf 'a,b\n1,2')" ] || fail "result csv: $($t job result "$job" -f csv -c)"
[ "$($t job result "$job")" = "$(printf '1\t2')" ] || fail "result tsv (piped default)"

# query -w with -f/-o like the Ruby td CLI, SQL from stdin
echo "SELECT code, COUNT(1) AS n FROM www_access GROUP BY code ORDER BY code" |
  $t query -d sample_datasets -w --poll-interval 100ms -f jsonl -o "$out.jsonl" - 2>"$err" || fail "query -w exited $?: $(cat "$err")"
head -1 "$out.jsonl" | grep -q '"code":' || fail "jsonl file: $(head -2 "$out.jsonl")"
rm -f "$out.jsonl"

# job list: piped output is tab-separated with RFC 3339 times
expect_code 0 $t job list --limit 5
grep -q "^$job	success	presto	sample_datasets	20[0-9-]*T[0-9:]*Z	" "$out" || fail "list tsv: $(cat "$out")"
[ "$($t job list --limit 1 -o jsonl | wc -l)" = 1 ] || fail "list --limit 1"

# export to the emulator's own table, and wait for it
expect_code 0 $t job export --job-id "$job" --result-url 'td://@/sample_datasets/e2e_copy?mode=replace' --wait --poll-interval 100ms
grep -q "success" "$out" || fail "export: $(cat "$out")"
[ "$($t query -d sample_datasets -w --poll-interval 100ms 'SELECT COUNT(1) FROM e2e_copy' 2>/dev/null)" = 1 ] || fail "exported table has no row"

# export through a saved connection, with settings inline and from @FILE,
# beside a result URL: repeated targets, one export job each
expect_code 0 $t job export --job-id "$job" --wait --poll-interval 100ms \
  --result-url 'td://@/sample_datasets/e2e_multi?mode=replace' \
  --connection my_s3_connection --settings '{"bucket":"e2e_bucket","path":"/inline/"}'
[ "$(grep -c '	success	' "$out")" = 2 ] || fail "two export jobs, both success: $(cat "$out")"
grep -q '	connection my_s3_connection	' "$out" || fail "connection target named: $(cat "$out")"
echo '{"bucket":"e2e_bucket","path":"/file/"}' >"$out.settings"
expect_code 0 $t job export "$job" --connection my_s3_connection --settings "@$out.settings" -o json
grep -q '"export_job_id": "[0-9]*"' "$out" || fail "export -o json: $(cat "$out")"
rm -f "$out.settings"
expect_code 1 $t job export "$job" --connection my_s3_connection --settings '{bad'
grep -q 'settings must be a JSON object' "$err" || fail "bad settings: $(cat "$err")"
expect_code 2 $t job export "$job" --connection no_such_connection
grep -q 'no_such_connection' "$err" || fail "unknown connection: $(cat "$err")"

# every query flag of the Ruby td CLI reaches the job
q=$($t query -d sample_datasets -T hive -P -1 -R 2 --engine-version stable --pool adhoc \
  --domain-key "e2e-dk-$$" 'SELECT 1 AS a') || fail "query with every flag exited $?"
[ "$($t query -d sample_datasets -T hive --domain-key "e2e-dk-$$" 'SELECT 1 AS a')" = "$q" ] ||
  fail "the same --domain-key made a second job"
expect_code 0 $t job wait "$q" --poll-interval 100ms -o json
grep -q '"type": "hive"' "$out" && grep -q '"priority": -1' "$out" && grep -q '"retry_limit": 2' "$out" ||
  fail "-T/-P/-R not on the job: $(cat "$out")"
expect_code 0 $t query -d sample_datasets -P VERY_HIGH -T trino 'SELECT 1'
# -r writes the result to a result URL as part of the query job itself
[ "$($t query -d sample_datasets -w --poll-interval 100ms -r 'td://@/sample_datasets/e2e_r?mode=replace' 'SELECT 7 AS z' 2>/dev/null)" = 7 ] ||
  fail "query -r -w output"
[ "$($t query -d sample_datasets -w --poll-interval 100ms 'SELECT z FROM e2e_r' 2>/dev/null)" = 7 ] || fail "-r table"

# result formats, and -o FILE
$t job result "$job" -f json | grep -q '"a": *1' || fail "result -f json: $($t job result "$job" -f json)"
[ "$($t job result "$job" -f tsv -c)" = "$(printf 'a\tb\n1\t2')" ] || fail "result -f tsv -c"
[ "$($t job result "$job" -f table)" = "$(printf 'A  B\n1  2')" ] || fail "result -f table: $($t job result "$job" -f table)"
expect_code 0 $t job result "$job" -f msgpack.gz -o "$out.gz"
[ "$(gzip -dc "$out.gz" | od -An -tx1 | tr -d ' \n')" = 920102 ] || fail "msgpack.gz bytes: $(gzip -dc "$out.gz" | od -An -tx1)"
rm -f "$out.gz"

# job list --status; job kill on a server whose jobs run for an hour
expect_code 0 $t job list --status success --limit 100
grep -q "^$job	success	" "$out" || fail "list --status success: $(cat "$out")"
cut -f2 "$out" | grep -vqx success && fail "list --status success lists others: $(cat "$out")"
running=$(TD_API_SERVER=$SLOW_SERVER $t query -d sample_datasets 'SELECT 1') || fail "query on the slow server"
expect_code 0 env TD_API_SERVER="$SLOW_SERVER" $t job list --status running
grep -q "^$running	running	" "$out" || fail "list --status running: $(cat "$out")"
expect_code 0 env TD_API_SERVER="$SLOW_SERVER" $t job kill "$running"
[ "$(cat "$out")" = "$running	running" ] || fail "kill prints the job and its former status: $(cat "$out")"
[ "$(TD_API_SERVER=$SLOW_SERVER $t job status "$running")" = killed ] || fail "killed job's status"
expect_code 3 env TD_API_SERVER="$SLOW_SERVER" $t job wait "$running" --poll-interval 100ms
expect_code 2 env TD_API_SERVER="$SLOW_SERVER" $t job kill 999999999

# config show: what is in effect, the key masked
expect_code 0 $t config show
grep -q '^apikey	1/\*\*\*	env TD_API_KEY' "$out" || fail "config show: $(cat "$out")"
grep -q "^endpoint	$TD_API_SERVER	env TD_API_SERVER" "$out" || fail "config show endpoint: $(cat "$out")"

# failed job: exit 3, num-records too
bad=$($t query -d sample_datasets 'SELECT * FROM no_such_table')
expect_code 3 $t job wait "$bad" --poll-interval 100ms
expect_code 3 $t job num-records "$bad" --wait --poll-interval 100ms
expect_code 3 $t query -d sample_datasets -w --poll-interval 100ms 'SELECT * FROM no_such_table'

# unknown job: API error, exit 2
expect_code 2 $t job show 999999999
# usage errors: exit 1
expect_code 1 $t job show
expect_code 1 $t job list --status nope
expect_code 1 $t query -d sample_datasets -T spark 'SELECT 1'
# no API key: exit 1 and a message naming the fix
expect_code 1 env -u TD_API_KEY $t job list
grep -q 'no API key: set TD_API_KEY' "$err" || fail "no key message: $(cat "$err")"

# a closed pipe is success
$t job list --limit 0 | head -c 1 >/dev/null; [ "${PIPESTATUS[0]}" = 0 ] || fail "EPIPE exit ${PIPESTATUS[0]}"

# commands that live in tdctl-full: tdctl runs it with the command line
# unchanged (global flags, help, completion) and exits with its code
expect_code 0 $t --help; grep -q '^  workflow ' "$out" || fail "--help lists workflow: $(cat "$out")"
expect_code 0 $t workflow --help; grep -q 'run  ' "$out" || fail "workflow --help is tdctl-full's: $(cat "$out")"
expect_code 0 $t help param; grep -q 'param_get>' "$out" || fail "help param"
expect_code 0 $t __complete workflow ''; grep -q '^check' "$out" || fail "completion of workflow: $(cat "$out")"
expect_code 0 $t __complete wor; grep -q '^workflow' "$out" || fail "completion of a dispatched name"
expect_code 0 $t param set e2e_key '{"n": 42}'
[ "$($t --debug param get e2e_key 2>/dev/null)" = '{"n":42}' ] || fail "param get after set"
expect_code 1 $t param get e2e_missing; grep -q 'not set' "$err" || fail "param get missing: $(cat "$err")"
expect_code 2 $t param get k --store 'postgres://e2e:e2e-store-pw@127.0.0.1:1/x'
grep -q 'e2e-store-pw' "$err" && fail "store password printed"
wf=$(mktemp -d); trap 'rm -rf "$out" "$err" "$wf"' EXIT
printf '+q:\n  td>:\n  query: SELECT 1 AS a\n  database: sample_datasets\n+n:\n  param_set>:\n    e2e_n: ${td.last_job.num_records}\n' >"$wf/ok.dig"
printf '+q:\n  td>:\n  query: SELECT * FROM no_such_table\n  database: sample_datasets\n' >"$wf/bad.dig"
expect_code 0 $t workflow check "$wf/ok.dig"
expect_code 0 $t workflow run "$wf/ok.dig" --runs-dir "$wf/runs"
[ "$($t param get e2e_n)" = 1 ] || fail "workflow's param_set>: $($t param get e2e_n)"
expect_code 3 $t workflow run "$wf/bad.dig" --runs-dir "$wf/runs"
expect_code 1 $t workflow check "$wf/missing.dig"

echo "e2e OK"

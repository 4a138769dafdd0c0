package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/workflow"
)

// resumeDig is four tasks: a query, a script that stores a param and counts
// its runs, a script that fails while the file ${dir}/fail exists, and a
// task that prints what the first two stored.
const resumeDig = `timezone: UTC

+query:
  td>:
    data: SELECT 1 AS a
  database: sample_datasets
  store_last_results: true

+store:
  sh>: echo run >> ${dir}/store.count && echo "::set-param from_sh=hello"

+flaky:
  sh>: test ! -f ${dir}/fail

+report:
  echo>: job ${td.last_job_id} rows ${td.last_job.num_records} ${from_sh} ${td.last_results.a}
`

func resumeSetup(t *testing.T) (*env, interface{ JobCount() int }, string, string) {
	e, srv, _ := wfEnv(t)
	dir := t.TempDir()
	dig := filepath.Join(dir, "resume.dig")
	require.NoError(t, os.WriteFile(dig, []byte(resumeDig), 0o644))
	return e, srv, dir, dig
}

func lines(t *testing.T, path string) int {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(data), "\n")
}

// runID is the id of the newest run (the one the last command made; run
// ids of the same second are told apart by their start time).
func runID(t *testing.T, e *env) string {
	dir := filepath.Join(e.home, "runs")
	ids, err := workflow.RunIDs(dir)
	require.NoError(t, err)
	var newest *workflow.Summary
	for _, id := range ids {
		s, err := workflow.LoadSummary(dir, id)
		require.NoError(t, err)
		if newest == nil || s.StartedAt.After(newest.StartedAt) {
			newest = s
		}
	}
	require.NotNil(t, newest)
	return newest.RunID
}

type resumeSummary struct {
	RunID       string `json:"run_id"`
	State       string `json:"state"`
	SessionTime string `json:"session_time"`
	SessionID   int64  `json:"session_id"`
	SessionUUID string `json:"session_uuid"`
	AttemptID   int64  `json:"attempt_id"`
	ResumedFrom string `json:"resumed_from"`
	Tasks       []struct {
		Task        string         `json:"task"`
		State       string         `json:"state"`
		JobID       string         `json:"job_id"`
		Store       map[string]any `json:"store"`
		ResumedFrom string         `json:"resumed_from"`
	} `json:"tasks"`
}

func loadRun(t *testing.T, e *env, id string) resumeSummary {
	r := e.run("workflow", "logs", id, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var s resumeSummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
	return s
}

// The acceptance case of issue 14 (digdag's RunWithResumeIT and `digdag
// retry --resume`, command_reference "retry"): the third of four tasks
// fails once; the retry issues no query for the first task, does not run
// the second again, and the fourth sees what the first two stored.
func TestWorkflowRetryResumesAfterTheFailedTask(t *testing.T) {
	e, srv, dir, dig := resumeSetup(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644))
	r := e.run("workflow", "run", dig, "-p", "dir="+dir, "--session", "2026-01-02")
	require.Equal(t, 3, r.code, r.stdout+r.stderr)
	first := runID(t, e)
	jobs := srv.JobCount()
	require.Equal(t, 1, jobs)
	require.Equal(t, 1, lines(t, filepath.Join(dir, "store.count")))
	s1 := loadRun(t, e, first)
	require.Len(t, s1.Tasks, 3)
	assert.Equal(t, "+resume+query", s1.Tasks[0].Task)
	assert.Equal(t, s1.Tasks[0].JobID, s1.Tasks[0].Store["td.last_job_id"], "the query's stored params are kept in the record")
	assert.Equal(t, "hello", s1.Tasks[1].Store["from_sh"])

	require.NoError(t, os.Remove(filepath.Join(dir, "fail")))
	r = e.run("workflow", "retry", first)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, jobs, srv.JobCount(), "no query is issued for the restored task")
	assert.Equal(t, 1, lines(t, filepath.Join(dir, "store.count")), "the script that succeeded is not run again")
	jobID := s1.Tasks[0].JobID
	assert.Contains(t, r.stdout, "+resume+report: job "+jobID+" rows 1 hello 1\n", "the last task sees what the restored tasks stored")
	assert.Contains(t, r.stderr, "+resume+query: restored from run "+first)

	s2 := loadRun(t, e, runID(t, e))
	assert.Equal(t, "success", s2.State)
	assert.Equal(t, first, s2.ResumedFrom)
	assert.Equal(t, s1.SessionTime, s2.SessionTime, "the session is kept")
	assert.Equal(t, s1.SessionID, s2.SessionID)
	assert.Equal(t, s1.SessionUUID, s2.SessionUUID)
	assert.Equal(t, s1.AttemptID+1, s2.AttemptID, "a new attempt")
	states := map[string]string{}
	for _, task := range s2.Tasks {
		states[task.Task] = task.State
	}
	assert.Equal(t, map[string]string{"+resume+query": "skipped", "+resume+store": "skipped", "+resume+flaky": "success", "+resume+report": "success"}, states)

	// a retry of the retry restores from the restored records, and the
	// query is still the first run's
	r = e.run("workflow", "retry", runID(t, e))
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, jobs, srv.JobCount())
	assert.NotContains(t, r.stdout, "+resume+report:", "every task succeeded: nothing runs again")

	// --all runs everything again, in the same session
	r = e.run("workflow", "retry", first, "--all")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, jobs+1, srv.JobCount())
	assert.Equal(t, 2, lines(t, filepath.Join(dir, "store.count")))
}

// digdag retry --resume-from: the task named and those after it run again;
// the tasks before it must have succeeded.
func TestWorkflowRetryResumeFrom(t *testing.T) {
	e, srv, dir, dig := resumeSetup(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644))
	r := e.run("workflow", "run", dig, "-p", "dir="+dir)
	require.Equal(t, 3, r.code, r.stdout+r.stderr)
	first := runID(t, e)

	r = e.run("workflow", "retry", first, "--resume-from", "+report")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "+resume+flaky (error) before it did not succeed")
	r = e.run("workflow", "retry", first, "--resume-from", "+nope")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--resume-from +nope: no task +nope in workflow resume")

	require.NoError(t, os.Remove(filepath.Join(dir, "fail")))
	r = e.run("workflow", "retry", first, "--resume-from", "+store")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, 1, srv.JobCount(), "the query before +store is restored")
	assert.Equal(t, 2, lines(t, filepath.Join(dir, "store.count")), "+store runs again")
	assert.Contains(t, r.stdout, "+resume+report: job ")

	r = e.run("workflow", "retry", first, "--all", "--resume-from", "+store")
	assert.Equal(t, 1, r.code)
}

// digdag run --start / --goal / --end against the last run of the same
// session (digdag's .digdag/status/<session>).
func TestWorkflowRunStartGoalEnd(t *testing.T) {
	e, srv, dir, dig := resumeSetup(t)
	run := func(args ...string) result {
		return e.run(append([]string{"workflow", "run", dig, "-p", "dir=" + dir, "--session", "2026-01-02"}, args...)...)
	}
	r := run()
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	require.Equal(t, 1, srv.JobCount())

	// --start +flaky: the tasks before are restored, +flaky and after run
	r = run("--start", "+flaky")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, 1, srv.JobCount())
	assert.Equal(t, 1, lines(t, filepath.Join(dir, "store.count")))
	assert.Contains(t, r.stdout, "+resume+report: job ")

	// --goal +store: +query restored, +store runs, the rest is skipped
	r = run("--goal", "+store")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, 1, srv.JobCount())
	assert.Equal(t, 2, lines(t, filepath.Join(dir, "store.count")))
	assert.NotContains(t, r.stdout, "+resume+report:")
	assert.Contains(t, r.stderr, "+resume+report: skipped")

	// --end alone: the tasks before it are restored, it and after skipped
	r = run("--end", "+report")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, 1, srv.JobCount())
	assert.Equal(t, 2, lines(t, filepath.Join(dir, "store.count")))
	assert.Contains(t, r.stderr, "+resume+query: restored from run ")
	assert.NotContains(t, r.stdout, "+resume+report:")

	// --end +flaky --rerun: nothing restored, +flaky and after skipped
	r = run("--end", "+flaky", "--rerun")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, 2, srv.JobCount(), "--rerun restores nothing")
	assert.NotContains(t, r.stdout, "+resume+report:")

	// a new session has nothing to restore: --start runs all
	r = e.run("workflow", "run", dig, "-p", "dir="+dir, "--session", "2026-01-03", "--start", "+report")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, 3, srv.JobCount())

	for _, bad := range [][]string{{"--start", "+a", "--goal", "+b"}, {"--goal", "+a", "--end", "+b"}, {"--rerun", "--start", "+a"}, {"--rerun", "--goal", "+a"}} {
		r = run(bad...)
		assert.Equal(t, 1, r.code, "%v", bad)
		assert.Contains(t, r.stderr, "cannot be used together", "%v", bad)
	}
	r = e.run("workflow", "run", dig, "+store")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "the task argument +store (digdag run FILE +TASK) is not supported")
	for _, flag := range []string{"--project=x", "--no-save", "--task-log=x", "--timezone=UTC"} {
		r = run(flag)
		assert.Equal(t, 1, r.code, flag)
		assert.Contains(t, r.stderr, "is not supported", flag)
	}
}

// -P params.yml: nested keys read as ${a.b}; -p wins over the file.
func TestWorkflowParamsFile(t *testing.T) {
	e, _, _ := wfEnv(t)
	dir := t.TempDir()
	dig := filepath.Join(dir, "p.dig")
	require.NoError(t, os.WriteFile(dig, []byte("+show:\n  echo>: ${greeting} ${mysql.user} ${mysql.host} ${n}\n"), 0o644))
	pf := filepath.Join(dir, "params.yml")
	require.NoError(t, os.WriteFile(pf, []byte("greeting: from-file\nmysql: {user: me, host: db1}\nn: 3\n"), 0o644))
	r := e.run("workflow", "run", dig, "-P", pf)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "+p+show: from-file me db1 3\n")
	r = e.run("workflow", "run", dig, "-P", pf, "-p", "greeting=from-p", "-p", "mysql.host=db2")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "+p+show: from-p me db2 3\n", "-p wins over -P, key by key")
	r = e.run("workflow", "check", dig, "-P", pf)
	assert.Equal(t, 0, r.code, r.stderr)

	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("- a\n- b\n"), 0o644))
	r = e.run("workflow", "run", dig, "-P", bad)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "-P "+bad+": not a YAML/JSON mapping")
	r = e.run("workflow", "run", dig, "-P", filepath.Join(dir, "none.yml"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "none.yml")
}

// digdag run -d: every task is evaluated and says what it would do;
// nothing runs, nothing is kept.
func TestWorkflowDryRunIssuesNothing(t *testing.T) {
	e, srv, _ := wfEnv(t)
	dir := t.TempDir()
	store := "sqlite://" + filepath.Join(dir, "params.db")
	dig := filepath.Join(dir, "dry.dig")
	require.NoError(t, os.WriteFile(dig, []byte(`+q:
  td>:
    data: SELECT ${n} AS a
  database: sample_datasets
+sh:
  sh>: touch `+filepath.Join(dir, "touched")+`
+set:
  param_set>:
  k: v
`), 0o644))
	r := e.run("workflow", "run", dig, "-p", "n=7", "--dry-run", "-E", "--param-store", store)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, 0, srv.JobCount(), "no query")
	assert.NoFileExists(t, filepath.Join(dir, "touched"), "no script")
	assert.Contains(t, r.stdout, "+dry+q: dry run: would run td> ")
	assert.Contains(t, r.stdout, "SELECT 7 AS a", "the settings are evaluated")
	assert.Contains(t, r.stdout, "+dry+q:   \"n\": \"7\"", "-E shows the params")
	assert.Contains(t, r.stdout, "+dry+set: dry run: would run param_set>\n")
	r = e.run("param", "get", "k", "--store", store)
	assert.NotEqual(t, 0, r.code, "no param store write")
	ids, err := os.ReadDir(filepath.Join(e.home, "runs"))
	if err == nil {
		assert.Empty(t, ids, "no run record")
	}
}

// A -p holding a secret is not kept in the run record: retry asks for it
// again instead of running without it.
func TestWorkflowRetryAsksForASecretParamAgain(t *testing.T) {
	e, _, _ := wfEnv(t)
	dir := t.TempDir()
	dig := filepath.Join(dir, "s.dig")
	require.NoError(t, os.WriteFile(dig, []byte("+a:\n  sh>: test ! -f "+filepath.Join(dir, "fail")+"\n+b:\n  sh>: test -n \"${url}\"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644))
	url := "postgres://u:hunter22@127.0.0.1/db"
	r := e.run("workflow", "run", dig, "-p", "url="+url, "-p", "plain=x")
	require.Equal(t, 3, r.code, r.stdout+r.stderr)
	first := runID(t, e)
	data, err := os.ReadFile(filepath.Join(e.home, "runs", first, "summary.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(data), "hunter22")
	assert.Contains(t, string(data), `"plain": "x"`)
	require.NoError(t, os.Remove(filepath.Join(dir, "fail")))
	r = e.run("workflow", "retry", first)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "param url held a secret and was not recorded: give it again with -p url=VALUE")
	r = e.run("workflow", "retry", first, "-p", "url="+url)
	assert.Equal(t, 0, r.code, r.stdout+r.stderr)
}

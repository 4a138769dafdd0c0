package operators

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

func (h *tdHarness) client(t *testing.T) *td.Client {
	t.Helper()
	c, err := h.ops["td"].(*Query).Env.TD()
	require.NoError(t, err)
	return c
}

// checkDig runs `workflow check` on dig and returns its error.
func (h *tdHarness) checkDig(t *testing.T, dig string) error {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "wf.dig")
	require.NoError(t, os.WriteFile(file, []byte(dig), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	return (&workflow.Runner{Operators: h.ops, RunsDir: filepath.Join(dir, "runs")}).Check(wf)
}

// digdag's TdRunIT: td_run> runs a saved query by name and by id, for the
// session time, and stores the job as td.last_job_id (td_run.md).
func TestTDRunByNameAndID(t *testing.T) {
	h := newTDHarness(t)
	c := h.client(t)
	ctx := context.Background()
	saved, err := c.Schedules.Create(ctx, "my_query", &td.ScheduleOptions{Database: "sample_datasets",
		Query: "SELECT TD_SCHEDULED_TIME() AS t, 5 AS n", Cron: "@daily"})
	require.NoError(t, err)

	r := h.run(t, fmt.Sprintf(`
timezone: UTC
_export:
  td:
    database: sample_datasets

+by_name:
  td_run>: my_query
  session_time: 2016-01-01T01:01:01+00:00
  store_last_results: true
+show_name:
  echo>: id=${td.last_job_id} same=${td.last_job.id} n=${td.last_job.num_records} t=${td.last_results.t}
+by_id:
  td_run>: %d
  database: sample_datasets
+show_id:
  echo>: id=${td.last_job_id}
`, saved.ID), nil, nil)
	require.NoError(t, r.err, r.out)
	hist, err := c.Schedules.History(ctx, "my_query", nil)
	require.NoError(t, err)
	require.Len(t, hist, 2, "each td_run> ran the saved query once")
	var byName, byID *td.HistoryJob
	for _, j := range hist {
		if j.ScheduledAt.Equal(time.Date(2016, 1, 1, 1, 1, 1, 0, time.UTC)) {
			byName = j
		} else {
			byID = j
		}
	}
	require.NotNil(t, byName)
	require.NotNil(t, byID)
	assert.Contains(t, r.out, fmt.Sprintf("+wf+show_name: id=%s same=%s n=1 t=%d\n", byName.ID, byName.ID, int64(1451610061)))
	assert.Contains(t, r.out, "+wf+show_id: id="+byID.ID+"\n")
	assert.Contains(t, taskLog(t, r.sum, "+by_name"), "started saved query name=my_query for 2016-01-01T01:01:01Z: job "+byName.ID)
	// by id through /v4/queries/ID/jobs, with the run's derived domain key
	var v4 bool
	for _, req := range h.srv.Requests() {
		if req.Path == fmt.Sprintf("/v4/queries/%d/jobs", saved.ID) {
			v4 = true
		}
	}
	assert.True(t, v4)
}

func TestTDRunUnknownSavedQueryFails(t *testing.T) {
	h := newTDHarness(t)
	r := h.run(t, "+r:\n  td_run>: nope\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "td_run>: no database: add database: NAME", "digdag requires a database of td_run>")
	r = h.run(t, "+r:\n  td_run>: nope\n  database: sample_datasets\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), `no saved query named "nope"`)
	r = h.run(t, "+r:\n  td_run>: 4242\n  database: sample_datasets\n", nil, nil)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "no saved query with id 4242")
	assert.Empty(t, h.jobs(t))
}

func TestTDRunAndWaitCheck(t *testing.T) {
	h := newTDHarness(t)
	for dig, msg := range map[string]string{
		"+r:\n  td_run>:\n": "td_run> needs a saved query",
		"+r:\n  td_run>: q\n  store_last_results: all\n":           "td_run>: store_last_results must be true or false",
		"+r:\n  td_run>: q\n  session_time: yesterday\n":           "td_run>: session_time must be an RFC 3339 time",
		"+r:\n  td_run>: q\n  download_fil: a.csv\n":               "unknown td_run> key download_fil (did you mean download_file?)",
		"+r:\n  td_run>: q\n  apikey: x\n":                         "apikey is a digdag td_run> setting tdctl does not support",
		"+w:\n  td_wait>:\n    data: select 1\n  interval: 10s\n":  "td_wait>: poll interval must be at least 30s and no greater than 48h0m0s (got 10s)",
		"+w:\n  td_wait>:\n    data: select 1\n  interval: soon\n": `td_wait>: interval: "soon" is not a duration`,
		"+w:\n  td_wait>:\n    data: select 1\n  engine: trino\n":  `td_wait>: unknown engine "trino": use presto or hive`,
		"+w:\n  td_wait>:\n    data: select 1\n  intervall: 1m\n":  "unknown td_wait> key intervall (did you mean interval?)",
		"+w:\n  td_wait>:\n    data: select 1\n  priority: high\n": "td_wait>: priority must be a whole number",
		"+w:\n  td_wait>: missing.sql\n":                           "td_wait>: query file missing.sql",
		"+w:\n  td_wait>:\n    data: select 1\n    engine: hive\n": "td_wait>: engine under td_wait>: is not read",
	} {
		err := h.checkDig(t, dig)
		require.Error(t, err, dig)
		assert.Contains(t, err.Error(), msg, dig)
	}
	assert.NoError(t, h.checkDig(t, "+w:\n  td_wait>:\n    data: select 1\n  interval: 1m 30s\n  database: d\n+r:\n  td_run>: 12\n  preview: true\n"))
	assert.Empty(t, h.jobs(t), "check runs nothing")
}

// fastWaitHarness lets td_wait> poll every second (digdag's
// config.td_wait.min_poll_interval, as TdWaitIT sets it).
func fastWaitHarness(t *testing.T, opts emulator.Options) *tdHarness {
	h := newTDHarnessOpts(t, opts)
	h.ops["td_wait"].(*TDWait).Env.WaitMinInterval = time.Second
	return h
}

// digdag's TdWaitIT Truthiness: anything but null, false and 0 ends the wait.
func TestTDWaitTruthiness(t *testing.T) {
	h := fastWaitHarness(t, emulator.Options{})
	r := h.run(t, `
+wait:
  _parallel: true
  +wait_1:        { td_wait>: { data: "select 1" }, database: sample_datasets }
  +wait_17:       { td_wait>: { data: "select 17" }, database: sample_datasets }
  +wait_negative: { td_wait>: { data: "select -4711" }, database: sample_datasets }
  +wait_true:     { td_wait>: { data: "select true" }, database: sample_datasets }
  +wait_string:   { td_wait>: { data: "select 'foobar'" }, database: sample_datasets }
  +wait_zero_str: { td_wait>: { data: "select '0'" }, database: sample_datasets }
`, nil, nil)
	require.NoError(t, r.err, r.out)
	assert.Len(t, h.jobs(t), 6, "one poll each")
	// td_wait> stores nothing (digdag's operator returns TaskResult.empty)
	err := h.checkDig(t, "+w:\n  td_wait>:\n    data: select 1\n+after:\n  echo>: ${td.last_job_id}\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "param ${td.last_job_id} is not defined")
}

// digdag's TdWaitIT Falsiness: null, false and 0 keep it waiting.
func TestTDWaitFalsinessKeepsPolling(t *testing.T) {
	for _, v := range []string{"0", "false", "NULL"} {
		t.Run(v, func(t *testing.T) {
			h := fastWaitHarness(t, emulator.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			r := h.runCtx(ctx, t, "+w:\n  td_wait>:\n    data: select "+v+"\n  database: sample_datasets\n  interval: 1s\n", nil, nil)
			require.ErrorIs(t, r.err, context.DeadlineExceeded)
			assert.GreaterOrEqual(t, len(h.jobs(t)), 2, "polled again after the interval")
			assert.Contains(t, taskLog(t, r.sum, "+w"), "not yet; polling again in 1s")
		})
	}
}

// The wait ends once the data arrives (TdWaitIT's table that fills up),
// and every poll runs for the session time.
func TestTDWaitUntilDataArrives(t *testing.T) {
	h := fastWaitHarness(t, emulator.Options{})
	c := h.client(t)
	ctx := context.Background()
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "wfdb", Query: "CREATE TABLE arrivals (v BIGINT)"})
	require.NoError(t, err)
	_, err = c.Jobs.Wait(ctx, issued.JobID, nil)
	require.NoError(t, err)

	done := make(chan tdRun, 1)
	go func() {
		done <- h.run(t, "timezone: UTC\n+w:\n  td_wait>:\n    data: select count(*) >= 1 from arrivals\n  database: wfdb\n  interval: 1s\n", nil, nil)
	}()
	require.Eventually(t, func() bool { return len(h.issueRequests()) >= 2 }, 10*time.Second, 20*time.Millisecond)
	issued, err = c.Jobs.Issue(ctx, &td.IssueRequest{Database: "wfdb", Query: "INSERT INTO arrivals VALUES (1)"})
	require.NoError(t, err)
	_, err = c.Jobs.Wait(ctx, issued.JobID, nil)
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err, r.out)
	assert.Contains(t, taskLog(t, r.sum, "+w"), "the condition holds")
	polls := 0
	for _, req := range h.issueRequests() {
		if strings.Contains(req.Form.Get("query"), "arrivals") && strings.HasPrefix(req.Form.Get("query"), "select") {
			polls++
			assert.NotEmpty(t, req.Form.Get("scheduled_time"), "a poll runs for the session time")
			assert.NotEmpty(t, req.Form.Get("domain_key"))
		}
	}
	assert.GreaterOrEqual(t, polls, 2)
}

// TdWaitIT's bad query: a poll job that fails fails the task.
func TestTDWaitBadQueryFails(t *testing.T) {
	h := fastWaitHarness(t, emulator.Options{})
	r := h.run(t, "+w:\n  td_wait>:\n    data: 'nasdaq'\n  database: sample_datasets\n", nil, nil)
	require.Error(t, r.err)
	assert.ErrorIs(t, r.err, td.ErrJobFailed)
}

// A cancelled wait kills the poll job it waits for.
func TestTDWaitCancelKillsThePollJob(t *testing.T) {
	h := fastWaitHarness(t, emulator.Options{RunningFor: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	r := h.runCtx(ctx, t, "+w:\n  td_wait>:\n    data: select 1\n  database: wfdb\n", nil, nil)
	require.ErrorIs(t, r.err, context.DeadlineExceeded)
	jobs := h.jobs(t)
	require.Len(t, jobs, 1)
	assert.Equal(t, "killed", jobs[0].Status)
}

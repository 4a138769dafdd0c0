package td_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

func TestSchedulesFlow(t *testing.T) {
	_, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	prio := 1
	created, err := c.Schedules.Create(ctx, "nightly", &td.ScheduleOptions{Database: "sample_datasets",
		Query: "SELECT TD_SCHEDULED_TIME() AS t", Cron: "@daily", Priority: &prio,
		Result: "postgresql://u:hunter2@db.example.com/d/t"})
	require.NoError(t, err)
	assert.NotZero(t, created.ID)
	assert.Equal(t, 1, created.Priority)
	assert.NotContains(t, created.Result, "hunter2")

	_, err = c.Schedules.Create(ctx, "nightly", &td.ScheduleOptions{Database: "sample_datasets", Query: "SELECT 1"})
	assert.ErrorIs(t, err, td.ErrConflict)
	_, err = c.Schedules.Create(ctx, "x", &td.ScheduleOptions{Query: "SELECT 1"})
	var argErr *td.ArgumentError
	assert.ErrorAs(t, err, &argErr, "a missing database is refused before any request")

	got, err := c.Schedules.Get(ctx, "nightly")
	require.NoError(t, err)
	assert.Equal(t, "@daily", got.Cron)
	require.NotNil(t, got.NextTime)
	_, err = c.Schedules.Get(ctx, "nope")
	assert.ErrorIs(t, err, td.ErrNotFound)

	_, err = c.Schedules.Update(ctx, "nightly", &td.ScheduleOptions{Result: "", Query: "SELECT TD_SCHEDULED_TIME() AS t, 2 AS two"})
	require.NoError(t, err)
	plain, err := c.Schedules.Create(ctx, "plain", &td.ScheduleOptions{Database: "sample_datasets", Query: "SELECT TD_SCHEDULED_TIME() AS t"})
	require.NoError(t, err)

	at := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	jobs, err := c.Schedules.Run(ctx, "plain", at, &td.RunOptions{DomainKey: "run-1"})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	again, err := c.Schedules.Run(ctx, "plain", at, &td.RunOptions{DomainKey: "run-1"})
	require.NoError(t, err, "a reused domain key is the job it started")
	assert.Equal(t, jobs[0].ID, again[0].ID)
	job, err := c.Jobs.Wait(ctx, jobs[0].ID, fastWait())
	require.NoError(t, err)
	assert.Equal(t, td.StatusSuccess, job.Status)

	byID, err := c.Schedules.RunID(ctx, plain.ID, at.Add(time.Hour), nil)
	require.NoError(t, err)
	_, err = c.Jobs.Wait(ctx, byID, fastWait())
	require.NoError(t, err)
	_, err = c.Schedules.RunID(ctx, 9999, at, nil)
	assert.ErrorIs(t, err, td.ErrNotFound)

	hist, err := c.Schedules.History(ctx, "plain", nil)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	assert.Equal(t, byID, hist[0].ID, "newest scheduled time first")
	require.NotNil(t, hist[1].ScheduledAt)
	assert.True(t, hist[1].ScheduledAt.Equal(at))

	_, err = c.Schedules.Run(ctx, "nope", at, nil)
	assert.ErrorIs(t, err, td.ErrNotFound)
	assert.Contains(t, err.Error(), `no saved query named "nope"`)

	del, err := c.Schedules.Delete(ctx, "nightly")
	require.NoError(t, err)
	assert.Equal(t, "nightly", del.Name)
	all, err := c.Schedules.List(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
}

func TestConnectionsListShow(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	srv.AddConnection("warehouse", "postgresql://u:hunter2@db.example.com/d/t", nil)
	list, err := c.Connections.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.NotContains(t, list[0].URL, "hunter2")
	got, err := c.Connections.Show(ctx, "warehouse")
	require.NoError(t, err)
	assert.NotZero(t, got.ID)
	_, err = c.Connections.Show(ctx, "other")
	assert.ErrorIs(t, err, td.ErrNotFound)
}

func TestNewRequestDo(t *testing.T) {
	var logs bytes.Buffer
	srv, c, _ := newFlow(t, emulator.Options{}, td.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	ctx := flowCtx(t)
	srv.Faults().Add(emulator.Fault{Path: "/v3/job/list", Status: 503, Times: 2})
	req, err := c.NewRequest(ctx, "get", "v3/job/list?from=0&to=4", nil)
	require.NoError(t, err)
	assert.True(t, req.Retry(), "a GET is retried")
	var raw json.RawMessage
	resp, err := c.Do(ctx, req, &raw)
	require.NoError(t, err, "the 503s are retried within the budget")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(raw), `"jobs"`)

	// a POST is sent once
	srv.Faults().Add(emulator.Fault{Path: "/v3/schedule/create/", Status: 503, Times: 1})
	req, err = c.NewRequest(ctx, http.MethodPost, "/v3/schedule/create/s1", url.Values{"database": {"sample_datasets"}, "query": {"SELECT 1"}})
	require.NoError(t, err)
	_, err = c.Do(ctx, req, nil)
	assert.ErrorIs(t, err, td.ErrServer)
	var out bytes.Buffer
	_, err = c.Do(ctx, req, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), `"name":"s1"`)

	req, err = c.NewRequest(ctx, http.MethodGet, "/v3/job/show/999999", nil)
	require.NoError(t, err)
	_, err = c.Do(ctx, req, nil)
	var apiErr *td.APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, 404, apiErr.StatusCode)

	for _, bad := range []string{"", "/", "https://evil.example.com/v3/job/list"} {
		_, err := c.NewRequest(ctx, "GET", bad, nil)
		assert.ErrorAs(t, err, new(*td.ArgumentError), bad)
	}
	_, err = c.NewRequest(ctx, "G E T", "/v3/job/list", nil)
	assert.Error(t, err)
	_, err = c.NewRequest(ctx, "POST", "/v3/x", 42)
	assert.Error(t, err)

	// the body is logged redacted; the key never
	req, err = c.NewRequest(ctx, http.MethodPost, "/v3/job/issue/presto/sample_datasets",
		strings.NewReader("query=SELECT+1&result=postgresql%3A%2F%2Fu%3Ahunter2%40h%2Fd%2Ft"))
	require.NoError(t, err)
	_, err = c.Do(ctx, req, nil)
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "td request body")
	assert.NotContains(t, logs.String(), "hunter2")
	assert.NotContains(t, logs.String(), flowKey)
}

// A run whose answer is lost is retried under its domain key and resolves to
// the job the lost answer created: never a second run.
func TestScheduleRunLostAnswerStartsOneJob(t *testing.T) {
	srv, c, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	_, err := c.Schedules.Create(ctx, "q", &td.ScheduleOptions{Database: "sample_datasets", Query: "SELECT 1"})
	require.NoError(t, err)
	srv.Faults().Add(emulator.Fault{Path: "/v3/schedule/run/", AfterHandler: true, Times: 1})
	jobs, err := c.Schedules.Run(ctx, "q", time.Unix(1700000000, 0), nil)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	hist, err := c.Schedules.History(ctx, "q", nil)
	require.NoError(t, err)
	require.Len(t, hist, 1, "the retry found the first run's job")
	assert.Equal(t, hist[0].ID, jobs[0].ID)

	// without a domain key (several runs) the POST is sent once
	srv.Faults().Add(emulator.Fault{Path: "/v3/schedule/run/", AfterHandler: true, Times: 1})
	_, err = c.Schedules.Run(ctx, "q", time.Unix(1700000000, 0), &td.RunOptions{Num: 2})
	assert.ErrorIs(t, err, td.ErrNetwork)
	hist, err = c.Schedules.History(ctx, "q", nil)
	require.NoError(t, err)
	assert.Len(t, hist, 3, "sent once: two jobs, not four")
}

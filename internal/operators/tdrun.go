package operators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// digdagOnly are the digdag td operator settings tdctl takes from its own
// configuration instead.
var digdagOnly = map[string]string{
	"apikey":   "tdctl uses its configured API key (TD_API_KEY, --profile)",
	"endpoint": "tdctl uses its configured endpoint (TD_API_SERVER, --profile)",
	"use_ssl":  "tdctl always uses its configured endpoint's scheme",
	"proxy":    "set HTTPS_PROXY in tdctl's environment",
}

var runSpec = keySpec{op: "td_run", known: []string{"database", "session_time", "download_file", "store_last_results", "preview"}, digdag: digdagOnly}

var tdWaitSpec = keySpec{op: "td_wait",
	known: []string{"database", "engine", "interval", "priority", "job_retry", "presto_pool_name", "hive_pool_name",
		"engine_version", "hive_engine_version", "query", "data"}, digdag: digdagOnly}

// Run is td_run>: it runs a saved query (a schedule) for the session time
// — by id when the command is a number, by name otherwise, as digdag's
// TdRunOperatorFactory does — waits for the job and stores td.last_job_id
// and td.last_job.* (and, with store_last_results: true, td.last_results:
// the first row). database is required, as digdag requires it of every td
// job operator, though the saved query runs on its own database.
// session_time: overrides the time the run is for;
// download_file and preview are td>'s. A retry re-attaches to the job an
// earlier attempt started, and every run carries a domain key derived from
// the run, task and attempt.
type Run struct{ Env *Env }

// Defines implements workflow.Definer.
func (r *Run) Defines(t *workflow.Task) []string {
	out := []string{"td.last_job_id", "td.last_job"}
	if n := t.Param("store_last_results"); n != nil && truthy(n.Value) {
		out = append(out, "td.last_results")
	}
	return out
}

// savedQuery is what td_run>: names: an id (a number) or a name.
type savedQuery struct {
	id   int64
	name string
}

func (q savedQuery) String() string {
	if q.id != 0 {
		return fmt.Sprintf("id=%d", q.id)
	}
	return "name=" + q.name
}

// runSettings reads a td_run> task: the saved query, the time, and the
// checks of its boolean settings.
func runSettings(tc *workflow.TaskContext) (savedQuery, time.Time, error) {
	var q savedQuery
	switch v := tc.Command.(type) {
	case int:
		q.id = int64(v)
	case int64:
		q.id = v
	case uint64:
		if v > math.MaxInt64 {
			return q, time.Time{}, fmt.Errorf("td_run>: saved query id %d is out of range", v)
		}
		q.id = int64(v)
	case float64:
		if v != math.Trunc(v) || v > math.MaxInt64 {
			return q, time.Time{}, fmt.Errorf("td_run>: invalid saved query reference %v: give an id (a whole number) or a name", v)
		}
		q.id = int64(v)
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return q, time.Time{}, fmt.Errorf("td_run>: invalid saved query reference %s: give an id (a whole number) or a name", v)
		}
		q.id = n
	case string:
		q.name = strings.TrimSpace(v)
		if q.name == "" && !tc.Dynamic[""] {
			return q, time.Time{}, errors.New("td_run> needs a saved query: td_run>: NAME or td_run>: ID")
		}
	case nil:
		if !tc.Dynamic[""] {
			return q, time.Time{}, errors.New("td_run> needs a saved query: td_run>: NAME or td_run>: ID")
		}
	default:
		return q, time.Time{}, fmt.Errorf("td_run>: invalid saved query reference %s: give an id (a number) or a name", workflow.Format(v))
	}
	if tc.Command != nil && q.id <= 0 && q.name == "" && !tc.Dynamic[""] {
		return q, time.Time{}, fmt.Errorf("td_run>: invalid saved query id %d", q.id)
	}
	// digdag's td_run> needs a database although the saved query has its
	// own (TDOperator.fromConfig requires it of every td job operator)
	if tc.Dynamic == nil && settingString(tc, "database") == "" {
		return q, time.Time{}, errors.New("td_run>: no database: add database: NAME or _export: {td: {database: NAME}} (digdag requires it of td_run> too; the saved query runs on its own database)")
	}
	for _, key := range []string{"store_last_results", "preview"} {
		// digdag reads both as booleans (td>'s store_last_results: all is not td_run>'s)
		if v := settingString(tc, key); v != "" && !tc.Dynamic[key] {
			if _, err := strconv.ParseBool(v); err != nil {
				return q, time.Time{}, fmt.Errorf("td_run>: %s must be true or false (got %q)", key, v)
			}
		}
	}
	t := tc.SessionTime
	if v := tc.String("session_time"); v != "" && !tc.Dynamic["session_time"] {
		st, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return q, time.Time{}, fmt.Errorf("td_run>: session_time must be an RFC 3339 time such as 2016-01-01T01:01:01+00:00 (got %q)", v)
		}
		t = st
	}
	return q, t, nil
}

// Validate implements workflow.Validator.
func (r *Run) Validate(tc *workflow.TaskContext) error {
	if err := runSpec.check(tc.Task, ""); err != nil {
		return err
	}
	_, _, err := runSettings(tc)
	return err
}

// Run implements workflow.Operator.
func (r *Run) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	q, t, err := runSettings(tc)
	if err != nil {
		return nil, err
	}
	c, err := r.Env.td()
	if err != nil {
		return nil, err
	}
	query := &Query{Env: r.Env}
	return query.runAttached(ctx, tc, c, derivedKey(tc), func(key string) (string, error) {
		var id string
		if q.id != 0 {
			id, err = c.Schedules.RunID(ctx, q.id, t, &td.RunOptions{DomainKey: key})
		} else {
			var jobs []*td.ScheduledJob
			jobs, err = c.Schedules.Run(ctx, q.name, t, &td.RunOptions{DomainKey: key})
			if err == nil && len(jobs) == 0 {
				err = fmt.Errorf("td_run>: running saved query %s started no job", q)
			}
			if err == nil {
				id = jobs[0].ID
			}
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(tc.Log, "started saved query %s for %s: job %s\n", q, t.UTC().Format(time.RFC3339), id)
		return id, nil
	})
}

// TDWait is td_wait>: it runs a query for the session time every interval
// (default 30s; digdag's bounds, 30s to 2 days, unless Env.WaitMinInterval
// lowers the minimum) until the first column of its first row is true —
// not null, not false and not 0, as digdag reads it; no row is false. Each
// job is waited for with the SDK's back-off; a job that fails fails the
// task; cancelling the task kills the job it waits for. Like digdag's
// td_wait>, it stores nothing.
type TDWait struct{ Env *Env }

// Limits of td_wait>'s interval (digdag's AbstractWaitOperatorFactory).
const (
	DefaultWaitInterval = 30 * time.Second
	MinWaitInterval     = 30 * time.Second
	MaxWaitInterval     = 48 * time.Hour
)

// tdWaitSettings are a td_wait> task's settings, checked.
type tdWaitSettings struct {
	req      *td.IssueRequest
	interval time.Duration
}

func (w *TDWait) minInterval() time.Duration {
	if w.Env != nil && w.Env.WaitMinInterval > 0 {
		return w.Env.WaitMinInterval
	}
	return MinWaitInterval
}

func (w *TDWait) settings(tc *workflow.TaskContext) (*tdWaitSettings, error) {
	sql, err := queryText(tc, "td_wait")
	if err != nil {
		return nil, err
	}
	validating := tc.Dynamic != nil
	engine := settingString(tc, "engine")
	if engine == "" {
		engine = "presto"
	}
	if !tc.Dynamic["engine"] && engine != "presto" && engine != "hive" {
		return nil, fmt.Errorf("td_wait>: unknown engine %q: use presto or hive", engine)
	}
	db := settingString(tc, "database")
	if db == "" && !validating {
		return nil, errors.New("td_wait>: no database: add database: NAME or _export: {td: {database: NAME}}")
	}
	ws := &tdWaitSettings{interval: DefaultWaitInterval}
	if v := settingString(tc, "interval"); v != "" && !tc.Dynamic["interval"] {
		d, err := parseDigdagDuration(v)
		if err != nil {
			return nil, fmt.Errorf("td_wait>: interval: %w", err)
		}
		if d < w.minInterval() || d > MaxWaitInterval {
			return nil, fmt.Errorf("td_wait>: poll interval must be at least %s and no greater than %s (got %s)", w.minInterval(), MaxWaitInterval, v)
		}
		ws.interval = d
	}
	version := settingString(tc, "engine_version")
	if engine == "hive" && settingString(tc, "hive_engine_version") != "" {
		version = settingString(tc, "hive_engine_version")
	}
	req := &td.IssueRequest{Type: engine, Database: db, Query: sql, EngineVersion: version,
		PoolName: settingString(tc, engine+"_pool_name")}
	for key, dst := range map[string]**int{"priority": &req.Priority, "job_retry": &req.RetryLimit} {
		if tc.Dynamic[key] {
			continue
		}
		if *dst, err = intParam(tc, key); err != nil {
			return nil, fmt.Errorf("td_wait>: %w", err)
		}
	}
	if !validating {
		t := tc.SessionTime
		req.ScheduledTime = &t
	}
	check := *req
	if check.Database == "" {
		check.Database = "${td.database}"
	}
	if check.Query == "" {
		check.Query = "${query}"
	}
	if err := check.Validate(); err != nil {
		return nil, fmt.Errorf("td_wait>: %w", err)
	}
	ws.req = req
	return ws, nil
}

// Validate implements workflow.Validator.
func (w *TDWait) Validate(tc *workflow.TaskContext) error {
	if err := tdWaitSpec.check(tc.Task, queryFileText(tc)); err != nil {
		return err
	}
	_, err := w.settings(tc)
	return err
}

// Key of td_wait>'s TaskContext.State: the number of polls made, so that
// a retry's polls get domain keys of their own.
const statePolls = "td_wait.polls"

// Run implements workflow.Operator.
func (w *TDWait) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	ws, err := w.settings(tc)
	if err != nil {
		return nil, err
	}
	c, err := w.Env.td()
	if err != nil {
		return nil, err
	}
	state := tc.State
	if state == nil {
		state = map[string]any{}
	}
	res := &workflow.Result{}
	for {
		n, _ := state[statePolls].(int)
		state[statePolls] = n + 1
		req := *ws.req
		req.DomainKey = fmt.Sprintf("%s-poll%d", derivedKey(tc), n)
		issued, err := c.Jobs.Issue(ctx, &req)
		if err != nil {
			return res, err
		}
		res.JobID = issued.JobID
		job, err := c.Jobs.Wait(ctx, issued.JobID, w.Env.wait())
		if ctx.Err() != nil {
			killOnCancel(ctx, c, tc, issued.JobID)
			return res, ctx.Err()
		}
		if err != nil {
			if job != nil && job.Debug != nil && strings.TrimSpace(job.Debug.Stderr) != "" {
				fmt.Fprintln(tc.Log, strings.TrimSpace(job.Debug.Stderr))
			}
			return res, err
		}
		done, err := firstColumnTrue(ctx, c, issued.JobID)
		if err != nil {
			return res, err
		}
		if done {
			fmt.Fprintf(tc.Log, "job %s: the condition holds\n", issued.JobID)
			return res, nil
		}
		fmt.Fprintf(tc.Log, "job %s: not yet; polling again in %s\n", issued.JobID, ws.interval)
		if err := backoff.Sleep(ctx, ws.interval); err != nil {
			return res, err
		}
	}
}

// firstColumnTrue reads the first row of job id: digdag's truthiness of its
// first column (null, false and integer 0 are false; anything else true);
// no row is false.
func firstColumnTrue(ctx context.Context, c *td.Client, id string) (bool, error) {
	rr, err := c.Results.Rows(ctx, id)
	if err != nil {
		return false, fmt.Errorf("td_wait>: reading the result of job %s: %w", id, err)
	}
	defer rr.Close()
	row, err := rr.Next()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("td_wait>: reading the result of job %s: %w", id, err)
	}
	if len(row) == 0 {
		return false, fmt.Errorf("td_wait>: job %s: got an empty row in the result of the query", id)
	}
	switch v := row[0].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case int64:
		return v != 0, nil
	case int:
		return v != 0, nil
	case int8, int16, int32, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v) != "0", nil
	}
	return true, nil
}

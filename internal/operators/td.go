package operators

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// Query is td>: it issues a query job, waits for it and stores
// td.last_job_id, td.last_job.id, td.last_job.num_records (and
// td.last_results with store_last_results).
//
// The query is the file the command names (relative to the workflow),
// data: under td>: (digdag's form), or query:/data: beside it. Settings are
// read as digdag reads them: the task's own key, else the td.* default of
// the same name (from _export, -p): database, engine (presto|trino|hive,
// default presto), priority, job_retry, engine_version,
// hive_engine_version, result_url, result_connection + result_settings,
// insert_into / create_table (TABLE or DB.TABLE), presto_pool_name /
// hive_pool_name (the one of the engine; pool_name as a tdctl shorthand),
// download_file (the result as a CSV file with a header line, relative to
// the workflow), preview (the first PreviewRows rows in the task log),
// store_last_results (true or first: td.last_results is the first row;
// all: a list of every row, at most MaxLastResults), domain_key. Query
// text is interpolated like the workflow. Without a domain_key one is
// derived from the run, task and attempt, so a retried request never
// starts a second job.
type Query struct{ Env *Env }

// Defines implements workflow.Definer.
func (q *Query) Defines(t *workflow.Task) []string {
	out := []string{"td.last_job_id", "td.last_job"}
	if n := t.Param("store_last_results"); n != nil && lastResultsMode(n.Value) != "" {
		out = append(out, "td.last_results")
	}
	return out
}

// Limits of td>'s result settings.
const (
	// MaxLastResults is the most rows store_last_results: all keeps; a
	// bigger result fails the task (write it to a table or download_file).
	MaxLastResults = 10_000
	// PreviewRows is how many rows preview: true logs.
	PreviewRows = 20
)

// lastResultsMode reads store_last_results: "first" (true, first), "all",
// "" (false, absent) or "?" (anything else).
func lastResultsMode(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "false", "no", "off", "n":
		return ""
	case "first":
		return "first"
	case "all":
		return "all"
	}
	if truthy(s) {
		return "first"
	}
	return "?"
}

// setting is a td> setting as digdag reads it: the task's own key, else
// the td.* param of the same name (from _export or -p).
func setting(tc *workflow.TaskContext, key string) any {
	if v, ok := tc.Config[key]; ok && v != nil {
		return v
	}
	if v, ok := tc.Scope.Get("td." + key); ok && v != nil {
		return v
	}
	return nil
}

func settingString(tc *workflow.TaskContext, key string) string {
	if v := setting(tc, key); v != nil {
		return workflow.Format(v)
	}
	return ""
}

func scopeString(s workflow.Scope, name string) string {
	if v, ok := s.Get(name); ok && v != nil {
		return workflow.Format(v)
	}
	return ""
}

func intParam(tc *workflow.TaskContext, key string) (*int, error) {
	v := setting(tc, key)
	if v == nil {
		return nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(workflow.Format(v)))
	if err != nil {
		return nil, fmt.Errorf("%s must be a whole number (got %q)", key, workflow.Format(v))
	}
	return &n, nil
}

// queryFileError names the query file as the workflow gives it.
func queryFileError(op, file string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s>: query file %s: %w", op, file, err)
}

// QueryText returns the SQL of a td> task: the file named by the command,
// or data:/query: inline, interpolated with the task's params.
func QueryText(tc *workflow.TaskContext) (string, error) { return queryText(tc, "td") }

// queryText is QueryText for operator op (td, td_wait), which its messages
// name.
func queryText(tc *workflow.TaskContext, op string) (string, error) {
	var raw string
	if nested, ok := tc.Command.(map[string]any); ok {
		// td>: {data: ...}: digdag's inline query
		for k := range nested {
			if k != "data" {
				return "", fmt.Errorf("%s>: %s under %s>: is not read; %s>: takes a query file name, or data: with the SQL", op, k, op, op)
			}
		}
		raw = workflow.Format(nested["data"])
		if strings.TrimSpace(raw) == "" {
			return "", fmt.Errorf("%s>: the query is empty", op)
		}
		return raw, nil
	}
	file := workflow.Format(tc.Command)
	switch {
	case tc.Dynamic[""] || tc.Dynamic["data"] || tc.Dynamic["query"]:
		return "", nil // Validate: known at run time
	case file != "":
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(tc.Workflow.Dir, p)
		}
		if tc.Dynamic != nil { // Validate: the file must be there
			if _, err := os.Stat(p); err != nil {
				return "", queryFileError(op, file, err)
			}
			return "", nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", queryFileError(op, file, err)
		}
		raw = string(data)
		// file contents are interpolated like the workflow itself
		if strings.Contains(raw, "${secret:") {
			return "", fmt.Errorf("%s>: %s: ${secret:...} cannot be used in a query file: TD stores and shows the query text", op, file)
		}
		v, err := workflow.EvalString(raw, tc.Scope)
		if err != nil {
			return "", fmt.Errorf("%s>: %s: %w", op, file, err)
		}
		raw = v
	case tc.String("data") != "":
		raw = tc.String("data")
	case tc.String("query") != "":
		raw = tc.String("query")
	default:
		return "", fmt.Errorf("%s> needs a query: %s>: queries/file.sql, or data: SELECT ... indented under %s>:", op, op, op)
	}
	if strings.TrimSpace(raw) == "" {
		return "", fmt.Errorf("%s>: the query is empty", op)
	}
	return raw, nil
}

// Validate implements workflow.Validator: the checks of request, on the
// settings written literally.
func (q *Query) Validate(tc *workflow.TaskContext) error {
	if err := tdSpec.check(tc.Task, queryFileText(tc)); err != nil {
		return err
	}
	_, err := q.request(tc)
	return err
}

// queryFileText is the query file a task's command names, for Validate:
// its ${...} may use the task's keys ("" when there is none to read).
func queryFileText(tc *workflow.TaskContext) string {
	f, ok := tc.Command.(string)
	if !ok || f == "" || tc.Dynamic[""] {
		return ""
	}
	return readSmall(tc, f)
}

// readSmall returns the text of the workflow's file f (a query file whose
// ${...} may use the task's keys), or "" when it cannot be read or is over
// 1 MiB.
func readSmall(tc *workflow.TaskContext, f string) string {
	p := f
	if !filepath.IsAbs(p) {
		p = filepath.Join(tc.Workflow.Dir, p)
	}
	if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
		return string(b)
	}
	return ""
}

// Keys of td>'s TaskContext.State.
const (
	stateJobID     = "td.job_id"     // the job an attempt issued
	stateDomainKey = "td.domain_key" // the key an attempt issued it under
)

// Run implements workflow.Operator.
//
// A retry (_retry) first re-attaches to the job an earlier attempt issued
// (kept in TaskContext.State): when waiting for it failed (a network error,
// the client's retries spent), the job may still be running or done, and
// issuing again would run the query twice. Only a job that ended in error
// or was killed is issued anew. When an attempt's issue request itself
// failed, the retry issues under the same domain key, so a job the lost
// answer had created is found rather than duplicated.
func (q *Query) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	req, err := q.request(tc)
	if err != nil {
		return nil, err
	}
	c, err := q.Env.td()
	if err != nil {
		return nil, err
	}
	return q.runAttached(ctx, tc, c, req.DomainKey, func(key string) (string, error) {
		req.DomainKey = key
		issued, err := c.Jobs.Issue(ctx, req)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(tc.Log, "issued job %s on %s (%s)%s\n", issued.JobID, req.Database, engineName(req.Type), map[bool]string{true: " (already issued under this domain key)"}[issued.Existing])
		return issued.JobID, nil
	})
}

// runAttached starts a job with start under a domain key (key, or the one
// an earlier attempt used) and waits for it — or, on a retry, first
// re-attaches to the job an earlier attempt started (td>, td_run>).
func (q *Query) runAttached(ctx context.Context, tc *workflow.TaskContext, c *td.Client, key string, start func(key string) (string, error)) (*workflow.Result, error) {
	state := tc.State
	if state == nil {
		state = map[string]any{} // a caller without retries
	}
	if id, _ := state[stateJobID].(string); id != "" {
		fmt.Fprintf(tc.Log, "re-attaching to job %s, issued by an earlier attempt\n", id)
		res, err := q.awaitState(ctx, tc, c, id, state)
		if !errors.Is(err, td.ErrJobFailed) {
			return res, err // done, or still unknown: the next attempt re-attaches again
		}
		fmt.Fprintf(tc.Log, "job %s did not succeed: issuing a new job\n", id)
	}
	if k, _ := state[stateDomainKey].(string); k != "" {
		key = k // the earlier issue's outcome is unknown
	}
	state[stateDomainKey] = key
	id, err := start(key)
	if err != nil {
		return nil, err
	}
	state[stateJobID] = id
	return q.awaitState(ctx, tc, c, id, state)
}

// awaitState is await that forgets a job that ended in error or was
// killed: a retry issues a new one.
func (q *Query) awaitState(ctx context.Context, tc *workflow.TaskContext, c *td.Client, id string, state map[string]any) (*workflow.Result, error) {
	res, err := q.await(ctx, tc, c, id)
	if errors.Is(err, td.ErrJobFailed) {
		delete(state, stateJobID)
		delete(state, stateDomainKey)
	}
	return res, err
}

// await waits for job id and makes the task's result; a cancelled task
// kills the job.
func (q *Query) await(ctx context.Context, tc *workflow.TaskContext, c *td.Client, id string) (*workflow.Result, error) {
	job, err := c.Jobs.Wait(ctx, id, q.Env.wait())
	res := &workflow.Result{JobID: id}
	if ctx.Err() != nil {
		killOnCancel(ctx, c, tc, id)
		return res, ctx.Err()
	}
	if job != nil {
		res.NumRecords = job.NumRecords
		fmt.Fprintf(tc.Log, "job %s %s", job.ID, job.Status)
		if job.NumRecords != nil {
			fmt.Fprintf(tc.Log, ", %d records", *job.NumRecords)
		}
		fmt.Fprintln(tc.Log)
		if job.Debug != nil && strings.TrimSpace(job.Debug.Stderr) != "" && err != nil {
			fmt.Fprintln(tc.Log, strings.TrimSpace(job.Debug.Stderr))
		}
	}
	if err != nil {
		return res, err
	}
	lastJob := map[string]any{"id": job.ID, "status": job.Status, "num_records": nullableInt(job.NumRecords)}
	res.Store = map[string]any{"td.last_job_id": job.ID, "td.last_job": lastJob}
	if err := q.results(ctx, tc, c, job, res); err != nil {
		return res, err
	}
	return res, nil
}

// request builds the job of a td> task, with every check made before the
// API is called. In Validate (tc.Dynamic set) a setting known only at run
// time passes, and so do the database and engine that _export may give.
func (q *Query) request(tc *workflow.TaskContext) (*td.IssueRequest, error) {
	sql, err := QueryText(tc)
	if err != nil {
		return nil, err
	}
	validating := tc.Dynamic != nil
	db := settingString(tc, "database")
	if db == "" && !validating {
		return nil, errors.New("td>: no database: add database: NAME or _export: {td: {database: NAME}}")
	}
	engine := settingString(tc, "engine")
	engineVersion := settingString(tc, "engine_version")
	if strings.EqualFold(engine, "hive") && settingString(tc, "hive_engine_version") != "" {
		engineVersion = settingString(tc, "hive_engine_version")
	}
	// digdag reads the pool of the query's engine: presto_pool_name or
	// hive_pool_name
	pool := settingString(tc, strings.ToLower(engineName(engine))+"_pool_name")
	if strings.EqualFold(engine, "trino") && pool == "" {
		pool = settingString(tc, "presto_pool_name")
	}
	if pool == "" {
		pool = settingString(tc, "pool_name")
	}
	req := &td.IssueRequest{Type: engine, Database: db, Query: sql,
		EngineVersion: engineVersion, PoolName: pool, Result: settingString(tc, "result_url")}
	if req.Priority, err = intParam(tc, "priority"); err != nil {
		return nil, fmt.Errorf("td>: %w", err)
	}
	if req.RetryLimit, err = intParam(tc, "job_retry"); err != nil {
		return nil, fmt.Errorf("td>: %w", err)
	}
	has := func(key string) bool { return settingString(tc, key) != "" || tc.Dynamic[key] }
	if has("result_connection") {
		if has("result_url") {
			return nil, errors.New("td>: give result_url or result_connection, not both")
		}
		target, err := connectionTarget(settingString(tc, "result_connection"), setting(tc, "result_settings"))
		if err != nil {
			return nil, fmt.Errorf("td>: %w", err)
		}
		req.ResultConnection = target
	}
	if has("insert_into") && has("create_table") {
		return nil, errors.New("td>: give insert_into (append) or create_table (replace), not both")
	}
	if has("result_settings") && !has("result_connection") {
		return nil, errors.New("td>: result_settings needs result_connection (a result_url carries its options in the URL)")
	}
	if has("download_file") && (has("insert_into") || has("create_table")) {
		return nil, errors.New("td>: download_file cannot be combined with insert_into or create_table (their query returns no rows)")
	}
	if m := lastResultsMode(settingString(tc, "store_last_results")); m == "?" && !tc.Dynamic["store_last_results"] {
		return nil, fmt.Errorf("td>: store_last_results must be true, first, all or false (got %q)", settingString(tc, "store_last_results"))
	}
	if v := settingString(tc, "preview"); v != "" && !tc.Dynamic["preview"] {
		if _, err := strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("td>: preview must be true or false (got %q)", v)
		}
	}
	for _, key := range []string{"insert_into", "create_table"} {
		mode := map[string]string{"insert_into": "append", "create_table": "replace"}[key]
		if has(key) {
			if has("result_url") || has("result_connection") {
				return nil, fmt.Errorf("td>: %s cannot be combined with result_url or result_connection", key)
			}
			table, tdb := settingString(tc, key), db
			// digdag's TableParam: TABLE, or DATABASE.TABLE
			if d, t, ok := strings.Cut(table, "."); ok {
				if d == "" || t == "" || strings.Contains(t, ".") {
					return nil, fmt.Errorf("td>: %s must be TABLE or DATABASE.TABLE (got %q)", key, table)
				}
				tdb, table = d, t
			}
			if tdb == "" {
				tdb = "${td.database}"
			}
			req.Result = fmt.Sprintf("td://@/%s/%s?mode=%s", tdb, table, mode)
		}
	}
	req.DomainKey = tc.String("domain_key")
	if req.DomainKey == "" && !validating {
		req.DomainKey = derivedKey(tc)
	}
	check := *req
	if validating { // what is known at run time only stands in as given
		if check.Database == "" {
			check.Database = "${td.database}"
		}
		if check.Query == "" {
			check.Query = "${query}"
		}
	}
	if err := check.Validate(); err != nil {
		return nil, fmt.Errorf("td>: %w", err)
	}
	return req, nil
}

// killOnCancel kills a job whose workflow was cancelled (as digdag does).
func killOnCancel(ctx context.Context, c *td.Client, tc *workflow.TaskContext, id string) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if former, err := c.Jobs.Kill(kctx, id); err == nil {
		fmt.Fprintf(tc.Log, "cancelled: killed job %s (was %s)\n", id, former)
	} else {
		fmt.Fprintf(tc.Log, "cancelled: could not kill job %s: %v\n", id, err)
	}
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "on", "y":
		return true
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	return err == nil && b
}

func engineName(e string) string {
	if e == "" {
		return "presto"
	}
	return e
}

func nullableInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// derivedKey is stable for one run, task and attempt.
func derivedKey(tc *workflow.TaskContext) string {
	h := sha256.Sum256([]byte(tc.RunID + "\x00" + tc.Task.Path + "\x00" + strconv.Itoa(tc.Attempt) + "\x00" + tc.Instance))
	return "tdctl-wf-" + hex.EncodeToString(h[:12])
}

// results does what a finished job's rows are wanted for:
// store_last_results, download_file and preview, reading them once.
func (q *Query) results(ctx context.Context, tc *workflow.TaskContext, c *td.Client, job *td.Job, res *workflow.Result) error {
	mode := lastResultsMode(settingString(tc, "store_last_results"))
	file := settingString(tc, "download_file")
	preview, _ := strconv.ParseBool(settingString(tc, "preview"))
	if mode == "" && file == "" && !preview {
		return nil
	}
	rr, err := c.Results.Rows(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("td>: reading the result of job %s: %w", job.ID, err)
	}
	defer rr.Close()
	var csvOut *csvFile
	if file != "" {
		if csvOut, err = createCSV(tc, q.Env, file); err != nil {
			return err
		}
		defer csvOut.abort()
	}
	var cols []string
	var all []any
	var first map[string]any
	n := 0
	for {
		row, err := rr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("td>: reading the result of job %s: %w", job.ID, err)
		}
		if cols == nil {
			for _, col := range rr.Columns() {
				cols = append(cols, col.Name)
			}
			if csvOut != nil {
				if err := csvOut.w.Write(cols); err != nil {
					return csvOut.fail(err)
				}
			}
			if preview {
				fmt.Fprintln(tc.Log, strings.Join(cols, "\t"))
			}
		}
		obj := map[string]any{}
		for i, name := range cols {
			if i < len(row) {
				obj[name] = row[i]
			}
		}
		if n == 0 {
			first = obj
		}
		if mode == "all" {
			if n >= MaxLastResults {
				return fmt.Errorf("td>: store_last_results: all keeps at most %d rows and job %s returned more: write the result to a table (insert_into) or a file (download_file)", MaxLastResults, job.ID)
			}
			all = append(all, obj)
		}
		if csvOut != nil {
			if err := csvOut.w.Write(csvRecord(row)); err != nil {
				return csvOut.fail(err)
			}
		}
		if preview && n < PreviewRows {
			fmt.Fprintln(tc.Log, strings.Join(csvRecord(row), "\t"))
		}
		n++
		if mode != "all" && csvOut == nil && (!preview || n >= PreviewRows) {
			break // nothing more to read
		}
	}
	if preview && n >= PreviewRows {
		fmt.Fprintf(tc.Log, "(preview: first %d rows)\n", PreviewRows)
	}
	if csvOut != nil {
		if err := csvOut.commit(); err != nil {
			return err
		}
		fmt.Fprintf(tc.Log, "downloaded %d rows to %s\n", n, file)
	}
	switch mode {
	case "first":
		if first == nil {
			first = map[string]any{}
		}
		res.Store["td.last_results"] = first
	case "all":
		if all == nil {
			all = []any{}
		}
		res.Store["td.last_results"] = all
	}
	if mode != "" {
		// each query's results replace the last one's whole (digdag resets
		// td.last_results before storing it)
		res.Reset = []string{"td.last_results"}
	}
	return nil
}

// csvRecord is a row as CSV fields: null is empty, strings as they are,
// anything else as JSON text.
func csvRecord(row []any) []string {
	out := make([]string, len(row))
	for i, v := range row {
		switch x := v.(type) {
		case nil:
		case string:
			out[i] = x
		default:
			out[i] = workflow.Format(x)
		}
	}
	return out
}

// csvFile is td>'s download_file output, a pendingFile.
type csvFile struct {
	*pendingFile
	w *csv.Writer
}

func createCSV(tc *workflow.TaskContext, env *Env, name string) (*csvFile, error) {
	p, err := createPending(tc, env, "td>:", name)
	if err != nil {
		return nil, err
	}
	return &csvFile{pendingFile: p, w: csv.NewWriter(p.f)}, nil
}

func (c *csvFile) commit() error {
	c.w.Flush()
	return c.pendingFile.commit(c.w.Error())
}

// pendingFile is a file an operator writes (download_file): written to a
// temporary file in the same directory and renamed into place only when
// whole, so a failed task never leaves half a file.
type pendingFile struct {
	f      *os.File
	path   string
	name   string
	prefix string // the operator, for errors
	done   bool
	// unforce unregisters the temporary file from Env.TempFile
	unforce func()
}

func createPending(tc *workflow.TaskContext, env *Env, prefix, name string) (*pendingFile, error) {
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(tc.Workflow.Dir, p)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("%s download_file %s: %w", prefix, name, err)
	}
	return &pendingFile{f: f, path: p, name: name, prefix: prefix, unforce: env.tempFile(f.Name())}, nil
}

func (c *pendingFile) fail(err error) error {
	return fmt.Errorf("%s download_file %s: %w", c.prefix, c.name, err)
}

// commit closes the file and renames it into place; writeErr is the
// first failed write, if any.
func (c *pendingFile) commit(writeErr error) error {
	err := writeErr
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(c.f.Name(), c.path)
	}
	if err != nil {
		os.Remove(c.f.Name())
		c.unforce()
		return c.fail(err)
	}
	c.done = true
	c.unforce()
	return nil
}

func (c *pendingFile) abort() {
	if !c.done {
		c.f.Close()
		os.Remove(c.f.Name())
		c.unforce()
	}
}

// connectionTarget turns a connection name or numeric id plus settings
// (a mapping, or a JSON object string) into a td.ConnectionTarget.
func connectionTarget(conn string, settings any) (*td.ConnectionTarget, error) {
	t := &td.ConnectionTarget{}
	if id, err := strconv.ParseInt(conn, 10, 64); err == nil && id > 0 {
		t.ID = id
	} else {
		t.Name = conn
	}
	switch s := settings.(type) {
	case nil:
	case map[string]any:
		t.Settings = s
	case string:
		if strings.TrimSpace(s) != "" {
			if err := json.Unmarshal([]byte(s), &t.Settings); err != nil {
				return nil, fmt.Errorf("result_settings must be a mapping or a JSON object: %v", err)
			}
		}
	default:
		return nil, fmt.Errorf("result_settings must be a mapping (got %s)", workflow.Format(s))
	}
	return t, nil
}

// ResultExport is td_result_export>: it exports a finished job's result to
// result_url, or to result_connection (a name or id) with result_settings,
// waits for the export job and stores it as td.last_job_id and
// td.last_job.* (as digdag does: a later ${td.last_job_id} is the export
// job, not the query).
type ResultExport struct{ Env *Env }

// Validate implements workflow.Validator: the checks of target, on the
// settings written literally.
func (e *ResultExport) Validate(tc *workflow.TaskContext) error {
	if err := resultExportSpec.check(tc.Task, ""); err != nil {
		return err
	}
	_, err := exportTarget(tc)
	return err
}

// exportTarget reads the destination of a td_result_export> task, with
// every check made before the API is called.
func exportTarget(tc *workflow.TaskContext) (td.ExportTarget, error) {
	var target td.ExportTarget
	if !tc.Has("job_id") {
		return target, errors.New("td_result_export> needs job_id (e.g. job_id: ${td.last_job_id})")
	}
	switch {
	case tc.Has("result_url") && tc.Has("result_connection"):
		return target, errors.New("td_result_export>: give result_url or result_connection, not both")
	case tc.Has("result_url"):
		if tc.Has("result_settings") {
			return target, errors.New("td_result_export>: result_settings needs result_connection (a result_url carries its options in the URL)")
		}
		target.ResultURL = tc.String("result_url")
		if err := td.CheckResultURL(target.ResultURL); err != nil && !tc.Dynamic["result_url"] {
			return target, fmt.Errorf("td_result_export> result_url: %w", err)
		}
	case tc.Has("result_connection"):
		ct, err := connectionTarget(tc.String("result_connection"), tc.Config["result_settings"])
		if err != nil {
			return target, fmt.Errorf("td_result_export>: %w", err)
		}
		target.Connection = ct
	default:
		return target, errors.New("td_result_export> needs result_url or result_connection")
	}
	if tc.Dynamic["result_url"] || tc.Dynamic["result_connection"] {
		return target, nil // Validate: known at run time
	}
	return target, target.Validate()
}

// Run implements workflow.Operator.
func (e *ResultExport) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	target, err := exportTarget(tc)
	if err != nil {
		return nil, err
	}
	jobID := tc.String("job_id")
	c, err := e.Env.td()
	if err != nil {
		return nil, err
	}
	outs, err := c.Results.ExportAll(ctx, jobID, []td.ExportTarget{target}, e.Env.wait())
	res := &workflow.Result{}
	if len(outs) == 1 {
		res.JobID = outs[0].ExportJobID
		if res.JobID != "" {
			fmt.Fprintf(tc.Log, "export job %s: job %s → %s\n", res.JobID, jobID, target)
		}
	}
	if ctx.Err() != nil && res.JobID != "" {
		killOnCancel(ctx, c, tc, res.JobID)
		return res, ctx.Err()
	}
	if err != nil {
		return res, err
	}
	fmt.Fprintf(tc.Log, "export job %s success\n", res.JobID)
	// like every digdag td job operator, it stores its own job as
	// td.last_job_id and td.last_job.* (BaseTdJobOperator)
	var n *int64
	if j := outs[0].Job; j != nil {
		n = j.NumRecords
		res.NumRecords = n
	}
	res.Store = map[string]any{"td.last_job_id": res.JobID,
		"td.last_job": map[string]any{"id": res.JobID, "status": "success", "num_records": nullableInt(n)}}
	return res, nil
}

// Defines implements workflow.Definer.
func (e *ResultExport) Defines(*workflow.Task) []string {
	return []string{"td.last_job_id", "td.last_job"}
}

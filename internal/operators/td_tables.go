package operators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// The TD table operators: td_ddl>, td_wait_table>, td_partial_delete> and
// td_table_export>. Each reads its settings as digdag does (the task's own
// key, else the td.* default of the same name) and checks them in
// Validate, before any task runs.

var tdConnDigdag = map[string]string{
	"apikey":   "tdctl uses its configured API key (TD_API_KEY, --profile)",
	"endpoint": "tdctl uses its configured endpoint (TD_API_SERVER, --profile)",
	"use_ssl":  "tdctl always uses its configured endpoint's scheme",
	"proxy":    "set HTTPS_PROXY in tdctl's environment",
}

var (
	ddlSpec = keySpec{op: "td_ddl", digdag: tdConnDigdag, known: []string{"database", "create_databases", "drop_databases",
		"empty_databases", "create_tables", "drop_tables", "empty_tables", "rename_tables"}}
	waitTableSpec = keySpec{op: "td_wait_table", digdag: tdConnDigdag, known: []string{"database", "rows", "engine", "interval",
		"priority", "job_retry", "presto_pool_name", "hive_pool_name", "engine_version", "hive_engine_version"}}
	partialDeleteSpec = keySpec{op: "td_partial_delete", digdag: tdConnDigdag, known: []string{"database", "from", "to"}}
	tableExportSpec   = keySpec{op: "td_table_export", digdag: tdConnDigdag, known: []string{"database", "table", "file_format",
		"from", "to", "s3_bucket", "s3_path_prefix", "s3_access_key_id", "s3_secret_access_key", "hive_pool_name", "timezone"}}
)

// tableRef is digdag's TableParam: "table" or "db.table".
type tableRef struct{ db, table string }

func parseTableRef(s string) tableRef {
	if db, t, ok := strings.Cut(s, "."); ok {
		return tableRef{db: db, table: t}
	}
	return tableRef{table: s}
}

func (r tableRef) in(defaultDB string) tableRef {
	if r.db == "" {
		r.db = defaultDB
	}
	return r
}

func (r tableRef) String() string {
	if r.db == "" {
		return r.table
	}
	return r.db + "." + r.table
}

// stringList reads a list setting (a YAML list of names).
func stringList(tc *workflow.TaskContext, op, key string) ([]string, error) {
	v, ok := tc.Config[key]
	if !ok || v == nil {
		return nil, nil
	}
	if tc.Dynamic[key] {
		if _, isList := jsonList(v); !isList {
			return nil, nil // Validate: known at run time
		}
	}
	list, isList := jsonList(v)
	if !isList {
		return nil, fmt.Errorf("%s> %s must be a list of names, e.g. %s: [a, b] (got %s)", op, key, key, workflow.Format(v))
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, isStr := e.(string)
		if !isStr || strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("%s> %s[%d] must be a name (got %s)", op, key, i, workflow.Format(e))
		}
		out = append(out, s)
	}
	return out, nil
}

// --- td_ddl> ---------------------------------------------------------------

// DDL is td_ddl>: it creates, drops, empties and renames databases and
// tables, in digdag's order: drop (and empty) databases, create (and
// empty) databases, drop (and empty) tables, create (and empty) tables,
// rename tables. Creating what exists and dropping what is missing
// succeed. Renamed tables must all exist before anything is done; a
// rename replaces a table of the new name. A retried task resumes after
// the last operation that succeeded. It stores nothing.
type DDL struct{ Env *Env }

type ddlOp struct {
	what string
	do   func(ctx context.Context, c *td.Client) error
}

type rename struct {
	from tableRef
	to   string
}

type ddlPlan struct {
	ops     []ddlOp
	renames []rename // checked to exist first
}

func (d *DDL) plan(tc *workflow.TaskContext) (*ddlPlan, error) {
	lists := map[string][]string{}
	for _, k := range []string{"create_databases", "drop_databases", "empty_databases", "create_tables", "drop_tables", "empty_tables"} {
		l, err := stringList(tc, "td_ddl", k)
		if err != nil {
			return nil, err
		}
		lists[k] = l
	}
	renames, err := renameList(tc)
	if err != nil {
		return nil, err
	}
	db := settingString(tc, "database")
	validating := tc.Dynamic != nil
	table := func(s string) (tableRef, error) {
		r := parseTableRef(s).in(db)
		if r.db == "" && !validating {
			return r, fmt.Errorf("td_ddl>: table %s has no database: write DB.%s, or add database: NAME (or _export: {td: {database: NAME}})", s, s)
		}
		return r, nil
	}
	p := &ddlPlan{}
	for _, name := range append(append([]string{}, lists["drop_databases"]...), lists["empty_databases"]...) {
		p.ops = append(p.ops, ddlOp{"deleting database " + name, func(ctx context.Context, c *td.Client) error {
			return ignore(c.Databases.Delete(ctx, name), td.ErrNotFound)
		}})
	}
	for _, name := range append(append([]string{}, lists["create_databases"]...), lists["empty_databases"]...) {
		p.ops = append(p.ops, ddlOp{"creating database " + name, func(ctx context.Context, c *td.Client) error {
			return ignore(c.Databases.Create(ctx, name), td.ErrConflict)
		}})
	}
	for _, s := range append(append([]string{}, lists["drop_tables"]...), lists["empty_tables"]...) {
		r, err := table(s)
		if err != nil {
			return nil, err
		}
		p.ops = append(p.ops, ddlOp{"deleting table " + r.String(), func(ctx context.Context, c *td.Client) error {
			return ignore(c.Tables.Delete(ctx, r.db, r.table), td.ErrNotFound)
		}})
	}
	for _, s := range append(append([]string{}, lists["create_tables"]...), lists["empty_tables"]...) {
		r, err := table(s)
		if err != nil {
			return nil, err
		}
		p.ops = append(p.ops, ddlOp{"creating table " + r.String(), func(ctx context.Context, c *td.Client) error {
			return ignore(c.Tables.Create(ctx, r.db, r.table), td.ErrConflict)
		}})
	}
	for _, rn := range renames {
		from, err := table(rn.from.String())
		if err != nil {
			return nil, err
		}
		rn := rename{from: from, to: rn.to}
		p.renames = append(p.renames, rn)
		p.ops = append(p.ops, ddlOp{"renaming table " + from.String() + " to " + rn.to, func(ctx context.Context, c *td.Client) error {
			// a 404 means an earlier attempt renamed it: every "from" table
			// was seen to exist before the first operation
			return ignore(c.Tables.Rename(ctx, from.db, from.table, rn.to, true), td.ErrNotFound)
		}})
	}
	return p, nil
}

// renameList reads rename_tables: [{from: TABLE, to: NAME}, ...].
func renameList(tc *workflow.TaskContext) ([]rename, error) {
	v, ok := tc.Config["rename_tables"]
	if !ok || v == nil {
		return nil, nil
	}
	list, isList := jsonList(v)
	if !isList {
		if tc.Dynamic["rename_tables"] {
			return nil, nil
		}
		return nil, fmt.Errorf("td_ddl> rename_tables must be a list of {from: TABLE, to: NAME} (got %s)", workflow.Format(v))
	}
	var out []rename
	for i, e := range list {
		m, isMap := e.(map[string]any)
		if !isMap {
			return nil, fmt.Errorf("td_ddl> rename_tables[%d] must be {from: TABLE, to: NAME} (got %s)", i, workflow.Format(e))
		}
		for k := range m {
			if k != "from" && k != "to" {
				return nil, fmt.Errorf("td_ddl> rename_tables[%d]: unknown key %s (use from: and to:)", i, k)
			}
		}
		from, _ := m["from"].(string)
		to, _ := m["to"].(string)
		if from == "" || to == "" {
			return nil, fmt.Errorf("td_ddl> rename_tables[%d] needs from: and to:", i)
		}
		if strings.Contains(to, ".") {
			// the API renames within one database
			return nil, fmt.Errorf("td_ddl> rename_tables[%d]: 'to' option of rename_tables can't include database name (%s)", i, to)
		}
		out = append(out, rename{from: parseTableRef(from), to: to})
	}
	return out, nil
}

// jsonList reads a list setting: a YAML list, or (as digdag reads a
// ${param} holding a list) a string with a JSON array.
func jsonList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case string:
		var l []any
		if strings.HasPrefix(strings.TrimSpace(x), "[") && json.Unmarshal([]byte(x), &l) == nil {
			return l, true
		}
	}
	return nil, false
}

func ignore(err, sentinel error) error {
	if errors.Is(err, sentinel) {
		return nil
	}
	return err
}

// Validate implements workflow.Validator.
func (d *DDL) Validate(tc *workflow.TaskContext) error {
	if err := ddlSpec.check(tc.Task, ""); err != nil {
		return err
	}
	if tc.Command != nil && workflow.Format(tc.Command) != "" {
		return fmt.Errorf("td_ddl> takes no value (%s): give its settings (create_tables: [...], ...) beside it", workflow.Format(tc.Command))
	}
	_, err := d.plan(tc)
	return err
}

const stateDDLDone = "td_ddl.done" // operations finished by earlier attempts

// Run implements workflow.Operator.
func (d *DDL) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	p, err := d.plan(tc)
	if err != nil {
		return nil, err
	}
	c, err := d.Env.td()
	if err != nil {
		return nil, err
	}
	state := tc.State
	if state == nil {
		state = map[string]any{}
	}
	done, _ := state[stateDDLDone].(int)
	if done == 0 {
		for _, rn := range p.renames {
			ok, err := c.Tables.Exists(ctx, rn.from.db, rn.from.table)
			if err != nil {
				return nil, fmt.Errorf("td_ddl>: checking table %s: %w", rn.from, err)
			}
			if !ok {
				return nil, fmt.Errorf("td_ddl>: Renaming table %s doesn't exist", rn.from)
			}
		}
	}
	for i := done; i < len(p.ops); i++ {
		fmt.Fprintln(tc.Log, p.ops[i].what)
		if err := p.ops[i].do(ctx, c); err != nil {
			return nil, fmt.Errorf("td_ddl>: %s: %w", p.ops[i].what, err)
		}
		state[stateDDLDone] = i + 1
	}
	return &workflow.Result{}, nil
}

// --- td_wait_table> --------------------------------------------------------

// WaitTable is td_wait_table>: it waits until a table exists and, with
// rows: N, until a count query on it gives at least N. It polls with the
// SDK's back-off (from Env.Wait's first delay, doubling up to interval,
// default 30s) and stops when the task is cancelled, killing a count job
// in flight. It stores nothing, as in digdag.
type WaitTable struct{ Env *Env }

type waitTableConfig struct {
	table    tableRef
	rows     int64
	interval time.Duration
	req      td.IssueRequest
}

func (w *WaitTable) config(tc *workflow.TaskContext) (*waitTableConfig, error) {
	name := workflow.Format(tc.Command)
	if strings.TrimSpace(name) == "" && !tc.Dynamic[""] {
		return nil, errors.New("td_wait_table> needs a table: td_wait_table>: TABLE (or DB.TABLE)")
	}
	cfg := &waitTableConfig{table: parseTableRef(name), interval: 30 * time.Second}
	db := settingString(tc, "database")
	validating := tc.Dynamic != nil
	if cfg.table.db == "" && db == "" && !validating {
		return nil, errors.New("td_wait_table>: no database: add database: NAME or _export: {td: {database: NAME}}")
	}
	if v := settingString(tc, "rows"); v != "" && !tc.Dynamic["rows"] {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("td_wait_table> rows must be a whole number >= 0 (got %q)", v)
		}
		cfg.rows = n
	}
	if v := settingString(tc, "interval"); v != "" && !tc.Dynamic["interval"] {
		d, err := parseInterval(v)
		if err != nil {
			return nil, fmt.Errorf("td_wait_table> interval: %w", err)
		}
		cfg.interval = d
	}
	engine := strings.ToLower(settingString(tc, "engine"))
	if engine == "" {
		engine = "presto"
	}
	if engine != "presto" && engine != "hive" && !tc.Dynamic["engine"] {
		return nil, fmt.Errorf("td_wait_table>: Unknown 'engine:' option (available options are: hive and presto): %s", engine)
	}
	ev := settingString(tc, "engine_version")
	if engine == "hive" && settingString(tc, "hive_engine_version") != "" {
		ev = settingString(tc, "hive_engine_version")
	}
	cfg.req = td.IssueRequest{Type: engine, Database: cfg.table.in(db).db, EngineVersion: ev,
		PoolName: settingString(tc, engine+"_pool_name")}
	var err error
	if cfg.req.Priority, err = intParam(tc, "priority"); err != nil && !tc.Dynamic["priority"] {
		return nil, fmt.Errorf("td_wait_table>: %w", err)
	}
	if cfg.req.RetryLimit, err = intParam(tc, "job_retry"); err != nil && !tc.Dynamic["job_retry"] {
		return nil, fmt.Errorf("td_wait_table>: %w", err)
	}
	if p := cfg.req.Priority; p != nil && (*p < -2 || *p > 2) {
		return nil, fmt.Errorf("td_wait_table>: priority %d out of range: use -2 (very low) to 2 (very high)", *p)
	}
	// digdag counts with the table as written: "table" or "db"."table"
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	ref := quote(cfg.table.table)
	if cfg.table.db != "" {
		ref = quote(cfg.table.db) + "." + ref
	}
	if engine == "hive" {
		bq := func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
		ref = bq(cfg.table.table)
		if cfg.table.db != "" {
			ref = bq(cfg.table.db) + "." + ref
		}
		cfg.req.Query = fmt.Sprintf("select count(*) from (select * from %s limit %d) sub", ref, cfg.rows)
	} else {
		cfg.req.Query = "select count(*) from " + ref
	}
	return cfg, nil
}

// parseInterval reads digdag's duration forms: "30s", "5m", "1h", or
// seconds as a number.
func parseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("must be positive (got %s)", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(strings.ReplaceAll(s, " ", ""))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("give a duration such as 30s, 5m or 1h (got %q)", s)
	}
	return d, nil
}

// Validate implements workflow.Validator.
func (w *WaitTable) Validate(tc *workflow.TaskContext) error {
	if err := waitTableSpec.check(tc.Task, ""); err != nil {
		return err
	}
	_, err := w.config(tc)
	return err
}

// Run implements workflow.Operator.
func (w *WaitTable) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	cfg, err := w.config(tc)
	if err != nil {
		return nil, err
	}
	c, err := w.Env.td()
	if err != nil {
		return nil, err
	}
	first := time.Second
	if o := w.Env.wait(); o != nil && o.MinDelay > 0 {
		first = o.MinDelay
	}
	first = min(first, cfg.interval)
	tbl := cfg.table.in(cfg.req.Database)
	polls := 0
	sleep := func() error {
		d := backoff.Exp(first, cfg.interval, polls)
		polls++
		return backoff.Sleep(ctx, d)
	}
	for {
		ok, err := c.Tables.Exists(ctx, tbl.db, tbl.table)
		if err != nil {
			return nil, fmt.Errorf("td_wait_table>: checking table %s: %w", tbl, err)
		}
		if ok {
			break
		}
		if polls == 0 {
			fmt.Fprintf(tc.Log, "waiting for table %s to exist\n", tbl)
		}
		if err := sleep(); err != nil {
			return nil, err
		}
	}
	if cfg.rows <= 0 {
		fmt.Fprintf(tc.Log, "table %s exists\n", tbl)
		return &workflow.Result{}, nil
	}
	polls = 0
	for attempt := 0; ; attempt++ {
		req := cfg.req
		req.DomainKey = derivedKey(tc) + "-" + strconv.Itoa(attempt)
		issued, err := c.Jobs.Issue(ctx, &req)
		if err != nil {
			return nil, err
		}
		n, err := countResult(ctx, c, issued.JobID, w.Env.wait())
		if ctx.Err() != nil {
			killOnCancel(ctx, c, tc, issued.JobID)
			return nil, ctx.Err()
		}
		if err != nil {
			return &workflow.Result{JobID: issued.JobID}, fmt.Errorf("td_wait_table>: count job %s: %w", issued.JobID, err)
		}
		fmt.Fprintf(tc.Log, "table %s: %d rows (job %s), waiting for %d\n", tbl, n, issued.JobID, cfg.rows)
		if n >= cfg.rows {
			return &workflow.Result{JobID: issued.JobID}, nil
		}
		if err := sleep(); err != nil {
			return nil, err
		}
	}
}

// countResult waits for a count job and reads its one integer.
func countResult(ctx context.Context, c *td.Client, id string, wait *td.WaitOptions) (int64, error) {
	if _, err := c.Jobs.Wait(ctx, id, wait); err != nil {
		return 0, err
	}
	rows, err := c.Results.Rows(ctx, id)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	row, err := rows.Next()
	if err == io.EOF {
		return 0, errors.New("got an empty result for the count job")
	}
	if err != nil {
		return 0, err
	}
	if len(row) != 1 {
		return 0, fmt.Errorf("got a result row of %d values for the count job", len(row))
	}
	switch v := row[0].(type) {
	case int64:
		return v, nil
	case uint64:
		return int64(v), nil
	case int8, int16, int32, int, uint8, uint16, uint32:
		return strconv.ParseInt(fmt.Sprint(v), 10, 64)
	}
	return 0, fmt.Errorf("got a %T for the count job's count", row[0])
}

// --- td_partial_delete> ----------------------------------------------------

// PartialDelete is td_partial_delete>: it deletes the rows of a table
// whose time is in [from, to) (both on whole hours) with a partial delete
// job, waits for it and stores td.last_job_id and td.last_job.*.
type PartialDelete struct{ Env *Env }

type partialDeleteConfig struct {
	table    tableRef
	from, to time.Time
}

func (p *PartialDelete) config(tc *workflow.TaskContext) (*partialDeleteConfig, error) {
	name := workflow.Format(tc.Command)
	if strings.TrimSpace(name) == "" && !tc.Dynamic[""] {
		return nil, errors.New("td_partial_delete> needs a table: td_partial_delete>: TABLE")
	}
	cfg := &partialDeleteConfig{table: parseTableRef(name).in(settingString(tc, "database"))}
	validating := tc.Dynamic != nil
	if cfg.table.db == "" && !validating {
		return nil, errors.New("td_partial_delete>: no database: add database: NAME or _export: {td: {database: NAME}}")
	}
	for _, k := range []string{"from", "to"} {
		if !tc.Has(k) {
			return nil, fmt.Errorf("td_partial_delete> needs %s (unix seconds or yyyy-MM-ddTHH:mm:ssZ)", k)
		}
	}
	if tc.Dynamic["from"] || tc.Dynamic["to"] {
		return cfg, nil
	}
	loc := time.UTC
	if tc.Workflow != nil {
		loc = tc.Workflow.Location()
	}
	var err error
	if cfg.from, err = isoOrUnix(tc.String("from"), loc); err != nil {
		return nil, fmt.Errorf("td_partial_delete> from: %w", err)
	}
	if cfg.to, err = isoOrUnix(tc.String("to"), loc); err != nil {
		return nil, fmt.Errorf("td_partial_delete> to: %w", err)
	}
	if cfg.from.Unix()%3600 != 0 || cfg.to.Unix()%3600 != 0 {
		return nil, fmt.Errorf("td_partial_delete>: 'from' and 'to' parameters must be whole hours (got %s and %s)", tc.String("from"), tc.String("to"))
	}
	if !cfg.from.Before(cfg.to) {
		return nil, fmt.Errorf("td_partial_delete>: from (%s) must be before to (%s)", tc.String("from"), tc.String("to"))
	}
	return cfg, nil
}

// isoOrUnix reads digdag's timestamp forms: unix seconds, an ISO-8601
// time with a zone, or one without (read in loc, the workflow's timezone).
func isoOrUnix(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, l := range []string{time.RFC3339, "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	for _, l := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("give unix seconds or yyyy-MM-ddTHH:mm:ss[Z], e.g. 2016-01-01T00:00:00+08:00 (got %q)", s)
}

// Validate implements workflow.Validator.
func (p *PartialDelete) Validate(tc *workflow.TaskContext) error {
	if err := partialDeleteSpec.check(tc.Task, ""); err != nil {
		return err
	}
	_, err := p.config(tc)
	return err
}

// Run implements workflow.Operator.
func (p *PartialDelete) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	cfg, err := p.config(tc)
	if err != nil {
		return nil, err
	}
	c, err := p.Env.td()
	if err != nil {
		return nil, err
	}
	issued, err := c.Tables.PartialDelete(ctx, cfg.table.db, cfg.table.table,
		td.PartialDeleteRequest{From: cfg.from, To: cfg.to, DomainKey: derivedKey(tc)})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(tc.Log, "partial delete job %s on %s: [%s, %s)\n", issued.JobID, cfg.table, td.FormatTime(cfg.from), td.FormatTime(cfg.to))
	return awaitJob(ctx, tc, c, issued.JobID, p.Env.wait())
}

// Defines implements workflow.Definer.
func (p *PartialDelete) Defines(*workflow.Task) []string {
	return []string{"td.last_job_id", "td.last_job"}
}

// awaitJob waits for a job a table operator started and stores it as
// td.last_job_id and td.last_job.* (digdag's BaseTdJobOperator); a
// cancelled task kills it.
func awaitJob(ctx context.Context, tc *workflow.TaskContext, c *td.Client, id string, wait *td.WaitOptions) (*workflow.Result, error) {
	job, err := c.Jobs.Wait(ctx, id, wait)
	res := &workflow.Result{JobID: id}
	if ctx.Err() != nil {
		killOnCancel(ctx, c, tc, id)
		return res, ctx.Err()
	}
	if job != nil {
		res.NumRecords = job.NumRecords
		fmt.Fprintf(tc.Log, "job %s %s\n", id, job.Status)
		if job.Debug != nil && strings.TrimSpace(job.Debug.Stderr) != "" && err != nil {
			fmt.Fprintln(tc.Log, strings.TrimSpace(job.Debug.Stderr))
		}
	}
	if err != nil {
		return res, err
	}
	res.Store = map[string]any{"td.last_job_id": id,
		"td.last_job": map[string]any{"id": id, "status": job.Status, "num_records": nullableInt(job.NumRecords)}}
	return res, nil
}

// --- td_table_export> ------------------------------------------------------

// TableExport is td_table_export>: it exports a table's rows in [from,
// to) to S3 with a table export job, waits for it and stores
// td.last_job_id and td.last_job.*. The AWS keys are the secrets
// aws.s3.access_key_id and aws.s3.secret_access_key, read by name as
// digdag reads them, or the settings s3_access_key_id and
// s3_secret_access_key (digdag's older names) when given.
type TableExport struct{ Env *Env }

type tableExportConfig struct {
	table tableRef
	req   td.TableExportRequest
}

func (e *TableExport) config(tc *workflow.TaskContext) (*tableExportConfig, error) {
	if tc.Command != nil && workflow.Format(tc.Command) != "" {
		return nil, fmt.Errorf("td_table_export> takes no value (%s): give database:, table: and the other settings beside it", workflow.Format(tc.Command))
	}
	validating := tc.Dynamic != nil
	cfg := &tableExportConfig{}
	for _, k := range []string{"table", "file_format", "from", "to", "s3_bucket", "s3_path_prefix"} {
		if !tc.Has(k) {
			return nil, fmt.Errorf("td_table_export> needs %s", k)
		}
	}
	cfg.table = parseTableRef(tc.String("table")).in(settingString(tc, "database"))
	if cfg.table.db == "" && !validating {
		return nil, errors.New("td_table_export>: no database: add database: NAME or _export: {td: {database: NAME}}")
	}
	r := &cfg.req
	// the AWS keys: the settings, else digdag's secrets aws.s3.* read by
	// name (masked like every secret)
	keys := map[string]*string{"s3_access_key_id": &r.AccessKeyID, "s3_secret_access_key": &r.SecretAccessKey}
	for _, k := range []string{"s3_access_key_id", "s3_secret_access_key"} {
		secret := "aws.s3." + strings.TrimPrefix(k, "s3_")
		switch {
		case tc.Has(k):
			*keys[k] = tc.String(k)
		case validating: // secrets are read when the task runs
		default:
			v, ok := "", false
			if tc.Secret != nil {
				v, ok = tc.Secret(secret)
			}
			if !ok || v == "" {
				return nil, fmt.Errorf("td_table_export> needs the AWS key %s: set the secret %s (as digdag reads it) or give %s: ${secret:NAME}", k, secret, k)
			}
			*keys[k] = v
		}
	}
	r.Bucket, r.FilePrefix, r.FileFormat = tc.String("s3_bucket"), tc.String("s3_path_prefix"), tc.String("file_format")
	r.PoolName = settingString(tc, "hive_pool_name")
	if validating {
		if !tc.Dynamic["file_format"] {
			if err := (&td.TableExportRequest{Bucket: "b", AccessKeyID: "k", SecretAccessKey: "s", FileFormat: r.FileFormat}).Validate(); err != nil {
				return nil, fmt.Errorf("td_table_export> invalid file_format option: %w", err)
			}
		}
		return cfg, nil
	}
	// a time without a zone is in the workflow's timezone, as in digdag
	loc := time.UTC
	if tc.Workflow != nil {
		loc = tc.Workflow.Location()
	}
	if tz := tc.String("timezone"); tz != "" {
		l, _, err := workflow.ParseZone(tz)
		if err != nil {
			return nil, fmt.Errorf("td_table_export> timezone: %w", err)
		}
		loc = l
	}
	for _, k := range []string{"from", "to"} {
		t, err := exportTime(tc.String(k), loc)
		if err != nil {
			return nil, fmt.Errorf("td_table_export> %s: %w", k, err)
		}
		if k == "from" {
			r.From = &t
		} else {
			r.To = &t
		}
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("td_table_export>: %w", err)
	}
	return cfg, nil
}

// exportTime reads unix seconds or "yyyy-MM-dd HH:mm:ss[ Z]" (in loc, the
// workflow's timezone, without a zone).
func exportTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	if t, err := time.Parse("2006-01-02 15:04:05 -0700", s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("give unix seconds or yyyy-MM-dd HH:mm:ss[ Z], e.g. 2016-01-01 00:00:00 +0800 (got %q)", s)
}

// Validate implements workflow.Validator.
func (e *TableExport) Validate(tc *workflow.TaskContext) error {
	if err := tableExportSpec.check(tc.Task, ""); err != nil {
		return err
	}
	_, err := e.config(tc)
	return err
}

// Run implements workflow.Operator.
func (e *TableExport) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	cfg, err := e.config(tc)
	if err != nil {
		return nil, err
	}
	c, err := e.Env.td()
	if err != nil {
		return nil, err
	}
	cfg.req.DomainKey = derivedKey(tc)
	issued, err := c.Exports.Run(ctx, cfg.table.db, cfg.table.table, &cfg.req)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(tc.Log, "table export job %s: %s → s3://%s/%s (%s)\n", issued.JobID, cfg.table, cfg.req.Bucket, cfg.req.FilePrefix, cfg.req.FileFormat)
	return awaitJob(ctx, tc, c, issued.JobID, e.Env.wait())
}

// Defines implements workflow.Definer.
func (e *TableExport) Defines(*workflow.Task) []string {
	return []string{"td.last_job_id", "td.last_job"}
}

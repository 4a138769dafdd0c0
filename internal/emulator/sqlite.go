package emulator

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// Column is one column of a result or table: a name and a Hive/Presto type
// name (bigint, double, varchar or string, boolean).
type Column struct {
	Name string
	Type string
}

// hiveFromDecl maps a SQLite declared column type to a TD type name, or ""
// when the declaration says nothing (expressions): the values decide then.
func hiveFromDecl(decl string) string {
	d := strings.ToUpper(decl)
	if i := strings.IndexByte(d, '('); i >= 0 {
		d = d[:i]
	}
	switch {
	case d == "":
		return ""
	case strings.Contains(d, "INT"):
		return "bigint"
	case strings.Contains(d, "BOOL"):
		return "boolean"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"), strings.Contains(d, "DEC"), strings.Contains(d, "NUMERIC"):
		return "double"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"), strings.Contains(d, "STRING"):
		return "varchar"
	case strings.Contains(d, "DATE"), strings.Contains(d, "TIME"):
		return "varchar"
	}
	return ""
}

// sqliteDecl is the SQLite column declaration used for a TD type: it keeps
// the right affinity and maps back to the same TD type.
func sqliteDecl(hive string) string {
	switch strings.ToLower(hive) {
	case "bigint", "int", "integer", "smallint", "tinyint", "long":
		return "BIGINT"
	case "double", "float", "real", "decimal":
		return "DOUBLE"
	case "boolean", "bool":
		return "BOOLEAN"
	}
	return "VARCHAR"
}

func valueType(v any) string {
	switch v.(type) {
	case int64, int, int32, uint64:
		return "bigint"
	case float64, float32:
		return "double"
	case bool:
		return "boolean"
	case nil:
		return ""
	}
	return "varchar"
}

// widen combines the type seen so far with the type of one more value.
func widen(cur, next string) string {
	switch {
	case next == "" || cur == next:
		return cur
	case cur == "":
		return next
	case cur == "bigint" && next == "double", cur == "double" && next == "bigint":
		return "double"
	}
	return "varchar"
}

// normalize turns a value scanned from SQLite into one msgpack and the
// writers handle.
func normalize(v any, hive string) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.000")
	case int64:
		if hive == "boolean" {
			return x != 0
		}
	}
	return v
}

var reForbidden = lazyRE(`(?is)(^|;)\s*(attach|detach|pragma|vacuum)\b`)

type queryResult struct {
	schema []Column
	rows   int64
	size   int64
}

// runQuery executes query on database dbName and writes its rows as a
// msgpack.gz file at out.
func (s *Server) runQuery(ctx context.Context, dbName, jobType, query, out string) (queryResult, error) {
	d, ok := s.database(dbName)
	if !ok {
		return queryResult{}, fmt.Errorf("database %q does not exist", dbName)
	}
	if reForbidden().MatchString(query) {
		return queryResult{}, errors.New("ATTACH, DETACH, PRAGMA and VACUUM statements are not supported by the emulator")
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return queryResult{}, err
	}
	defer conn.Close()
	if err := s.attachMentioned(ctx, conn, dbName, query); err != nil {
		return queryResult{}, err
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return queryResult{}, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return queryResult{}, err
	}
	schema := make([]Column, len(cts))
	declared := make([]bool, len(cts))
	for i, ct := range cts {
		schema[i] = Column{Name: ct.Name(), Type: hiveFromDecl(ct.DatabaseTypeName())}
		declared[i] = schema[i].Type != ""
	}
	rw, err := createResultFile(out)
	if err != nil {
		return queryResult{}, err
	}
	defer rw.abort()
	vals := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return queryResult{}, err
		}
		for i, v := range vals {
			vals[i] = normalize(v, schema[i].Type)
			if !declared[i] {
				schema[i].Type = widen(schema[i].Type, valueType(vals[i]))
			}
		}
		if err := rw.write(vals); err != nil {
			return queryResult{}, err
		}
	}
	if err := rows.Err(); err != nil {
		return queryResult{}, err
	}
	size, err := rw.commit()
	if err != nil {
		return queryResult{}, err
	}
	for i := range schema {
		if schema[i].Type == "" {
			schema[i].Type = "varchar"
		}
		if jobType == "hive" && schema[i].Type == "varchar" {
			schema[i].Type = "string"
		}
	}
	return queryResult{schema: schema, rows: rw.rows, size: size}, nil
}

// attachMentioned attaches the other databases that the query names as
// `db.table`, so cross-database queries work.
func (s *Server) attachMentioned(ctx context.Context, conn *sql.Conn, self, query string) error {
	lq := strings.ToLower(query)
	var want []*database
	s.mu.Lock()
	for name, d := range s.dbs {
		if name == self {
			continue
		}
		ln := strings.ToLower(name)
		if strings.Contains(lq, ln+".") || strings.Contains(lq, `"`+ln+`".`) {
			want = append(want, d)
		}
	}
	s.mu.Unlock()
	if len(want) == 0 {
		return nil
	}
	attached := map[string]bool{}
	rows, err := conn.QueryContext(ctx, `PRAGMA database_list`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err == nil {
			attached[strings.ToLower(name)] = true
		}
	}
	rows.Close()
	for _, d := range want {
		if attached[strings.ToLower(d.name)] {
			continue
		}
		if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+quoteIdent(d.name), d.path); err != nil {
			return fmt.Errorf("attaching database %s: %w", d.name, err)
		}
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// tableExists reports whether table exists in the main schema of conn.
func tableExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, table string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table','view') AND name = ?`, table).Scan(&n)
	return n > 0, err
}

// tableColumns returns the columns of table with TD types.
func tableColumns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) ([]Column, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		var decl string
		if err := rows.Scan(&c.Name, &decl); err != nil {
			return nil, err
		}
		c.Type = hiveFromDecl(decl)
		if c.Type == "" {
			c.Type = "varchar"
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// TableRows returns every row of db.table (what an export wrote) and its
// columns, in insertion order.
func (s *Server) TableRows(db, table string) ([][]any, []Column, error) {
	d, ok := s.database(db)
	if !ok {
		return nil, nil, fmt.Errorf("emulator: database %q does not exist", db)
	}
	ctx := context.Background()
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if ok, err := tableExists(ctx, conn, table); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("emulator: table %s.%s does not exist", db, table)
		}
		return nil, nil, err
	}
	cols, err := tableColumns(ctx, conn, table)
	if err != nil {
		return nil, nil, err
	}
	rows, err := conn.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table)+` ORDER BY rowid`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		for i, v := range vals {
			vals[i] = normalize(v, cols[i].Type)
		}
		out = append(out, vals)
	}
	return out, cols, rows.Err()
}

// tableList describes the tables of a database.
type tableInfo struct {
	name  string
	count int64
	cols  []Column
}

func (s *Server) tables(ctx context.Context, d *database) ([]tableInfo, error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	names, err := tableNames(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []tableInfo
	for _, n := range names {
		ti := tableInfo{name: n}
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(n)).Scan(&ti.count); err != nil {
			return nil, err
		}
		if ti.cols, err = tableColumns(ctx, conn, n); err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

// --- sample_datasets -------------------------------------------------------

var (
	sampleOnce sync.Once
	sampleData []byte
	sampleErr  error
)

// writeSampleDatasets writes the deterministic sample_datasets database to
// path. It is generated once per process and copied afterwards.
func writeSampleDatasets(path string) error {
	sampleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "emulator-sample-")
		if err != nil {
			sampleErr = err
			return
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "sample.sqlite")
		if sampleErr = generateSample(p); sampleErr != nil {
			return
		}
		sampleData, sampleErr = os.ReadFile(p)
	})
	if sampleErr != nil {
		return sampleErr
	}
	return os.WriteFile(path, sampleData, 0o600)
}

// SampleRows are the row counts of the generated sample tables.
const (
	sampleWWWAccessRows = 5000
	sampleNasdaqSymbols = 20
	sampleNasdaqDays    = 250
)

func generateSample(path string) (err error) {
	db, err := openSQLite(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := db.Exec(`PRAGMA journal_mode=DELETE`); err != nil {
		return err
	}
	if _, err := db.Exec(`CREATE TABLE www_access ("user" VARCHAR, host VARCHAR, path VARCHAR, referer VARCHAR, code BIGINT, agent VARCHAR, size BIGINT, method VARCHAR, time BIGINT);
CREATE TABLE nasdaq (symbol VARCHAR, open DOUBLE, volume BIGINT, high DOUBLE, low DOUBLE, close DOUBLE, time BIGINT)`); err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	r := rand.New(rand.NewPCG(20141003, 1))
	paths := []string{"/category/electronics", "/category/software", "/category/games", "/category/books", "/category/garden", "/item/books/%d", "/item/electronics/%d", "/item/software/%d", "/search/?c=Games+Software", "/search/?c=Electronics", "/"}
	referers := []string{"-", "-", "-", "http://www.google.com/search?q=shop", "http://www.example.com/", "/category/books", "/item/electronics/2021"}
	agents := []string{
		"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/37.0.2062.120 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5) AppleWebKit/537.78.2 (KHTML, like Gecko) Version/7.0.6 Safari/537.78.2",
		"Mozilla/5.0 (Windows NT 6.3; WOW64; Trident/7.0; rv:11.0) like Gecko",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 8_0 like Mac OS X) AppleWebKit/600.1.4 (KHTML, like Gecko) Version/8.0 Mobile/12A365 Safari/600.1.4",
		"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:32.0) Gecko/20100101 Firefox/32.0",
	}
	st, err := tx.Prepare(`INSERT INTO www_access VALUES (?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	base := int64(1412121600) // 2014-10-01 00:00:00 UTC
	for i := 0; i < sampleWWWAccessRows; i++ {
		p := paths[r.IntN(len(paths))]
		if strings.Contains(p, "%d") {
			p = fmt.Sprintf(p, 1000+r.IntN(9000))
		}
		code := int64(200)
		switch n := r.IntN(100); {
		case n < 6:
			code = 404
		case n < 8:
			code = 500
		case n < 12:
			code = 304
		}
		method := "GET"
		if r.IntN(10) == 0 {
			method = "POST"
		}
		t := base + int64(i)*int64(3*86400)/sampleWWWAccessRows + int64(r.IntN(30))
		if _, err := st.Exec(fmt.Sprintf("u%04d", r.IntN(500)),
			fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), 1+r.IntN(254)),
			p, referers[r.IntN(len(referers))], code, agents[r.IntN(len(agents))],
			int64(50+r.IntN(200000)), method, t); err != nil {
			return err
		}
	}
	st.Close()
	symbols := []string{"AAPL", "ADBE", "AMZN", "CSCO", "EBAY", "FB", "GOOG", "INTC", "MSFT", "NFLX", "NVDA", "ORCL", "QCOM", "SBUX", "TSLA", "TXN", "YHOO", "ZNGA", "AMGN", "COST"}[:sampleNasdaqSymbols]
	st, err = tx.Prepare(`INSERT INTO nasdaq VALUES (?,?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	round := func(f float64) float64 { return math.Round(f*100) / 100 }
	for _, sym := range symbols {
		price := 20 + r.Float64()*480
		day := time.Date(2014, 1, 2, 0, 0, 0, 0, time.UTC)
		for n := 0; n < sampleNasdaqDays; day = day.AddDate(0, 0, 1) {
			if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
				continue
			}
			open := price
			closeP := math.Max(1, open*(1+(r.Float64()-0.5)*0.06))
			high := math.Max(open, closeP) * (1 + r.Float64()*0.02)
			low := math.Min(open, closeP) * (1 - r.Float64()*0.02)
			if _, err := st.Exec(sym, round(open), int64(100000+r.IntN(20000000)), round(high), round(low), round(closeP), day.Unix()); err != nil {
				return err
			}
			price = closeP
			n++
		}
	}
	return tx.Commit()
}

// --- TD functions ----------------------------------------------------------

func registerTDFunctions() {
	sqliteDriver.MustRegisterDeterministicScalarFunction("td_time_range", -1, tdTimeRange)
	sqliteDriver.MustRegisterDeterministicScalarFunction("td_time_format", -1, tdTimeFormat)
	sqliteDriver.MustRegisterDeterministicScalarFunction("td_time_parse", -1, tdTimeParse)
}

func tdLocation(v driver.Value) (*time.Location, error) {
	name, _ := v.(string)
	switch strings.ToUpper(name) {
	case "", "UTC", "GMT":
		return time.UTC, nil
	case "JST":
		return time.FixedZone("JST", 9*3600), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

// tdUnix reads a time argument: unix seconds or a date/time string.
func tdUnix(v driver.Value, loc *time.Location) (int64, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return x, true, nil
	case float64:
		return int64(x), true, nil
	case []byte:
		v = string(x)
	}
	s, ok := v.(string)
	if !ok {
		return 0, false, fmt.Errorf("cannot read %v as a time", v)
	}
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05", "2006-01-02T15:04:05Z07:00", "2006-01-02", "2006-01"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.Unix(), true, nil
		}
	}
	return 0, false, fmt.Errorf("cannot parse time %q (use YYYY-MM-DD or YYYY-MM-DD hh:mm:ss)", s)
}

// tdTimeRange is TD_TIME_RANGE(time, start[, end[, tz]]): start inclusive,
// end exclusive, NULL bounds open.
func tdTimeRange(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if len(args) < 2 || len(args) > 4 {
		return nil, errors.New("TD_TIME_RANGE takes (time, start[, end[, time_zone]])")
	}
	loc := time.UTC
	if len(args) == 4 {
		l, err := tdLocation(args[3])
		if err != nil {
			return nil, err
		}
		loc = l
	}
	t, ok, err := tdUnix(args[0], time.UTC)
	if err != nil || !ok {
		return int64(0), err
	}
	if start, ok, err := tdUnix(args[1], loc); err != nil {
		return nil, err
	} else if ok && t < start {
		return int64(0), nil
	}
	if len(args) >= 3 {
		if end, ok, err := tdUnix(args[2], loc); err != nil {
			return nil, err
		} else if ok && t >= end {
			return int64(0), nil
		}
	}
	return int64(1), nil
}

var javaLayout = strings.NewReplacer("yyyy", "2006", "yy", "06", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05", "SSS", "000", "z", "MST", "Z", "-0700", "EEE", "Mon")

// tdTimeFormat is TD_TIME_FORMAT(time, format[, tz]) with the common
// SimpleDateFormat letters.
func tdTimeFormat(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if len(args) < 2 || len(args) > 3 {
		return nil, errors.New("TD_TIME_FORMAT takes (time, format[, time_zone])")
	}
	loc := time.UTC
	if len(args) == 3 {
		l, err := tdLocation(args[2])
		if err != nil {
			return nil, err
		}
		loc = l
	}
	t, ok, err := tdUnix(args[0], time.UTC)
	if err != nil || !ok {
		return nil, err
	}
	f, _ := args[1].(string)
	return time.Unix(t, 0).In(loc).Format(javaLayout.Replace(f)), nil
}

// tdTimeParse is TD_TIME_PARSE(string[, tz]) → unix seconds.
func tdTimeParse(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, errors.New("TD_TIME_PARSE takes (time_string[, time_zone])")
	}
	loc := time.UTC
	if len(args) == 2 {
		l, err := tdLocation(args[1])
		if err != nil {
			return nil, err
		}
		loc = l
	}
	t, ok, err := tdUnix(args[0], loc)
	if err != nil || !ok {
		return nil, err
	}
	return t, nil
}

package td

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// TablesService lists, creates, deletes, renames and swaps tables, reads
// and changes their schema and expiry, previews their rows and deletes
// rows by time range.
type TablesService service

// TableColumn is one column of a table's schema. Alias, when set, is the
// name the column is stored under (TD's "as" alias).
type TableColumn struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Alias string `json:"alias,omitempty"`
}

// Table is what GET /v3/table/show answers (and each element of the table
// list). Times are UTC; CounterUpdatedAt and LastLogTimestamp are nil when
// the API sends null, ExpireDays nil when the table never expires. The JSON
// tags are the API's field names.
type Table struct {
	ID                   int64         `json:"id"`
	Name                 string        `json:"name"`
	Type                 string        `json:"type"`
	Count                int64         `json:"count"`
	CreatedAt            time.Time     `json:"created_at"`
	UpdatedAt            time.Time     `json:"updated_at"`
	CounterUpdatedAt     *time.Time    `json:"counter_updated_at"`
	LastLogTimestamp     *time.Time    `json:"last_log_timestamp"`
	DeleteProtected      bool          `json:"delete_protected"`
	EstimatedStorageSize int64         `json:"estimated_storage_size"`
	Schema               []TableColumn `json:"schema"`
	ExpireDays           *int64        `json:"expire_days"`
	IncludeV             bool          `json:"include_v"`
	PrimaryKey           string        `json:"primary_key,omitempty"`
	PrimaryKeyType       string        `json:"primary_key_type,omitempty"`
}

type tableWire struct {
	ID                   flexInt  `json:"id"`
	Name                 string   `json:"name"`
	Type                 string   `json:"type"`
	Count                flexInt  `json:"count"`
	CreatedAt            flexTime `json:"created_at"`
	UpdatedAt            flexTime `json:"updated_at"`
	CounterUpdatedAt     flexTime `json:"counter_updated_at"`
	LastLogTimestamp     flexTime `json:"last_log_timestamp"`
	DeleteProtected      bool     `json:"delete_protected"`
	EstimatedStorageSize flexInt  `json:"estimated_storage_size"`
	Schema               *string  `json:"schema"`
	ExpireDays           flexInt  `json:"expire_days"`
	IncludeV             bool     `json:"include_v"`
	PrimaryKey           *string  `json:"primary_key"`
	PrimaryKeyType       *string  `json:"primary_key_type"`
}

func (w *tableWire) table() (*Table, error) {
	t := &Table{
		ID: w.ID.value(), Name: w.Name, Type: w.Type, Count: w.Count.value(),
		CreatedAt: w.CreatedAt.t, UpdatedAt: w.UpdatedAt.t,
		CounterUpdatedAt: timePtr(w.CounterUpdatedAt), LastLogTimestamp: timePtr(w.LastLogTimestamp),
		DeleteProtected: w.DeleteProtected, EstimatedStorageSize: w.EstimatedStorageSize.value(),
		ExpireDays: w.ExpireDays.v, IncludeV: w.IncludeV, Schema: []TableColumn{},
	}
	if w.PrimaryKey != nil {
		t.PrimaryKey = *w.PrimaryKey
	}
	if w.PrimaryKeyType != nil {
		t.PrimaryKeyType = *w.PrimaryKeyType
	}
	if w.Schema != nil && strings.TrimSpace(*w.Schema) != "" {
		cols, err := parseTableSchema(*w.Schema)
		if err != nil {
			return nil, err
		}
		t.Schema = cols
	}
	return t, nil
}

// parseTableSchema decodes a table's schema: a JSON string holding
// [[name, type], ...] or [[name, type, alias], ...].
func parseTableSchema(s string) ([]TableColumn, error) {
	var rows [][]string
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, &ProtocolError{Msg: fmt.Sprintf("cannot decode table schema %q", truncate(s, 80)), Err: err}
	}
	cols := make([]TableColumn, 0, len(rows))
	for _, r := range rows {
		var c TableColumn
		if len(r) > 0 {
			c.Name = r[0]
		}
		if len(r) > 1 {
			c.Type = r[1]
		}
		if len(r) > 2 {
			c.Alias = r[2]
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// notFound rewrites a 404 *APIError's message; other errors pass.
func notFound(err error, format string, args ...any) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
		apiErr.Message = fmt.Sprintf(format, args...)
	}
	return err
}

// List returns the tables of a database (GET /v3/table/list/:db). An
// unknown database is an *APIError matching ErrNotFound.
func (s *TablesService) List(ctx context.Context, db string) ([]Table, error) {
	if err := checkName("database", db); err != nil {
		return nil, err
	}
	p := path("/v3/table/list", db)
	var w struct {
		Tables *[]tableWire `json:"tables"`
	}
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: p, retry: true}, &w); err != nil {
		return nil, notFound(err, "database %q does not exist", db)
	}
	if w.Tables == nil {
		return nil, &ProtocolError{Method: http.MethodGet, Path: p, Msg: `answer carried no "tables"`}
	}
	out := make([]Table, 0, len(*w.Tables))
	for i := range *w.Tables {
		t, err := (*w.Tables)[i].table()
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, nil
}

// Show returns one table (GET /v3/table/show/:db/:table). An unknown
// database or table is an *APIError matching ErrNotFound.
func (s *TablesService) Show(ctx context.Context, db, table string) (*Table, error) {
	if err := checkDBTable(db, table); err != nil {
		return nil, err
	}
	p := path("/v3/table/show", db, table)
	var w tableWire
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: p, retry: true}, &w); err != nil {
		return nil, notFound(err, "table %s.%s does not exist", db, table)
	}
	if w.Name == "" {
		return nil, &ProtocolError{Method: http.MethodGet, Path: p, Msg: "answer carried no table name"}
	}
	return w.table()
}

// Exists reports whether db.table exists (Show answering 404 means no).
func (s *TablesService) Exists(ctx context.Context, db, table string) (bool, error) {
	_, err := s.Show(ctx, db, table)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func checkDBTable(db, table string) error {
	if err := checkName("database", db); err != nil {
		return err
	}
	return checkName("table", table)
}

// Create creates a log table (POST /v3/table/create/:db/:table/log). A
// table that exists is an *APIError matching ErrConflict, a missing
// database one matching ErrNotFound. A 409 answering a retry counts as
// success.
func (s *TablesService) Create(ctx context.Context, db, table string) error {
	if err := checkDBTable(db, table); err != nil {
		return err
	}
	err := s.client.doIdempotent(ctx, &request{method: http.MethodPost, path: path("/v3/table/create", db, table, "log")},
		http.StatusConflict, fmt.Sprintf("table %s.%s already exists", db, table), nil)
	return notFound(err, "database %q does not exist", db)
}

// Delete deletes a table (POST /v3/table/delete/:db/:table). An unknown
// table is an *APIError matching ErrNotFound; a 404 answering a retry
// counts as success.
func (s *TablesService) Delete(ctx context.Context, db, table string) error {
	if err := checkDBTable(db, table); err != nil {
		return err
	}
	var out struct {
		Type string `json:"type"`
	}
	return s.client.doIdempotent(ctx, &request{method: http.MethodPost, path: path("/v3/table/delete", db, table)},
		http.StatusNotFound, fmt.Sprintf("table %s.%s does not exist", db, table), &out)
}

// Swap exchanges the contents of two tables of db: rows, schema and
// settings follow the data (POST /v3/table/swap/:db/:t1/:t2). It is sent
// once: repeating a swap would undo it.
func (s *TablesService) Swap(ctx context.Context, db, table1, table2 string) error {
	if err := checkDBTable(db, table1); err != nil {
		return err
	}
	if err := checkName("table", table2); err != nil {
		return err
	}
	if table1 == table2 {
		return invalidArg("cannot swap table %s with itself", table1)
	}
	var out map[string]any
	err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/v3/table/swap", db, table1, table2)}, &out)
	return notFound(err, "table %s.%s or %s.%s does not exist", db, table1, db, table2)
}

// Rename gives table a new name in the same database (POST
// /v3/table/rename/:db/:table/:new). With overwrite, a table already named
// newName is replaced; without, it is an *APIError matching ErrConflict. A
// 404 answering a retry (the first attempt went through) counts as success.
func (s *TablesService) Rename(ctx context.Context, db, table, newName string, overwrite bool) error {
	if err := checkDBTable(db, table); err != nil {
		return err
	}
	if err := checkName("table", newName); err != nil {
		return err
	}
	if table == newName {
		return invalidArg("table %s already has that name", table)
	}
	form := url.Values{"overwrite": {strconv.FormatBool(overwrite)}}
	return s.client.doIdempotent(ctx, &request{method: http.MethodPost, path: path("/v3/table/rename", db, table, newName), form: form},
		http.StatusNotFound, fmt.Sprintf("table %s.%s does not exist", db, table), &map[string]any{})
}

// ValidName reports whether name is one TD takes for a new database or
// table: 3 to 255 lower-case letters, digits and underscores.
func ValidName(name string) bool { return lowerName(name, 3, 255) }

// lowerName reports whether s is min to max lower-case ASCII letters,
// digits and underscores. (A loop, not a regular expression: a package
// level pattern compiles at every tdctl start.)
func lowerName(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ValidateSchema checks columns as TD would: names of lower-case letters,
// digits and underscores, no "time" or "v" (TD keeps those itself), no
// name twice, a type given.
func ValidateSchema(cols []TableColumn) error {
	seen := map[string]bool{}
	for i, c := range cols {
		switch {
		case c.Name == "time" || c.Name == "v":
			return invalidArg("column %d: name %q is reserved: TD tables have an implicit %s column", i+1, c.Name, c.Name)
		case !lowerName(c.Name, 1, 128):
			return invalidArg("column %d: invalid name %q: use lower-case letters, digits and underscores", i+1, c.Name)
		case strings.TrimSpace(c.Type) == "":
			return invalidArg("column %s: a type is required (string, long, double, int, float, boolean or array<...>)", c.Name)
		case !validColumnType(c.Type):
			return invalidArg("column %s: unknown type %q: use string, long, double, int, float, boolean, array<TYPE> or map<TYPE,TYPE>", c.Name, c.Type)
		case seen[c.Name]:
			return invalidArg("column %s is given twice", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// validColumnType reports whether t is one of TD's column types: string,
// long, double, int, float, boolean, array<T> or map<K,V> of those (any
// case, spaces allowed inside the brackets).
func validColumnType(t string) bool {
	t = strings.ToLower(strings.TrimSpace(t))
	switch t {
	case "string", "long", "double", "int", "float", "boolean":
		return true
	}
	if inner, ok := strings.CutPrefix(t, "array<"); ok && strings.HasSuffix(inner, ">") {
		return validColumnType(strings.TrimSuffix(inner, ">"))
	}
	if inner, ok := strings.CutPrefix(t, "map<"); ok && strings.HasSuffix(inner, ">") {
		inner = strings.TrimSuffix(inner, ">")
		// split at the comma outside nested brackets
		depth := 0
		for i, c := range inner {
			switch c {
			case '<':
				depth++
			case '>':
				depth--
			case ',':
				if depth == 0 {
					return validColumnType(inner[:i]) && validColumnType(inner[i+1:])
				}
			}
		}
	}
	return false
}

// ParseColumns reads "name:type" arguments (the td CLI's schema syntax)
// into columns and validates them.
func ParseColumns(args []string) ([]TableColumn, error) {
	cols := make([]TableColumn, 0, len(args))
	for _, a := range args {
		name, typ, ok := strings.Cut(a, ":")
		if !ok || name == "" || typ == "" {
			return nil, invalidArg("invalid column %q: write NAME:TYPE, for example user_id:long", a)
		}
		cols = append(cols, TableColumn{Name: strings.TrimSpace(name), Type: strings.TrimSpace(typ)})
	}
	return cols, ValidateSchema(cols)
}

// SetSchema replaces the schema of a table (POST
// /v3/table/update-schema/:db/:table). Rows keep their data; columns left
// out are no longer shown.
func (s *TablesService) SetSchema(ctx context.Context, db, table string, cols []TableColumn) error {
	if err := checkDBTable(db, table); err != nil {
		return err
	}
	if err := ValidateSchema(cols); err != nil {
		return err
	}
	pairs := make([][]string, len(cols))
	for i, c := range cols {
		pairs[i] = []string{c.Name, c.Type}
		if c.Alias != "" {
			pairs[i] = append(pairs[i], c.Alias)
		}
	}
	b, _ := json.Marshal(pairs)
	var out map[string]any
	err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/v3/table/update-schema", db, table),
		form: url.Values{"schema": {string(b)}}, retry: true}, &out)
	return notFound(err, "table %s.%s does not exist", db, table)
}

// AppendSchema adds columns after the table's current ones (Show, then
// SetSchema): a name already in the schema is refused.
func (s *TablesService) AppendSchema(ctx context.Context, db, table string, cols []TableColumn) error {
	t, err := s.Show(ctx, db, table)
	if err != nil {
		return err
	}
	return s.SetSchema(ctx, db, table, append(append([]TableColumn{}, t.Schema...), cols...))
}

// SetExpireDays sets after how many days rows expire; 0 stops expiry
// (POST /v3/table/update/:db/:table form expire_days).
func (s *TablesService) SetExpireDays(ctx context.Context, db, table string, days int) error {
	if err := checkDBTable(db, table); err != nil {
		return err
	}
	if days < 0 {
		return invalidArg("expire days %d must be >= 0 (0 = never)", days)
	}
	var out map[string]any
	err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/v3/table/update", db, table),
		form: url.Values{"expire_days": {strconv.Itoa(days)}}, retry: true}, &out)
	return notFound(err, "table %s.%s does not exist", db, table)
}

// Tail returns up to count of the table's newest rows, newest first, each
// a map from column name to value with "time" (POST /v3/table/tail).
func (s *TablesService) Tail(ctx context.Context, db, table string, count int) ([]map[string]any, error) {
	if err := checkDBTable(db, table); err != nil {
		return nil, err
	}
	if count <= 0 {
		return nil, invalidArg("tail count %d must be > 0", count)
	}
	r := &request{method: http.MethodPost, path: path("/v3/table/tail", db, table),
		form: url.Values{"count": {strconv.Itoa(count)}, "format": {"msgpack"}}, retry: true}
	var rows []map[string]any
	_, err := s.client.do(ctx, r, s.client.newBudget(true), func(resp *http.Response) error {
		defer resp.Body.Close()
		rows = rows[:0]
		// read whole first: a read that fails is the network's (retried),
		// bytes that do not decode are the server's
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return newNetError(r.method, r.path, fmt.Errorf("reading the answer: %w", err), s.client.red)
		}
		dec := msgpack.NewDecoder(bytes.NewReader(data))
		dec.UseLooseInterfaceDecoding(true)
		for {
			m, err := dec.DecodeMap()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return &ProtocolError{Method: r.method, Path: r.path, Msg: "cannot decode msgpack row", Err: err}
			}
			row := make(map[string]any, len(m))
			for k, v := range m {
				row[fmt.Sprint(k)] = v
			}
			rows = append(rows, row)
		}
	})
	if err != nil {
		return nil, notFound(err, "table %s.%s does not exist", db, table)
	}
	return rows, nil
}

// PartialDeleteRequest deletes the rows whose time is in [From, To). TD
// needs both on whole hours.
type PartialDeleteRequest struct {
	From, To time.Time
	// DomainKey makes the call idempotent; one is generated when empty.
	DomainKey string
}

// PartialDelete starts a job deleting rows by time range (POST
// /v3/table/partialdelete/:db/:table) and returns it; follow it with
// Jobs.Wait.
func (s *TablesService) PartialDelete(ctx context.Context, db, table string, req PartialDeleteRequest) (*IssuedJob, error) {
	if err := checkDBTable(db, table); err != nil {
		return nil, err
	}
	if req.From.IsZero() || req.To.IsZero() {
		return nil, invalidArg("partial delete needs from and to")
	}
	if req.From.Unix()%3600 != 0 || req.To.Unix()%3600 != 0 {
		return nil, invalidArg("partial delete from and to must be on whole hours (got %s and %s)", FormatTime(req.From), FormatTime(req.To))
	}
	if !req.From.Before(req.To) {
		return nil, invalidArg("partial delete from (%s) must be before to (%s)", FormatTime(req.From), FormatTime(req.To))
	}
	form := url.Values{"from": {strconv.FormatInt(req.From.Unix(), 10)}, "to": {strconv.FormatInt(req.To.Unix(), 10)}}
	j, err := s.client.issueKeyed(ctx, path("/v3/table/partialdelete", db, table), form, req.DomainKey)
	if err != nil {
		return nil, notFound(err, "table %s.%s does not exist", db, table)
	}
	if j.Database == "" {
		j.Database = db
	}
	return j, nil
}

// issueKeyed sends a job-starting POST under a domain_key (generated when
// empty), retried on transient failures; a 409 resolves to the job started
// first with that key.
func (c *Client) issueKeyed(ctx context.Context, p string, form url.Values, key string) (*IssuedJob, error) {
	if key == "" {
		key = NewDomainKey()
	}
	form.Set("domain_key", key)
	var out struct {
		Job      flexString `json:"job"`
		JobID    flexString `json:"job_id"`
		Database string     `json:"database"`
	}
	err := c.doJSON(ctx, &request{method: http.MethodPost, path: p, form: form, retry: true}, &out)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict {
		id := apiErr.ConflictsWith
		if id == "" {
			st, serr := c.Jobs.StatusByDomainKey(ctx, key)
			if serr != nil {
				return nil, fmt.Errorf("%w (and looking up domain key failed: %v)", err, serr)
			}
			id = st.JobID
		}
		if id == "" {
			return nil, fmt.Errorf("%w (the API named no existing job for domain key %q)", err, key)
		}
		return &IssuedJob{JobID: id, DomainKey: key, Existing: true}, nil
	}
	if err != nil {
		return nil, err
	}
	id := string(out.JobID)
	if id == "" {
		id = string(out.Job)
	}
	if id == "" {
		return nil, &ProtocolError{Method: http.MethodPost, Path: p, Msg: "answer carried no job id"}
	}
	return &IssuedJob{JobID: id, Database: out.Database, DomainKey: key}, nil
}

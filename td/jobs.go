package td

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
)

// JobsService issues and follows query jobs.
type JobsService service

// Job states.
const (
	StatusQueued  = "queued"
	StatusBooting = "booting"
	StatusRunning = "running"
	StatusSuccess = "success"
	StatusError   = "error"
	StatusKilled  = "killed"
)

// Finished reports whether status is a final state.
func Finished(status string) bool {
	return status == StatusSuccess || status == StatusError || status == StatusKilled
}

// Column is one result column from hive_result_schema.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Debug holds a job's diagnostic output.
type Debug struct {
	CmdOut string `json:"cmdout"`
	Stderr string `json:"stderr"`
}

// Job is what GET /v3/job/show answers. Times are UTC; pointers are nil where
// the API sends null (NumRecords stays nil until the job finished, which
// keeps "not finished" distinct from 0 records). Result is redacted. The JSON
// tags are the stable names the CLI prints.
type Job struct {
	ID           string     `json:"job_id"`
	Type         string     `json:"type"`
	Database     string     `json:"database"`
	Status       string     `json:"status"`
	Query        string     `json:"query"`
	URL          string     `json:"url"`
	UserName     string     `json:"user_name"`
	Organization string     `json:"organization,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	StartAt      *time.Time `json:"start_at"`
	EndAt        *time.Time `json:"end_at"`
	Duration     *int64     `json:"duration"`
	CPUTime      *int64     `json:"cpu_time"`
	ResultSize   *int64     `json:"result_size"`
	NumRecords   *int64     `json:"num_records"`
	Priority     int        `json:"priority"`
	RetryLimit   int        `json:"retry_limit"`
	Result       string     `json:"result"`
	Schema       []Column   `json:"schema"`
	Debug        *Debug     `json:"debug,omitempty"`
	// LinkedResultExportJobID is the export job started for this job, if any.
	LinkedResultExportJobID string `json:"linked_result_export_job_id,omitempty"`
	// ResultExportTargetJobID is, on an export job, the job whose result it exports.
	ResultExportTargetJobID string `json:"result_export_target_job_id,omitempty"`
}

// Finished reports whether the job reached success, error or killed.
func (j *Job) Finished() bool { return Finished(j.Status) }

// jobWire is the API's shape of a job (show and list entries).
type jobWire struct {
	JobID        flexString `json:"job_id"`
	Type         string     `json:"type"`
	Database     string     `json:"database"`
	Status       string     `json:"status"`
	Query        flexQuery  `json:"query"`
	URL          string     `json:"url"`
	UserName     string     `json:"user_name"`
	Organization *string    `json:"organization"`
	CreatedAt    flexTime   `json:"created_at"`
	UpdatedAt    flexTime   `json:"updated_at"`
	StartAt      flexTime   `json:"start_at"`
	EndAt        flexTime   `json:"end_at"`
	Duration     flexInt    `json:"duration"`
	CPUTime      flexInt    `json:"cpu_time"`
	ResultSize   flexInt    `json:"result_size"`
	NumRecords   flexInt    `json:"num_records"`
	Priority     flexInt    `json:"priority"`
	RetryLimit   flexInt    `json:"retry_limit"`
	Result       *string    `json:"result"`
	Schema       *string    `json:"hive_result_schema"`
	Debug        *Debug     `json:"debug"`
	Linked       flexString `json:"linked_result_export_job_id"`
	Target       flexString `json:"result_export_target_job_id"`
}

// flexQuery accepts a query as a string or as an object (some job types send
// {"query": "..."}).
type flexQuery string

func (q *flexQuery) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*q = flexQuery(s)
		return nil
	}
	*q = flexQuery(strings.TrimSpace(string(b)))
	return nil
}

func timePtr(t flexTime) *time.Time {
	if t.t.IsZero() {
		return nil
	}
	v := t.t
	return &v
}

func (w *jobWire) job(red redactor) (*Job, error) {
	j := &Job{
		ID:                      string(w.JobID),
		Type:                    w.Type,
		Database:                w.Database,
		Status:                  w.Status,
		Query:                   string(w.Query),
		URL:                     w.URL,
		UserName:                w.UserName,
		CreatedAt:               w.CreatedAt.t,
		UpdatedAt:               w.UpdatedAt.t,
		StartAt:                 timePtr(w.StartAt),
		EndAt:                   timePtr(w.EndAt),
		Duration:                w.Duration.v,
		CPUTime:                 w.CPUTime.v,
		ResultSize:              w.ResultSize.v,
		NumRecords:              w.NumRecords.v,
		Priority:                int(w.Priority.value()),
		RetryLimit:              int(w.RetryLimit.value()),
		LinkedResultExportJobID: string(w.Linked),
		ResultExportTargetJobID: string(w.Target),
	}
	if w.Organization != nil {
		j.Organization = *w.Organization
	}
	if w.Result != nil {
		j.Result = red.redact(*w.Result)
	}
	if w.Debug != nil {
		j.Debug = &Debug{CmdOut: red.redact(w.Debug.CmdOut), Stderr: red.redact(w.Debug.Stderr)}
	}
	if w.Schema != nil && strings.TrimSpace(*w.Schema) != "" {
		cols, err := ParseSchema(*w.Schema)
		if err != nil {
			return nil, err
		}
		j.Schema = cols
	}
	return j, nil
}

// ParseSchema decodes hive_result_schema: a JSON string holding
// [[name, type], ...].
func ParseSchema(s string) ([]Column, error) {
	tcols, err := parseTableSchema(s)
	if err != nil {
		return nil, &ProtocolError{Msg: fmt.Sprintf("cannot decode hive_result_schema %q", truncate(s, 80)), Err: errors.Unwrap(err)}
	}
	cols := make([]Column, len(tcols))
	for i, c := range tcols {
		cols[i] = Column{Name: c.Name, Type: c.Type}
	}
	return cols, nil
}

// ConnectionTarget names a saved connection to export to, with its settings
// (for example {"bucket": "b", "path": "/logs/"} for S3). Give ID or Name; a
// Name is looked up with Connections.Lookup.
type ConnectionTarget struct {
	ID       int64
	Name     string
	Settings map[string]any
}

// IssueRequest describes a query job.
type IssueRequest struct {
	// Type is the engine: "presto" (default), "trino" or "hive".
	Type     string
	Database string
	Query    string
	// Result exports the result as part of the job to a result URL.
	Result string
	// ResultConnection exports the result as part of the job through a
	// saved connection (alternative to Result).
	ResultConnection *ConnectionTarget
	// Priority from -2 (very low) to 2 (very high); nil leaves the server's default.
	Priority *int
	// RetryLimit is how often the server retries the job; nil = default.
	RetryLimit    *int
	EngineVersion string
	PoolName      string
	// DomainKey makes the issue idempotent. When empty, one is generated so
	// retries can never start a second job.
	DomainKey     string
	ScheduledTime *time.Time
}

// IssuedJob is the answer to Issue.
type IssuedJob struct {
	JobID     string `json:"job_id"`
	Database  string `json:"database"`
	DomainKey string `json:"domain_key"`
	// Existing is true when the domain_key had already been used and JobID is
	// the job issued with it first.
	Existing bool `json:"existing"`
}

// Validate reports what Issue would refuse in r before sending anything:
// an unknown Type, no Database or Query, Priority outside -2..2, a negative
// RetryLimit, both Result and ResultConnection, a Result that is no result
// URL (CheckResultURL).
func (r *IssueRequest) Validate() error {
	switch strings.ToLower(strings.TrimSpace(r.Type)) {
	case "", "presto", "trino", "hive":
	default:
		return fmt.Errorf("unknown job type %q: use presto, trino or hive", r.Type)
	}
	if strings.TrimSpace(r.Database) == "" {
		return errors.New("database is required")
	}
	if strings.TrimSpace(r.Query) == "" {
		return errors.New("query is required")
	}
	if r.Priority != nil && (*r.Priority < -2 || *r.Priority > 2) {
		return fmt.Errorf("priority %d out of range: use -2 (very low) to 2 (very high)", *r.Priority)
	}
	if r.RetryLimit != nil && *r.RetryLimit < 0 {
		return fmt.Errorf("retry limit %d must be >= 0", *r.RetryLimit)
	}
	if r.Result != "" && r.ResultConnection != nil {
		return errors.New("give either a result URL or a result connection, not both")
	}
	if r.Result != "" {
		return CheckResultURL(r.Result)
	}
	return nil
}

// Issue starts a query job. It is retried on transient failures under its
// domain_key; a 409 Conflict resolves to the job created first.
func (s *JobsService) Issue(ctx context.Context, req *IssueRequest) (*IssuedJob, error) {
	c := s.client
	if req == nil {
		return nil, errors.New("td: Issue: nil request")
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("td: Issue: %w", err)
	}
	typ := strings.ToLower(strings.TrimSpace(req.Type))
	if typ == "" {
		typ = "presto"
	}
	form := url.Values{}
	form.Set("query", req.Query)
	if req.Result != "" {
		form.Set("result", req.Result)
	}
	if rc := req.ResultConnection; rc != nil {
		id, settings, err := s.client.Connections.resolve(ctx, rc)
		if err != nil {
			return nil, err
		}
		form.Set("result_connection_id", strconv.FormatInt(id, 10))
		form.Set("result_connection_settings", settings)
	}
	if req.Priority != nil {
		form.Set("priority", strconv.Itoa(*req.Priority))
	}
	if req.RetryLimit != nil {
		form.Set("retry_limit", strconv.Itoa(*req.RetryLimit))
	}
	if req.EngineVersion != "" {
		form.Set("engine_version", req.EngineVersion)
	}
	if req.PoolName != "" {
		form.Set("pool_name", req.PoolName)
	}
	if req.ScheduledTime != nil {
		form.Set("scheduled_time", strconv.FormatInt(req.ScheduledTime.Unix(), 10))
	}
	j, err := c.issueKeyed(ctx, path("/v3/job/issue", typ, req.Database), form, req.DomainKey)
	if err != nil {
		return nil, err
	}
	if j.Database == "" {
		j.Database = req.Database
	}
	return j, nil
}

// NewDomainKey returns a random idempotency key ("tdctl-" + 32 hex digits).
func NewDomainKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "tdctl-" + hex.EncodeToString(b[:])
}

// Show returns everything about a job. An answer without job_id or status,
// or about another job, is a *ProtocolError (read again).
func (s *JobsService) Show(ctx context.Context, id string) (*Job, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var w jobWire
	p := path("/v3/job/show", id)
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: p, retry: true}, &w); err != nil {
		return nil, err
	}
	if err := checkJobAnswer(http.MethodGet, p, id, string(w.JobID), w.Status); err != nil {
		return nil, err
	}
	return w.job(s.client.red)
}

// JobStatus is the cheap status answer used for polling.
type JobStatus struct {
	JobID      string     `json:"job_id"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  *time.Time `json:"updated_at"`
	StartAt    *time.Time `json:"start_at"`
	EndAt      *time.Time `json:"end_at"`
	Duration   *int64     `json:"duration"`
	CPUTime    *int64     `json:"cpu_time"`
	ResultSize *int64     `json:"result_size"`
	// NumRecords is nil until the job finished.
	NumRecords *int64 `json:"num_records"`
}

// Finished reports whether the job reached a final state.
func (st *JobStatus) Finished() bool { return Finished(st.Status) }

type statusWire struct {
	JobID      flexString `json:"job_id"`
	Status     string     `json:"status"`
	CreatedAt  flexTime   `json:"created_at"`
	UpdatedAt  flexTime   `json:"updated_at"`
	StartAt    flexTime   `json:"start_at"`
	EndAt      flexTime   `json:"end_at"`
	Duration   flexInt    `json:"duration"`
	CPUTime    flexInt    `json:"cpu_time"`
	ResultSize flexInt    `json:"result_size"`
	NumRecords flexInt    `json:"num_records"`
}

func (w *statusWire) status() *JobStatus {
	return &JobStatus{
		JobID: string(w.JobID), Status: w.Status, CreatedAt: w.CreatedAt.t, UpdatedAt: timePtr(w.UpdatedAt),
		StartAt: timePtr(w.StartAt), EndAt: timePtr(w.EndAt), Duration: w.Duration.v, CPUTime: w.CPUTime.v,
		ResultSize: w.ResultSize.v, NumRecords: w.NumRecords.v,
	}
}

// Status returns a job's status (cheap; use it for polling). An answer
// without job_id or status, or about another job, is a *ProtocolError (read
// again).
func (s *JobsService) Status(ctx context.Context, id string) (*JobStatus, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var w statusWire
	p := path("/v3/job/status", id)
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: p, retry: true}, &w); err != nil {
		return nil, err
	}
	if err := checkJobAnswer(http.MethodGet, p, id, string(w.JobID), w.Status); err != nil {
		return nil, err
	}
	return w.status(), nil
}

// StatusByDomainKey finds the job issued with a domain_key.
func (s *JobsService) StatusByDomainKey(ctx context.Context, key string) (*JobStatus, error) {
	if strings.TrimSpace(key) == "" {
		return nil, errors.New("td: domain key is required")
	}
	var w statusWire
	p := path("/v3/job/status_by_domain_key", key)
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: p, retry: true}, &w); err != nil {
		return nil, err
	}
	if err := checkJobAnswer(http.MethodGet, p, "", string(w.JobID), w.Status); err != nil {
		return nil, err
	}
	return w.status(), nil
}

// NumRecords returns the job's record count; nil while it has not finished.
func (s *JobsService) NumRecords(ctx context.Context, id string) (*int64, error) {
	st, err := s.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	return st.NumRecords, nil
}

// DefaultPageSize is the API's default page of the job list.
const DefaultPageSize = 20

// ListOptions filters and pages the job list. The zero value lists the 20
// newest jobs.
type ListOptions struct {
	// Status filters: queued, running, success or error ("" = all).
	Status string
	// From is the index of the first job (0 = newest).
	From int
	// PageSize is the number of jobs per page (default 20).
	PageSize int
	// Limit caps the total number of jobs All yields (0 = no cap).
	Limit int
}

// JobList is one page of jobs.
type JobList struct {
	Jobs  []*Job `json:"jobs"`
	Count int64  `json:"count"`
	From  int    `json:"from"`
	To    int    `json:"to"`
}

var listStatuses = map[string]bool{"": true, StatusQueued: true, StatusRunning: true, StatusSuccess: true, StatusError: true}

// List returns one page of jobs, newest first.
func (s *JobsService) List(ctx context.Context, opts *ListOptions) (*JobList, error) {
	o := ListOptions{}
	if opts != nil {
		o = *opts
	}
	if !listStatuses[o.Status] {
		return nil, fmt.Errorf("td: list: unknown status %q: use queued, running, success or error", o.Status)
	}
	if o.From < 0 {
		return nil, fmt.Errorf("td: list: from %d must be >= 0", o.From)
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	q := url.Values{}
	q.Set("from", strconv.Itoa(o.From))
	q.Set("to", strconv.Itoa(o.From+o.PageSize-1))
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	var w struct {
		Jobs  []jobWire `json:"jobs"`
		Count flexInt   `json:"count"`
		From  flexInt   `json:"from"`
		To    flexInt   `json:"to"`
	}
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: "/v3/job/list", query: q, retry: true}, &w); err != nil {
		return nil, err
	}
	out := &JobList{Count: w.Count.value(), From: o.From, To: o.From + o.PageSize - 1, Jobs: make([]*Job, 0, len(w.Jobs))}
	for i := range w.Jobs {
		j, err := w.Jobs[i].job(s.client.red)
		if err != nil {
			return nil, err
		}
		out.Jobs = append(out.Jobs, j)
	}
	return out, nil
}

// All iterates over every job matching opts, newest first, walking pages
// until one comes back empty (or opts.Limit jobs were yielded). opts is not
// modified, and the sequence can be ranged over more than once. A job seen on an earlier page (the list shifts as new jobs
// arrive) is not yielded twice. The iterator stops after yielding an error.
func (s *JobsService) All(ctx context.Context, opts *ListOptions) iter.Seq2[*Job, error] {
	base := ListOptions{}
	if opts != nil {
		base = *opts
	}
	if base.PageSize <= 0 {
		base.PageSize = DefaultPageSize
	}
	return func(yield func(*Job, error) bool) {
		o := base // each range starts over
		seen := map[string]bool{}
		n := 0
		for {
			page, err := s.List(ctx, &o)
			if err != nil {
				yield(nil, err)
				return
			}
			if len(page.Jobs) == 0 {
				return
			}
			for _, j := range page.Jobs {
				if seen[j.ID] {
					continue
				}
				seen[j.ID] = true
				if !yield(j, nil) {
					return
				}
				n++
				if o.Limit > 0 && n >= o.Limit {
					return
				}
			}
			// a short page is not the end: servers may cap page sizes
			o.From += len(page.Jobs)
		}
	}
}

// Kill asks the server to kill a job and returns its status before the kill.
// It is safe to retry.
func (s *JobsService) Kill(ctx context.Context, id string) (formerStatus string, err error) {
	if err := validID(id); err != nil {
		return "", err
	}
	var out struct {
		JobID        flexString `json:"job_id"`
		FormerStatus string     `json:"former_status"`
	}
	if err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/v3/job/kill", id), retry: true}, &out); err != nil {
		return "", err
	}
	return out.FormerStatus, nil
}

// ErrWaitTimeout matches (errors.Is) a wait that gave up after its Timeout.
var ErrWaitTimeout = errors.New("td: wait timed out")

// WaitOptions tunes Wait. The zero value polls from 1 s doubling to 30 s,
// with no timeout beyond the context.
type WaitOptions struct {
	MinDelay time.Duration // first poll interval (default 1 s)
	MaxDelay time.Duration // cap of the doubling interval (default 30 s)
	// Timeout gives up after this long with an error matching ErrWaitTimeout
	// (0 = only the context bounds the wait).
	Timeout time.Duration
	// OnStatus, when set, sees every status polled (for progress display).
	OnStatus func(*JobStatus)
}

// Wait polls the job's status with back-off until it finishes, then returns
// the full job (Show). A job that ends in error or killed returns the job and
// a *JobFailedError holding its debug stderr. Cancelling ctx stops the wait
// (the job keeps running).
//
// A verdict needs two reads that agree: the status poll that says the job
// finished and the Show after it must name the same final status. An answer
// that cannot be used (a *ProtocolError: {} or an answer about another job)
// and a Show that disagrees (a read replica still saying "running" after
// status said "success") are read again, after the first poll interval, up
// to max(3, the retry policy's MaxRetries) times in a row; then Wait returns
// the *ProtocolError — never a verdict it could not confirm.
func (s *JobsService) Wait(ctx context.Context, id string, opts *WaitOptions) (*Job, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	o := WaitOptions{}
	if opts != nil {
		o = *opts
	}
	if o.MinDelay <= 0 {
		o.MinDelay = time.Second
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 30 * time.Second
	}
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = o.MinDelay
	}
	var deadline time.Time
	if o.Timeout > 0 {
		deadline = time.Now().Add(o.Timeout)
	}
	rereads := max(3, s.client.retry.MaxRetries)
	polls := 0        // statuses read that said "not finished yet"
	last := "unknown" // the last status seen, for the timeout message
	bad := 0          // unusable or disagreeing reads in a row
	for {
		wait := backoff.Exp(o.MinDelay, o.MaxDelay, polls)
		st, err := s.Status(ctx, id)
		var pe *ProtocolError
		switch {
		case errors.As(err, &pe):
			bad++
			wait = o.MinDelay
		case err != nil:
			return nil, err
		default:
			last = st.Status
			if o.OnStatus != nil {
				o.OnStatus(st)
			}
			if !st.Finished() {
				bad = 0
				polls++
				break
			}
			job, err := s.Show(ctx, id)
			switch {
			case errors.As(err, &pe):
			case err != nil:
				return nil, err
			case job.Status == st.Status:
				return job, verdict(id, job)
			default:
				pe = &ProtocolError{Method: http.MethodGet, Path: path("/v3/job/show", id),
					Msg: fmt.Sprintf("unusable answer: status says %s but show says %s (a replica behind?)", st.Status, job.Status)}
			}
			bad++
			wait = o.MinDelay
		}
		if bad > rereads {
			return nil, fmt.Errorf("%w (read %d times)", pe, bad)
		}
		if !deadline.IsZero() {
			left := time.Until(deadline)
			switch {
			case left > 0:
			case bad > 0:
				return nil, fmt.Errorf("td: job %s: no consistent answer within %s (%s): %w", id, o.Timeout, pe.Msg, ErrWaitTimeout)
			default:
				return nil, fmt.Errorf("td: job %s still %s after %s: %w", id, last, o.Timeout, ErrWaitTimeout)
			}
			wait = min(wait, left)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// verdict is nil for a job that succeeded and a *JobFailedError otherwise.
func verdict(id string, job *Job) error {
	if job.Status == StatusSuccess {
		return nil
	}
	fe := &JobFailedError{JobID: id, Status: job.Status}
	if job.Debug != nil {
		fe.Stderr = job.Debug.Stderr
	}
	return fe
}

package td

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SchedulesService manages saved queries ("schedules" in the API): a query
// with its database, engine and result target, run by cron or on demand.
type SchedulesService service

// Schedule is a saved query. Result is redacted. ID is known only from
// Create and Update (the list does not carry it); NextTime only from List
// and Get; Start (the first run) only from Create and Update.
type Schedule struct {
	ID         int64      `json:"id,omitempty"`
	Name       string     `json:"name"`
	Cron       string     `json:"cron"`
	Timezone   string     `json:"timezone"`
	Delay      int        `json:"delay"`
	Type       string     `json:"type"`
	Database   string     `json:"database"`
	Query      string     `json:"query"`
	UserName   string     `json:"user_name"`
	Priority   int        `json:"priority"`
	RetryLimit int        `json:"retry_limit"`
	Result     string     `json:"result"`
	CreatedAt  time.Time  `json:"created_at"`
	NextTime   *time.Time `json:"next_time"`
	Start      *time.Time `json:"start,omitempty"`
}

// scheduleWire is the API's shape of a schedule (every answer's keys).
type scheduleWire struct {
	ID         flexInt   `json:"id"`
	Name       string    `json:"name"`
	Cron       *string   `json:"cron"`
	Timezone   string    `json:"timezone"`
	Delay      flexInt   `json:"delay"`
	Type       string    `json:"type"`
	Database   *string   `json:"database"`
	Query      flexQuery `json:"query"`
	UserName   string    `json:"user_name"`
	Priority   flexInt   `json:"priority"`
	RetryLimit flexInt   `json:"retry_limit"`
	Result     *string   `json:"result"`
	CreatedAt  flexTime  `json:"created_at"`
	NextTime   flexTime  `json:"next_time"`
	Start      flexTime  `json:"start"`
}

func (w *scheduleWire) schedule(red redactor) *Schedule {
	s := &Schedule{
		ID: w.ID.value(), Name: w.Name, Timezone: w.Timezone, Delay: int(w.Delay.value()),
		Type: w.Type, Query: string(w.Query), UserName: w.UserName,
		Priority: int(w.Priority.value()), RetryLimit: int(w.RetryLimit.value()),
		CreatedAt: w.CreatedAt.t, NextTime: timePtr(w.NextTime), Start: timePtr(w.Start),
	}
	if w.Cron != nil {
		s.Cron = *w.Cron
	}
	if w.Database != nil {
		s.Database = *w.Database
	}
	if w.Result != nil {
		s.Result = red.redact(*w.Result)
	}
	return s
}

// ScheduleOptions are a saved query's settings. Create needs Database and
// Query; Update sends only what is set (an empty string or a nil number
// leaves the setting as it is).
type ScheduleOptions struct {
	Database string
	Query    string
	// Type is the engine: presto (the API's default), trino or hive.
	Type string
	// Cron is when it runs ("0 * * * *", or @hourly, @daily...); empty
	// on Create makes a query run on demand only.
	Cron string
	// Timezone of Cron, such as UTC or Asia/Tokyo (the API's default: UTC).
	Timezone string
	// Delay is how many seconds after the cron time a run starts.
	Delay *int
	// Priority from -2 (very low) to 2 (very high).
	Priority *int
	// RetryLimit is how often a failed run is retried by TD.
	RetryLimit *int
	// Result is a result URL the output goes to (td://@/db/table,
	// s3://..., mysql://...).
	Result string
}

func (o *ScheduleOptions) form(creating bool) (url.Values, error) {
	if o == nil {
		o = &ScheduleOptions{}
	}
	f := url.Values{}
	if creating && strings.TrimSpace(o.Database) == "" {
		return nil, invalidArg("a saved query needs a database")
	}
	if creating && strings.TrimSpace(o.Query) == "" {
		return nil, invalidArg("a saved query needs a query")
	}
	switch strings.ToLower(o.Type) {
	case "", "presto", "trino", "hive":
	default:
		return nil, invalidArg("invalid type %q: use presto, trino or hive", o.Type)
	}
	if o.Timezone != "" {
		if _, err := time.LoadLocation(o.Timezone); err != nil {
			return nil, invalidArg("invalid timezone %q: use an IANA name such as UTC or Asia/Tokyo", o.Timezone)
		}
	}
	if o.Priority != nil && (*o.Priority < -2 || *o.Priority > 2) {
		return nil, invalidArg("invalid priority %d: use -2 (very low) to 2 (very high)", *o.Priority)
	}
	if o.RetryLimit != nil && *o.RetryLimit < 0 {
		return nil, invalidArg("invalid retry limit %d: use 0 or more", *o.RetryLimit)
	}
	if o.Delay != nil && *o.Delay < 0 {
		return nil, invalidArg("invalid delay %d: use 0 or more seconds", *o.Delay)
	}
	if o.Result != "" {
		if err := CheckResultURL(o.Result); err != nil {
			return nil, err
		}
	}
	for k, v := range map[string]string{"database": o.Database, "query": o.Query, "type": strings.ToLower(o.Type),
		"cron": o.Cron, "timezone": o.Timezone, "result": o.Result} {
		if v != "" {
			f.Set(k, v)
		}
	}
	for k, v := range map[string]*int{"delay": o.Delay, "priority": o.Priority, "retry_limit": o.RetryLimit} {
		if v != nil {
			f.Set(k, strconv.Itoa(*v))
		}
	}
	return f, nil
}

func checkScheduleName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalidArg("a saved query name is required")
	}
	return nil
}

// notFound gives a 404 about a saved query a message naming it.
func scheduleNotFound(err error, name string) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
		apiErr.Message = fmt.Sprintf("no saved query named %q", name)
	}
	return err
}

// List returns every saved query (GET /v3/schedule/list).
func (s *SchedulesService) List(ctx context.Context) ([]*Schedule, error) {
	var w struct {
		Schedules []scheduleWire `json:"schedules"`
	}
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: "/v3/schedule/list", retry: true}, &w); err != nil {
		return nil, err
	}
	out := make([]*Schedule, len(w.Schedules))
	for i := range w.Schedules {
		out[i] = w.Schedules[i].schedule(s.client.red)
	}
	return out, nil
}

// Get returns the saved query called name. The API has no show call: Get
// reads the list, as TD's other clients do. An unknown name is an
// *APIError matching ErrNotFound.
func (s *SchedulesService) Get(ctx context.Context, name string) (*Schedule, error) {
	if err := checkScheduleName(name); err != nil {
		return nil, err
	}
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, sc := range all {
		if sc.Name == name {
			return sc, nil
		}
	}
	return nil, &APIError{StatusCode: http.StatusNotFound, Method: http.MethodGet, Path: "/v3/schedule/list",
		Message: fmt.Sprintf("no saved query named %q", name)}
}

// Create saves a query as name (POST /v3/schedule/create/NAME). A name in
// use is an *APIError matching ErrConflict. It is sent once: a lost answer
// is not retried (the retry would meet the query it created).
func (s *SchedulesService) Create(ctx context.Context, name string, opts *ScheduleOptions) (*Schedule, error) {
	if err := checkScheduleName(name); err != nil {
		return nil, err
	}
	form, err := opts.form(true)
	if err != nil {
		return nil, err
	}
	var w scheduleWire
	if err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/v3/schedule/create", name), form: form}, &w); err != nil {
		return nil, err
	}
	return w.schedule(s.client.red), nil
}

// Update changes the settings of saved query name that opts sets (POST
// /v3/schedule/update/NAME). Sending the same settings twice is harmless,
// so it is retried like a GET.
func (s *SchedulesService) Update(ctx context.Context, name string, opts *ScheduleOptions) (*Schedule, error) {
	if err := checkScheduleName(name); err != nil {
		return nil, err
	}
	form, err := opts.form(false)
	if err != nil {
		return nil, err
	}
	var w scheduleWire
	err = s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/v3/schedule/update", name), form: form, retry: true}, &w)
	if err != nil {
		return nil, scheduleNotFound(err, name)
	}
	return w.schedule(s.client.red), nil
}

// Delete removes saved query name (POST /v3/schedule/delete/NAME) and
// returns what it was. Jobs it started are kept.
func (s *SchedulesService) Delete(ctx context.Context, name string) (*Schedule, error) {
	if err := checkScheduleName(name); err != nil {
		return nil, err
	}
	var w scheduleWire
	if err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: path("/v3/schedule/delete", name)}, &w); err != nil {
		return nil, scheduleNotFound(err, name)
	}
	return w.schedule(s.client.red), nil
}

// ScheduledJob is a job a saved query run started.
type ScheduledJob struct {
	ID          string     `json:"job_id"`
	Type        string     `json:"type"`
	ScheduledAt *time.Time `json:"scheduled_at"`
}

// RunOptions tune Run.
type RunOptions struct {
	// Num runs the query for this many consecutive cron times from the
	// given time (the API's num; 0 means 1).
	Num int
	// DomainKey makes the run idempotent (a second run with the same key
	// answers 409 and starts nothing). Without one, a run of one job gets
	// a generated key, so that a retried request never starts it twice.
	DomainKey string
}

// Run starts saved query name for time t (POST /v3/schedule/run/NAME/UNIX):
// TD_SCHEDULED_TIME() in the query is t. A run that reuses a domain key
// returns the job it started before.
func (s *SchedulesService) Run(ctx context.Context, name string, t time.Time, opts *RunOptions) ([]*ScheduledJob, error) {
	if err := checkScheduleName(name); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &RunOptions{}
	}
	if opts.Num < 0 {
		return nil, invalidArg("invalid run count %d: use 1 or more", opts.Num)
	}
	form := url.Values{}
	if opts.Num > 1 {
		form.Set("num", strconv.Itoa(opts.Num))
	}
	key := opts.DomainKey
	if key == "" && opts.Num <= 1 {
		key = NewDomainKey()
	}
	if key != "" {
		form.Set("domain_key", key)
	}
	var w struct {
		Jobs []struct {
			JobID       flexString `json:"job_id"`
			Type        string     `json:"type"`
			ScheduledAt flexTime   `json:"scheduled_at"`
		} `json:"jobs"`
	}
	p := path("/v3/schedule/run", name, strconv.FormatInt(t.Unix(), 10))
	err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: p, form: form, retry: key != ""}, &w)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict && apiErr.ConflictsWith != "" {
		return []*ScheduledJob{{ID: apiErr.ConflictsWith, ScheduledAt: &t}}, nil
	}
	if err != nil {
		return nil, scheduleNotFound(err, name)
	}
	out := make([]*ScheduledJob, len(w.Jobs))
	for i, j := range w.Jobs {
		out[i] = &ScheduledJob{ID: string(j.JobID), Type: j.Type, ScheduledAt: timePtr(j.ScheduledAt)}
	}
	return out, nil
}

// RunID starts the saved query with id for time t (POST
// /v4/queries/ID/jobs, the call digdag's td_run> makes for a numeric id)
// and returns the job's id.
func (s *SchedulesService) RunID(ctx context.Context, id int64, t time.Time, opts *RunOptions) (string, error) {
	if id <= 0 {
		return "", invalidArg("invalid saved query id %d", id)
	}
	key := ""
	if opts != nil {
		key = opts.DomainKey
	}
	if key == "" {
		key = NewDomainKey()
	}
	body := fmt.Sprintf(`{"scheduled_time":%q,"domain_key":%q}`, t.UTC().Format(time.RFC3339), key)
	r := request{method: http.MethodPost, path: path("/v4/queries", strconv.FormatInt(id, 10), "jobs"),
		body: []byte(body), header: http.Header{"Content-Type": {"application/json"}}, retry: true}
	var w struct {
		ID    flexString `json:"id"`
		JobID flexString `json:"job_id"`
	}
	err := s.client.doJSON(ctx, &r, &w)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict && apiErr.ConflictsWith != "" {
		return apiErr.ConflictsWith, nil
	}
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
		apiErr.Message = fmt.Sprintf("no saved query with id %d", id)
	}
	if err != nil {
		return "", err
	}
	jobID := string(w.ID)
	if jobID == "" {
		jobID = string(w.JobID)
	}
	if jobID == "" {
		return "", &ProtocolError{Method: r.method, Path: r.path, Msg: "the answer carried no job id"}
	}
	return jobID, nil
}

// HistoryJob is a job a saved query started, with the time it ran for.
type HistoryJob struct {
	Job
	ScheduledAt *time.Time `json:"scheduled_at"`
}

// HistoryOptions page History: Limit jobs (0 = DefaultPageSize) from
// index From (0 = the newest).
type HistoryOptions struct {
	From, Limit int
}

// History lists the jobs saved query name started, newest first (GET
// /v3/schedule/history/NAME).
func (s *SchedulesService) History(ctx context.Context, name string, opts *HistoryOptions) ([]*HistoryJob, error) {
	if err := checkScheduleName(name); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &HistoryOptions{}
	}
	if opts.From < 0 || opts.Limit < 0 {
		return nil, invalidArg("invalid history page: From and Limit must be 0 or more")
	}
	limit := opts.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	from, to := opts.From, opts.From+limit-1
	q := url.Values{"from": {strconv.Itoa(from)}, "to": {strconv.Itoa(to)}}
	var w struct {
		History []struct {
			jobWire
			ScheduledAt flexTime `json:"scheduled_at"`
		} `json:"history"`
	}
	p := path("/v3/schedule/history", name)
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: p, query: q, retry: true}, &w); err != nil {
		return nil, scheduleNotFound(err, name)
	}
	out := make([]*HistoryJob, 0, len(w.History))
	for i := range w.History {
		j, err := w.History[i].job(s.client.red)
		if err != nil {
			return nil, err
		}
		out = append(out, &HistoryJob{Job: *j, ScheduledAt: timePtr(w.History[i].ScheduledAt)})
	}
	return out, nil
}

package td

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// ExportTarget is one destination for a job's result: a result URL
// (td://@/db/table, postgresql://user:pass@host/db/table, s3://...), or a
// saved connection with settings.
type ExportTarget struct {
	ResultURL  string
	Connection *ConnectionTarget
}

// String describes the target without secrets.
func (t ExportTarget) String() string {
	switch {
	case t.ResultURL != "":
		return Redact(t.ResultURL)
	case t.Connection != nil && t.Connection.Name != "":
		return "connection " + t.Connection.Name
	case t.Connection != nil:
		return "connection " + strconv.FormatInt(t.Connection.ID, 10)
	}
	return "(no target)"
}

// CheckResultURL reports whether s has the scheme://... of a result URL
// (td://@/db/table, postgresql://user:pass@host/db/table?mode=replace,
// s3://...); the server judges the rest. The error never holds s, whose
// password may be in it.
func CheckResultURL(s string) error {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || !isScheme(scheme) {
		return errors.New("not a result URL: expected scheme://..., e.g. td://@/db/table")
	}
	return nil
}

// isScheme: RFC 3986's scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	for i, c := range s {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// Validate reports what Export would refuse in t before sending anything:
// both or neither of a result URL and a connection, a result URL with no
// scheme://, a connection with neither id nor name.
func (t ExportTarget) Validate() error {
	switch {
	case t.ResultURL != "" && t.Connection != nil:
		return errors.New("td: export: give either a result URL or a connection, not both")
	case t.ResultURL == "" && t.Connection == nil:
		return errors.New("td: export: a result URL or a connection is required")
	case t.ResultURL != "":
		if err := CheckResultURL(t.ResultURL); err != nil {
			return fmt.Errorf("td: export: %w", err)
		}
	case t.Connection.ID == 0 && strings.TrimSpace(t.Connection.Name) == "":
		return errors.New("td: export: the connection needs an id or a name")
	}
	return nil
}

// Export exports the result of a finished job (POST /v3/job/result_export)
// and returns the id of the new job performing the export; wait for it like
// any job. A connection given by name is looked up first. Export is not
// retried: a retry could start a second export.
func (s *ResultsService) Export(ctx context.Context, jobID string, t ExportTarget) (exportJobID string, err error) {
	if err := validID(jobID); err != nil {
		return "", err
	}
	if err := t.Validate(); err != nil {
		return "", err
	}
	form := url.Values{}
	if t.ResultURL != "" {
		form.Set("result", t.ResultURL)
	} else {
		id, settings, err := s.client.Connections.resolve(ctx, t.Connection)
		if err != nil {
			return "", err
		}
		form.Set("result_connection_id", strconv.FormatInt(id, 10))
		form.Set("result_connection_settings", settings)
	}
	var out struct {
		JobID flexString `json:"job_id"`
		Job   flexString `json:"job"`
	}
	p := path("/v3/job/result_export", jobID)
	if err := s.client.doJSON(ctx, &request{method: http.MethodPost, path: p, form: form}, &out); err != nil {
		return "", err
	}
	id := string(out.JobID)
	if id == "" {
		id = string(out.Job)
	}
	if id == "" {
		return "", &ProtocolError{Method: http.MethodPost, Path: p, Msg: "answer carried no job id"}
	}
	return id, nil
}

// ExportOutcome is what became of one target of ExportAll.
type ExportOutcome struct {
	Target      ExportTarget
	ExportJobID string // empty when the export could not be started
	Job         *Job   // the finished export job (nil when not waited or not started)
	Err         error  // nil on success
}

// ExportAll exports one job's result to every target concurrently, waits for
// every export job (with wait options w) and reports each target's outcome in
// the order given. The error is non-nil when any target failed; it joins the
// failures.
func (s *ResultsService) ExportAll(ctx context.Context, jobID string, targets []ExportTarget, w *WaitOptions) ([]ExportOutcome, error) {
	if len(targets) == 0 {
		return nil, errors.New("td: export: no targets given")
	}
	for i, t := range targets {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("target %d (%s): %w", i+1, t, err)
		}
	}
	out := make([]ExportOutcome, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		out[i].Target = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &out[i]
			o.ExportJobID, o.Err = s.Export(ctx, jobID, t)
			if o.Err != nil {
				return
			}
			o.Job, o.Err = s.client.Jobs.Wait(ctx, o.ExportJobID, w)
		}()
	}
	wg.Wait()
	var errs []error
	for _, o := range out {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("export to %s: %w", o.Target, o.Err))
		}
	}
	return out, errors.Join(errs...)
}

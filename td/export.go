package td

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
)

// ExportTarget is one destination for a job's result: a result URL
// (td://@/db/table, postgresql://user:pass@host/db/table, s3://...), or a
// saved connection with settings.
type ExportTarget struct {
	ResultURL  string
	Connection *ConnectionTarget
	// DomainKey is sent with the export so that its job can be found again
	// after a lost answer. When empty, Export generates one. Give your own
	// (stored before exporting) to find the export job from another process,
	// as a workflow retry does; the export job issued with it first is
	// returned instead of starting a second one.
	DomainKey string
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
// any job. A connection given by name is looked up first.
//
// Export never starts a second export job for one call. It sends a
// domain_key (t.DomainKey or a generated one) and notes the job's newest
// export before sending. When the answer is lost (connection cut, no
// answer, a 5xx from a gateway, an answer without a job id), the export job
// may exist: Export looks it up by its domain_key and returns it if found;
// it sends again only when the job's newest export is still the one noted
// (so no export of this job was started meanwhile). When it cannot tell, it
// returns an *ExportUncertainError (errors.Is ErrExportUncertain) naming the
// export job that may be ours. A 429 (not processed) and a connection
// refused are sent again. Every send counts against the retry policy.
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
	key := strings.TrimSpace(t.DomainKey)
	if key == "" {
		key = NewDomainKey()
	}
	form.Set("domain_key", key)
	src, err := reread(ctx, s.client, func() (*Job, error) { return s.client.Jobs.Show(ctx, jobID) })
	if err != nil {
		return "", err
	}
	e := &exporter{c: s.client, jobID: jobID, key: key, linked: src.LinkedResultExportJobID,
		p: path("/v3/job/result_export", jobID)}
	for attempt := 0; ; attempt++ {
		id, err := e.send(ctx, form)
		if err == nil {
			return id, nil
		}
		retry, wait, ferr := e.judge(ctx, err, attempt)
		var f exportFound
		if errors.As(ferr, &f) {
			return f.id, nil
		}
		if !retry || attempt >= s.client.retry.MaxRetries {
			return "", ferr
		}
		if s.client.logger != nil {
			s.client.logger.Info("td export not started; sending again", "path", e.p, "attempt", attempt+2, "cause", s.client.red.redact(err.Error()))
		}
		if serr := sleepCtx(ctx, wait); serr != nil {
			return "", serr
		}
	}
}

// exporter is the state of one Export call.
type exporter struct {
	c      *Client
	jobID  string
	key    string
	linked string // the job's newest export before we sent
	p      string
}

// send posts the export once.
func (e *exporter) send(ctx context.Context, form url.Values) (string, error) {
	var out struct {
		JobID flexString `json:"job_id"`
		Job   flexString `json:"job"`
	}
	if err := e.c.doJSON(ctx, &request{method: http.MethodPost, path: e.p, form: form}, &out); err != nil {
		return "", err
	}
	id := string(out.JobID)
	if id == "" {
		id = string(out.Job)
	}
	if id == "" {
		return "", &ProtocolError{Method: http.MethodPost, Path: e.p, Msg: "answer carried no job id"}
	}
	return id, nil
}

// exportFound is the error judge returns for an export job that exists: it
// carries the id.
type exportFound struct{ id string }

func (exportFound) Error() string { return "found" }

// judge decides after a failed send: send again (after wait), or give up
// with ferr. An export job found to exist ends the call with its id (see
// Export's loop: ferr is then an exportFound).
func (e *exporter) judge(ctx context.Context, err error, attempt int) (retry bool, wait time.Duration, ferr error) {
	wait0 := backoff.Jittered(e.c.retry.MinWait, e.c.retry.MaxWait, attempt)
	var ae *APIError
	var ne *NetError
	switch {
	case errors.As(err, &ae) && ae.StatusCode == http.StatusConflict:
		// the domain_key is taken: by our export, sent before
		return false, 0, e.found(ctx, ae.ConflictsWith, err)
	case errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests:
		wait = wait0
		if ae.RetryAfter > 0 {
			wait = min(ae.RetryAfter, e.c.retry.MaxWait)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return false, 0, err
		}
		return true, wait, err
	case errors.As(err, &ae) && (ae.StatusCode < 500 || ae.StatusCode == http.StatusNotImplemented):
		return false, 0, err // refused: nothing was started
	case ctx.Err() != nil:
		return false, 0, e.resolveInterrupted(ctx, err)
	case errors.As(err, &ne) && !isTransientNetErr(ne.Err):
		return false, 0, err // TLS, scheme, unknown host: failed before sending
	case errors.As(err, &ne) && notSent(ne):
		return true, wait0, err
	}
	// The request may have been processed: a lost or cut answer, a 5xx
	// (a gateway's 502/504 after the backend did the work), an answer
	// without a job id. Give a slow backend a moment, then look.
	if serr := sleepCtx(ctx, wait0); serr != nil {
		return false, 0, e.resolveInterrupted(ctx, err)
	}
	if rerr := e.resolve(ctx, err); rerr != nil {
		return false, 0, rerr
	}
	return true, 0, err
}

// resolveInterrupted resolves after ctx ended with the request possibly on
// its way: briefly, on a context of its own, so that the caller still
// learns the export job's id. The result wraps ctx's error.
func (e *exporter) resolveInterrupted(ctx context.Context, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if !errors.Is(cause, ctx.Err()) {
		cause = errors.Join(ctx.Err(), cause)
	}
	if err := e.resolve(rctx, cause); err != nil {
		return err
	}
	return cause // not started
}

// resolve finds out whether the export sent under e.key exists. It returns
// nil when it certainly does not, an exportFound when it does, and an
// *ExportUncertainError when it cannot tell.
func (e *exporter) resolve(ctx context.Context, cause error) error {
	st, err := reread(ctx, e.c, func() (*JobStatus, error) { return e.c.Jobs.StatusByDomainKey(ctx, e.key) })
	if err == nil {
		return exportFound{id: st.JobID}
	}
	if !errors.Is(err, ErrNotFound) {
		return &ExportUncertainError{JobID: e.jobID, DomainKey: e.key, Err: cause, Lookup: err}
	}
	// No job under our key: either none was created, or the API ignores
	// domain keys on exports. The job's newest export tells them apart.
	src, err := reread(ctx, e.c, func() (*Job, error) { return e.c.Jobs.Show(ctx, e.jobID) })
	if err != nil {
		return &ExportUncertainError{JobID: e.jobID, DomainKey: e.key, Err: cause, Lookup: err}
	}
	if src.LinkedResultExportJobID == e.linked {
		return nil
	}
	return &ExportUncertainError{JobID: e.jobID, DomainKey: e.key, Candidate: src.LinkedResultExportJobID, Err: cause}
}

// reread calls read again while its answer is unusable (a *ProtocolError:
// {} or a lagging replica), up to max(3, MaxRetries) times as Wait does:
// an unusable answer is no verdict.
func reread[T any](ctx context.Context, c *Client, read func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := read()
		if err == nil || !errors.Is(err, ErrProtocol) || i >= max(3, c.retry.MaxRetries) {
			return v, err
		}
		if serr := sleepCtx(ctx, backoff.Jittered(c.retry.MinWait, c.retry.MaxWait, i)); serr != nil {
			return v, serr
		}
	}
}

// found turns a 409 into the export job holding our domain_key.
func (e *exporter) found(ctx context.Context, id string, cause error) error {
	if id != "" {
		return exportFound{id: id}
	}
	st, err := reread(ctx, e.c, func() (*JobStatus, error) { return e.c.Jobs.StatusByDomainKey(ctx, e.key) })
	if err != nil {
		return &ExportUncertainError{JobID: e.jobID, DomainKey: e.key, Err: cause, Lookup: err}
	}
	return exportFound{id: st.JobID}
}

// notSent reports a request that never left: the connection could not be
// made.
func notSent(ne *NetError) bool {
	var oe *net.OpError
	return errors.As(ne.Err, &oe) && oe.Op == "dial"
}

// ErrExportUncertain matches (errors.Is) an *ExportUncertainError.
var ErrExportUncertain = errors.New("td: export may have started")

// ExportUncertainError is an export whose answer was lost and whose job
// could not be found or ruled out: it may be running. Check the job's
// exports (or the Candidate) before exporting again, or an append may be
// written twice. It unwraps to the failures behind it.
type ExportUncertainError struct {
	JobID     string // the job whose result was exported
	DomainKey string // the domain_key the export was sent with
	// Candidate is an export job of JobID started after the export was sent,
	// perhaps by it ("" when none is known).
	Candidate string
	Err       error // what happened to the answer
	Lookup    error // why the export job could not be looked up (nil when it was)
}

func (e *ExportUncertainError) Error() string {
	s := fmt.Sprintf("td: the export of job %s may have started: its answer was lost (%s)", e.JobID, oneLine(e.Err))
	if e.Lookup != nil {
		s += fmt.Sprintf(" and looking it up failed (%s)", oneLine(e.Lookup))
	}
	if e.Candidate != "" {
		return s + fmt.Sprintf("; export job %s was started since, perhaps by it: check that job before exporting again", e.Candidate)
	}
	return s + fmt.Sprintf("; look for an export job of job %s before exporting again", e.JobID)
}

// Unwrap returns the failures behind the uncertainty.
func (e *ExportUncertainError) Unwrap() []error {
	if e.Lookup == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Lookup}
}

// Is makes errors.Is(err, ErrExportUncertain) true.
func (e *ExportUncertainError) Is(target error) bool { return target == ErrExportUncertain }

func oneLine(err error) string {
	if err == nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// ExportOutcome is what became of one target of ExportAll.
type ExportOutcome struct {
	Target      ExportTarget
	ExportJobID string // empty when no export job is known to exist
	Job         *Job   // the finished export job (nil when not waited or not started)
	// Err is nil on success. With no ExportJobID, it matches
	// ErrExportUncertain when the export job may exist all the same;
	// otherwise none was started.
	Err error
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

package emulator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// JobInfo is a snapshot of a job for assertions in tests.
type JobInfo struct {
	ID       string
	Type     string // hive, presto, trino; "result_export" for export jobs
	Database string
	Query    string
	Status   string // queued, running, success, error, killed

	// Result is the result URL as the client sent it (unredacted).
	Result string
	// ResultConnectionID and ResultConnectionSettings are as sent (0 / "").
	ResultConnectionID       int64
	ResultConnectionSettings string
	// TargetURL and TargetSettings are the resolved export target (the
	// connection's URL and its settings merged with the request's).
	TargetURL      string
	TargetSettings map[string]any

	Priority      int
	RetryLimit    int
	DomainKey     string
	EngineVersion string
	PoolName      string
	ScheduledTime int64
	// Form holds every form value the issue (or result_export) call sent,
	// unknown fields included.
	Form url.Values

	CreatedAt  time.Time
	StartAt    time.Time // zero until the job runs
	EndAt      time.Time // zero until the job finishes
	NumRecords *int64
	ResultSize *int64
	Schema     []Column
	Cmdout     string
	Stderr     string
	ResultFile string // the msgpack.gz result file ("" when none)

	ResultExportTargetJobID string // export job: the job it exports ("" otherwise)
	LinkedResultExportJobID string // the latest export job of this job ("" when none)
}

// JobCount returns how many jobs exist.
func (s *Server) JobCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}

// Job returns an up-to-date snapshot of job id. Like a status call, it waits
// for the job's work when the clock says the job has finished.
func (s *Server) Job(id string) (JobInfo, bool) {
	n, ok := parseJobID(id)
	if !ok {
		return JobInfo{}, false
	}
	j, found, err := s.lookup(context.Background(), n)
	if err != nil || !found {
		return JobInfo{}, false
	}
	info := JobInfo{
		ID: strconv.FormatInt(j.ID, 10), Type: j.Type, Database: j.Database, Query: j.Query, Status: j.Status,
		Result: j.Result, ResultConnectionID: j.ConnID, ResultConnectionSettings: j.ConnSettings,
		Priority: j.Priority, RetryLimit: j.RetryLimit, DomainKey: j.DomainKey, EngineVersion: j.EngineVersion,
		PoolName: j.PoolName, ScheduledTime: j.ScheduledTime, Form: j.Form,
		CreatedAt: j.CreatedAt, NumRecords: j.NumRecords, ResultSize: j.ResultSize, Schema: j.Schema,
		Cmdout: j.Cmdout, Stderr: j.Stderr,
	}
	if j.Target != nil {
		info.TargetURL = j.Target.URL
		info.TargetSettings = map[string]any{}
		for k, v := range j.Target.Settings {
			info.TargetSettings[k] = v
		}
	}
	if j.StartAt != nil {
		info.StartAt = *j.StartAt
	}
	if j.EndAt != nil {
		info.EndAt = *j.EndAt
	}
	if j.Status == statusSuccess {
		info.ResultFile = j.ResultPath
	}
	if j.ExportTarget != nil {
		info.ResultExportTargetJobID = strconv.FormatInt(*j.ExportTarget, 10)
	}
	if j.LinkedExport != nil {
		info.LinkedResultExportJobID = strconv.FormatInt(*j.LinkedExport, 10)
	}
	return info, true
}

// FinishedJob describes a job registered as already finished with success
// (AddFinishedJob). Give exactly one of ResultFile and Rows.
type FinishedJob struct {
	Type     string // default "presto"
	Database string // default "sample_datasets"; need not exist
	Query    string // default "SELECT 1"
	Schema   []Column
	// ResultFile is an existing msgpack.gz file served in place (never
	// copied, never deleted, never scanned): use it for big results.
	ResultFile string
	// NumRecords is reported for a ResultFile job.
	NumRecords int64
	// Rows generates the result; it is written to a msgpack.gz file and
	// counted.
	Rows func(yield func([]any) bool)
	// Result is echoed as the job's result URL.
	Result string
}

// AddFinishedJob registers a job that already finished with success, whose
// result comes from spec, and returns its id.
func (s *Server) AddFinishedJob(spec FinishedJob) (string, error) {
	if (spec.ResultFile == "") == (spec.Rows == nil) {
		return "", errors.New("emulator: FinishedJob needs exactly one of ResultFile and Rows")
	}
	if spec.Schema == nil {
		return "", errors.New("emulator: FinishedJob.Schema is required (the columns of the result)")
	}
	if spec.Type == "" {
		spec.Type = "presto"
	}
	if spec.Database == "" {
		spec.Database = "sample_datasets"
	}
	if spec.Query == "" {
		spec.Query = "SELECT 1"
	}
	var path string
	var size, rows int64
	if spec.ResultFile != "" {
		abs, err := filepath.Abs(spec.ResultFile)
		if err != nil {
			return "", fmt.Errorf("emulator: FinishedJob.ResultFile: %w", err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return "", fmt.Errorf("emulator: FinishedJob.ResultFile: %w", err)
		}
		if !st.Mode().IsRegular() {
			return "", fmt.Errorf("emulator: FinishedJob.ResultFile %s is not a regular file", abs)
		}
		path, size, rows = abs, st.Size(), spec.NumRecords
	} else {
		f, err := os.CreateTemp(s.resultsDir(), "finished-*.msgpack.gz")
		if err != nil {
			return "", fmt.Errorf("emulator: %w", err)
		}
		path = f.Name()
		f.Close()
		rf, err := createResultFile(path)
		if err != nil {
			return "", fmt.Errorf("emulator: %w", err)
		}
		var werr error
		spec.Rows(func(row []any) bool {
			werr = rf.write(row)
			return werr == nil
		})
		if werr == nil {
			size, werr = rf.commit()
		}
		rf.abort()
		if werr != nil {
			_ = os.Remove(path)
			return "", fmt.Errorf("emulator: writing the FinishedJob rows: %w", werr)
		}
		rows = rf.rows
	}
	now := s.clock.Now()
	j := &job{
		Kind: kindFinished, Type: spec.Type, Database: spec.Database, Query: spec.Query, Result: spec.Result,
		Status: statusSuccess, CreatedAt: now, StartAt: &now, EndAt: &now,
		NumRecords: &rows, ResultSize: &size, Schema: append([]Column(nil), spec.Schema...),
		ResultPath: path, Cmdout: "Registered by AddFinishedJob\n",
	}
	id, _, err := s.addJob(j)
	if err != nil {
		if spec.Rows != nil {
			_ = os.Remove(path)
		}
		return "", fmt.Errorf("emulator: %w", err)
	}
	return strconv.FormatInt(id, 10), nil
}

// Authorized tells whether r carries an API key this emulator accepts
// ("Authorization: TD1 <key>"), and when not, why: for handlers served
// next to the emulator (the workflow API of internal/emulator/wfserver).
func (s *Server) Authorized(r *http.Request) (bool, string) { return s.authorized(r) }

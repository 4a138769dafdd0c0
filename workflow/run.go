package workflow

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/td"
)

// Operator runs one kind of task (td>, sh>, ...).
type Operator interface {
	Run(ctx context.Context, tc *TaskContext) (*Result, error)
}

// OperatorFunc adapts a function to Operator.
type OperatorFunc func(ctx context.Context, tc *TaskContext) (*Result, error)

// Run implements Operator.
func (f OperatorFunc) Run(ctx context.Context, tc *TaskContext) (*Result, error) { return f(ctx, tc) }

// Definer is implemented by operators that store params, so `check` knows
// which ${names} later tasks may use. Returned names may be prefixes
// ("td.last_job" covers td.last_job.num_records).
type Definer interface {
	Defines(t *Task) []string
}

// Validator is implemented by operators that can find mistakes in a task's
// own settings before anything runs: Check (and so every run) reports them
// with the task's file:line, so a typo in the tenth task fails the run
// before the first has exported anything. Validate gets a TaskContext of
// what is known then: Command, Config and K8s hold the values written
// literally; Dynamic names those that hold ${...} (known at run time only,
// and checked by Run then); Scope is empty and there is no Log.
type Validator interface {
	Validate(tc *TaskContext) error
}

// TaskContext is what an operator gets: its evaluated configuration and a
// log of its own.
type TaskContext struct {
	Task     *Task
	Workflow *Workflow
	// Command is the evaluated value of "op>:" (nil when empty).
	Command any
	// Config holds the evaluated operator parameters.
	Config map[string]any
	// Scope is the params visible to the task (a copy: changes are lost;
	// return them in Result.Store instead).
	Scope Scope
	// Env is the evaluated _env mapping.
	Env map[string]string
	// K8s is the evaluated _k8s mapping (nil when absent).
	K8s map[string]any
	// Dynamic is set for Validator.Validate only: the settings whose values
	// hold ${...} — "" for the command, a parameter's key, "_k8s.KEY".
	Dynamic map[string]bool
	// Log is the task's own log; secrets are masked on the way in.
	Log   io.Writer
	RunID string
	// Instance names this task instance in the run: task_name, with #N
	// on the attempts of a retried group (each attempt of +g runs a new
	// +wf+g#2+child, while digdag's task_name stays +wf+g+child). An
	// operator deriving an idempotency key uses it.
	Instance    string
	Attempt     int // 0 for the first try
	SessionTime time.Time
	// Runner is the runner running the task (require> starts another
	// workflow's session with a copy of it).
	Runner *Runner
	// State is kept across the attempts (_retry) of this task: an operator
	// records there what it has started (td> its job), so that a retry
	// re-attaches to it instead of starting it again. It starts empty for
	// each task instance: each run, each for_each iteration, each retry of
	// an enclosing group. Attempts never overlap, so it needs no lock.
	State map[string]any
	// Secret reads a secret by name (digdag's secret scopes: pg> reads
	// pg.password, http> http.authorization) and adds its value to those
	// masked in the task's log and error. Nil in Validate.
	Secret func(name string) (string, bool)

	keyOrder map[string][]string // evaluated keys of mapping settings, as written
}

// KeyOrder returns the keys of the mapping Config[key] in the order the
// task writes them (digdag keeps a mapping's order: http>'s form content
// and query); a mapping from elsewhere (an _export default) comes sorted.
func (tc *TaskContext) KeyOrder(key string) []string {
	m, _ := tc.Config[key].(map[string]any)
	if order, ok := tc.keyOrder[key]; ok && len(order) == len(m) {
		return order
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Has reports whether key is set: to a non-empty value, or (in Validate)
// to a value known at run time only.
func (tc *TaskContext) Has(key string) bool { return tc.String(key) != "" || tc.Dynamic[key] }

// String returns Config[key] as a string ("" when absent).
func (tc *TaskContext) String(key string) string {
	v, ok := tc.Config[key]
	if !ok || v == nil {
		return ""
	}
	return Format(v)
}

// Result is what an operator reports.
type Result struct {
	// Store is merged into the scope of the tasks that follow (dotted names
	// allowed, e.g. "td.last_job_id").
	Store map[string]any
	// Reset names params (dotted) whose value in Store replaces the old
	// one whole, in every scope it reaches, instead of being merged into it
	// key by key (td>'s td.last_results: each query's row replaces the last
	// one's, as digdag's resetStoreParams does).
	Reset []string
	// JobID and NumRecords show in the run summary.
	JobID      string
	NumRecords *int64
	// Subtasks, when set, is a task mapping as a .dig file writes one
	// (+children, or an operator and its keys; _export, _parallel,
	// _retry, _error...): digdag's generated subtask config
	// (TaskResult.subtaskConfig). The runner parses it, checks it (known
	// operators, their Validator) and runs it right after the operator, as
	// the task's child named ^sub — +wf+task^sub, its children
	// +wf+task^sub+loop-0... — the way digdag names generated tasks.
	//
	// Scoping is digdag's for a child: the subtasks see the task's params
	// as its +children would (its _export and everything inherited, what
	// the tasks before it stored, and this Result's Store), not the task's
	// own keys (a loop>'s count:); give them params of their own with an
	// _export in the config (WithExport). What they store reaches the
	// tasks after the task, as a group's children's stores do. A subtask
	// failing fails the task: its _retry runs the operator and its
	// subtasks again, its _error runs. An empty mapping runs nothing.
	//
	// if>, loop>, for_range>, td_for_each> and call> (internal/operators)
	// are built on it; an operator reading _do finds it as Task.DoNode (the
	// parser lets only the operators it lists in doOperators have _do) and
	// declares the names it gives _do with SubtaskDefiner, so that Check
	// knows them. A config held as Go values (py>'s
	// digdag.env.add_subtask, as JSON) becomes a node with ValueNode; the
	// keys of a map then come in sorted order, so give +tasks whose order
	// matters as NewMapping and SetKey in order.
	Subtasks *yaml.Node
	// SubtaskFile is the file Subtasks was read from, for file:line in
	// errors and for !include ("" is the task's own file). The operators of
	// subtasks from a file in another directory (call> sub/child.dig) work
	// in that directory, as digdag's do.
	SubtaskFile string
}

// Task states in a run summary.
const (
	StateSuccess = "success"
	StateError   = "error"
	StateSkipped = "skipped"
	// StateRunning is a run or task not finished yet: summary.json is
	// written when the run starts and rewritten as tasks start and end.
	StateRunning = "running"
	// StateInterrupted is a run, or task, stopped from outside before it
	// finished: its context was cancelled (Ctrl-C, SIGTERM), or — as
	// LoadSummary reads a record that still says running although the
	// process that wrote it is gone — the process was killed.
	StateInterrupted = "interrupted"
)

// TaskRecord is one task's line in the run summary.
type TaskRecord struct {
	Path       string        `json:"task"`
	Operator   string        `json:"operator"`
	State      string        `json:"state"`
	StartedAt  time.Time     `json:"started_at"`
	Duration   time.Duration `json:"duration_ns"`
	JobID      string        `json:"job_id,omitempty"`
	NumRecords *int64        `json:"num_records"`
	Log        string        `json:"log"`
	Error      string        `json:"error,omitempty"`
	Attempts   int           `json:"attempts"`
	// Store and Reset are what the task stored (Result.Store, Result.Reset)
	// when it succeeded, kept for a resume (see Runner.Resume);
	// StoreWithheld says it stored a secret, which is never written: a
	// resume runs that task again.
	Store         map[string]any `json:"store,omitempty"`
	Reset         []string       `json:"reset,omitempty"`
	StoreWithheld bool           `json:"store_withheld,omitempty"`
	// ResumedFrom is set on a task a resume restored instead of running:
	// the run where it last ran (its Log and JobID are that run's).
	ResumedFrom string `json:"resumed_from,omitempty"`
}

// Summary describes a run; it is saved as summary.json in the run
// directory when the run starts, as its tasks start and end (at most every
// SaveInterval, each time whole: a temporary file renamed into place, so a
// kill never leaves half a record) and when it ends.
type Summary struct {
	RunID       string    `json:"run_id"`
	Workflow    string    `json:"workflow"`
	File        string    `json:"file"`
	Dir         string    `json:"dir"`
	SessionTime time.Time `json:"session_time"`
	// Path is the workflow file's absolute path; with Workflow it tells
	// the runs of one workflow (last_executed_session_*).
	Path string `json:"path,omitempty"`
	// Timezone, SessionID, SessionUUID and AttemptID are the run's
	// built-in params of those names (a new attempt of a session keeps
	// its session_id and session_uuid).
	Timezone    string        `json:"timezone,omitempty"`
	SessionID   int64         `json:"session_id,omitempty"`
	SessionUUID string        `json:"session_uuid,omitempty"`
	AttemptID   int64         `json:"attempt_id,omitempty"`
	StartedAt   time.Time     `json:"started_at"`
	Duration    time.Duration `json:"duration_ns"`
	State       string        `json:"state"`
	Error       string        `json:"error,omitempty"`
	Tasks       []*TaskRecord `json:"tasks"`
	// PID and Host name the process running the run, so that a record
	// left saying "running" by a killed process can be told from a live
	// run (see LoadSummary).
	PID  int    `json:"pid,omitempty"`
	Host string `json:"host,omitempty"`
	// Params are the run's -p/-P params (Runner.Params), for a retry;
	// the names of those holding a secret are in ParamsWithheld instead.
	Params         map[string]any `json:"params,omitempty"`
	ParamsWithheld []string       `json:"params_withheld,omitempty"`
	// ResumedFrom is the run this one is a new attempt of (Runner.Resume).
	ResumedFrom string `json:"resumed_from,omitempty"`
	// DryRun marks a Runner.DryRun run: nothing ran and nothing was kept.
	DryRun bool `json:"dry_run,omitempty"`
}

// SaveInterval is how often, at most, a run rewrites its summary.json
// while tasks start and end (the first change is written at once).
const SaveInterval = 250 * time.Millisecond

// saveInterval is SaveInterval; tests change it.
var saveInterval = SaveInterval

// SessionInfo is a run's session and attempt as a server numbers them.
type SessionInfo struct {
	SessionID, AttemptID, ProjectID int64
	SessionUUID                     string
	// RetryAttemptName is the attempt's name ("" for a session's first).
	RetryAttemptName string
	// LastExecuted is the session time of the workflow's previous session
	// (nil when none): last_executed_session_*.
	LastExecuted *time.Time
}

// Runner runs workflows.
type Runner struct {
	// Session, when set, gives session_id, session_uuid, attempt_id,
	// project_id, retry_attempt_name and last_executed_session_* as a
	// server knows them (tdctl dev-server's workflow API), instead of
	// what the local run history in RunsDir says.
	Session *SessionInfo
	// Operators by name (without ">").
	Operators map[string]Operator
	// Secrets resolves ${secret:NAME}.
	Secrets Secrets
	// Params are -p overrides, visible everywhere (dotted keys allowed).
	Params map[string]any
	// SessionTime is the run's logical time (default: the workflow's
	// DefaultSessionTime, as digdag run picks it).
	SessionTime time.Time
	// RunsDir holds one directory per run with the task logs (required).
	RunsDir string
	// Output, when set, receives every task's log lines prefixed with the
	// task name, as they are written.
	Output io.Writer
	// Progress, when set, receives one line as each task starts and ends.
	Progress io.Writer
	// MaxParallel bounds operators running at once (default 8).
	MaxParallel int
	// Warnings, when set, receives Check's warnings, one line each.
	Warnings io.Writer
	// DryRun evaluates every task and writes what it would run to its log,
	// running no operator (no query, no script, no param store write);
	// the run is kept in a temporary directory, removed when it ends, so
	// the runs directory is left as it was (digdag run -d).
	DryRun bool
	// ShowParams writes the params each task gets to its log before it
	// runs (digdag run -E).
	ShowParams bool

	// sleep waits between the attempts of a task with _retry (tests
	// replace it); nil is a real, interruptible wait.
	sleep func(ctx context.Context, d time.Duration) error
}

type run struct {
	r       *Runner
	wf      *Workflow
	plan    *plan // nil: a fresh run (see Resume)
	id      string
	dir     string
	session time.Time
	secrets *secretSet
	js      *Engine // evaluates every ${...} of the run
	outMu   sync.Mutex
	mu      sync.Mutex
	records []*TaskRecord // guarded by mu, like their fields
	sem     chan struct{}
	logSeq  atomic.Int64

	sum      *Summary       // the record, guarded by mu
	saveMu   sync.Mutex     // one summary.json write at a time
	tmu      sync.Mutex     // guards lastSave, pending, saveErr
	lastSave time.Time      // when the last write started
	pending  bool           // a write is scheduled
	timer    *time.Timer    // the scheduled write
	saves    sync.WaitGroup // scheduled writes
	saveErr  error          // the first failed write
}

// NewRunID returns a sortable, unique run id.
func NewRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Run checks the workflow, then runs it. The summary is returned (and
// saved) whether or not the run succeeded; the error is the first task
// failure.
func (r *Runner) Run(ctx context.Context, wf *Workflow) (*Summary, error) {
	return r.start(ctx, wf, nil)
}

// start runs wf, fresh (p nil) or as Resume planned it.
func (r *Runner) start(ctx context.Context, wf *Workflow, p *plan) (*Summary, error) {
	if r.RunsDir == "" {
		return nil, errors.New("workflow: Runner.RunsDir is required")
	}
	session := r.SessionTime
	if session.IsZero() {
		session = wf.DefaultSessionTime(time.Now())
	}
	// the secrets the workflow names are masked from the run's first
	// record on (a -p value equal to one is withheld, not written)
	var named []string
	if _, err := r.checkSecrets(wf, func(v string) { named = append(named, v) }); err != nil {
		return nil, err
	}
	if p != nil && p.session {
		session = p.prev.SessionTime
	}
	ses := newSession(r.RunsDir, wf, session)
	if p != nil && p.session && p.prev.SessionID > 0 && p.prev.SessionUUID != "" {
		ses.id, ses.uuid = p.prev.SessionID, p.prev.SessionUUID
	}
	if si := r.Session; si != nil {
		ses.id, ses.uuid, ses.attempt, ses.project = si.SessionID, si.SessionUUID, si.AttemptID, si.ProjectID
		ses.retryName, ses.lastExecuted = si.RetryAttemptName, si.LastExecuted
	}
	ru := &run{r: r, wf: wf, plan: p, session: session, secrets: &secretSet{}, js: NewEngine()}
	for _, v := range named {
		ru.secrets.add(v)
	}
	ru.id = NewRunID(time.Now())
	ru.dir = filepath.Join(r.RunsDir, ru.id)
	if r.DryRun {
		tmp, err := os.MkdirTemp("", "tdctl-dry-run-")
		if err != nil {
			return nil, fmt.Errorf("workflow: creating run directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		ru.dir = filepath.Join(tmp, ru.id)
	}
	if err := os.MkdirAll(filepath.Join(ru.dir, "tasks"), 0o700); err != nil {
		return nil, fmt.Errorf("workflow: creating run directory: %w", err)
	}
	n := r.MaxParallel
	if n <= 0 {
		n = 8
	}
	ru.sem = make(chan struct{}, n)
	scope := Scope(expandDotted(r.Params))
	scope.Merge(runtimeParams(wf, ses, r.Params))
	start := time.Now()
	host, _ := os.Hostname()
	ru.sum = &Summary{RunID: ru.id, Workflow: wf.Name, File: wf.File, Dir: ru.dir, SessionTime: session, StartedAt: start,
		Path: absPath(wf.File), Timezone: wf.ZoneName(), SessionID: ses.id, SessionUUID: ses.uuid, AttemptID: ses.attempt,
		State: StateRunning, Tasks: []*TaskRecord{}, PID: os.Getpid(), Host: host, DryRun: r.DryRun}
	ru.sum.Params, ru.sum.ParamsWithheld = ru.keepParams(r.Params)
	if p != nil && p.prev != nil {
		ru.sum.ResumedFrom = p.prev.RunID
	}
	if err := ru.save(); err != nil {
		return nil, fmt.Errorf("workflow: writing the run record: %w", err)
	}
	_, err := ru.task(ctx, wf.Root, scope, wf.Root.Path)
	// every task has ended: a write still waiting for its turn is not
	// needed (the final one below holds everything), and waiting for it
	// made every run last up to SaveInterval longer
	ru.tmu.Lock()
	if ru.pending && ru.timer.Stop() {
		ru.pending = false
		ru.saves.Done()
	}
	ru.tmu.Unlock()
	ru.saves.Wait()
	ru.mu.Lock()
	sum := ru.sum
	sum.Duration, sum.State, sum.Tasks = time.Since(start), StateSuccess, ru.records
	if err != nil {
		sum.State = StateError
		if ctx.Err() != nil {
			sum.State = StateInterrupted
		}
		sum.Error = ru.secrets.redact(err.Error())
		err = &RunError{msg: sum.Error, err: err}
	}
	ru.mu.Unlock()
	werr := ru.save()
	if werr == nil {
		werr = ru.saveErr
	}
	if werr != nil && err == nil {
		err = fmt.Errorf("workflow: writing the run record: %w", werr)
	}
	return sum, err
}

// save writes the run record now.
func (ru *run) save() error {
	ru.saveMu.Lock()
	defer ru.saveMu.Unlock()
	ru.mu.Lock()
	s := *ru.sum
	if !ru.sum.DryRun && len(ru.r.Params) > 0 {
		// again at every write: an operator may have read a secret by
		// name (pg.password) since, and a -p equal to it is withheld
		s.Params, s.ParamsWithheld = ru.keepParams(ru.r.Params)
	}
	if s.State == StateRunning {
		s.Duration = time.Since(s.StartedAt)
		s.Tasks = ru.records
	}
	if s.Tasks == nil {
		s.Tasks = []*TaskRecord{}
	}
	data, err := json.MarshalIndent(&s, "", "  ")
	ru.mu.Unlock()
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(ru.dir, "summary.json"), data)
}

// changed writes the run record after a task started or ended: at once
// when the last write is SaveInterval old, else once that much time has
// passed (changes in between are written together).
func (ru *run) changed() {
	ru.tmu.Lock()
	defer ru.tmu.Unlock()
	if ru.pending {
		return
	}
	ru.pending = true
	ru.saves.Add(1)
	ru.timer = time.AfterFunc(max(0, saveInterval-time.Since(ru.lastSave)), func() {
		defer ru.saves.Done()
		ru.tmu.Lock()
		ru.pending, ru.lastSave = false, time.Now()
		ru.tmu.Unlock()
		if err := ru.save(); err != nil {
			ru.tmu.Lock()
			if ru.saveErr == nil {
				ru.saveErr = err
			}
			ru.tmu.Unlock()
		}
	})
}

// RunError is a failed run. Its message has secrets masked; Unwrap gives the
// task's error (context.Canceled, *td.JobFailedError...).
type RunError struct {
	msg string
	err error
}

func (e *RunError) Error() string { return e.msg }

// Unwrap returns the underlying error.
func (e *RunError) Unwrap() error { return e.err }

// expandDotted turns {"td.database": "x"} into nested maps.
func expandDotted(m map[string]any) map[string]any {
	s := Scope{}
	for k, v := range m {
		s.Set(k, v)
	}
	return s
}

// task runs t (operator, then children) and returns the params it stored.
// path is the task's name in this run, as digdag names it (for_each
// iterations are +wf+loop^sub+for-0=value=0=a; see forEachName), with
// #N on the attempts of a retried task.
func (ru *run) task(ctx context.Context, t *Task, parent Scope, path string) (map[string]any, error) {
	scope := parent.Clone()
	if t.Export != nil {
		// kept as written: each task evaluates them against its own scope
		// (see lazy)
		m, err := exportValues(t.Export, t.File, "")
		if err != nil {
			return nil, ru.posErr(t, err)
		}
		scope.Merge(m)
	}
	stored := Scope{}
	state := map[string]any{} // TaskContext.State, across the attempts
	var err error
	for attempt := 0; attempt <= t.Retry; attempt++ {
		if attempt > 0 {
			wait := t.retryWait(attempt)
			if wait > 0 {
				ru.progress("%s: retrying in %s (attempt %d of %d)", path, wait, attempt+1, t.Retry+1)
				if serr := ru.sleep(ctx, wait); serr != nil {
					break
				}
			} else {
				ru.progress("%s: retrying (attempt %d of %d)", path, attempt+1, t.Retry+1)
			}
		}
		stored = Scope{}
		// A retry is a new task instance: its name (and so every job
		// domain key derived below it) carries the attempt number.
		p := path
		if attempt > 0 {
			p = fmt.Sprintf("%s#%d", path, attempt+1)
		}
		err = ru.body(ctx, t, scope.Clone(), p, attempt, state, stored)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil && t.Error != nil && ctx.Err() == nil {
		es := scope.Clone()
		mergeStore(es, stored, false)
		es.Set("error", map[string]any{"message": ru.secrets.redact(err.Error()), "task": path})
		if _, eerr := ru.task(ctx, t.Error, es, path+"^error"); eerr != nil {
			err = fmt.Errorf("%w (and its _error task failed too: %v)", err, eerr)
		}
	}
	return stored, err
}

// retryWait is how long to wait before attempt (1 for the first retry),
// as digdag's RetryControl computes it: interval, or with interval_type
// exponential interval × 2^(attempt-1), capped at max_interval.
func (t *Task) retryWait(attempt int) time.Duration {
	if !t.RetryExponential {
		return t.RetryInterval
	}
	limit := t.RetryMaxInterval
	if limit <= 0 {
		limit = 365 * 24 * time.Hour // no max_interval: a bound all the same
	}
	return backoff.Exp(t.RetryInterval, limit, attempt-1)
}

func (ru *run) sleep(ctx context.Context, d time.Duration) error {
	if ru.r.sleep != nil {
		return ru.r.sleep(ctx, d)
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// store merges what a task stored into scope (for the tasks after it in
// the same group) and into stored (what the task hands on).
func store(scope, stored Scope, res *Result) {
	if res == nil || res.Store == nil {
		return
	}
	st := Scope(expandDotted(res.Store))
	for _, name := range res.Reset {
		if v, ok := st.Get(name); ok {
			st.Set(name, replaced{v})
		}
	}
	mergeStored(scope, stored, st)
}

// replaced marks a stored value that replaces the param whole wherever it
// is merged (Result.Reset), instead of being merged into it key by key.
type replaced struct{ v any }

// mergeStore merges src into dst, maps key by key; a replaced value is set
// whole: unwrapped into a scope, kept marked (keep) in what a task hands on,
// so that it replaces again in every scope it reaches.
func mergeStore(dst, src map[string]any, keep bool) {
	for k, v := range src {
		switch x := v.(type) {
		case replaced:
			if keep {
				dst[k] = x
			} else if m, ok := x.v.(map[string]any); ok {
				dst[k] = cloneMap(unmark(m))
			} else {
				dst[k] = x.v
			}
		case map[string]any:
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
				dst[k] = dm
			}
			mergeStore(dm, x, keep)
		default:
			dst[k] = v
		}
	}
}

// unmark copies m without replaced markers.
func unmark(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	mergeStore(out, m, false)
	return out
}

// body is one attempt of a task.
func (ru *run) body(ctx context.Context, t *Task, scope Scope, path string, attempt int, state map[string]any, stored Scope) error {
	scope.Set("task_name", digdagTaskName(path))
	switch {
	case t.Operator == "for_each":
		st, err := ru.forEach(ctx, t, scope, path)
		mergeStore(stored, st, true)
		return err
	case t.Operator != "":
		res, err := ru.operator(ctx, t, scope, path, attempt, state)
		if err != nil {
			return err
		}
		if res != nil {
			for k := range res.Store {
				if ru.wf.IsBuiltin(k) { // digdag would silently keep its own
					return ru.posErr(t, BuiltinError(t.Operator+">", k))
				}
			}
		}
		store(scope, stored, res)
		if res != nil && res.Subtasks != nil {
			st, err := ru.subtasks(ctx, t, res, scope, path)
			mergeStored(scope, stored, st)
			if err != nil {
				return err
			}
		}
		if t.Check != nil {
			st, err := ru.task(ctx, t.Check, scope, path+"^check")
			mergeStored(scope, stored, st)
			if err != nil {
				return err
			}
		}
	}
	if len(t.Children) == 0 {
		return nil
	}
	if !t.Parallel {
		return ru.sequence(ctx, t, scope, stored, path)
	}
	// _parallel: {limit: N} runs batches of N, each after the batch
	// before has ended and seeing what it stored (digdag chains each batch
	// after the whole previous one)
	for _, batch := range batches(len(t.Children), t.ParallelLimit) {
		stores := make([]map[string]any, len(batch))
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, ci := range batch {
			c := t.Children[ci]
			wg.Add(1)
			go func() {
				defer wg.Done()
				stores[i], errs[i] = ru.task(ctx, c, scope, path+c.Name)
			}()
		}
		wg.Wait()
		for _, st := range stores { // declaration order, never completion order
			mergeStored(scope, stored, st)
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// sequence runs t's children one after the other. A child with
// _background starts with the group, beside the children before it; the
// next child without _background starts once it has ended too, and sees
// what it stored (merged in declaration order).
func (ru *run) sequence(ctx context.Context, t *Task, scope, stored Scope, path string) error {
	type bg struct {
		done  chan struct{}
		store map[string]any
		err   error
	}
	bgs := map[int]*bg{}
	start := scope.Clone()
	for i, c := range t.Children {
		if c.Background {
			b := &bg{done: make(chan struct{})}
			bgs[i] = b
			go func() {
				defer close(b.done)
				b.store, b.err = ru.task(ctx, c, start, path+c.Name)
			}()
		}
	}
	// join waits for the background children before index end, merges
	// what they stored and returns their errors
	joined := 0
	join := func(end int) error {
		var errs []error
		for ; joined < end; joined++ {
			if b := bgs[joined]; b != nil {
				<-b.done
				mergeStored(scope, stored, b.store)
				errs = append(errs, b.err)
			}
		}
		return errors.Join(errs...)
	}
	for i, c := range t.Children {
		if c.Background {
			continue
		}
		if err := join(i); err != nil {
			return errors.Join(err, join(len(t.Children)))
		}
		st, err := ru.task(ctx, c, scope, path+c.Name)
		mergeStored(scope, stored, st)
		if err != nil {
			return errors.Join(err, join(len(t.Children)))
		}
	}
	return join(len(t.Children))
}

// mergeStored merges what a subtask stored into the scope of the tasks
// after it and into what this task stores.
func mergeStored(scope, stored Scope, st map[string]any) {
	mergeStore(scope, st, false)
	mergeStore(stored, st, true)
}

// batches splits n items into runs of at most limit (0: one run).
func batches(n, limit int) [][]int {
	if limit <= 0 {
		limit = n
	}
	var out [][]int
	for i := 0; i < n; i += limit {
		b := make([]int, 0, limit)
		for j := i; j < n && j < i+limit; j++ {
			b = append(b, j)
		}
		out = append(out, b)
	}
	return out
}

// forEachList is a for_each> value as a list: a list, or a string holding
// a JSON list.
func forEachList(v any) ([]any, bool) {
	if list, ok := v.([]any); ok {
		return list, true
	}
	if s, ok := v.(string); ok {
		var parsed []any
		if json.Unmarshal([]byte(s), &parsed) == nil {
			return parsed, true
		}
	}
	return nil, false
}

// forEach runs t's _do once per combination of values and returns what
// the iterations stored, merged in iteration order (the last iteration
// wins a clash) for the tasks after the loop.
func (ru *run) forEach(ctx context.Context, t *Task, scope Scope, path string) (map[string]any, error) {
	rs, failed := ru.resolve(scope)
	v, err := ru.js.Eval(t.Command, rs, ru.r.Secrets, ru.secrets.add)
	if err != nil {
		return nil, ru.posErr(t, explainLazy(err, failed))
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, ru.posErr(t, errors.New("for_each> needs a mapping of names to lists, e.g. value: [a, b]"))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// keep file order of keys
	order := map[string]int{}
	for i := 0; i+1 < len(t.Command.Content); i += 2 {
		order[t.Command.Content[i].Value] = i
	}
	sort.SliceStable(keys, func(i, j int) bool { return order[keys[i]] < order[keys[j]] })
	combos := []map[string]any{{}}
	for _, k := range keys {
		list, ok := forEachList(m[k])
		if !ok {
			return nil, ru.posErr(t, fmt.Errorf("for_each> %s must be a list (got %s)", k, Format(m[k])))
		}
		var next []map[string]any
		for _, c := range combos {
			for _, item := range list {
				n := map[string]any{}
				for ck, cv := range c {
					n[ck] = cv
				}
				n[k] = item
				next = append(next, n)
			}
		}
		combos = next
	}
	ru.progress("%s: for_each> %d iteration(s)%s", path, len(combos), map[bool]string{true: " in parallel"}[t.Parallel])
	stores := make([]map[string]any, len(combos))
	iter := func(i int) error {
		is := scope.Clone()
		for _, k := range keys {
			is.Set(k, combos[i][k])
		}
		// each iteration starts from the loop's scope: what a task stores
		// in one iteration is not seen by the others, but reaches the
		// tasks after the loop
		var err error
		stores[i], err = ru.task(ctx, t.Do, is, path+"^sub"+forEachName(keys, m, combos[i]))
		return err
	}
	merged := func() map[string]any {
		out := map[string]any{}
		for _, st := range stores {
			mergeStore(out, st, true)
		}
		return out
	}
	if !t.Parallel {
		for i := range combos {
			if err := iter(i); err != nil {
				return merged(), err
			}
		}
		return merged(), nil
	}
	for _, batch := range batches(len(combos), t.ParallelLimit) {
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for j, i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = iter(i)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return merged(), err
		}
	}
	return merged(), nil
}

var unsafePath = regexp.MustCompile(`[^A-Za-z0-9._=,\-]+`)

func (ru *run) operator(ctx context.Context, t *Task, scope Scope, path string, attempt int, state map[string]any) (*Result, error) {
	if res, ok := ru.fromPlan(t, path); ok {
		return res, nil
	}
	op := ru.r.Operators[t.Operator]
	label := strings.Trim(unsafePath.ReplaceAllString(strings.TrimPrefix(path, "+"), "_"), "_")
	if len(label) > 80 {
		label = label[:80]
	}
	// a sequence number keeps names unique (a+b vs a_b, long for_each
	// values, retries)
	logPath := filepath.Join(ru.dir, "tasks", fmt.Sprintf("%04d-%s.log", ru.logSeq.Add(1), label))
	rec := &TaskRecord{Path: path, Operator: t.Operator, State: StateRunning, StartedAt: time.Now(), Log: logPath, Attempts: attempt + 1}
	ru.mu.Lock()
	ru.records = append(ru.records, rec)
	ru.mu.Unlock()
	ru.changed()

	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		err = fmt.Errorf("workflow: task log: %w", err)
		ru.mu.Lock()
		rec.State, rec.Error = StateError, ru.secrets.redact(err.Error())
		ru.mu.Unlock()
		ru.changed()
		return nil, err
	}
	lw := &logWriter{f: f, secrets: ru.secrets, prefix: path, run: ru}
	finish := func(res *Result, err error) (*Result, error) {
		defer ru.changed()
		ru.mu.Lock() // save reads the record
		rec.Duration = time.Since(rec.StartedAt)
		if res != nil {
			rec.JobID, rec.NumRecords = res.JobID, res.NumRecords
		}
		rec.State = StateSuccess
		if err == nil {
			ru.keepStore(rec, res)
		}
		if err != nil {
			rec.State = StateError
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				rec.State = StateInterrupted
			}
			rec.Error = ru.secrets.redact(err.Error())
		}
		ru.mu.Unlock()
		if err != nil {
			fmt.Fprintf(lw, "error: %s\n", rec.Error)
			ru.progress("%s: error after %s: %s", path, rec.Duration.Round(time.Millisecond), firstLine(rec.Error))
		} else {
			extra := ""
			if rec.JobID != "" {
				extra = " (job " + rec.JobID
				if rec.NumRecords != nil {
					extra += fmt.Sprintf(", %d records", *rec.NumRecords)
				}
				extra += ")"
			}
			ru.progress("%s: success in %s%s", path, rec.Duration.Round(time.Millisecond), extra)
		}
		lw.Close()
		return res, err
	}
	ru.progress("%s: %s> started", path, t.Operator)
	// The task's own keys are evaluated in file order, each seeing those
	// before it as params (digdag's ConfigEvalEngine); a key that
	// overrides an inherited param takes its place, first.
	local, failed := ru.resolve(scope)
	wf := ru.wf
	if t.dir != "" { // a called workflow's task works in its directory
		c := *wf
		c.Dir = t.dir
		wf = &c
	}
	tc := &TaskContext{Task: t, Workflow: wf, Runner: ru.r, Scope: local, Log: lw, RunID: ru.id, Instance: path, Attempt: attempt, SessionTime: ru.session, State: state}
	tc.Config = map[string]any{}
	for _, key := range ownKeyOrder(t, scope) {
		var n *yaml.Node
		switch key {
		case t.Operator + ">":
			n = t.Command
		case "_env":
			n = t.Env
		case "_k8s":
			n = t.K8s
		default:
			n = t.Param(key)
		}
		v, err := ru.js.Eval(n, local, ru.r.Secrets, ru.secrets.add)
		if err != nil {
			err = explainLazy(err, failed)
			if key != t.Operator+">" {
				err = fmt.Errorf("%s: %w", key, err)
			}
			return finish(nil, ru.posErr(t, err))
		}
		switch key {
		case t.Operator + ">":
			tc.Command = v
			continue
		case "_env":
			tc.Env = map[string]string{}
			if m, ok := v.(map[string]any); ok {
				for k, val := range m {
					tc.Env[k] = Format(val)
				}
			}
		case "_k8s":
			tc.K8s, _ = v.(map[string]any)
		default:
			tc.Config[key] = v
			if order := ru.mappingKeys(n, local); order != nil {
				if tc.keyOrder == nil {
					tc.keyOrder = map[string][]string{}
				}
				tc.keyOrder[key] = order
			}
		}
		local[key] = v
	}
	tc.Secret = func(name string) (string, bool) {
		if ru.r.Secrets == nil {
			return "", false
		}
		v, ok := ru.r.Secrets.Secret(name)
		if ok {
			ru.secrets.add(v)
		}
		return v, ok
	}
	if err := ctx.Err(); err != nil {
		return finish(nil, err)
	}
	// MaxParallel bounds operators running at once. Only leaf runs take a
	// slot, so nested parallel groups can never wait on each other; an
	// operator that only waits (Idler) takes none.
	if i, ok := op.(Idler); ok && i.Idle(tc) {
		return finish(op.Run(ctx, tc))
	}
	select {
	case ru.sem <- struct{}{}:
	case <-ctx.Done():
		return finish(nil, ctx.Err())
	}
	if ru.r.ShowParams {
		ru.showParams(tc)
	}
	var res *Result
	if ru.r.DryRun {
		ru.dryRun(tc)
	} else {
		res, err = op.Run(ctx, tc)
	}
	<-ru.sem
	return finish(res, err)
}

// mappingKeys evaluates the keys of a mapping node in written order (nil
// for anything else, or a key that fails: Eval has reported it).
func (ru *run) mappingKeys(n *yaml.Node, scope Scope) []string {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := ru.js.template(n.Content[i].Value, scope, ru.r.Secrets, ru.secrets.add)
		if err != nil {
			return nil
		}
		out = append(out, Format(k))
	}
	return out
}

// ownKeyOrder is the order a task's own keys are evaluated in: those that
// override an inherited param first (they take that param's place), then
// the others in file order.
func ownKeyOrder(t *Task, inherited Scope) []string {
	out := make([]string, 0, len(t.Keys))
	for _, k := range t.Keys {
		if _, ok := inherited[k]; ok {
			out = append(out, k)
		}
	}
	for _, k := range t.Keys {
		if _, ok := inherited[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func (ru *run) posErr(t *Task, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return &Error{File: t.File, Line: t.Line, Msg: t.Path + ": " + err.Error()}
}

func (ru *run) progress(format string, args ...any) {
	if ru.r.Progress == nil {
		return
	}
	line := ru.secrets.redact(fmt.Sprintf(format, args...))
	ru.outMu.Lock()
	defer ru.outMu.Unlock()
	fmt.Fprintln(ru.r.Progress, line)
}

// secretSet remembers every secret value substituted, to mask it in logs.
type secretSet struct {
	mu   sync.RWMutex
	vals []string
}

func (s *secretSet) add(v string) {
	if len(v) < 3 {
		return
	}
	// logs are masked line by line: mask each line of a multi-line secret
	// (a PEM key) too
	if strings.Contains(v, "\n") {
		for _, line := range strings.Split(v, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 8 {
				s.add(line)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.vals {
		if x == v {
			return
		}
	}
	s.vals = append(s.vals, v)
	// longest first so a secret containing another is masked whole
	sort.Slice(s.vals, func(i, j int) bool { return len(s.vals[i]) > len(s.vals[j]) })
}

func (s *secretSet) redact(str string) string {
	s.mu.RLock()
	for _, v := range s.vals {
		str = strings.ReplaceAll(str, v, td.Mask)
	}
	s.mu.RUnlock()
	return td.Redact(str)
}

// logWriter writes whole, redacted lines to the task log (and to the run's
// Output, prefixed with the task name).
type logWriter struct {
	f       *os.File
	secrets *secretSet
	prefix  string
	run     *run
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(w.buf.Next(i + 1))
		w.emit(line)
	}
	return len(p), nil
}

func (w *logWriter) emit(line string) {
	line = w.secrets.redact(line)
	w.f.WriteString(line)
	if out := w.run.r.Output; out != nil {
		w.run.outMu.Lock()
		fmt.Fprintf(out, "%s: %s", w.prefix, line)
		if !strings.HasSuffix(line, "\n") {
			fmt.Fprintln(out)
		}
		w.run.outMu.Unlock()
	}
}

func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String() + "\n")
		w.buf.Reset()
	}
	return w.f.Close()
}

// WriteFileAtomic replaces path with data whole: a temporary file in the
// same directory (mode 0600), renamed into place. The run records use it,
// and so does the workflow server of tdctl dev-server.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// LoadSummary reads a run's summary.json. run is a run id (looked up in
// runsDir) or "latest"/"" for the newest run.
func LoadSummary(runsDir, runID string) (*Summary, error) {
	if runID == "" || runID == "latest" {
		entries, err := os.ReadDir(runsDir)
		if err != nil {
			return nil, fmt.Errorf("workflow: no runs yet in %s", runsDir)
		}
		for i := len(entries) - 1; i >= 0; i-- {
			if entries[i].IsDir() {
				if _, err := os.Stat(filepath.Join(runsDir, entries[i].Name(), "summary.json")); err == nil {
					runID = entries[i].Name()
					break
				}
			}
		}
		if runID == "" || runID == "latest" {
			return nil, fmt.Errorf("workflow: no runs yet in %s", runsDir)
		}
	}
	if strings.ContainsAny(runID, `/\`) || runID == ".." {
		return nil, fmt.Errorf("workflow: invalid run id %q", runID)
	}
	data, err := os.ReadFile(filepath.Join(runsDir, runID, "summary.json"))
	if err != nil {
		return nil, fmt.Errorf("workflow: run %s not found in %s (list runs with: ls %s)", runID, runsDir, runsDir)
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("workflow: run %s: bad summary.json: %w", runID, err)
	}
	if s.State == StateRunning && !s.writerAlive() {
		s.State = StateInterrupted
		if s.Error == "" {
			s.Error = fmt.Sprintf("the run's process (pid %d) ended before the run did (killed?)", s.PID)
		}
		for _, t := range s.Tasks {
			if t.State == StateRunning {
				t.State = StateInterrupted
			}
		}
	}
	return &s, nil
}

// writerAlive tells whether the process that wrote a running record may
// still run it: true for a live pid on this host, and for a record from
// another host (which cannot be checked from here).
func (s *Summary) writerAlive() bool {
	if host, err := os.Hostname(); err == nil && s.Host != "" && s.Host != host {
		return true
	}
	return s.PID > 0 && processAlive(s.PID)
}

// FindTask returns the records whose path equals name or ends with it
// ("+show_num_records" finds "+wf+show_num_records").
func (s *Summary) FindTask(name string) []*TaskRecord {
	var out []*TaskRecord
	for _, t := range s.Tasks {
		if t.Path == name || strings.HasSuffix(t.Path, name) || strings.HasSuffix(t.Path, "+"+strings.TrimPrefix(name, "+")) {
			out = append(out, t)
		}
	}
	return out
}

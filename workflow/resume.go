package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/td"
)

// Resuming a run, as digdag does it.
//
// Every task that succeeds keeps in its TaskRecord what it stored (the
// params of Result.Store, with Result.Reset), unless a value in it holds
// a secret (then the record says store_withheld and the task is never
// restored: it runs again). A new attempt of the run (Runner.Resume)
// walks the workflow as a fresh run does, but a task that succeeded in
// the earlier run is not run again: its record is copied into the new run
// as skipped (resumed_from names the earlier run) and what it stored is
// merged into the params of the tasks after it, exactly as when it ran —
// td.last_job_id, td.last_results, params a sh> or param_get> stored.

// ResumeOptions says which tasks a new attempt runs, restores or skips.
// The zero value is digdag's `retry --resume`: restore every task that
// succeeded in the earlier run, run the others. From, Goal and End take a
// task name as `digdag run` takes it: its full name (+wf+group+task) or
// its end (+task), which must name one task of the workflow.
type ResumeOptions struct {
	// All runs every task again (`retry --all`, `run --rerun`): only the
	// session is kept.
	All bool
	// From runs this task, its subtasks and every task after it again,
	// even those that succeeded (`retry --resume-from`, `run --start`);
	// the tasks before it are restored.
	From string
	// Strict (with From) refuses to resume when a task before From did
	// not succeed in the earlier run (`retry --resume-from`: "all tasks
	// before this task must have been successfully finished").
	Strict bool
	// Goal runs this task and its subtasks again (`run --goal`); the tasks
	// before it are restored when they succeeded (else run), the tasks
	// after it are skipped.
	Goal string
	// End skips this task and the tasks after it (`run --end`).
	End string
	// KeepSession runs the new attempt in the earlier run's session: its
	// session time, session_id and session_uuid (a retry); attempt_id is
	// new. Without it Runner.SessionTime applies, as for Run.
	KeepSession bool
}

// Resume runs a new attempt of wf after the run prev (as LoadSummary
// reads it; nil when there is none: every task runs, as with Run, and
// only From/Goal/End apply). Which tasks run, are restored from prev or
// are skipped is said by opt; a restored task is recorded as skipped with
// ResumedFrom set, and what it stored reaches the tasks after it. The new
// run has a run id and directory of its own; prev's record is not
// changed. Errors are those of Run, plus a bad task name in opt (an
// *Error naming the closest task) and, with Strict, a task before From
// that failed in prev.
func (r *Runner) Resume(ctx context.Context, wf *Workflow, prev *Summary, opt ResumeOptions) (*Summary, error) {
	if prev != nil && prev.Workflow != "" && prev.Workflow != wf.Name {
		return nil, fmt.Errorf("workflow: run %s is of workflow %s, not %s", prev.RunID, prev.Workflow, wf.Name)
	}
	p, err := newPlan(wf, prev, opt)
	if err != nil {
		return nil, err
	}
	return r.start(ctx, wf, p)
}

// plan is what Resume decided for a run: per workflow task (the *Task of
// the tree, shared by its for_each iterations and retries) whether it is
// forced to run or skipped, and the earlier run's latest record of each
// task instance (by digdag task name) to restore from.
type plan struct {
	prev    *Summary
	latest  map[string]*TaskRecord
	force   map[*Task]bool // run even when it succeeded before
	skip    map[*Task]bool // not run at all (--goal's after, --end)
	all     bool
	session bool // keep prev's session
}

func newPlan(wf *Workflow, prev *Summary, opt ResumeOptions) (*plan, error) {
	n := 0
	for _, s := range []string{opt.From, opt.Goal} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("workflow: --start/--resume-from and --goal don't work together")
	case opt.All && n > 0:
		return nil, errors.New("workflow: --rerun/--all and --start/--resume-from/--goal don't work together")
	case opt.Goal != "" && opt.End != "":
		return nil, errors.New("workflow: --goal and --end don't work together")
	}
	p := &plan{prev: prev, latest: map[string]*TaskRecord{}, force: map[*Task]bool{}, skip: map[*Task]bool{}, all: opt.All, session: opt.KeepSession && prev != nil}
	if prev != nil {
		for _, rec := range prev.Tasks { // start order: the last one wins
			p.latest[digdagTaskName(rec.Path)] = rec
		}
	}
	if opt.From != "" {
		x, err := FindTaskByName(wf, opt.From)
		if err != nil {
			return nil, err
		}
		before := upstream(wf.Root, x)
		walk(wf.Root, func(t *Task) {
			if !before[t] {
				p.force[t] = true
			}
		})
		if opt.Strict && prev != nil {
			if err := p.checkBefore(wf, before); err != nil {
				return nil, err
			}
		}
	}
	if opt.Goal != "" {
		x, err := FindTaskByName(wf, opt.Goal)
		if err != nil {
			return nil, err
		}
		before := upstream(wf.Root, x)
		walk(x, func(t *Task) { p.force[t] = true })
		anc := ancestors(wf.Root, x)
		walk(wf.Root, func(t *Task) {
			if !before[t] && !p.force[t] && !anc[t] {
				p.skip[t] = true
			}
		})
	}
	if opt.End != "" {
		x, err := FindTaskByName(wf, opt.End)
		if err != nil {
			return nil, err
		}
		before, anc := upstream(wf.Root, x), ancestors(wf.Root, x)
		walk(wf.Root, func(t *Task) {
			if !before[t] && !anc[t] {
				p.skip[t] = true
			}
		})
	}
	return p, nil
}

// checkBefore refuses a --resume-from whose earlier tasks did not all
// succeed in the earlier run.
func (p *plan) checkBefore(wf *Workflow, before map[*Task]bool) error {
	var names []string
	for name, rec := range p.latest {
		if !restorable(rec) && rec.State != StateSkipped {
			for t := range before {
				if t.Operator != "" && name == t.Path {
					names = append(names, fmt.Sprintf("%s (%s)", name, rec.State))
				}
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return fmt.Errorf("workflow: cannot resume run %s from that task: %s before it did not succeed; retry with --resume (or --resume-from an earlier task)", p.prev.RunID, strings.Join(names, ", "))
}

// restorable tells whether a record's task can be restored: it succeeded
// (or was itself restored) and its stored params were kept.
func restorable(rec *TaskRecord) bool {
	if rec == nil || rec.StoreWithheld {
		return false
	}
	return rec.State == StateSuccess || (rec.State == StateSkipped && rec.ResumedFrom != "")
}

// walk calls fn for t and every task under it (_do and _error included).
func walk(t *Task, fn func(*Task)) {
	fn(t)
	for _, c := range t.Children {
		walk(c, fn)
	}
	if t.Do != nil {
		walk(t.Do, fn)
	}
	if t.Error != nil {
		walk(t.Error, fn)
	}
}

// ancestors is the set of tasks that hold x (not x).
func ancestors(root, x *Task) map[*Task]bool {
	out := map[*Task]bool{}
	var find func(t *Task, chain []*Task) bool
	find = func(t *Task, chain []*Task) bool {
		if t == x {
			for _, a := range chain {
				out[a] = true
			}
			return true
		}
		chain = append(chain, t)
		for _, c := range t.Children {
			if find(c, chain) {
				return true
			}
		}
		return (t.Do != nil && find(t.Do, chain)) || (t.Error != nil && find(t.Error, chain))
	}
	find(root, nil)
	return out
}

// upstream is the set of tasks that run before x and that x (or a group
// holding it) waits for: in each sequential group on the way from the root
// to x, the siblings before, with everything under them. As digdag's
// TaskTree, the branches of a _parallel group are not upstream of each
// other.
func upstream(root, x *Task) map[*Task]bool {
	out := map[*Task]bool{}
	anc := ancestors(root, x)
	var visit func(t *Task)
	visit = func(t *Task) {
		if !t.Parallel {
			for _, c := range t.Children {
				if c == x || anc[c] {
					break
				}
				walk(c, func(u *Task) { out[u] = true })
			}
		}
		for _, c := range t.Children {
			if c == x || anc[c] {
				visit(c)
			}
		}
		if t.Do != nil && anc[t.Do] {
			visit(t.Do)
		}
	}
	if root != x {
		visit(root)
	}
	return out
}

// FindTaskByName finds the one task of wf that name names: its full name
// (+wf+group+task) or its end (+task, +group+task), as `digdag run
// --start` and `workflow logs --task` take it. No task, or more than one,
// is an *Error that says which names there are.
func FindTaskByName(wf *Workflow, name string) (*Task, error) {
	want := "+" + strings.TrimPrefix(strings.TrimSpace(name), "+")
	var found []*Task
	var all, short []string
	byShort := map[string]string{}
	walk(wf.Root, func(t *Task) {
		if t == wf.Root || t.Path == "" {
			return
		}
		all = append(all, t.Path)
		if _, dup := byShort[t.Name]; !dup {
			short = append(short, t.Name)
		}
		byShort[t.Name] = t.Path
		if t.Path == want || strings.HasSuffix(t.Path, want) {
			found = append(found, t)
		}
	})
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		hint := ""
		if c := ClosestKey(want, all); c != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", c)
		} else if c := ClosestKey(want, short); c != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", byShort[c])
		}
		return nil, &Error{File: wf.File, Msg: fmt.Sprintf("no task %s in workflow %s%s", want, wf.Name, hint)}
	}
	paths := make([]string, len(found))
	for i, t := range found {
		paths[i] = t.Path
	}
	return nil, &Error{File: wf.File, Msg: fmt.Sprintf("%s names %d tasks (%s): give more of the name", want, len(found), strings.Join(paths, ", "))}
}

// fromPlan decides, before task t runs as path, whether the plan skips or
// restores it; when it does it records the task as skipped and returns
// what the task stores (nothing for a skipped one).
func (ru *run) fromPlan(t *Task, path string) (*Result, bool) {
	p := ru.plan
	if p == nil {
		return nil, false
	}
	if p.skip[t] {
		ru.skipped(t, path, nil, "skipped (before --goal or after --end)")
		return &Result{}, true
	}
	if p.all || p.force[t] {
		return nil, false
	}
	rec := p.latest[digdagTaskName(path)]
	if !restorable(rec) {
		return nil, false
	}
	res, err := rec.result()
	if err != nil { // a record we cannot read back: run the task again
		return nil, false
	}
	ru.skipped(t, path, rec, "restored from run "+p.prev.RunID)
	return res, true
}

// skipped records a task that does not run; from is the earlier record
// it is restored from (nil: skipped with nothing stored).
func (ru *run) skipped(t *Task, path string, from *TaskRecord, why string) {
	rec := &TaskRecord{Path: path, Operator: t.Operator, State: StateSkipped, StartedAt: ru.sum.StartedAt}
	if from != nil {
		rec.JobID, rec.NumRecords, rec.Store, rec.Reset = from.JobID, from.NumRecords, from.Store, from.Reset
		rec.ResumedFrom, rec.Log = ru.plan.prev.RunID, from.Log
		if from.ResumedFrom != "" {
			rec.ResumedFrom = from.ResumedFrom // the run where it last ran
		}
	}
	ru.mu.Lock()
	ru.records = append(ru.records, rec)
	ru.mu.Unlock()
	ru.changed()
	ru.progress("%s: %s", path, why)
}

// result is the Result a restored task hands on.
func (rec *TaskRecord) result() (*Result, error) {
	res := &Result{Reset: rec.Reset, JobID: rec.JobID, NumRecords: rec.NumRecords}
	if len(rec.Store) == 0 {
		return res, nil
	}
	// decoded again so that numbers are int64 where whole (a job id, a
	// count), as the operator stored them
	data, err := json.Marshal(rec.Store)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	res.Store, _ = numbers(m).(map[string]any)
	return res, nil
}

// numbers turns json.Numbers into int64 (whole) or float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// keepStore records what a successful task stored, for a later resume;
// a store holding a secret (anything the run's masking changes) is
// withheld: the run record never holds a secret, and a resume runs that
// task again.
func (ru *run) keepStore(rec *TaskRecord, res *Result) {
	if res == nil || len(res.Store) == 0 {
		return
	}
	data, err := json.Marshal(res.Store)
	if err != nil || ru.secrets.redact(string(data)) != string(data) || td.Redact(string(data)) != string(data) {
		rec.StoreWithheld = true
		return
	}
	rec.Store, rec.Reset = res.Store, res.Reset
}

// dryRun is what a task does under Runner.DryRun: it says, in its log,
// what it would run (the operator and its evaluated settings) and stores
// nothing.
func (ru *run) dryRun(tc *TaskContext) {
	fmt.Fprintf(tc.Log, "dry run: would run %s> %s\n", tc.Task.Operator, Format(tc.Command))
	ru.dump(tc.Log, "  ", tc.Config)
}

// showParams writes the params a task gets (Runner.ShowParams, digdag's
// -E) to its log: its scope, with its own settings over it.
func (ru *run) showParams(tc *TaskContext) {
	m := map[string]any{}
	mergeStore(m, tc.Scope, false)
	for k, v := range tc.Config {
		m[k] = v
	}
	fmt.Fprintln(tc.Log, "params:")
	ru.dump(tc.Log, "  ", m)
}

// dump writes m as indented YAML (the log masks secrets line by line).
func (ru *run) dump(w interface{ Write([]byte) (int, error) }, indent string, m map[string]any) {
	if len(m) == 0 {
		return
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Fprintf(w, "%s%s\n", indent, line)
	}
}

// keepParams is what the run record keeps of the run's -p/-P params: the
// params, less those holding a secret, whose names are returned apart.
func (ru *run) keepParams(params map[string]any) (map[string]any, []string) {
	if len(params) == 0 {
		return nil, nil
	}
	kept := map[string]any{}
	var withheld []string
	for k, v := range params {
		data, err := json.Marshal(v)
		if err != nil || ru.secrets.redact(string(data)) != string(data) || td.Redact(k+"="+string(data)) != k+"="+string(data) {
			withheld = append(withheld, k)
			continue
		}
		kept[k] = v
	}
	sort.Strings(withheld)
	return kept, withheld
}

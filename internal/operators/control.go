package operators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/workflow"
)

// The control-flow operators: if>, fail>, loop>, for_range>, wait> and
// call>, as digdag's (digdag-docs operators/*.md). Those running tasks of
// their own return them as generated subtasks (workflow.Result.Subtasks),
// which the runner runs as the task's ^sub child.

// MaxGeneratedTasks bounds the subtasks one loop> or for_range> generates,
// as digdag's max_workflow_tasks (default 1000) does.
const MaxGeneratedTasks = 1000

// If is if>: it runs _do when its value is true, _else_do when it is false.
type If struct{}

// Run implements workflow.Operator.
func (If) Run(_ context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	if tc.Task.DoNode == nil && tc.Task.ElseDoNode == nil {
		return nil, errors.New(ifNeedsDo)
	}
	cond, err := truth(tc.Command)
	if err != nil {
		return nil, err
	}
	sub := tc.Task.ElseDoNode
	if cond {
		sub = tc.Task.DoNode
	}
	if sub == nil {
		return nil, nil
	}
	return &workflow.Result{Subtasks: sub}, nil
}

const ifNeedsDo = "if> needs _do (tasks to run when true) or _else_do (when false)"

// Validate implements workflow.Validator.
func (If) Validate(tc *workflow.TaskContext) error {
	if tc.Task.DoNode == nil && tc.Task.ElseDoNode == nil {
		return errors.New(ifNeedsDo)
	}
	if !tc.Dynamic[""] {
		if _, err := truth(tc.Command); err != nil {
			return err
		}
	}
	return ifSpec.check(tc.Task, "")
}

var ifSpec = keySpec{op: "if"}

// truth reads if>'s value as digdag does (a boolean param read through
// Jackson): true, "true" or "True" are true; false, "false", "False", ""
// and null are false; a whole number is true unless 0. Anything else is a
// mistake.
func truth(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		switch strings.TrimSpace(x) {
		case "true", "True":
			return true, nil
		case "false", "False", "", "null":
			return false, nil
		}
	default:
		if n, ok := wholeNumber(x); ok {
			return n != 0, nil
		}
	}
	return false, fmt.Errorf("if> needs true or false (got %s)", workflow.Format(v))
}

// boolSetting reads a true/false setting (a YAML boolean, or the text
// true or false that ${...} makes of one).
func boolSetting(v any, what string) (bool, error) {
	if b, ok := v.(bool); ok {
		return b, nil
	}
	if v == "true" || v == "false" {
		return v == "true", nil
	}
	return false, fmt.Errorf("%s must be true or false (got %s)", what, workflow.Format(v))
}

// wholeNumber reads v as a whole number: an integer, a float without a
// fraction, or a string of digits (as digdag reads an int param).
func wholeNumber(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		return int64(x), x == math.Trunc(x) && math.Abs(x) < 1<<62
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Fail is fail>: the task fails with its message, which an _error task
// reads as ${error.message}.
type Fail struct{}

// Run implements workflow.Operator.
func (Fail) Run(_ context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	return nil, errors.New(workflow.Format(tc.Command))
}

// Validate implements workflow.Validator.
func (Fail) Validate(tc *workflow.TaskContext) error { return failSpec.check(tc.Task, "") }

var failSpec = keySpec{op: "fail"}

// Loop is loop>: it runs _do count times, +loop-0, +loop-1..., each with
// ${i} its index; _parallel runs them in parallel.
type Loop struct{}

// Run implements workflow.Operator.
func (Loop) Run(_ context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	n, err := loopCount(tc)
	if err != nil {
		return nil, err
	}
	gen := generated(tc.Task)
	for i := range n {
		workflow.SetKey(gen, fmt.Sprintf("+loop-%d", i), workflow.WithExport(tc.Task.DoNode, map[string]any{"i": i}, []string{"i"}))
	}
	return &workflow.Result{Subtasks: gen}, nil
}

// loopCount is count: or else loop>'s value.
func loopCount(tc *workflow.TaskContext) (int64, error) {
	v, key := tc.Command, "loop>"
	if c, ok := tc.Config["count"]; ok {
		v, key = c, "loop> count"
	}
	n, ok := wholeNumber(v)
	if !ok || n < 0 {
		return 0, fmt.Errorf("%s must be a whole number ≥ 0 (got %s)", key, workflow.Format(v))
	}
	if n > MaxGeneratedTasks {
		return 0, fmt.Errorf("%s: too many loop subtasks (%d); the limit is %d", key, n, MaxGeneratedTasks)
	}
	return n, nil
}

// Validate implements workflow.Validator.
func (Loop) Validate(tc *workflow.TaskContext) error {
	switch {
	case tc.Task.Param("count") != nil:
		if !tc.Dynamic["count"] {
			if _, err := loopCount(tc); err != nil {
				return err
			}
		}
	case tc.Dynamic[""]:
	case tc.Command == nil:
		return errors.New("loop> needs a count: loop>: 3 or count: 3")
	default:
		if _, err := loopCount(tc); err != nil {
			return err
		}
	}
	return loopSpec.check(tc.Task, "")
}

// SubtaskDefines implements workflow.SubtaskDefiner.
func (Loop) SubtaskDefines(*workflow.Task) []string { return []string{"i"} }

var loopSpec = keySpec{op: "loop", known: []string{"count"}}

// generated is an empty subtask group with t's _parallel.
func generated(t *workflow.Task) *yaml.Node {
	gen := workflow.NewMapping()
	if p := workflow.ParallelNode(t); p != nil {
		workflow.SetKey(gen, "_parallel", p)
	}
	return gen
}

// ForRange is for_range>: it splits from..to into ranges of step (or into
// slices ranges) and runs _do once per range, +range-from=F&to=T, with
// ${range.from}, ${range.to} and ${range.index}.
type ForRange struct{}

type rangeSpec struct{ from, to, step int64 }

// forRange reads {from, to, step | slices} as digdag does.
func forRange(v any) (rangeSpec, error) {
	if s, ok := v.(string); ok { // a JSON object in a string (parseNested)
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) == nil {
			v = m
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return rangeSpec{}, fmt.Errorf("for_range> needs {from: N, to: M, step: S} or {from: N, to: M, slices: K} (got %s)", workflow.Format(v))
	}
	for k := range m {
		if !contains(forRangeKeys, k) {
			if c := workflow.ClosestKey(k, forRangeKeys); c != "" {
				return rangeSpec{}, fmt.Errorf("unknown for_range> key %s (did you mean %s?)", k, c)
			}
			return rangeSpec{}, fmt.Errorf("unknown for_range> key %s (for_range> reads from, to, step, slices)", k)
		}
	}
	num := func(k string) (int64, bool, error) {
		x, ok := m[k]
		if !ok {
			return 0, false, nil
		}
		n, ok := wholeNumber(x)
		if !ok {
			return 0, true, fmt.Errorf("for_range> %s must be a whole number (got %s)", k, workflow.Format(x))
		}
		return n, true, nil
	}
	var r rangeSpec
	var err error
	var has bool
	if r.from, has, err = num("from"); err != nil || !has {
		return r, cmpErr(err, "for_range> needs from")
	}
	if r.to, has, err = num("to"); err != nil || !has {
		return r, cmpErr(err, "for_range> needs to")
	}
	step, hasStep, err := num("step")
	if err != nil {
		return r, err
	}
	slices, hasSlices, err := num("slices")
	if err != nil {
		return r, err
	}
	switch {
	case hasStep && hasSlices:
		return r, errors.New("for_range> takes step or slices, not both")
	case !hasStep && !hasSlices:
		return r, errors.New("for_range> needs step or slices")
	case hasStep && step <= 0:
		return r, fmt.Errorf("for_range> step must be 1 or more (got %d)", step)
	case hasSlices && slices <= 0:
		return r, fmt.Errorf("for_range> slices must be 1 or more (got %d)", slices)
	}
	r.step = step
	if hasSlices {
		r.step = (r.to - r.from + slices - 1) / slices
		if r.step <= 0 { // digdag's assertion: an empty or reversed range
			return r, fmt.Errorf("for_range> from %d to %d cannot be cut into %d slices", r.from, r.to, slices)
		}
	}
	if n := (r.to - r.from + r.step - 1) / r.step; n > MaxGeneratedTasks {
		return r, fmt.Errorf("for_range>: too many for_range subtasks (%d); the limit is %d", n, MaxGeneratedTasks)
	}
	return r, nil
}

func cmpErr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

var forRangeKeys = []string{"from", "to", "step", "slices"}

// Run implements workflow.Operator.
func (ForRange) Run(_ context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	r, err := forRange(tc.Command)
	if err != nil {
		return nil, err
	}
	gen := generated(tc.Task)
	index := 0
	for pos := r.from; pos < r.to; pos += r.step {
		end := min(pos+r.step, r.to)
		ex := map[string]any{"range": map[string]any{"from": pos, "to": end, "index": index}}
		workflow.SetKey(gen, fmt.Sprintf("+range-from=%d&to=%d", pos, end), workflow.WithExport(tc.Task.DoNode, ex, []string{"range"}))
		index++
	}
	return &workflow.Result{Subtasks: gen}, nil
}

// Validate implements workflow.Validator.
func (ForRange) Validate(tc *workflow.TaskContext) error {
	if !tc.Dynamic[""] {
		if _, err := forRange(tc.Command); err != nil {
			return err
		}
	}
	return forRangeSpec.check(tc.Task, "")
}

// SubtaskDefines implements workflow.SubtaskDefiner.
func (ForRange) SubtaskDefines(*workflow.Task) []string { return []string{"range"} }

var forRangeSpec = keySpec{op: "for_range"}

// Wait is wait>: it waits for a duration (digdag's form: 10s, 1m, 2h,
// 1d, or several: 1h 30m), or until its task is cancelled.
type Wait struct {
	// Sleep waits d (nil: a timer that ctx interrupts).
	Sleep func(ctx context.Context, d time.Duration) error
}

var durationRE = regexp.MustCompile(`(?i)^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$`)

// parseDuration reads a duration as digdag's Durations.parseDuration.
func parseDuration(s string) (time.Duration, bool) {
	m := durationRE.FindStringSubmatch(s)
	if m == nil || (m[1] == "" && m[2] == "" && m[3] == "" && m[4] == "") {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil || n > int64(math.MaxInt64/unit) {
			return 0, false
		}
		d += time.Duration(n) * unit
	}
	return d, d >= 0
}

type waitSettings struct {
	d, poll  time.Duration
	blocking bool
}

func waitConfig(tc *workflow.TaskContext, static bool) (waitSettings, error) {
	var w waitSettings
	var ok bool
	if !static || !tc.Dynamic[""] {
		if w.d, ok = parseDuration(workflow.Format(tc.Command)); !ok {
			return w, fmt.Errorf("wait> needs a duration like 10s, 5m, 1h 30m or 1d (got %q)", workflow.Format(tc.Command))
		}
	}
	if v, set := tc.Config["blocking"]; set {
		b, err := boolSetting(v, "wait> blocking")
		if err != nil {
			return w, err
		}
		w.blocking = b
	}
	if v, set := tc.Config["poll_interval"]; set {
		if w.poll, ok = parseDuration(workflow.Format(v)); !ok || w.poll < time.Second {
			return w, fmt.Errorf("wait> poll_interval needs a duration of 1s or more, like 5s (got %q)", workflow.Format(v))
		}
	}
	if w.blocking && (tc.Has("poll_interval")) {
		return w, errors.New("wait> poll_interval can't be given with blocking: true (it is for the non-blocking mode)")
	}
	return w, nil
}

// Run implements workflow.Operator. digdag waits at least 1 s; without
// blocking and with poll_interval, it looks whether the time has passed
// every poll_interval, so the wait ends at the first look after it.
func (w Wait) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	s, err := waitConfig(tc, false)
	if err != nil {
		return nil, err
	}
	d := max(s.d, time.Second)
	if s.poll > 0 {
		d = s.poll * ((s.d + s.poll) / s.poll) // the first look after s.d
	}
	fmt.Fprintf(tc.Log, "waiting %s\n", d)
	sleep := w.Sleep
	if sleep == nil {
		sleep = backoff.Sleep
	}
	return nil, sleep(ctx, d)
}

// Idle implements workflow.Idler: a non-blocking wait takes no
// MaxParallel slot; blocking: true holds one, as it holds digdag's
// executor thread.
func (Wait) Idle(tc *workflow.TaskContext) bool {
	s, err := waitConfig(tc, false)
	return err != nil || !s.blocking
}

// Validate implements workflow.Validator.
func (Wait) Validate(tc *workflow.TaskContext) error {
	if _, err := waitConfig(tc, true); err != nil {
		return err
	}
	return waitSpec.check(tc.Task, "")
}

var waitSpec = keySpec{op: "wait", known: []string{"blocking", "poll_interval"}}

// Call is call>: it runs another workflow file of the project (a path
// relative to the calling file, .dig optional) as the task's subtasks,
// with the caller's params. The called file's tasks work in its directory.
type Call struct{}

// maxCallDepth bounds calls inside calls (a workflow calling itself).
const maxCallDepth = 64

// callFile resolves call>'s value.
func callFile(tc *workflow.TaskContext) (string, error) {
	name := workflow.Format(tc.Command)
	if strings.TrimSpace(name) == "" {
		return "", errors.New("call> needs a workflow file, e.g. call>: other.dig")
	}
	if !strings.HasSuffix(name, ".dig") {
		name += ".dig"
	}
	file := filepath.Join(tc.Workflow.Dir, filepath.FromSlash(name))
	project, err := filepath.Abs(filepath.Dir(tc.Workflow.File))
	abs, err2 := filepath.Abs(file)
	if err != nil || err2 != nil {
		return "", fmt.Errorf("call> %s: %v", name, errors.Join(err, err2))
	}
	if rel, err := filepath.Rel(project, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(name) {
		return "", fmt.Errorf("call> %s: the file is outside the project directory %s; call> takes a workflow of the project", name, project)
	}
	if st, err := os.Stat(file); err != nil || st.IsDir() {
		return "", fmt.Errorf("call> %s: no such workflow file in %s", name, tc.Workflow.Dir)
	}
	return file, nil
}

// Run implements workflow.Operator.
func (Call) Run(_ context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	if strings.Count(tc.Instance, "^sub") > maxCallDepth {
		return nil, fmt.Errorf("call> %s: calls nest deeper than %d (does a workflow call itself?)", workflow.Format(tc.Command), maxCallDepth)
	}
	file, err := callFile(tc)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("call> %s: %w", workflow.Format(tc.Command), err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: bad YAML: %v", file, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a workflow must be a YAML mapping of +tasks and settings", file)
	}
	root := doc.Content[0]
	// the session and its time zone are the caller's (digdag's called
	// workflow runs in the caller's session)
	sub := workflow.NewMapping()
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k == "timezone" || k == "schedule" {
			continue
		}
		sub.Content = append(sub.Content, root.Content[i], root.Content[i+1])
	}
	return &workflow.Result{Subtasks: sub, SubtaskFile: file}, nil
}

// Validate implements workflow.Validator.
func (Call) Validate(tc *workflow.TaskContext) error {
	if !tc.Dynamic[""] {
		file, err := callFile(tc)
		if err != nil {
			return err
		}
		// its own mistakes (YAML, directives) are reported now; its
		// operators are checked when it is called
		if _, err := workflow.ParseFile(file); err != nil {
			return fmt.Errorf("call> %s: %w", workflow.Format(tc.Command), err)
		}
	}
	return callSpec.check(tc.Task, "")
}

var callSpec = keySpec{op: "call"}

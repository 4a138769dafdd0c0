package workflow

import (
	"context"
	"path/filepath"
	"sort"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// SubtaskDefiner is implemented by operators that generate subtasks
// (Result.Subtasks) from the task's _do and _else_do and give them params
// of their own (loop>'s ${i}, for_range>'s ${range.index}): Check lets the
// tasks of _do and _else_do use those names.
type SubtaskDefiner interface {
	SubtaskDefines(t *Task) []string
}

// Idler is implemented by operators that may only wait (wait>, require>):
// a task for which Idle says true runs without taking one of the Runner's
// MaxParallel slots, as digdag runs its waits without holding an executor
// (a non-blocking wait> polls), so that waiting tasks do not hold back the
// work beside them. A blocking wait> (blocking: true) holds its slot, as
// it holds digdag's executor.
type Idler interface {
	Idle(tc *TaskContext) bool
}

// subtasks runs what an operator generated (res.Subtasks) as t's child
// ^sub, with scope (the task's params as its children see them, and what
// it stored); it returns what the subtasks stored.
func (ru *run) subtasks(ctx context.Context, t *Task, res *Result, scope Scope, path string) (map[string]any, error) {
	n := deref(res.Subtasks)
	if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		return nil, nil // nothing generated (if> false without _else_do)
	}
	sub, err := ru.wf.parseSubtask(t, n, res.SubtaskFile, path)
	if err != nil {
		return nil, err
	}
	if err := ru.r.checkGenerated(ru.wf, sub); err != nil {
		return nil, err
	}
	return ru.task(ctx, sub, scope, path+"^sub")
}

// parseSubtask parses a generated subtask config as the child ^sub of
// parent (path is parent's name in the run). file is where the config comes
// from ("": parent's file); the tasks of a file in another directory work
// in that directory.
func (wf *Workflow) parseSubtask(parent *Task, n *yaml.Node, file, path string) (*Task, error) {
	if file == "" {
		file = parent.File
	}
	if err := checkAliases(file, n); err != nil {
		return nil, err
	}
	p := newParser(file, wf)
	t := p.task(parent.Name+"^sub", path+"^sub", n, parent.Line, false)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	dir := parent.dir
	if file != parent.File {
		dir = filepath.Dir(file)
		if filepath.Clean(dir) == filepath.Clean(wf.Dir) {
			dir = ""
		}
	}
	if dir != "" {
		setDir(t, dir)
	}
	return t, nil
}

func setDir(t *Task, dir string) {
	if t == nil {
		return
	}
	t.dir = dir
	for _, c := range t.Children {
		setDir(c, dir)
	}
	setDir(t.Error, dir)
	setDir(t.Do, dir)
	setDir(t.ElseDo, dir)
	setDir(t.Check, dir)
}

// checkGenerated checks generated subtasks as Check checks the workflow's
// own, as far as that can be done without the params of the run: every
// operator known, its settings valid (Validator).
func (r *Runner) checkGenerated(wf *Workflow, t *Task) error {
	c := &checker{r: r, wf: wf, file: t.File}
	var walk func(t *Task)
	walk = func(t *Task) {
		if t == nil {
			return
		}
		c.file = t.File
		if t.Operator != "" && t.Operator != "for_each" {
			if op, ok := r.Operators[t.Operator]; !ok {
				c.unknownOperator(t)
			} else if v, ok := op.(Validator); ok {
				if err := v.Validate(staticContext(t, wf)); err != nil {
					c.errorf(t.OpLine, "%s: %v", t.Path, err)
				}
			}
		}
		for _, ch := range t.Children {
			walk(ch)
		}
		walk(t.Error)
		walk(t.Do)
		walk(t.ElseDo)
		walk(t.Check)
	}
	walk(t)
	return c.errs.err()
}

// Subtask helpers for operators that build a subtask config.

// NewMapping returns an empty YAML mapping.
func NewMapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

// SetKey sets key to v in mapping m (replacing a key of that name).
func SetKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: v.Line}, v)
}

// ValueNode is v (a string, number, bool, list or map) as a YAML node.
func ValueNode(v any) *yaml.Node {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Format(v)}
	}
	return n
}

// WithExport returns a copy of the task mapping do with export's values set
// in its _export (added to the _export it has, replacing a key of the same
// name), as digdag's loop>, for_range> and for_each> make each iteration.
func WithExport(do *yaml.Node, export map[string]any, order []string) *yaml.Node {
	do = deref(do)
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: do.Line, Column: do.Column}
	out.Content = append(out.Content, do.Content...)
	ex := NewMapping()
	ex.Line = do.Line
	if old := mapValue(out, "_export"); old != nil {
		ex.Content = append(ex.Content, deref(old).Content...)
	}
	for _, k := range order {
		mergeKey(ex, k, export[k])
	}
	SetKey(out, "_export", ex)
	return out
}

// mergeKey sets key to v in mapping m; a map merges into a mapping m
// already has there (td_for_each>'s td.each beside an _export's own
// td.database), which is copied, never changed: the _do it comes from is
// shared by every iteration.
func mergeKey(m *yaml.Node, key string, v any) {
	sub, isMap := v.(map[string]any)
	old := mapValue(m, key)
	if !isMap || old == nil || deref(old).Kind != yaml.MappingNode {
		SetKey(m, key, ValueNode(v))
		return
	}
	cp := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: deref(old).Line}
	cp.Content = append(cp.Content, deref(old).Content...)
	keys := make([]string, 0, len(sub))
	for k := range sub {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mergeKey(cp, k, sub[k])
	}
	SetKey(m, key, cp)
}

// ParallelNode is t's _parallel setting as a node, for a generated group
// (nil when t is not parallel): digdag copies it onto the subtasks loop>,
// for_range> and for_each> generate.
func ParallelNode(t *Task) *yaml.Node {
	if !t.Parallel {
		return nil
	}
	if t.ParallelLimit > 0 {
		m := NewMapping()
		SetKey(m, "limit", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(t.ParallelLimit)})
		return m
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}
}

// Package workflow runs a digdag-compatible subset of .dig workflow files:
// `_export`, nested `+task` groups run in order, `${...}` interpolation,
// `_parallel` (true or {limit: N}), `for_each>` with `_do`, `_error`,
// `_retry` (N or {limit, interval, interval_type, max_interval}),
// `_background`, `_check`, `!include`, and operators supplied by the caller
// (td>, td_for_each>, td_result_export>, param_get>, param_set>, sh>, echo>,
// if>, fail>, loop>, for_range>, wait>, call> in tdctl). An operator may
// generate subtasks (Result.Subtasks), run as the task's ^sub child: the
// way if>, loop>, for_range>, td_for_each> and call> run their tasks.
//
// Every task sees digdag's built-in params (session_time and its forms,
// last_session_*/next_session_* from `schedule:`, last_executed_session_*,
// session_id, attempt_id, task_name...: see BuiltinNames); `timezone:` is
// read as digdag reads it (ParseZone), `schedule:` is parsed and checked
// (Schedule) but never run.
//
// `${...}` is digdag's template language: JavaScript expressions (run by
// goja, one Engine per run) with a moment API written in Go, plus secrets
// (`${secret:td.apikey}`); see Engine.template for the rules.
//
// YAML anchors and aliases work anywhere, a task included (`+b: *a`); Parse
// refuses a recursive alias and aliases that add more than MaxNodes nodes or
// nest deeper than MaxDepth (in each file). `!include : 'file.dig'` splices
// the mapping of another file, relative to the including one and inside the
// workflow's directory, at its place; a file that includes itself, directly
// or not, is refused.
//
// Scoping, as digdag does it: a task's own keys are visible to the ${...}
// of the keys written after them (a key overriding an inherited param takes
// its place, first). `_export` values are kept as written and evaluated by
// each task that uses them, against that task's params, so a later task sees
// the current ${td.last_job_id}. Params stored by a task (td.last_job_id,
// param_get> results...) are visible to the tasks after it in the same group
// and, once the group ends, to the tasks after the group; a stored value
// marked for replacement (td.last_results) replaces the old one whole.
// Branches of a `_parallel` group each start from the scope before the group
// (with `{limit: N}`, before their batch); their stored params are merged in
// declaration order (the last declared branch wins a clash) — never in
// completion order. Each `for_each>` iteration starts from the loop's scope:
// what a task stores inside an iteration is seen by the rest of that
// iteration only (digdag lets later iterations of a sequential loop see it
// too); what the iterations store reaches the tasks after the loop, the last
// iteration winning.
package workflow

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Workflow is a parsed .dig file.
type Workflow struct {
	File string // path as given
	Dir  string // directory of the file (relative paths resolve here)
	Name string // file name without .dig
	// Timezone is digdag's name for the `timezone:` zone ("" when not
	// set: UTC); see Location and ZoneName.
	Timezone string
	// Schedule is the parsed `schedule:` (nil when none).
	Schedule *Schedule
	Root     *Task
	loc      *time.Location
	// problems are the structural errors ParsePartial found.
	problems ErrorList
}

// Task is one node of the task tree. A task with an operator runs it; a task
// with children runs them (after its own operator, if it has both).
type Task struct {
	Name     string // "+step" (the root is named after the workflow)
	Path     string // "+wf+group+step"
	File     string
	Line     int
	Operator string     // "td", "sh", "for_each"...; "" for a pure group
	OpLine   int        // line of the "op>:" key
	Command  *yaml.Node // the value of "op>:"
	Params   []Param    // operator parameters, in file order
	Export   *yaml.Node // _export
	Env      *yaml.Node // _env (for sh>)
	K8s      *yaml.Node // _k8s (run sh> in a pod)
	Parallel bool
	// ParallelLimit, from `_parallel: {limit: N}`, runs the children (or
	// for_each> iterations) in batches of N, each batch after the one
	// before has ended; 0 is no limit.
	ParallelLimit int
	Retry         int
	// RetryInterval is the wait before the first retry (`_retry: {limit,
	// interval}`, in seconds in the file); with RetryExponential each
	// further retry waits twice as long, up to RetryMaxInterval when set.
	RetryInterval    time.Duration
	RetryExponential bool
	RetryMaxInterval time.Duration
	// Keys lists the task's own keys in file order ("td>", parameters,
	// "_env", "_k8s"): a task's ${...} sees the keys written before it.
	Keys     []string
	Children []*Task
	Error    *Task // _error
	// Do and ElseDo are _do and _else_do, parsed (for Check); DoNode and
	// ElseDoNode are the same mappings as written, for an operator that
	// generates its subtasks from them (see Result.Subtasks).
	Do         *Task
	ElseDo     *Task
	DoNode     *yaml.Node
	ElseDoNode *yaml.Node
	// Check is _check: a task run after this one has succeeded (its
	// operator, and the subtasks it generated), seeing what it stored; it
	// is named ^check, as digdag names it.
	Check *Task
	// Background is `_background: true`: in a group that is not
	// _parallel, the task starts with the group and runs beside the tasks
	// before it; the next task without _background waits for it (digdag's
	// WorkflowCompiler makes it an upstream of that task).
	Background bool
	// dir, set on the tasks of a called workflow (call>), is the directory
	// its operators work in (Workflow.Dir for them); "" is the workflow's.
	dir string
}

// Param is one operator parameter.
type Param struct {
	Key  string
	Node *yaml.Node
}

// Param returns the node of parameter key, or nil.
func (t *Task) Param(key string) *yaml.Node {
	for _, p := range t.Params {
		if p.Key == key {
			return p.Node
		}
	}
	return nil
}

// Error is a problem in a workflow file, with its position.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrorList is several problems, reported together.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
	return l
}

// ParseFile reads and parses a .dig file.
func ParseFile(file string) (*Workflow, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("workflow: %w", err)
	}
	return Parse(file, data)
}

// Parse parses .dig YAML. Structural problems (bad YAML, unknown directives,
// a task with two operators...) come back together as an ErrorList.
func Parse(file string, data []byte) (*Workflow, error) {
	wf, err := ParsePartial(file, data)
	if err != nil {
		return nil, err
	}
	return wf, nil
}

// ParsePartial is Parse for `workflow check`: when the YAML is readable but
// has structural problems, it returns them (an ErrorList) together with the
// workflow as far as it could be built, so that Runner.Check reports them
// with everything else it finds (an operator's misspelt setting further
// down is not hidden by a bad _retry above it). Such a workflow keeps its
// problems: Check reports them and Run refuses it. When nothing could be
// built (bad YAML, an alias bomb) the workflow is nil.
func ParsePartial(file string, data []byte) (*Workflow, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: file, Line: yamlErrLine(err), Msg: "bad YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	wf := &Workflow{File: file, Dir: filepath.Dir(file), Name: name}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Msg: "empty workflow: add at least one +task"}
	}
	root := doc.Content[0]
	if err := checkAliases(file, root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Msg: "a workflow must be a YAML mapping of +tasks and settings"}
	}
	p := newParser(file, wf)
	wf.Root = p.task(name, "+"+name, root, root.Line, true)
	if err := p.errs.err(); err != nil {
		wf.problems = p.errs
		return wf, err
	}
	return wf, nil
}

// newParser parses the tasks of file, a file of wf's project.
func newParser(file string, wf *Workflow) *parser {
	p := &parser{file: file, wf: wf}
	if abs, err := filepath.Abs(file); err == nil {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		} else if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
			abs = filepath.Join(real, filepath.Base(abs))
		}
		p.project, p.stack = filepath.Dir(abs), []string{abs}
	}
	if wf.Root != nil { // a generated subtask: includes stay in the workflow's project
		if abs, err := filepath.Abs(wf.Dir); err == nil {
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				abs = real
			}
			p.project = abs
		}
	}
	return p
}

// Limits on what YAML aliases may make of a document. The parser keeps the
// yaml.Node tree, where an alias (*x) points at its anchor's node, and every
// later walk (Check, interpolation, the run's scopes) follows it: a document
// is as big as its expansion. go.yaml.in/yaml/v3 bounds alias expansion only
// when decoding into Go values, and not at all for a yaml.Node, so Parse
// bounds it itself, before anything walks the tree. A real workflow is a few
// hundred to a few thousand nodes and a few dozen levels deep.
const (
	// MaxNodes bounds the nodes aliases add to a document: its size once
	// every alias is expanded, less its written nodes (a big file written
	// out costs what its bytes cost, and is not refused).
	MaxNodes = 100_000
	// MaxDepth bounds its nesting once every alias is expanded (the same
	// bound go.yaml.in/yaml/v3 puts on written nesting).
	MaxDepth = 10_000
)

// checkAliases refuses an alias that refers to a node containing itself (it
// has no finite expansion) and a document whose aliases add more than
// MaxNodes nodes or nest it deeper than MaxDepth (an "alias bomb": anchors
// each holding several aliases of the previous one). The walk visits each
// written node once.
func checkAliases(file string, root *yaml.Node) error {
	limit := writtenNodes(root) + MaxNodes
	type info struct{ size, height int }
	done := map[*yaml.Node]info{}
	onPath := map[*yaml.Node]bool{}
	var fail *Error
	// visit returns n's expanded size and height; depth is n's level.
	var visit func(n *yaml.Node, depth int) info
	visit = func(n *yaml.Node, depth int) info {
		if fail != nil {
			return info{}
		}
		if in, ok := done[n]; ok {
			if depth+in.height-1 > MaxDepth {
				fail = &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("YAML aliases nest this document deeper than %d levels: write the values out instead of nesting aliases", MaxDepth)}
			}
			return in
		}
		if depth > MaxDepth {
			fail = &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("YAML aliases nest this document deeper than %d levels: write the values out instead of nesting aliases", MaxDepth)}
			return info{}
		}
		onPath[n] = true
		var in info
		if n.Kind == yaml.AliasNode {
			switch {
			case n.Alias == nil:
			case onPath[n.Alias]:
				fail = &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("YAML alias *%s is inside the value of its own anchor &%s (line %d): a recursive alias has no end; write the value out", n.Value, n.Value, n.Alias.Line)}
			default:
				in = visit(n.Alias, depth)
			}
		} else {
			in.size = 1
			for _, c := range n.Content {
				ci := visit(c, depth+1)
				in.size += ci.size
				in.height = max(in.height, ci.height)
			}
			in.height++
		}
		delete(onPath, n)
		// a part bigger than the whole may be: stop at the first
		if fail == nil && in.size > limit {
			fail = &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("YAML aliases add more than %d nodes to this document: write the values out or use fewer nested aliases", MaxNodes)}
		}
		done[n] = in
		return in
	}
	visit(root, 1)
	if fail != nil {
		return fail
	}
	return nil
}

// yamlErrLine digs the line out of yaml's "line N:" messages.
func yamlErrLine(err error) int {
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		rest := s[i+5:]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(rest[:j]); err == nil {
			return n
		}
	}
	return 0
}

type parser struct {
	file    string
	wf      *Workflow // its timezone and schedule are parsed before its tasks
	errs    ErrorList
	project string   // absolute directory of the workflow: includes stay inside
	stack   []string // absolute paths of the files being included, outermost first
	// included counts the nodes !include has spliced in so far, each
	// inclusion of a file anew: files that include each other many times
	// ("include bombs") are held to MaxNodes like aliases are
	included     int
	includeLimit bool // the limit was reported: later includes fail quietly
}

// writtenNodes is the size of the tree under n as written, without
// following aliases (only an alias can make a cycle).
func writtenNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += writtenNodes(k)
	}
	return c
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// directives are the _keys a task may have.
var directives = []string{"_export", "_parallel", "_retry", "_error", "_do", "_else_do", "_check", "_background", "_env", "_k8s"}

// doOperators are the operators that read _do (and if> _else_do) and run
// it as generated subtasks; on any other task they are refused. _parallel
// applies to their generated subtasks too (digdag's ParallelControl).
var doOperators = map[string]bool{"for_each": true, "if": true, "loop": true, "for_range": true, "td_for_each": true}

// top-level keys that configure the workflow, not a task
var workflowKeys = map[string]bool{"timezone": true, "schedule": true, "sla": true}

// workflowSettings reads the workflow's top-level settings: timezone first,
// as schedule: is read in its zone. sla: (digdag's deadline alerts) is not
// implemented, and refused rather than ignored.
func (p *parser) workflowSettings(settings map[string]entry) {
	file := p.file
	defer func() { p.file = file }()
	get := func(key string) *yaml.Node {
		e, ok := settings[key]
		if !ok {
			return nil
		}
		p.file = e.file // an !include may have brought it
		return deref(e.v)
	}
	if n := get("timezone"); n != nil {
		loc, id, err := ParseZone(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			p.errorf(n.Line, "timezone: unknown time zone name %q (use a region like Asia/Tokyo, UTC, or an offset like +09:00)", n.Value)
		} else {
			p.wf.loc, p.wf.Timezone = loc, id
		}
	}
	if n := get("schedule"); n != nil {
		s, err := parseSchedule(n, p.wf.Location())
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "schedule:") {
				msg = "schedule: " + msg
			}
			p.errorf(n.Line, "%s", msg)
		}
		p.wf.Schedule = s
	}
	if n := get("sla"); n != nil {
		p.errorf(n.Line, "sla: is not supported by tdctl's runner (digdag's deadline alerts): remove it to run the workflow here, or run it on a digdag server / TD Workflow")
	}
}

// task parses one task; line is where its key stands.
func (p *parser) task(name, path string, n *yaml.Node, line int, root bool) *Task {
	t := &Task{Name: name, Path: path, File: p.file, Line: line}
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "task %s must be a mapping (got %s)", name, kindName(n))
		return t
	}
	seen := map[string]bool{}
	settings := map[string]entry{}
	file, stack := p.file, p.stack
	defer func() { p.file, p.stack = file, stack }()
	entries, broken := p.entries(n, 0)
	defer p.workflowSettings(settings)
	for _, e := range entries {
		p.file, p.stack = e.file, e.chain
		k, v := e.k, deref(e.v)
		key := k.Value
		if seen[key] {
			p.errorf(k.Line, "%s is given twice in task %s", key, name)
		}
		seen[key] = true
		switch {
		case strings.HasPrefix(key, "+"):
			if len(key) == 1 {
				p.errorf(k.Line, "a task needs a name after +")
				continue
			}
			t.Children = append(t.Children, p.task(key, path+key, v, k.Line, false))
		case strings.HasSuffix(key, ">"):
			if t.Operator != "" {
				p.errorf(k.Line, "task %s has two operators (%s> and %s): split it into two +tasks", name, t.Operator, key)
				continue
			}
			t.Operator = strings.TrimSuffix(key, ">")
			t.OpLine = k.Line
			t.Command = v
			t.Keys = append(t.Keys, key)
		case key == "_export":
			if v.Kind != yaml.MappingNode {
				p.errorf(v.Line, "_export must be a mapping of names to values")
			}
			for j := 0; v.Kind == yaml.MappingNode && j+1 < len(v.Content); j += 2 {
				if name := v.Content[j].Value; p.wf.IsBuiltin(name) {
					p.errorf(v.Content[j].Line, "%v", BuiltinError("_export", name))
				}
			}
			t.Export = v
		case key == "_env":
			t.Env = v
			t.Keys = append(t.Keys, key)
		case key == "_k8s":
			t.K8s = v
			t.Keys = append(t.Keys, key)
		case key == "_parallel":
			p.parallel(t, v)
		case key == "_retry":
			p.retry(t, v)
		case key == "_error":
			t.Error = p.task(name+"^error", path+"^error", v, k.Line, false)
		case key == "_do":
			t.Do = p.task(name+"^do", path+"^do", v, k.Line, false)
			t.DoNode = v
		case key == "_else_do":
			t.ElseDo = p.task(name+"^else_do", path+"^else_do", v, k.Line, false)
			t.ElseDoNode = v
		case key == "_check":
			t.Check = p.task(name+"^check", path+"^check", v, k.Line, false)
		case key == "_background":
			b, err := strconv.ParseBool(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil {
				p.errorf(v.Line, "_background must be true or false (got %s)", v.Value)
			}
			if root && b {
				p.errorf(k.Line, "_background applies to a +task of a group, not to the workflow")
			}
			t.Background = b
		case key == "_secrets":
			p.errorf(k.Line, "%s is a digdag directive tdctl does not support: remove it (tdctl would not do what digdag does with it)", key)
		case strings.HasPrefix(key, "_"):
			if c := ClosestKey(key, directives); c != "" {
				p.errorf(k.Line, "unknown directive %s (did you mean %s?)", key, c)
				continue
			}
			p.errorf(k.Line, "unknown directive %s (supported: %s)", key, strings.Join(directives, ", "))
		case root && workflowKeys[key]:
			// workflow settings, read once every key (an !include may
			// bring them) is known
			settings[key] = entry{k, v, p.file, p.stack}
		default:
			t.Params = append(t.Params, Param{Key: key, Node: v})
			t.Keys = append(t.Keys, key)
		}
	}
	p.file, p.stack = file, stack
	if t.Operator == "" && len(t.Params) > 0 {
		p.errorf(t.Params[0].Node.Line, "%s: parameter %q given but the task has no operator (did you mean %s>?)", name, t.Params[0].Key, t.Params[0].Key)
	}
	if t.Do != nil && !doOperators[t.Operator] {
		p.errorf(t.Do.Line, "_do belongs to a for_each>, if>, loop>, for_range> or td_for_each> task")
	}
	if t.ElseDo != nil && t.Operator != "if" {
		p.errorf(t.ElseDo.Line, "_else_do belongs to an if> task")
	}
	switch {
	case doOperators[t.Operator] && len(t.Children) > 0:
		p.errorf(t.Children[0].Line, "%s> runs only its _do: block; move %s into _do", t.Operator, t.Children[0].Name)
	case t.Operator != "" && len(t.Children) > 0:
		// digdag: "A task can't have subtasks" (WorkflowCompiler)
		p.errorf(t.Children[0].Line, "task %s has both an operator (%s>) and subtasks (%s): a task runs an operator or groups +subtasks, not both; move %s> into a +subtask of its own", name, t.Operator, t.Children[0].Name, t.Operator)
	}
	if t.Check != nil && t.Operator == "" {
		p.errorf(t.Check.Line, "_check applies to a task with an operator (it runs after the operator succeeds), not to a group")
	}
	if t.Parallel {
		for _, c := range t.Children {
			if c.Background {
				// digdag's WorkflowCompiler refuses it too
				p.errorf(c.Line, "_background: true is not needed in %s: its group %s is _parallel already", c.Name, name)
			}
		}
	}
	if t.Do == nil && t.Operator != "if" && doOperators[t.Operator] {
		p.errorf(t.Line, "%s> needs a _do: block with the tasks to run", t.Operator)
	}
	if t.Parallel && t.Operator != "" && (!doOperators[t.Operator] || t.Operator == "if") {
		p.errorf(t.Line, "_parallel applies to a group of +subtasks or a for_each>, loop>, for_range> or td_for_each>, not to a %s> task", t.Operator)
	}
	if !root && !broken && t.Operator == "" && len(t.Children) == 0 && t.Error == nil {
		p.errorf(t.Line, "task %s has neither an operator nor +subtasks", name)
	}
	return t
}

// parallel reads `_parallel: true|false` or `_parallel: {limit: N}`.
func (p *parser) parallel(t *Task, v *yaml.Node) {
	const msg = "_parallel must be true, false or {limit: N} (N a positive number)"
	switch v.Kind {
	case yaml.ScalarNode:
		b, err := strconv.ParseBool(v.Value)
		if err != nil {
			p.errorf(v.Line, msg)
		}
		t.Parallel = b
	case yaml.MappingNode:
		t.Parallel = true
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], deref(v.Content[i+1])
			if k.Value != "limit" {
				p.errorf(k.Line, "_parallel: unknown key %s (%s)", k.Value, msg)
				continue
			}
			n, err := strconv.Atoi(val.Value)
			if err != nil || n <= 0 || val.Kind != yaml.ScalarNode {
				p.errorf(val.Line, msg)
			}
			t.ParallelLimit = n
		}
		if mapValue(v, "limit") == nil {
			p.errorf(v.Line, "_parallel: {limit: N} needs limit")
		}
	default:
		p.errorf(v.Line, msg)
	}
}

// retry reads `_retry: N` or `_retry: {limit, interval, interval_type,
// max_interval}` (intervals in seconds), as digdag's RetryControl does.
func (p *parser) retry(t *Task, v *yaml.Node) {
	const msg = "_retry must be a number of retries or {limit: N, interval: SECONDS, interval_type: constant|exponential}"
	num := func(n *yaml.Node, what string) int {
		n = deref(n)
		r, err := strconv.Atoi(n.Value)
		if err != nil || r < 0 || n.Kind != yaml.ScalarNode {
			if what == "" {
				p.errorf(n.Line, "%s (got %s)", msg, n.Value)
			} else {
				p.errorf(n.Line, "_retry %s must be a whole number ≥ 0 (got %s)", what, n.Value)
			}
		}
		return r
	}
	switch v.Kind {
	case yaml.ScalarNode:
		t.Retry = num(v, "")
	case yaml.MappingNode:
		if mapValue(v, "limit") == nil {
			p.errorf(v.Line, "_retry: {...} needs limit (the number of retries)")
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			switch k.Value {
			case "limit":
				t.Retry = num(val, "limit")
			case "interval":
				t.RetryInterval = time.Duration(num(val, "interval")) * time.Second
			case "max_interval":
				t.RetryMaxInterval = time.Duration(num(val, "max_interval")) * time.Second
			case "interval_type":
				switch deref(val).Value {
				case "constant":
				case "exponential":
					t.RetryExponential = true
				default:
					p.errorf(val.Line, "_retry interval_type must be constant or exponential (got %s)", deref(val).Value)
				}
			default:
				hint := ""
				if s := ClosestKey(k.Value, []string{"limit", "interval", "interval_type", "max_interval"}); s != "" {
					hint = " (did you mean " + s + "?)"
				}
				p.errorf(k.Line, "_retry: unknown key %s%s", k.Value, hint)
			}
		}
	default:
		p.errorf(v.Line, msg)
	}
}

// entry is one key of a task mapping, from the file itself or spliced in
// by `!include`.
type entry struct {
	k, v  *yaml.Node
	file  string
	chain []string // the include chain it comes from (parser.stack)
}

// maxIncludeDepth bounds nested !include chains.
const maxIncludeDepth = 32

// entries lists the keys of mapping n with every `!include : FILE` key
// replaced by the keys of FILE's mapping, at its place (as digdag splices
// an included file into the mapping that includes it).
// broken is set when an include failed (and was reported).
func (p *parser) entries(n *yaml.Node, depth int) (out []entry, broken bool) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag != "!include" {
			out = append(out, entry{k, v, p.file, p.stack[:len(p.stack):len(p.stack)]})
			continue
		}
		m, file, abs, ok := p.include(deref(v), depth)
		if !ok {
			broken = true
			continue
		}
		saved := p.file
		p.file = file
		p.stack = append(p.stack[:len(p.stack):len(p.stack)], abs)
		inner, b := p.entries(m, depth+1)
		out, broken = append(out, inner...), broken || b
		p.stack = p.stack[:len(p.stack)-1]
		p.file = saved
	}
	return out, broken
}

// include reads the file of an `!include : FILE` key: relative to the
// including file, inside the project directory, not already being
// included, a YAML mapping within the alias limits.
func (p *parser) include(v *yaml.Node, depth int) (m *yaml.Node, file, abs string, ok bool) {
	name := v.Value
	if v.Kind != yaml.ScalarNode || strings.TrimSpace(name) == "" {
		p.errorf(v.Line, "!include needs a file name, e.g. !include : 'tasks.dig'")
		return nil, "", "", false
	}
	if p.includeLimit {
		return nil, "", "", false
	}
	if len(p.stack) > maxIncludeDepth {
		p.errorf(v.Line, "!include %s: includes nest deeper than %d files", name, maxIncludeDepth)
		return nil, "", "", false
	}
	file = filepath.Join(filepath.Dir(p.file), filepath.FromSlash(name))
	if filepath.IsAbs(name) {
		file = filepath.Clean(name)
	}
	abs, err := filepath.Abs(file)
	if err == nil {
		if real, rerr := filepath.EvalSymlinks(abs); rerr == nil {
			abs = real
		}
	}
	if err != nil || !within(p.project, abs) {
		p.errorf(v.Line, "!include %s: the file is outside the project directory %s; includes must stay inside it", name, p.project)
		return nil, "", "", false
	}
	for _, f := range p.stack {
		if f == abs {
			p.errorf(v.Line, "!include %s: the file includes itself (through %s); remove the loop", name, strings.Join(relAll(p.project, p.stack), " → "))
			return nil, "", "", false
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		p.errorf(v.Line, "!include %s: %v", name, errors.Unwrap(err))
		return nil, "", "", false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.errs = append(p.errs, &Error{File: file, Line: yamlErrLine(err), Msg: "bad YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		return nil, "", "", false
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode}, file, abs, true
	}
	m = doc.Content[0]
	if err := checkAliases(file, m); err != nil {
		p.errs = append(p.errs, err.(*Error))
		return nil, "", "", false
	}
	if deref(m).Kind != yaml.MappingNode {
		p.errs = append(p.errs, &Error{File: file, Line: m.Line, Msg: "an included file must be a YAML mapping of +tasks and settings"})
		return nil, "", "", false
	}
	if p.included += writtenNodes(m); p.included > MaxNodes {
		p.includeLimit = true
		p.errorf(v.Line, "!include %s: included files add more than %d nodes to this workflow: include fewer files, or the same file fewer times", name, MaxNodes)
		return nil, "", "", false
	}
	return deref(m), file, abs, true
}

func within(dir, file string) bool {
	rel, err := filepath.Rel(dir, file)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func relAll(dir string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		if r, err := filepath.Rel(dir, f); err == nil {
			f = r
		}
		out[i] = f
	}
	return out
}

// deref follows an alias to its anchor's node (Parse has refused recursive
// ones), so that `+b: *a` is the task a again.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "nothing"
}

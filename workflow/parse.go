// Package workflow runs a digdag-compatible subset of .dig workflow files:
// `_export`, nested `+task` groups run in order, `${...}` interpolation,
// `_parallel`, `for_each>` with `_do`, `_error`, `_retry`, and operators
// supplied by the caller (td>, td_result_export>, param_get>, param_set>,
// sh>, echo> in tdctl).
//
// Interpolation supports dotted names (`${td.last_job.num_records}`) and
// secrets (`${secret:td.apikey}`), not digdag's JavaScript expressions.
//
// YAML anchors and aliases work anywhere, a task included (`+b: *a`); Parse
// refuses a recursive alias and aliases that add more than MaxNodes nodes or
// nest deeper than MaxDepth. digdag's `!include` is refused.
//
// Scoping: params stored by a task (td.last_job_id, param_get> results...)
// are visible to the tasks after it in the same group and, once the group
// ends, to the tasks after the group. Branches of a `_parallel` group each
// start from the scope before the group; when all are done, their stored
// params are merged in declaration order (the last declared branch wins a
// clash) — never in completion order. Each `for_each>` iteration has its own
// scope: what a task stores inside an iteration (for example a param_get>)
// is seen by that iteration only and does not leave the loop. This fixes
// digdag's "the task with the biggest id wins" surprise.
package workflow

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Workflow is a parsed .dig file.
type Workflow struct {
	File     string // path as given
	Dir      string // directory of the file (relative paths resolve here)
	Name     string // file name without .dig
	Timezone string
	Root     *Task
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
	Retry    int
	Children []*Task
	Error    *Task // _error
	Do       *Task // _do (for_each>)
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
	p := &parser{file: file}
	wf.Root = p.task(name, "+"+name, root, root.Line, true)
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "timezone":
			wf.Timezone = root.Content[i+1].Value
		}
	}
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return wf, nil
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
	// written nodes: the tree without following aliases (only an alias can
	// make a cycle)
	var written func(n *yaml.Node) int
	written = func(n *yaml.Node) int {
		c := 1
		for _, k := range n.Content {
			c += written(k)
		}
		return c
	}
	limit := written(root) + MaxNodes
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
	file string
	errs ErrorList
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// directives are the _keys a task may have.
var directives = []string{"_export", "_parallel", "_retry", "_error", "_do", "_env", "_k8s"}

// dockerRefused: digdag runs sh> (and py>, rb>) in a container given by
// docker:; tdctl does not, and running the script on the host instead would
// be silently different.
const dockerRefused = "docker: is not supported by tdctl (digdag would run the script in a container; tdctl would run it on this host): remove it, or run the script in a pod with _k8s: {image: ...} on sh>"

// top-level keys that configure the workflow, not a task
var workflowKeys = map[string]bool{"timezone": true, "schedule": true, "sla": true}

// task parses one task; line is where its key stands.
func (p *parser) task(name, path string, n *yaml.Node, line int, root bool) *Task {
	t := &Task{Name: name, Path: path, File: p.file, Line: line}
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "task %s must be a mapping (got %s)", name, kindName(n))
		return t
	}
	seen := map[string]bool{}
	include := false // reported already: no "neither an operator" too
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		key := k.Value
		if seen[key] {
			p.errorf(k.Line, "%s is given twice in task %s", key, name)
		}
		seen[key] = true
		switch {
		case k.Tag == "!include":
			// digdag's "!include : file.dig" splices another file in; tdctl
			// does not (so no include can loop either)
			p.errorf(k.Line, "!include is not supported by tdctl: copy the tasks of %s into this file", v.Value)
			include = true
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
		case key == "_export":
			if v.Kind != yaml.MappingNode {
				p.errorf(v.Line, "_export must be a mapping of names to values")
			}
			for j := 0; v.Kind == yaml.MappingNode && j+1 < len(v.Content); j += 2 {
				if v.Content[j].Value == "docker" {
					p.errorf(v.Content[j].Line, dockerRefused)
				}
			}
			t.Export = v
		case key == "_env":
			t.Env = v
		case key == "_k8s":
			t.K8s = v
		case key == "_parallel":
			b, err := strconv.ParseBool(v.Value)
			if err != nil || v.Kind != yaml.ScalarNode {
				p.errorf(v.Line, "_parallel must be true or false")
			}
			t.Parallel = b
		case key == "_retry":
			r, err := strconv.Atoi(v.Value)
			if v.Kind == yaml.MappingNode {
				if lim := mapValue(v, "limit"); lim != nil {
					r, err = strconv.Atoi(lim.Value)
				}
			}
			if err != nil || r < 0 {
				p.errorf(v.Line, "_retry must be a non-negative number of retries")
			}
			t.Retry = r
		case key == "_error":
			t.Error = p.task(name+"^error", path+"^error", v, k.Line, false)
		case key == "_do":
			t.Do = p.task(name+"^do", path+"^do", v, k.Line, false)
		case key == "_check", key == "_background", key == "_secrets":
			p.errorf(k.Line, "%s is a digdag directive tdctl does not support: remove it (tdctl would not do what digdag does with it)", key)
		case strings.HasPrefix(key, "_"):
			if c := ClosestKey(key, directives); c != "" {
				p.errorf(k.Line, "unknown directive %s (did you mean %s?)", key, c)
				continue
			}
			p.errorf(k.Line, "unknown directive %s (supported: %s)", key, strings.Join(directives, ", "))
		case key == "docker":
			p.errorf(k.Line, dockerRefused)
		case root && workflowKeys[key]:
			// workflow settings
		default:
			t.Params = append(t.Params, Param{Key: key, Node: v})
		}
	}
	if t.Operator == "" && len(t.Params) > 0 {
		p.errorf(t.Params[0].Node.Line, "%s: parameter %q given but the task has no operator (did you mean %s>?)", name, t.Params[0].Key, t.Params[0].Key)
	}
	if t.Do != nil && t.Operator != "for_each" {
		p.errorf(t.Do.Line, "_do belongs to a for_each> task")
	}
	if t.Operator == "for_each" && len(t.Children) > 0 {
		p.errorf(t.Children[0].Line, "for_each> repeats only its _do: block; move %s into _do", t.Children[0].Name)
	}
	if t.Operator == "for_each" && t.Do == nil {
		p.errorf(t.Line, "for_each> needs a _do: block with the tasks to repeat")
	}
	if !root && !include && t.Operator == "" && len(t.Children) == 0 && t.Error == nil {
		p.errorf(t.Line, "task %s has neither an operator nor +subtasks", name)
	}
	return t
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

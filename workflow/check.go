package workflow

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Check reports, before anything runs, every unknown operator, every ${name}
// that nothing defines at that point, every secret that is not set, every
// for_each> value that is no list, and what operators that implement
// Validator find wrong in their own settings — each with file:line.
//
// A name that nothing defines but that an `sh>` task before it could set
// with ::set-param is a warning, not an error: Check writes it to
// r.Warnings ("warning: FILE:LINE: ..."), and the run fails then only if
// the script did not set it.
func (r *Runner) Check(wf *Workflow) error {
	warnings, err := r.check(wf)
	if r.Warnings != nil {
		for _, w := range warnings {
			fmt.Fprintf(r.Warnings, "warning: %s\n", w)
		}
	}
	return err
}

// check is Check returning its warnings instead of writing them.
func (r *Runner) check(wf *Workflow) (ErrorList, error) {
	return r.checkSecrets(wf, nil)
}

// checkSecrets is check that also hands the value of every secret the
// workflow names to found (the run masks them from its first record on).
func (r *Runner) checkSecrets(wf *Workflow, found func(string)) (ErrorList, error) {
	c := &checker{r: r, wf: wf, file: wf.File, found: found}
	defined := map[string]bool{}
	for _, n := range BuiltinNames(wf) {
		defined[n] = true
	}
	for k := range r.Params {
		defined[k] = true
	}
	for k := range r.Params {
		if p, ok := strings.CutSuffix(k, "time"); ok && wf.Schedule == nil && (p == "last_session_" || p == "next_session_") {
			for _, suf := range sessionSuffixes { // derived from it (runtimeParams)
				defined[p+suf] = true
			}
		}
		if wf.IsBuiltin(k) {
			c.errs = append(c.errs, &Error{File: wf.File, Msg: BuiltinError("-p", k).Error()})
		}
	}
	c.anywhere = copySet(defined)
	c.collect(wf.Root)
	c.task(wf.Root, defined)
	for _, e := range wf.problems { // from ParsePartial
		if !slices.ContainsFunc(c.errs, func(x *Error) bool { return *x == *e }) {
			c.errs = append(c.errs, e)
		}
	}
	sort.SliceStable(c.warns, func(i, j int) bool { return c.warns[i].Line < c.warns[j].Line })
	return c.warns, c.errs.err()
}

// digdagOperators are digdag's own operators, so that one tdctl lacks is
// named as such rather than as a typo.
var digdagOperators = map[string]bool{}

func init() {
	for _, op := range strings.Fields(`call require loop for_range if fail wait echo td td_run td_ddl td_load td_for_each
		td_wait td_wait_table td_partial_delete td_table_export td_result_export pg mail http http_call
		s3_wait redshift redshift_load redshift_unload bq bq_ddl bq_extract bq_load gcs_wait emr py rb sh
		embulk param_get param_set`) {
		digdagOperators[op] = true
	}
}

type checker struct {
	r     *Runner
	found func(string) // the value of each secret named (nil: not wanted)
	wf    *Workflow
	file  string // of the task being checked (an !include may bring it)
	errs  ErrorList
	warns ErrorList
	// exports are the _export values visible to the task being checked,
	// outermost first: those holding ${...} (node set) are checked where
	// a task uses them, against what is defined there.
	exports  []exported
	checking map[*yaml.Node]bool
	// anywhere holds every name something in the workflow defines: a name
	// in an _export value that is in none of them is a mistake wherever
	// the value is used (and reported even when no task uses it by name,
	// as td> reads td.* itself)
	anywhere map[string]bool
}

// collect fills c.anywhere.
func (c *checker) collect(t *Task) {
	if t == nil {
		return
	}
	exportNames(t.Export, "", func(n string) { c.anywhere[n] = true })
	for _, k := range t.Keys {
		c.anywhere[k] = true
	}
	if t.Operator == "for_each" && t.Command != nil && t.Command.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(t.Command.Content); i += 2 {
			c.anywhere[t.Command.Content[i].Value] = true
		}
	}
	if d, ok := c.r.Operators[t.Operator].(Definer); ok {
		for _, n := range d.Defines(t) {
			c.anywhere[n] = true
		}
	}
	if d, ok := c.r.Operators[t.Operator].(SubtaskDefiner); ok {
		for _, n := range d.SubtaskDefines(t) {
			c.anywhere[n] = true
		}
	}
	if t.Error != nil {
		c.anywhere["error"] = true
	}
	for _, ch := range t.Children {
		c.collect(ch)
	}
	c.collect(t.Error)
	c.collect(t.Do)
	c.collect(t.ElseDo)
	c.collect(t.Check)
}

type exported struct {
	name string
	node *yaml.Node // nil: a value without ${...}
	file string
}

func (c *checker) errorf(line int, format string, args ...any) {
	c.add(&c.errs, line, format, args...)
}

func (c *checker) warnf(line int, format string, args ...any) {
	c.add(&c.warns, line, format, args...)
}

// add appends a problem once (an _export used by many tasks may report
// the same one each time).
func (c *checker) add(l *ErrorList, line int, format string, args ...any) {
	e := &Error{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)}
	for _, x := range *l {
		if *x == *e {
			return
		}
	}
	*l = append(*l, e)
}

// AnyName, returned by a Definer, says the task may store params whose
// names are only known at run time (sh> prints ::set-param lines): a name
// used after it that nothing else defines is a warning naming the task,
// and an error at run time only if the task did not set it.
const AnyName = "*"

func isDefined(defined map[string]bool, name string) bool {
	if defined[name] {
		return true
	}
	for d := range defined {
		if strings.HasPrefix(name, d+".") || strings.HasPrefix(d, name+".") {
			return true
		}
	}
	return false
}

func (c *checker) refs(n *yaml.Node, defined map[string]bool, where string) {
	templateProblems(n, func(line int, msg string) { c.errorf(line, "%s: %s", where, msg) })
	names(n, func(name string, secret bool, line int) {
		if secret {
			if c.r.Secrets == nil {
				c.errorf(line, "%s: %s", where, (&MissingError{Name: name, Secret: true}).Error())
				return
			}
			v, ok := c.r.Secrets.Secret(name)
			if !ok {
				c.errorf(line, "%s: %s", where, (&MissingError{Name: name, Secret: true}).Error())
			} else if c.found != nil {
				c.found(v)
			}
			return
		}
		if name == "" {
			c.errorf(line, "%s: empty ${}", where)
			return
		}
		if !isDefined(defined, name) {
			var setters []string
			for d := range defined {
				if p, ok := strings.CutPrefix(d, AnyName); ok && p != "" {
					setters = append(setters, p)
				}
			}
			if len(setters) == 0 {
				c.errorf(line, "%s: %s", where, (&MissingError{Name: name}).Error())
				return
			}
			sort.Strings(setters)
			c.warnf(line, "%s: ${%s} is not defined by _export, -p or a task before this one; it must come from ::set-param of %s (the run fails here if it does not)",
				where, name, strings.Join(setters, ", "))
			return
		}
		c.lazyRefs(name, defined, where)
	})
}

// lazyRefs checks the _export values holding ${...} that name refers to,
// with what is defined where it is used (that is when they are evaluated).
func (c *checker) lazyRefs(name string, defined map[string]bool, where string) {
	seen := map[string]bool{}
	for i := len(c.exports) - 1; i >= 0; i-- {
		e := c.exports[i]
		if seen[e.name] || !related(name, e.name) {
			continue
		}
		seen[e.name] = true // an inner _export hides an outer one
		if e.node == nil || c.checking[e.node] {
			continue
		}
		if c.checking == nil {
			c.checking = map[*yaml.Node]bool{}
		}
		c.checking[e.node] = true
		file := c.file
		c.file = e.file
		c.refs(e.node, defined, where+" (through _export "+e.name+")")
		c.file = file
		delete(c.checking, e.node)
	}
}

// pushExports makes the values of an _export visible to the checks of
// the task and its subtasks; secrets are checked at once.
func (c *checker) pushExports(n *yaml.Node, prefix string, defined map[string]bool, where string) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		if prefix != "" {
			name = prefix + "." + name
		}
		v := deref(n.Content[i+1])
		switch {
		case v.Kind == yaml.MappingNode:
			c.exports = append(c.exports, exported{name: name, file: c.file})
			c.pushExports(v, name, defined, where)
		case holdsExpr(v):
			c.exports = append(c.exports, exported{name: name, node: v, file: c.file})
			names(v, func(s string, secret bool, line int) {
				switch {
				case secret:
					c.refs(&yaml.Node{Kind: yaml.ScalarNode, Value: "${secret:" + s + "}", Line: line}, defined, where)
				case s != "" && !isDefined(c.anywhere, s) && !c.anywhere[AnyName]:
					// defined nowhere: a mistake whoever uses it
					c.errorf(line, "%s %s: %s", where, name, (&MissingError{Name: s}).Error())
				}
			})
		default:
			c.exports = append(c.exports, exported{name: name, file: c.file})
		}
	}
}

// exportNames lists the dotted names a mapping defines.
func exportNames(n *yaml.Node, prefix string, add func(string)) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		if prefix != "" {
			name = prefix + "." + name
		}
		add(name)
		exportNames(n.Content[i+1], name, add)
	}
}

func copySet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// task checks t with the names defined before it and returns the names it
// stores for the tasks after it.
func (c *checker) task(t *Task, before map[string]bool) map[string]bool {
	defined := copySet(before)
	file, nexports := c.file, len(c.exports)
	c.file = t.File
	defer func() { c.file, c.exports = file, c.exports[:nexports] }()
	if t.Export != nil {
		c.pushExports(t.Export, "", defined, t.Path+" _export")
		exportNames(t.Export, "", func(n string) { defined[n] = true })
	}
	stored := map[string]bool{}
	if t.Operator != "" {
		op, ok := c.r.Operators[t.Operator]
		switch {
		case t.Operator == "for_each":
			c.refs(t.Command, defined, t.Path)
			inner := copySet(defined)
			if t.Command != nil && t.Command.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(t.Command.Content); i += 2 {
					k, n := t.Command.Content[i].Value, t.Command.Content[i+1]
					inner[k] = true
					if v, ok := staticValue(n); ok {
						if _, ok := forEachList(v); !ok {
							c.errorf(n.Line, "%s: for_each> %s must be a list (got %s)", t.Path, k, Format(v))
						}
					}
				}
			} else if t.Command != nil {
				c.errorf(t.Command.Line, "%s: for_each> needs a mapping of names to lists, e.g. value: [a, b]", t.Path)
			}
			if t.Do != nil {
				// what the iterations store reaches the tasks after the loop
				for n := range c.task(t.Do, inner) {
					defined[n] = true
					stored[n] = true
				}
			}
		case !ok:
			c.unknownOperator(t)
		default:
			// own keys in the order the run evaluates them, each seeing
			// those before it
			local := copySet(defined)
			for _, key := range t.Keys {
				if defined[key] {
					// overrides an inherited param: evaluated first
					local[key] = true
				}
			}
			for _, key := range t.Keys {
				switch key {
				case t.Operator + ">":
					c.refs(t.Command, local, t.Path)
				case "_env":
					c.refs(t.Env, local, t.Path+" _env")
				case "_k8s":
					c.refs(t.K8s, local, t.Path+" _k8s")
				default:
					c.refs(t.Param(key), local, t.Path+" "+key)
				}
				if key != t.Operator+">" {
					local[key] = true
				}
			}
			if v, ok := op.(Validator); ok {
				if err := v.Validate(staticContext(t, c.wf)); err != nil {
					c.errorf(t.OpLine, "%s: %v", t.Path, err)
				}
			}
			if d, ok := op.(Definer); ok {
				for _, n := range d.Defines(t) {
					if n == AnyName {
						n = AnyName + t.Path // names the task in warnings
					}
					defined[n] = true
					stored[n] = true
				}
			}
			// _do and _else_do run as generated subtasks: they see the
			// task's params as its children do, and the names the
			// operator gives them; what they store may reach the tasks
			// after it
			inner := copySet(defined)
			if d, ok := op.(SubtaskDefiner); ok {
				for _, n := range d.SubtaskDefines(t) {
					inner[n] = true
				}
			}
			for _, do := range []*Task{t.Do, t.ElseDo} {
				if do != nil {
					for n := range c.task(do, inner) {
						defined[n] = true
						stored[n] = true
					}
				}
			}
		}
	}
	if t.Check != nil {
		// ^check runs after the task, with what it stored
		for n := range c.task(t.Check, defined) {
			defined[n] = true
			stored[n] = true
		}
	}
	if t.Parallel {
		// a batch (_parallel: {limit: N}) sees what the batches before it
		// stored
		for _, batch := range batches(len(t.Children), t.ParallelLimit) {
			var all []map[string]bool
			for _, i := range batch {
				all = append(all, c.task(t.Children[i], defined))
			}
			for _, st := range all {
				for n := range st {
					defined[n] = true
					stored[n] = true
				}
			}
		}
	} else {
		// a _background child starts with the group: it sees what was
		// defined then; what it stores is known from the next child on
		start := copySet(defined)
		var pending []map[string]bool
		for _, ch := range t.Children {
			if ch.Background {
				pending = append(pending, c.task(ch, start))
				continue
			}
			for _, st := range pending {
				for n := range st {
					defined[n] = true
					stored[n] = true
				}
			}
			pending = nil
			for n := range c.task(ch, defined) {
				defined[n] = true
				stored[n] = true
			}
		}
		for _, st := range pending {
			for n := range st {
				defined[n] = true
				stored[n] = true
			}
		}
	}
	if t.Error != nil {
		ed := copySet(defined)
		ed["error"] = true
		c.task(t.Error, ed)
	}
	return stored
}

// unknownOperator reports t's operator, which the runner lacks.
func (c *checker) unknownOperator(t *Task) {
	known := make([]string, 0, len(c.r.Operators)+1)
	for k := range c.r.Operators {
		known = append(known, k+">")
	}
	known = append(known, "for_each>")
	sort.Strings(known)
	switch {
	case digdagOperators[t.Operator]:
		c.errorf(t.OpLine, "%s: %s> is a digdag operator tdctl does not support (tdctl has %s)", t.Path, t.Operator, strings.Join(known, ", "))
	case ClosestKey(t.Operator+">", known) != "":
		c.errorf(t.OpLine, "%s: unknown operator %s> (did you mean %s?)", t.Path, t.Operator, ClosestKey(t.Operator+">", known))
	default:
		c.errorf(t.OpLine, "%s: unknown operator %s> (known: %s)", t.Path, t.Operator, strings.Join(known, ", "))
	}
}

// staticValue is the value of n when it holds no ${...}.
func staticValue(n *yaml.Node) (any, bool) {
	if hasTemplate(n) {
		return nil, false
	}
	v, err := Eval(n, nil, nil, nil)
	return v, err == nil
}

// staticContext is the TaskContext of t that Validator.Validate gets: the
// values written literally, and the names of those holding ${...}.
func staticContext(t *Task, wf *Workflow) *TaskContext {
	if t.dir != "" { // a called workflow's task works in its directory
		c := *wf
		c.Dir = t.dir
		wf = &c
	}
	tc := &TaskContext{Task: t, Workflow: wf, Scope: Scope{}, Config: map[string]any{}, Dynamic: map[string]bool{}}
	static := func(n *yaml.Node, key string) (any, bool) {
		v, ok := staticValue(n)
		if !ok {
			tc.Dynamic[key] = true
		}
		return v, ok
	}
	if v, ok := static(t.Command, ""); ok {
		tc.Command = v
	}
	for _, p := range t.Params {
		if v, ok := static(p.Node, p.Key); ok {
			tc.Config[p.Key] = v
		}
	}
	if t.K8s != nil && t.K8s.Kind == yaml.MappingNode {
		tc.K8s = map[string]any{}
		for i := 0; i+1 < len(t.K8s.Content); i += 2 {
			k := t.K8s.Content[i].Value
			if v, ok := static(t.K8s.Content[i+1], "_k8s."+k); ok {
				tc.K8s[k] = v
			}
		}
	}
	return tc
}

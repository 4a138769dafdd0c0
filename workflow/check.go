package workflow

import (
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Check reports, before anything runs, every unknown operator, every ${name}
// that nothing defines at that point, every secret that is not set, every
// for_each> value that is no list, and what operators that implement
// Validator find wrong in their own settings — each with file:line.
func (r *Runner) Check(wf *Workflow) error {
	c := &checker{r: r, wf: wf}
	defined := map[string]bool{}
	for _, n := range builtinNames {
		defined[n] = true
	}
	for k := range r.Params {
		defined[k] = true
	}
	c.task(wf.Root, defined)
	return c.errs.err()
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
	r    *Runner
	wf   *Workflow
	errs ErrorList
}

func (c *checker) errorf(line int, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.wf.File, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// AnyName, returned by a Definer, says the task may store params whose
// names are only known at run time (sh> prints ::set-param lines): after it,
// undefined names are reported when the task using them runs, not by Check.
const AnyName = "*"

func isDefined(defined map[string]bool, name string) bool {
	if defined[name] || defined[AnyName] {
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
	names(n, func(name string, secret bool, line int) {
		if secret {
			if c.r.Secrets == nil {
				c.errorf(line, "%s: %s", where, (&MissingError{Name: name, Secret: true}).Error())
				return
			}
			if _, ok := c.r.Secrets.Secret(name); !ok {
				c.errorf(line, "%s: %s", where, (&MissingError{Name: name, Secret: true}).Error())
			}
			return
		}
		if name == "" {
			c.errorf(line, "%s: empty ${}", where)
			return
		}
		if !isDefined(defined, name) {
			c.errorf(line, "%s: %s", where, (&MissingError{Name: name}).Error())
		}
	})
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
	if t.Export != nil {
		c.refs(t.Export, defined, t.Path+" _export")
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
				c.task(t.Do, inner) // nothing leaves an iteration
			}
		case !ok:
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
		default:
			c.refs(t.Command, defined, t.Path)
			for _, p := range t.Params {
				c.refs(p.Node, defined, t.Path+" "+p.Key)
			}
			c.refs(t.Env, defined, t.Path+" _env")
			c.refs(t.K8s, defined, t.Path+" _k8s")
			if v, ok := op.(Validator); ok {
				if err := v.Validate(staticContext(t, c.wf)); err != nil {
					c.errorf(t.OpLine, "%s: %v", t.Path, err)
				}
			}
			if d, ok := op.(Definer); ok {
				for _, n := range d.Defines(t) {
					defined[n] = true
					stored[n] = true
				}
			}
		}
	}
	if t.Parallel {
		var all []map[string]bool
		for _, ch := range t.Children {
			all = append(all, c.task(ch, defined))
		}
		for _, st := range all {
			for n := range st {
				defined[n] = true
				stored[n] = true
			}
		}
	} else {
		for _, ch := range t.Children {
			for n := range c.task(ch, defined) {
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

// staticValue is the value of n when it holds no ${...}.
func staticValue(n *yaml.Node) (any, bool) {
	dynamic := false
	names(n, func(string, bool, int) { dynamic = true })
	if dynamic {
		return nil, false
	}
	v, err := Eval(n, nil, nil, nil)
	return v, err == nil
}

// staticContext is the TaskContext of t that Validator.Validate gets: the
// values written literally, and the names of those holding ${...}.
func staticContext(t *Task, wf *Workflow) *TaskContext {
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

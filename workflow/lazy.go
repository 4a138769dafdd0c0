package workflow

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// lazy is an `_export` value holding ${...}, kept as written: every task
// evaluates it anew, against its own scope, when it runs — as digdag
// evaluates the exported params with each task's config. So
// `_export: {job: "${td.last_job_id}"}` gives each task the id of the
// last job before it, not of the last job before the export.
type lazy struct {
	node *yaml.Node
	file string
	name string // dotted name
}

// exportValues turns an _export mapping into scope values: a mapping into
// a map (merged key by key into what the task inherits), a value holding
// ${...} into a lazy one, anything else into its value. Keys are taken as
// written (digdag evaluates values only).
func exportValues(n *yaml.Node, file, prefix string) (map[string]any, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("_export must be a mapping of names to values")
	}
	out := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, deref(n.Content[i+1])
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch {
		case v.Kind == yaml.MappingNode:
			m, err := exportValues(v, file, name)
			if err != nil {
				return nil, err
			}
			out[k] = m
		case holdsExpr(v):
			out[k] = &lazy{node: v, file: file, name: name}
		default:
			val, err := Eval(v, nil, nil, nil)
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
	}
	return out, nil
}

// holdsExpr reports whether a string in n holds "${".
func holdsExpr(n *yaml.Node) bool {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		return strings.Contains(n.Value, "${")
	}
	for _, c := range n.Content {
		if holdsExpr(c) {
			return true
		}
	}
	return false
}

// lazyNames lists the dotted names of the lazy values in m.
func lazyNames(m map[string]any, prefix string, out []string) []string {
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch x := v.(type) {
		case *lazy:
			out = append(out, name)
		case map[string]any:
			out = lazyNames(x, name, out)
		}
	}
	return out
}

// related tells whether one dotted name is the other or inside it.
func related(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// LazyError is an _export value that could not be evaluated for a task.
type LazyError struct {
	Name string
	File string
	Line int
	Err  error
}

func (e *LazyError) Error() string {
	return fmt.Sprintf("_export %s (%s:%d): %v", e.Name, e.File, e.Line, e.Err)
}

func (e *LazyError) Unwrap() error { return e.Err }

// resolve returns scope with every lazy value evaluated against it (the
// values it refers to first), as a copy.
// A value that fails (a name not defined yet, a loop between exports) is
// left out, and its error is in failed: a task that uses it fails with
// that error (explainLazy), a task that does not use it runs.
func (ru *run) resolve(scope Scope) (Scope, map[string]error) {
	lazies := lazyNames(scope, "", nil)
	if len(lazies) == 0 {
		return scope.Clone(), nil
	}
	sort.Strings(lazies)
	out := scope.Clone()
	const (
		busy = 1
		done = 2
	)
	state := map[string]int{}
	failed := map[string]error{}
	var eval func(name string)
	eval = func(name string) {
		if state[name] != 0 {
			return
		}
		state[name] = busy
		v, _ := out.Get(name)
		l := v.(*lazy)
		var loop string
		var depErr error
		names(l.node, func(ref string, secret bool, _ int) {
			if secret {
				return
			}
			for _, other := range lazies {
				if other == name || !related(ref, other) {
					continue
				}
				if state[other] == busy {
					loop = other
					continue
				}
				eval(other)
				if e, ok := failed[other]; ok && depErr == nil {
					depErr = e
				}
			}
		})
		var err error
		if loop != "" {
			err = fmt.Errorf("it refers to %s, which refers back to it: an exported value cannot depend on itself", loop)
		} else if v, err = ru.js.Eval(l.node, out, ru.r.Secrets, ru.secrets.add); err == nil {
			out.Set(name, v)
		}
		if err != nil && depErr != nil {
			err = depErr // the value it needs failed first
		}
		if err != nil {
			failed[name] = &LazyError{Name: name, File: l.file, Line: l.node.Line, Err: err}
			out.remove(name)
		}
		state[name] = done
	}
	for _, n := range lazies {
		eval(n)
	}
	return out, failed
}

// remove deletes a dotted name.
func (s Scope) remove(name string) {
	parts := strings.Split(name, ".")
	m := map[string]any(s)
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, parts[len(parts)-1])
}

// explainLazy turns "param ${x} is not defined" into the error of the
// _export value x when x failed to evaluate for this task.
func explainLazy(err error, failed map[string]error) error {
	var me *MissingError
	if len(failed) == 0 || !errors.As(err, &me) {
		return err
	}
	keys := make([]string, 0, len(failed))
	for k := range failed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if related(me.Name, k) {
			return failed[k]
		}
	}
	return err
}

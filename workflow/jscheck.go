package workflow

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	jsparser "github.com/dop251/goja/parser"
	yaml "go.yaml.in/yaml/v3"
)

// expressions lists the ${...} of s as Engine.template finds them: the
// JavaScript expressions, and the names of ${secret:NAME} (dynamic when
// NAME holds ${...}: its inner expressions are listed instead). err is an
// unclosed ${.
func expressions(s string, expr func(string), secret func(name string)) error {
	pos := 0
	for {
		i := strings.Index(s[pos:], "${")
		if i < 0 {
			return nil
		}
		start := pos + i
		body := start + 2
		if p := templatePrefix.FindString(s[body:]); p != "" {
			if p != "secret:" {
				pos = body
				continue
			}
			end := closing(s, body)
			if end < 0 {
				return unclosed(s, start)
			}
			inner := s[body+len(p) : end]
			if strings.Contains(inner, "${") {
				if err := expressions(inner, expr, func(string) {}); err != nil {
					return err
				}
			} else {
				secret(strings.TrimSpace(inner))
			}
			pos = end + 1
			continue
		}
		end := closing(s, body)
		if end < 0 {
			return unclosed(s, start)
		}
		expr(s[body:end])
		pos = end + 1
	}
}

// hasTemplate says whether n holds any ${...} (so its value is only known
// when the task runs).
func hasTemplate(n *yaml.Node) bool {
	found := false
	walkScalars(n, func(s *yaml.Node) {
		_ = expressions(s.Value, func(string) { found = true }, func(string) { found = true })
	})
	return found
}

func walkScalars(n *yaml.Node, fn func(*yaml.Node)) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		fn(n)
	case yaml.AliasNode:
		walkScalars(n.Alias, fn)
	default:
		for _, c := range n.Content {
			walkScalars(c, fn)
		}
	}
}

// names lists the params ${...} in a node refers to (for checks): a plain
// ${a.b} gives "a.b"; an expression gives every dotted name it reads that
// is no JavaScript global (moment, Math, JSON...) and no name it binds
// itself (function parameters). Expressions that do not parse are left to
// templateProblems.
func names(n *yaml.Node, fn func(name string, secret bool, line int)) {
	walkScalars(n, func(s *yaml.Node) {
		_ = expressions(s.Value, func(expr string) {
			if strings.TrimSpace(expr) == "" {
				fn("", false, s.Line)
				return
			}
			refs, err := exprNames(expr)
			if err != nil {
				return
			}
			for _, r := range refs {
				fn(r, false, s.Line)
			}
		}, func(name string) { fn(name, true, s.Line) })
	})
}

// templateProblems reports what keeps the ${...} of a node from running:
// an unclosed ${ or a JavaScript syntax error.
func templateProblems(n *yaml.Node, fn func(line int, msg string)) {
	walkScalars(n, func(s *yaml.Node) {
		if err := expressions(s.Value, func(expr string) {
			if strings.TrimSpace(expr) == "" {
				return
			}
			if _, err := exprNames(expr); err != nil {
				fn(s.Line, (&TemplateError{Expr: expr, Msg: err.Error()}).Error())
			}
		}, func(string) {}); err != nil {
			fn(s.Line, err.Error())
		}
	})
}

var (
	globalsOnce sync.Once
	jsGlobals   map[string]bool
)

// isGlobal says whether name is defined in every template: JavaScript's
// globals and moment.
func isGlobal(name string) bool {
	globalsOnce.Do(func() {
		e := NewEngine()
		jsGlobals = map[string]bool{"arguments": true, "undefined": true}
		v, err := e.rt.RunString("Object.getOwnPropertyNames(globalThis)")
		if err == nil {
			for _, k := range v.Export().([]any) {
				if s, ok := k.(string); ok {
					jsGlobals[s] = true
				}
			}
		}
	})
	return jsGlobals[name]
}

var (
	exprNamesMu    sync.Mutex
	exprNamesCache = map[string][]string{}
)

// exprNames parses one ${...} expression and returns the params it reads.
func exprNames(expr string) ([]string, error) {
	trimmed := strings.TrimSpace(expr)
	if dottedName.MatchString(trimmed) && !jsWords[strings.SplitN(trimmed, ".", 2)[0]] {
		if isGlobal(strings.SplitN(trimmed, ".", 2)[0]) {
			return nil, nil
		}
		return []string{trimmed}, nil
	}
	exprNamesMu.Lock()
	defer exprNamesMu.Unlock()
	if r, ok := exprNamesCache[expr]; ok {
		return r, nil
	}
	prog, err := goja.Parse("", "(function(){with(this){return ("+expr+"\n);}})")
	if err != nil {
		return nil, syntaxError(expr, err)
	}
	w := &refWalker{bound: map[string]bool{}, seen: map[string]bool{}}
	w.walk(reflect.ValueOf(prog))
	var out []string
	for _, r := range w.refs {
		root := strings.SplitN(r, ".", 2)[0]
		if w.bound[root] || isGlobal(root) || w.seen[r] {
			continue
		}
		w.seen[r] = true
		out = append(out, r)
	}
	sort.Strings(out)
	if len(exprNamesCache) > 10000 {
		clear(exprNamesCache)
	}
	exprNamesCache[expr] = out
	return out, nil
}

type syntaxErr struct{ msg string }

func (e *syntaxErr) Error() string { return e.msg }

// exprSyntax parses expr on its own, for a syntax error that points into
// what the user wrote (the wrapper run() compiles would move positions).
func exprSyntax(expr string) error {
	_, err := jsparser.ParseFile(nil, "", "("+expr+"\n)", 0)
	if err == nil {
		return nil
	}
	var pe *jsparser.Error
	var list jsparser.ErrorList
	switch {
	case errors.As(err, &list) && len(list) > 0:
		pe = list[0]
	case errors.As(err, &pe):
	default:
		return &syntaxErr{msg: "SyntaxError: " + err.Error()}
	}
	where := "at the end"
	if pe.Position.Line == 1 && pe.Position.Column > 1 {
		where = fmt.Sprintf("at column %d", pe.Position.Column-1)
	} else if pe.Position.Line > 1 && pe.Position.Line <= strings.Count(expr, "\n")+1 {
		where = fmt.Sprintf("on line %d of the expression", pe.Position.Line)
	}
	if strings.Contains(pe.Message, "end of input") {
		return &syntaxErr{msg: "SyntaxError: " + pe.Message}
	}
	return &syntaxErr{msg: fmt.Sprintf("SyntaxError: %s %s", pe.Message, where)}
}

func syntaxError(expr string, err error) error {
	if se := exprSyntax(expr); se != nil {
		return se
	}
	return &syntaxErr{msg: "SyntaxError: " + err.Error()}
}

type refWalker struct {
	refs  []string
	bound map[string]bool
	seen  map[string]bool
}

var (
	identType = reflect.TypeOf(&ast.Identifier{})
	astPkg    = reflect.TypeOf(ast.Identifier{}).PkgPath()
)

// dotted is the name a.b.c of a chain of property reads on a name.
func dotted(e ast.Expression) (string, bool) {
	switch x := e.(type) {
	case *ast.Identifier:
		return string(x.Name), true
	case *ast.DotExpression:
		left, ok := dotted(x.Left)
		if !ok {
			return "", false
		}
		return left + "." + string(x.Identifier.Name), true
	}
	return "", false
}

func (w *refWalker) bind(target ast.BindingTarget) {
	if id, ok := target.(*ast.Identifier); ok {
		w.bound[string(id.Name)] = true
		return
	}
	w.walk(reflect.ValueOf(target))
}

func (w *refWalker) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return
		}
		switch x := v.Interface().(type) {
		case *ast.Identifier:
			w.refs = append(w.refs, string(x.Name))
			return
		case *ast.DotExpression:
			if name, ok := dotted(x); ok {
				w.refs = append(w.refs, name)
				return
			}
			w.walk(reflect.ValueOf(x.Left))
			return
		case *ast.PropertyKeyed:
			if x.Computed {
				w.walk(reflect.ValueOf(x.Key))
			}
			w.walk(reflect.ValueOf(x.Value))
			return
		case *ast.PropertyShort:
			w.refs = append(w.refs, string(x.Name.Name))
			if x.Initializer != nil {
				w.walk(reflect.ValueOf(x.Initializer))
			}
			return
		case *ast.Binding:
			w.bind(x.Target)
			if x.Initializer != nil {
				w.walk(reflect.ValueOf(x.Initializer))
			}
			return
		case *ast.FunctionLiteral:
			if x.Name != nil {
				w.bound[string(x.Name.Name)] = true
			}
			w.walk(reflect.ValueOf(x.ParameterList))
			w.walk(reflect.ValueOf(x.Body))
			return
		case *ast.MetaProperty:
			return
		}
		w.walk(v.Elem())
	case reflect.Struct:
		if v.Type().PkgPath() != astPkg {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Type == identType && (f.Name == "Label" || f.Name == "Name") {
				continue
			}
			w.walk(v.Field(i))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			w.walk(v.Index(i))
		}
	}
}

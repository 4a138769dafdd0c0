package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// Engine evaluates the JavaScript inside ${...}. A run makes one and shares
// it between its tasks: the goja runtime, the moment API and the compiled
// expressions are built once, not per expression. It is safe for concurrent
// use (parallel tasks take turns).
type Engine struct {
	mu        sync.Mutex
	rt        *goja.Runtime
	fns       map[string]goja.Callable
	stringify goja.Callable
	// zone is the zone moment() works in while an expression runs: the
	// params' timezone, UTC when it has none.
	zone *time.Location
}

// NewEngine returns an engine with digdag's template environment: the
// standard JavaScript globals and moment.
func NewEngine() *Engine {
	e := &Engine{rt: goja.New(), fns: map[string]goja.Callable{}, zone: time.UTC}
	e.stringify, _ = goja.AssertFunction(e.rt.Get("JSON").ToObject(e.rt).Get("stringify"))
	installMoment(e)
	return e
}

// defaultEngines serves the package-level Eval and EvalString, which have
// no run to take an engine from.
var defaultEngines = sync.Pool{New: func() any { return NewEngine() }}

// TemplateError is a ${...} that cannot be evaluated: an unclosed ${, a
// JavaScript syntax error or an exception thrown while it runs.
type TemplateError struct {
	Expr string
	Msg  string
}

func (e *TemplateError) Error() string {
	if e.Expr == "" {
		return e.Msg
	}
	return fmt.Sprintf("cannot evaluate ${%s}: %s", e.Expr, e.Msg)
}

// templatePrefix matches what digdag leaves to operators instead of
// evaluating: ${lowercase-word:...}, such as ${secret:NAME} (and shell's
// ${var:-default}).
var templatePrefix = regexp.MustCompile(`^[a-z]+:`)

// closing is the index of the } that closes the ${ whose body starts at
// from, counting braces as digdag does (quotes are not special), or -1.
func closing(s string, from int) int {
	depth := 0
	for j := from; j < len(s); j++ {
		switch s[j] {
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return -1
}

func unclosed(s string, at int) error {
	rest := s[at:]
	if len(rest) > 40 {
		rest = rest[:40] + "..."
	}
	return &TemplateError{Msg: fmt.Sprintf("unclosed ${ in %q: add the closing }", rest)}
}

// template renders s with digdag's rules: every ${expr} is a JavaScript
// expression (braces counted, so ${JSON.stringify({a: 1})} is one);
// null and undefined render as "", strings as they are, anything else as
// JSON; $$ in the text around them renders as $. ${secret:NAME} (NAME may
// hold ${...}) is resolved from secrets; other ${word:...} stay as
// written. When s is exactly one ${expr}, the value keeps its type.
func (e *Engine) template(s string, scope Scope, secrets Secrets, used func(string)) (any, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var out, lit strings.Builder
	flush := func() {
		out.WriteString(strings.ReplaceAll(lit.String(), "$$", "$"))
		lit.Reset()
	}
	var view *scopeView
	pos := 0
	for {
		i := strings.Index(s[pos:], "${")
		if i < 0 {
			lit.WriteString(s[pos:])
			break
		}
		start := pos + i
		body := start + 2
		lit.WriteString(s[pos:start])
		if p := templatePrefix.FindString(s[body:]); p != "" {
			if p != "secret:" {
				lit.WriteString("${")
				pos = body
				continue
			}
			end := closing(s, body)
			if end < 0 {
				return nil, unclosed(s, start)
			}
			nv, err := e.template(s[body+len(p):end], scope, nil, nil)
			if err != nil {
				return nil, err
			}
			name := strings.TrimSpace(Format(nv))
			val, ok := "", false
			if secrets != nil {
				val, ok = secrets.Secret(name)
			}
			if !ok {
				return nil, &MissingError{Name: name, Secret: true}
			}
			if used != nil {
				used(val)
			}
			flush()
			out.WriteString(val)
			pos = end + 1
			continue
		}
		end := closing(s, body)
		if end < 0 {
			return nil, unclosed(s, start)
		}
		expr := s[body:end]
		pos = end + 1
		if strings.TrimSpace(expr) == "" {
			continue // digdag renders ${} as nothing
		}
		if view == nil {
			view = &scopeView{s: scope}
		}
		if start == 0 && pos == len(s) {
			return e.typed(expr, view)
		}
		v, err := e.eval(expr, view)
		if err != nil {
			return nil, err
		}
		flush()
		out.WriteString(v)
	}
	flush()
	return out.String(), nil
}

// scopeView is the params one template string sees: values are copied into
// JavaScript when first used, so an expression that changes them (sort())
// never changes the run's params.
type scopeView struct {
	s     Scope
	nest  Scope // s with "a.b" keys nested, made when JavaScript needs it
	cache map[string]goja.Value
}

func (v *scopeView) nested() Scope {
	if v.nest == nil {
		v.nest = v.s
		for k := range v.s {
			if strings.Contains(k, ".") {
				// a key holding a dotted name (-p td.database=x) wins over
				// nesting, as in Scope.Get
				n := Scope{}
				var dotted []string
				for k, val := range v.s {
					if strings.Contains(k, ".") {
						dotted = append(dotted, k)
					} else {
						n[k] = val
					}
				}
				n = n.Clone()
				sort.Strings(dotted)
				for _, d := range dotted {
					n.Set(d, v.s[d])
				}
				v.nest = n
				break
			}
		}
	}
	return v.nest
}

var dottedName = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$`)

// jsWords are names a dotted-name shortcut must leave to JavaScript.
var jsWords = map[string]bool{"true": true, "false": true, "null": true, "undefined": true, "this": true,
	"NaN": true, "Infinity": true, "new": true, "typeof": true, "void": true, "function": true, "delete": true}

// fast resolves a plain dotted name without JavaScript when the answer is
// certain: the first name is a param and every step before the last is an
// object. ok is false when JavaScript must decide (a global, a missing
// first name, a property of a string or a list, null).
func (v *scopeView) fast(expr string) (val any, ok bool) {
	if !dottedName.MatchString(expr) {
		return nil, false
	}
	if x, ok := v.s[expr]; ok && strings.Contains(expr, ".") {
		return x, true
	}
	parts := strings.Split(expr, ".")
	if jsWords[parts[0]] {
		return nil, false
	}
	cur, ok := v.nested()[parts[0]]
	if !ok {
		return nil, false
	}
	for _, p := range parts[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, true // an undefined member renders ""
		}
	}
	return cur, true
}

// run evaluates expr with the params as the scope of its names, as
// digdag's with(params).
func (e *Engine) run(expr string, view *scopeView) (goja.Value, error) {
	fn, ok := e.fns[expr]
	if !ok {
		v, err := e.rt.RunString("(function(){with(this){return (" + expr + "\n);}})")
		if err != nil {
			return nil, &TemplateError{Expr: expr, Msg: syntaxError(expr, err).Error()}
		}
		fn, _ = goja.AssertFunction(v)
		if len(e.fns) > 10000 {
			clear(e.fns)
		}
		e.fns[expr] = fn
	}
	e.zone = time.UTC
	if tz, ok := view.s["timezone"].(string); ok && tz != "" {
		if loc, err := loadZone(tz); err == nil {
			e.zone = loc
		}
	}
	obj := e.rt.NewDynamicObject(&jsScope{e: e, v: view})
	res, err := fn(obj)
	if err != nil {
		if name := strings.TrimSpace(expr); dottedName.MatchString(name) {
			var ex *goja.Exception
			if errors.As(err, &ex) && strings.HasPrefix(ex.Value().String(), "ReferenceError") {
				return nil, &MissingError{Name: name}
			}
		}
		return nil, &TemplateError{Expr: expr, Msg: jsMessage(err)}
	}
	return res, nil
}

func jsMessage(err error) string {
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return ex.Value().String()
	}
	var ce *goja.CompilerSyntaxError
	if errors.As(err, &ce) {
		return "SyntaxError: " + ce.Message
	}
	return err.Error()
}

// eval renders one expression into a string.
func (e *Engine) eval(expr string, view *scopeView) (string, error) {
	if v, ok := view.fast(strings.TrimSpace(expr)); ok {
		return Format(v), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.run(expr, view)
	if err != nil {
		return "", err
	}
	return e.render(v), nil
}

func (e *Engine) render(v goja.Value) string {
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return ""
	}
	if s, ok := v.Export().(string); ok {
		return s
	}
	j, err := e.stringify(goja.Undefined(), v)
	if err != nil {
		return v.String()
	}
	return j.String()
}

// typed evaluates a string that is one ${expr}: a param keeps its value
// (a list stays a list); a computed value is what its JSON text holds.
func (e *Engine) typed(expr string, view *scopeView) (any, error) {
	if v, ok := view.fast(strings.TrimSpace(expr)); ok {
		return v, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.run(expr, view)
	if err != nil {
		return nil, err
	}
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, nil
	}
	switch x := v.Export().(type) {
	case string, bool, int64:
		return x, nil
	case float64:
		return x, nil
	}
	text := e.render(v)
	var out any
	if json.Unmarshal([]byte(text), &out) == nil {
		if _, isString := out.(string); !isString { // a moment renders as quoted text
			return normalizeNumbers(out), nil
		}
	}
	return text, nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) && x > -1e15 && x < 1e15 {
			return int64(x)
		}
	case []any:
		for i := range x {
			x[i] = normalizeNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalizeNumbers(x[k])
		}
	}
	return v
}

// jsScope exposes a scopeView to JavaScript as the object of a with().
type jsScope struct {
	e *Engine
	v *scopeView
}

func (o *jsScope) Get(key string) goja.Value {
	if v, ok := o.v.cache[key]; ok {
		return v
	}
	x, ok := o.v.nested()[key]
	if !ok {
		return nil
	}
	jv := o.e.toJS(x)
	if o.v.cache == nil {
		o.v.cache = map[string]goja.Value{}
	}
	o.v.cache[key] = jv
	return jv
}

func (o *jsScope) Set(key string, val goja.Value) bool {
	if o.v.cache == nil {
		o.v.cache = map[string]goja.Value{}
	}
	o.v.cache[key] = val
	return true
}

func (o *jsScope) Has(key string) bool {
	if _, ok := o.v.cache[key]; ok {
		return true
	}
	_, ok := o.v.nested()[key]
	return ok
}

func (o *jsScope) Delete(key string) bool { return true }

func (o *jsScope) Keys() []string {
	keys := make([]string, 0, len(o.v.nested()))
	for k := range o.v.nested() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// toJS copies a param value into plain JavaScript values (objects with
// their keys sorted, as Format writes them).
func (e *Engine) toJS(v any) goja.Value {
	switch x := v.(type) {
	case nil:
		return goja.Null()
	case string, bool, int64, float64:
		return e.rt.ToValue(x)
	case int:
		return e.rt.ToValue(int64(x))
	case *int64:
		if x == nil {
			return goja.Null()
		}
		return e.rt.ToValue(*x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return e.rt.ToValue(i)
		}
		f, _ := x.Float64()
		return e.rt.ToValue(f)
	case map[string]any:
		obj := e.rt.NewObject()
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_ = obj.Set(k, e.toJS(x[k]))
		}
		return obj
	case []any:
		vals := make([]any, len(x))
		for i, el := range x {
			vals[i] = e.toJS(el)
		}
		return e.rt.NewArray(vals...)
	}
	// anything else (json.RawMessage, typed slices): through its JSON
	b, err := json.Marshal(v)
	if err != nil {
		return e.rt.ToValue(fmt.Sprint(v))
	}
	var out any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if d.Decode(&out) != nil {
		return e.rt.ToValue(string(b))
	}
	return e.toJS(out)
}

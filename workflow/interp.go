package workflow

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Scope holds the params visible to a task: nested maps addressed with
// dotted names ("td.last_job.num_records").
type Scope map[string]any

// Clone copies the scope deeply enough that setting a dotted name in the
// copy never changes the original.
func (s Scope) Clone() Scope {
	return Scope(cloneMap(s))
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if mm, ok := v.(map[string]any); ok {
			out[k] = cloneMap(mm)
		} else {
			out[k] = v
		}
	}
	return out
}

// Get looks a dotted name up. A key holding the full dotted name (set with
// -p td.database=x) wins over nesting.
func (s Scope) Get(name string) (any, bool) {
	if v, ok := s[name]; ok {
		return v, true
	}
	var cur any = map[string]any(s)
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Set stores a value at a dotted name, creating intermediate maps.
func (s Scope) Set(name string, v any) {
	parts := strings.Split(name, ".")
	m := map[string]any(s)
	for _, part := range parts[:len(parts)-1] {
		next, ok := m[part].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[part] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// Merge sets every (nested) value of other into s.
func (s Scope) Merge(other map[string]any) {
	for k, v := range other {
		if om, ok := v.(map[string]any); ok {
			if sm, ok := s[k].(map[string]any); ok {
				Scope(sm).Merge(om)
				continue
			}
			s[k] = cloneMap(om)
			continue
		}
		s[k] = v
	}
}

// Secrets resolves ${secret:NAME}.
type Secrets interface {
	Secret(name string) (string, bool)
}

// SecretMap is a Secrets backed by a map.
type SecretMap map[string]string

// Secret implements Secrets.
func (m SecretMap) Secret(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// MissingError is a ${name} that nothing defines.
type MissingError struct {
	Name   string
	Secret bool
}

func (e *MissingError) Error() string {
	if e.Secret {
		return fmt.Sprintf("secret %q is not set: export TDCTL_SECRET_%s or add it to the secrets file (--secrets)", e.Name, SecretEnvName(e.Name))
	}
	return fmt.Sprintf("param ${%s} is not defined: set it with _export, -p %s=VALUE, or a task before this one", e.Name, e.Name)
}

// SecretEnvName is the environment variable that supplies a secret:
// "td.apikey" → TD_APIKEY (read as TDCTL_SECRET_TD_APIKEY).
func SecretEnvName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// interp evaluates ${...} in s with an engine from the pool (see
// Engine.template for the rules).
func interp(s string, scope Scope, secrets Secrets, used func(string)) (any, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	e := defaultEngines.Get().(*Engine)
	defer defaultEngines.Put(e)
	return e.template(s, scope, secrets, used)
}

// Format renders a param value the way it appears inside a string: strings
// as is, whole numbers without exponent, null as empty, lists and maps as
// JSON.
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case *int64:
		if x == nil {
			return ""
		}
		return strconv.FormatInt(*x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case json.RawMessage:
		return string(x)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as JSON.stringify: <, > and & as they are
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Eval turns a YAML node into a Go value (string, int64, float64, bool, nil,
// []any, map[string]any) with ${...} evaluated in every string, using an
// engine from a shared pool; a run uses its own engine (Engine.Eval).
func Eval(n *yaml.Node, scope Scope, secrets Secrets, used func(string)) (any, error) {
	e := defaultEngines.Get().(*Engine)
	defer defaultEngines.Put(e)
	return e.Eval(n, scope, secrets, used)
}

// Eval turns a YAML node into a Go value (string, int64, float64, bool, nil,
// []any, map[string]any) with ${...} evaluated in every string.
func (e *Engine) Eval(n *yaml.Node, scope Scope, secrets Secrets, used func(string)) (any, error) {
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return e.Eval(n.Content[0], scope, secrets, used)
	case yaml.AliasNode:
		return e.Eval(n.Alias, scope, secrets, used)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := e.Eval(c, scope, secrets, used)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := e.template(n.Content[i].Value, scope, secrets, used)
			if err != nil {
				return nil, err
			}
			v, err := e.Eval(n.Content[i+1], scope, secrets, used)
			if err != nil {
				return nil, err
			}
			out[Format(k)] = v
		}
		return out, nil
	}
	// scalar
	switch n.Tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		return b, nil
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return i, nil
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return f, nil
		}
	}
	return e.template(n.Value, scope, secrets, used)
}

// EvalString evaluates ${...} in s against scope (no secrets), always
// returning a string.
func EvalString(s string, scope Scope) (string, error) {
	v, err := interp(s, scope, nil, nil)
	if err != nil {
		return "", err
	}
	return Format(v), nil
}

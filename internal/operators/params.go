package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/workflow"
)

// ErrParamNotFound is what a ParamStore returns for a missing key.
var ErrParamNotFound = paramstore.ErrNotFound

// ParamStore is what param_get> and param_set> need from a store: values
// are JSON; a missing key is ErrParamNotFound (errors.Is).
// *paramstore.Site implements it.
type ParamStore interface {
	Get(ctx context.Context, key string) (json.RawMessage, error)
	// SetMany writes all values or none.
	SetMany(ctx context.Context, values map[string]json.RawMessage) error
}

// ParamGet is param_get>: store key → param name, written as digdag
// writes it, beside the operator,
//
//	param_get>:
//	last_executed_time: last_executed_time
//
// or (tdctl's form, kept) as a mapping under it. Each value is stored for
// the tasks after it (inside a for_each> iteration, for the rest of that
// iteration and the tasks after the loop). A key not in the store sets the
// param to "", replacing any value it had, as digdag's
// ParamGetOperatorFactory does.
type ParamGet struct{ Env *Env }

// Defines implements workflow.Definer: the mapping's values.
func (p *ParamGet) Defines(t *workflow.Task) []string {
	var out []string
	if t.Command != nil && t.Command.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(t.Command.Content); i += 2 {
			out = append(out, t.Command.Content[i+1].Value)
		}
	}
	for _, kv := range t.Params {
		out = append(out, kv.Node.Value)
	}
	return out
}

// mappingExamples show each operator's mapping in the errors.
var mappingExamples = map[string]string{
	"param_get": "last_executed_time: last_executed_time (store key: param name) on the line after param_get>:, at the same indent",
	"param_set": "last_executed_time: ${session_time} (store key: value) on the line after param_set>:, at the same indent",
}

func mappingError(op string) error {
	return fmt.Errorf("%s> needs at least one key beside it, e.g. %s", op, mappingExamples[op])
}

// validateMapping is Validate of param_get> and param_set>: keys beside the
// operator, or a non-empty mapping under it (values may hold ${...}), not
// both with the same key.
func validateMapping(tc *workflow.TaskContext, op string) error {
	n := tc.Task.Command
	nested := n != nil && n.Kind == yaml.MappingNode && len(n.Content) > 0
	empty := n == nil || (n.Kind == yaml.ScalarNode && n.Value == "" && n.Tag != "!!str")
	if !nested && !empty {
		return fmt.Errorf("%s> takes no value (%s): give its keys beside it, e.g. %s", op, strings.TrimSpace(n.Value), mappingExamples[op])
	}
	if !nested && len(tc.Task.Params) == 0 {
		return mappingError(op)
	}
	if nested {
		for _, kv := range tc.Task.Params {
			if mapHas(n, kv.Key) {
				return fmt.Errorf("%s> key %s is given both beside %s> and under it", op, kv.Key, op)
			}
		}
	}
	return nil
}

func mapHas(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// Validate implements workflow.Validator.
func (p *ParamGet) Validate(tc *workflow.TaskContext) error { return validateMapping(tc, "param_get") }

// Validate implements workflow.Validator.
func (p *ParamSet) Validate(tc *workflow.TaskContext) error { return validateMapping(tc, "param_set") }

// mapping returns the keys of a param_get>/param_set> task (beside the
// operator and under it) with their evaluated values, keys in file order.
func mapping(tc *workflow.TaskContext, op string) (map[string]any, []string, error) {
	m := map[string]any{}
	var keys []string
	if nested, ok := tc.Command.(map[string]any); ok {
		for k, v := range nested {
			m[k] = v
			keys = append(keys, k)
		}
		sort.Strings(keys) // evaluated mapping: file order is lost
	} else if tc.Command != nil && workflow.Format(tc.Command) != "" {
		return nil, nil, fmt.Errorf("%s> takes no value (%s): give its keys beside it, e.g. %s", op, workflow.Format(tc.Command), mappingExamples[op])
	}
	for _, kv := range tc.Task.Params {
		if _, dup := m[kv.Key]; dup {
			return nil, nil, fmt.Errorf("%s> key %s is given both beside %s> and under it", op, kv.Key, op)
		}
		m[kv.Key] = tc.Config[kv.Key]
		keys = append(keys, kv.Key)
	}
	if len(keys) == 0 {
		return nil, nil, mappingError(op)
	}
	return m, keys, nil
}

// Run implements workflow.Operator.
func (p *ParamGet) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	m, keys, err := mapping(tc, "param_get")
	if err != nil {
		return nil, err
	}
	store, err := p.Env.paramStore("param_get")
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, key := range keys {
		name := workflow.Format(m[key])
		if name == "" {
			return nil, fmt.Errorf("param_get>: %s: give the param name to bind (store key: param name)", key)
		}
		raw, err := store.Get(ctx, key)
		if errors.Is(err, ErrParamNotFound) {
			// digdag's param_get> stores "" for a key the store lacks
			out[name] = ""
			fmt.Fprintf(tc.Log, "%s: not in the store; %s is \"\"\n", key, name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("param_get> %s: %w", key, err)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("param_get> %s: stored value is not JSON: %w", key, err)
		}
		out[name] = v
		fmt.Fprintf(tc.Log, "%s → %s\n", key, name)
	}
	return &workflow.Result{Store: out}, nil
}

// ParamSet is param_set>: store key → value, beside the operator (digdag's
// form) or as a mapping under it, written atomically (all or nothing).
//
// Where a digdag server may read the store (PostgreSQL, Redis: see
// TypedStore) every value is written as digdag's param_set> writes it, as
// a string: a number or boolean as its text, a null key is skipped, and a
// list or mapping is refused (digdag refuses it too). Only on a store that
// keeps typed values (the SQLite default, or a URL with values=json) do
// numbers, booleans, lists and maps keep their JSON type.
type ParamSet struct{ Env *Env }

// TypedStore is implemented by stores that say whether they keep typed
// JSON values (*paramstore.Site). A store that does not implement it is
// taken as typed.
type TypedStore interface {
	TypedValues() bool
}

// digdagString is the text digdag's param_set> stores for v (its config
// read "as String"), or ok=false for a null value, which it skips.
func digdagString(key string, v any) (s string, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	case map[string]any, []any:
		return "", false, fmt.Errorf("param_set> %s: a list or mapping cannot be stored where digdag reads the store (digdag's param_set> takes strings); write it as a string, e.g. ${JSON.stringify(...)}, or use a store URL with values=json if no digdag reads it", key)
	}
	return workflow.Format(v), true, nil
}

// Run implements workflow.Operator.
func (p *ParamSet) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	m, keys, err := mapping(tc, "param_set")
	if err != nil {
		return nil, err
	}
	store, err := p.Env.paramStore("param_set")
	if err != nil {
		return nil, err
	}
	typed := true
	if ts, ok := store.(TypedStore); ok {
		typed = ts.TypedValues()
	}
	vals := make(map[string]json.RawMessage, len(m))
	for _, k := range keys {
		if !typed {
			s, ok, err := digdagString(k, m[k])
			if err != nil {
				return nil, err
			}
			if ok {
				vals[k] = paramstore.String(s)
			}
			continue
		}
		b, err := json.Marshal(m[k])
		if err != nil {
			return nil, fmt.Errorf("param_set> %s: %w", k, err)
		}
		vals[k] = b
	}
	if err := store.SetMany(ctx, vals); err != nil {
		return nil, fmt.Errorf("param_set>: %w", err)
	}
	for _, k := range keys {
		if _, ok := vals[k]; ok {
			fmt.Fprintf(tc.Log, "%s set\n", k)
		} else {
			fmt.Fprintf(tc.Log, "%s is null: not set (as digdag)\n", k)
		}
	}
	return nil, nil
}

var _ ParamStore = (*paramstore.Site)(nil)

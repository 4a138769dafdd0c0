package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

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

// ParamGet is param_get>: a mapping of store key → param name. Each value
// is stored for the tasks after it (inside a for_each> iteration, for the
// rest of that iteration and the tasks after the loop). A key not in the
// store sets the param to "", replacing any value it had, as digdag's
// ParamGetOperatorFactory does.
type ParamGet struct{ Env *Env }

// Defines implements workflow.Definer: the mapping's values.
func (p *ParamGet) Defines(t *workflow.Task) []string {
	var out []string
	if t.Command != nil {
		for i := 0; i+1 < len(t.Command.Content); i += 2 {
			out = append(out, t.Command.Content[i+1].Value)
		}
	}
	return out
}

// mappingExamples show each operator's mapping in the errors.
var mappingExamples = map[string]string{
	"param_get": "param_get>: {last_executed_time: last_executed_time} (store key: param name)",
	"param_set": "param_set>: {last_executed_time: ${session_time}} (store key: value)",
}

func mappingError(op string) error {
	return fmt.Errorf("%s> needs a mapping, e.g. %s", op, mappingExamples[op])
}

// validateMapping is Validate of param_get> and param_set>: the command is
// a non-empty mapping (its values may hold ${...}).
func validateMapping(tc *workflow.TaskContext, op string) error {
	if n := tc.Task.Command; n == nil || n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return mappingError(op)
	}
	return nil
}

// Validate implements workflow.Validator.
func (p *ParamGet) Validate(tc *workflow.TaskContext) error { return validateMapping(tc, "param_get") }

// Validate implements workflow.Validator.
func (p *ParamSet) Validate(tc *workflow.TaskContext) error { return validateMapping(tc, "param_set") }

func mapping(tc *workflow.TaskContext, op string) (map[string]any, []string, error) {
	m, ok := tc.Command.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, nil, mappingError(op)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
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

// ParamSet is param_set>: a mapping of store key → value, written
// atomically (all or nothing). Strings are stored as digdag stores them;
// numbers, booleans, lists and maps keep their JSON type.
type ParamSet struct{ Env *Env }

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
	vals := make(map[string]json.RawMessage, len(m))
	for _, k := range keys {
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
		fmt.Fprintf(tc.Log, "%s set\n", k)
	}
	return nil, nil
}

var _ ParamStore = (*paramstore.Site)(nil)

package operators

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tdctl/tdctl/workflow"
)

// mapStore is a ParamStore over a map, for operator tests; the real
// backends are tested by paramstore's conformance suite.
type mapStore struct {
	mu sync.Mutex
	m  map[string]json.RawMessage
}

func (s *mapStore) Get(_ context.Context, key string) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, ErrParamNotFound
	}
	return v, nil
}

func (s *mapStore) SetMany(_ context.Context, vals map[string]json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range vals {
		s.m[k] = v
	}
	return nil
}

func paramOps(s ParamStore) map[string]workflow.Operator {
	return Operators(&Env{ParamStore: func() (ParamStore, error) { return s, nil }})
}

func TestParamSetThenGetKeepsTypes(t *testing.T) {
	s := &mapStore{m: map[string]json.RawMessage{}}
	_, out, err := runWorkflow(t, `
_export:
  prior: had a value
+set:
  param_set>:
    last_executed_time: "2026-11-24T21:00:00Z"
    count: 3
    tags: [a, b]
+get:
  param_get>:
    last_executed_time: last
    count: n
    tags: tags
    never_set: missing
    also_never_set: prior
+show:
  echo>: last=${last} n=${n} tags=${tags} missing=[${missing}] prior=[${prior}]
`, paramOps(s), nil)
	require.NoError(t, err)
	// a key not in the store sets "" even over a value (digdag's
	// ParamGetOperatorFactory; ParamsIT's get.dig)
	assert.Contains(t, out, "+wf+show: last=2026-11-24T21:00:00Z n=3 tags=[\"a\",\"b\"] missing=[] prior=[]\n")
	assert.JSONEq(t, `"2026-11-24T21:00:00Z"`, string(s.m["last_executed_time"]))
	assert.JSONEq(t, `3`, string(s.m["count"]))
}

func TestSeedDailyParamsAcrossRuns(t *testing.T) {
	s := &mapStore{m: map[string]json.RawMessage{}}
	seedWorkflow := `
+fetch_values:
  param_get>:
    last_executed_time: last_executed_time
+execute_job:
  sh>: echo "prev=[${last_executed_time}]"; echo "::set-param finished_time=T${session_unixtime}"
+save_result:
  param_set>:
    last_executed_time: ${finished_time}
`
	_, out1, err := runWorkflow(t, seedWorkflow, paramOps(s), nil)
	require.NoError(t, err)
	assert.Contains(t, out1, "prev=[]")
	first := string(s.m["last_executed_time"])
	require.NotEmpty(t, first)
	_, out2, err := runWorkflow(t, seedWorkflow, paramOps(s), nil)
	require.NoError(t, err)
	var v string
	require.NoError(t, json.Unmarshal([]byte(first), &v))
	assert.Contains(t, out2, "prev=["+v+"]", "the second run sees what the first stored")
}

func TestSeedParallelForEach(t *testing.T) {
	s := &mapStore{m: map[string]json.RawMessage{}}
	for i := 1; i <= 5; i++ {
		s.m["value"+string(rune('0'+i))] = json.RawMessage(`"stored-` + string(rune('0'+i)) + `"`)
	}
	s.m["key"] = json.RawMessage(`"K"`)
	_, out, err := runWorkflow(t, `
+loop_task:
  for_each>:
    value: [value1, value2, value3, value4, value5]
  _parallel: true
  _do:
    +get:
      param_get>:
        key: ${value}
    +show_value:
      sh>: echo ${value}
+loop_fetch:
  for_each>:
    value: [value1, value2, value3, value4, value5]
  _parallel: true
  _do:
    +get:
      param_get>:
        ${value}: fetched
    +show_fetched:
      echo>: ${value} is ${fetched}
`, paramOps(s), nil)
	require.NoError(t, err)
	var shown, fetched []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "+show_value: "); i >= 0 {
			shown = append(shown, l[i+len("+show_value: "):])
		}
		if i := strings.Index(l, "+show_fetched: "); i >= 0 {
			fetched = append(fetched, l[i+len("+show_fetched: "):])
		}
	}
	sort.Strings(shown)
	sort.Strings(fetched)
	assert.Equal(t, []string{"value1", "value2", "value3", "value4", "value5"}, shown)
	assert.Equal(t, []string{"value1 is stored-1", "value2 is stored-2", "value3 is stored-3", "value4 is stored-4", "value5 is stored-5"}, fetched)
}

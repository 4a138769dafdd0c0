package workflow

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twiceOp generates its _do twice, as digdag's loop> generates +loop-N
// tasks: each copy with its own ${n} in _export.
type twiceOp struct{}

func (twiceOp) Run(_ context.Context, tc *TaskContext) (*Result, error) {
	gen := NewMapping()
	for i := range 2 {
		SetKey(gen, "+copy-"+Format(i), WithExport(tc.Task.DoNode, map[string]any{"n": i}, []string{"n"}))
	}
	return &Result{Subtasks: gen, Store: map[string]any{"from_op": "op"}}, nil
}

func (twiceOp) SubtaskDefines(*Task) []string { return []string{"n"} }

// Result.Subtasks: generated tasks run as the task's ^sub child, named as
// digdag names them, see the task's inherited params (not its own keys) and
// what it stored, and what they store reaches the tasks after it.
func TestGeneratedSubtasks(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(t, &out)
	r.Operators["loop"] = twiceOp{} // the parser lets loop> have _do
	wf := parse(t, `
_export:
  outer: o
+t:
  loop>:
  own: mine
  _do:
    +a:
      echo>: n=${n} outer=${outer} op=${from_op}
    +b:
      set>: {last: "${n}"}
+after:
  echo>: last=${last}
`)
	// from_op is stored at run time; tell Check with -p
	r.Params = map[string]any{"from_op": "p"}
	sum, err := r.Run(context.Background(), wf)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "+test+t^sub+copy-0+a: n=0 outer=o op=op\n")
	assert.Contains(t, out.String(), "+test+t^sub+copy-1+a: n=1 outer=o op=op\n")
	assert.Contains(t, out.String(), "+test+after: last=1\n")
	assert.Len(t, sum.FindTask("+test+t^sub+copy-1+b"), 1)

	// the task's own keys are not the subtasks' params
	wf = parse(t, "+t:\n  loop>:\n  own: mine\n  _do:\n    echo>: ${own}\n")
	err = r.Check(wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "${own}")

	// a generated task with an unknown operator fails before it runs
	r.Operators["gen_bad"] = OperatorFunc(func(_ context.Context, tc *TaskContext) (*Result, error) {
		m := NewMapping()
		SetKey(m, "nope>", ValueNode("x"))
		return &Result{Subtasks: m}, nil
	})
	out.Reset()
	_, err = r.Run(context.Background(), parse(t, "+t:\n  gen_bad>:\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown operator nope>")

	// _do of an operator that does not read it is refused
	_, err = Parse("x.dig", []byte("+t:\n  echo>: hi\n  _do:\n    echo>: x\n"))
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "x.dig:3: _do belongs to"), err.Error())
}

package operators

import (
	"context"
	"fmt"

	"github.com/tdctl/tdctl/workflow"
)

// Echo is echo>: it writes its (interpolated) message to the task log.
type Echo struct{}

// Run implements workflow.Operator.
func (Echo) Run(_ context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	fmt.Fprintln(tc.Log, workflow.Format(tc.Command))
	return nil, nil
}

// Validate implements workflow.Validator: a key beside echo> that its
// message does not use is reported.
func (Echo) Validate(tc *workflow.TaskContext) error { return echoSpec.check(tc.Task, "") }

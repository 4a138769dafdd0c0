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

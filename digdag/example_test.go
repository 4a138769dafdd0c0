package digdag_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/td"
)

// Push a project directory to TD Workflow, run one of its workflows and
// print its logs.
func Example() {
	ctx := context.Background()
	c, err := digdag.NewClient("us01", digdag.WithAPIKey(os.Getenv("TD_API_KEY")))
	if err != nil {
		panic(err)
	}
	archive, _, err := digdag.Archive("examples/workflows")
	if err != nil {
		panic(err)
	}
	proj, err := c.Projects.Push(ctx, "examples", "", archive, nil)
	if err != nil {
		panic(err)
	}
	wf, err := c.Projects.Workflow(ctx, proj.ID, "num_records", "")
	if err != nil {
		panic(err)
	}
	a, err := c.Attempts.Start(ctx, &digdag.StartRequest{WorkflowID: wf.ID, SessionTime: time.Now()})
	var conflict *digdag.AttemptConflictError
	if errors.As(err, &conflict) {
		a, err = c.Attempts.Retry(ctx, conflict.Attempt.ID, &digdag.RetryOptions{Failed: true})
	}
	if err != nil {
		panic(err)
	}
	a, err = c.Attempts.Wait(ctx, a.ID, &digdag.WaitOptions{Timeout: time.Hour})
	switch {
	case errors.Is(err, td.ErrJobFailed):
		fmt.Println("failed:", err)
	case err != nil:
		panic(err)
	}
	if err := c.Logs.Write(ctx, a.ID, os.Stdout, nil); err != nil {
		panic(err)
	}
}

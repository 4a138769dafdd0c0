package operators

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/workflow"
)

// Require is require>: it makes sure another workflow of the project has
// run for a session time (the task's own, or session_time:) and waits for
// it, as digdag's does locally: a run of that workflow and session kept in
// the runs directory counts (rerun_on: none, the default), or counts only
// when it succeeded (failed), or never (all); otherwise a new run of it is
// started, with params: as its -p params, and waited for. One still
// running is waited for. The task fails when that run did not succeed,
// unless ignore_failure: true.
type Require struct {
	// Poll is how often a running session is looked at (0: 1 s).
	Poll time.Duration
}

var requireSpec = keySpec{op: "require", known: []string{"session_time", "rerun_on", "ignore_failure", "params"},
	digdag: map[string]string{
		"project_id":   "tdctl runs the workflows of one project (the directory of the .dig file); require> a workflow of it",
		"project_name": "tdctl runs the workflows of one project (the directory of the .dig file); require> a workflow of it",
	}}

// requireLocks serializes require> of one workflow and session in this
// process, so two parallel tasks start it once.
var requireLocks sync.Map

type requireSettings struct {
	file, name    string
	session       time.Time
	rerunOn       string
	ignoreFailure bool
	params        map[string]any
}

func requireConfig(tc *workflow.TaskContext) (requireSettings, error) {
	var s requireSettings
	if !tc.Dynamic[""] {
		s.name = strings.TrimSuffix(workflow.Format(tc.Command), ".dig")
		if s.name == "" || strings.ContainsAny(s.name, `/\`) {
			return s, fmt.Errorf("require> needs the name of a workflow of the project, e.g. require>: other_workflow (got %q)", workflow.Format(tc.Command))
		}
		s.file = filepath.Join(filepath.Dir(tc.Workflow.File), s.name+".dig")
		if st, err := os.Stat(s.file); err != nil || st.IsDir() {
			return s, fmt.Errorf("require> %s: no workflow %s.dig in %s", s.name, s.name, filepath.Dir(tc.Workflow.File))
		}
	}
	s.session, s.rerunOn = tc.SessionTime, "none"
	if v, ok := tc.Config["session_time"]; ok {
		t, err := time.Parse(time.RFC3339, workflow.Format(v))
		if err != nil {
			return s, fmt.Errorf("require> session_time must be a time with its zone, like 2017-01-01T00:00:00+00:00 (got %q)", workflow.Format(v))
		}
		s.session = t
	}
	if v, ok := tc.Config["rerun_on"]; ok {
		s.rerunOn = workflow.Format(v)
		if s.rerunOn != "none" && s.rerunOn != "failed" && s.rerunOn != "all" {
			return s, fmt.Errorf("require> rerun_on must be none, failed or all (got %q)", s.rerunOn)
		}
	}
	if v, ok := tc.Config["ignore_failure"]; ok {
		b, err := boolSetting(v, "require> ignore_failure")
		if err != nil {
			return s, err
		}
		s.ignoreFailure = b
	}
	if v, ok := tc.Config["params"]; ok {
		m, isMap := v.(map[string]any)
		if !isMap {
			return s, fmt.Errorf("require> params must be a mapping of names to values (got %s)", workflow.Format(v))
		}
		s.params = m
	}
	return s, nil
}

// Idle implements workflow.Idler: waiting for the other session takes
// no MaxParallel slot (its run has slots of its own).
func (Require) Idle(*workflow.TaskContext) bool { return true }

// Validate implements workflow.Validator.
func (Require) Validate(tc *workflow.TaskContext) error {
	if _, err := requireConfig(tc); err != nil {
		return err
	}
	return requireSpec.check(tc.Task, "")
}

// Run implements workflow.Operator.
func (q Require) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	s, err := requireConfig(tc)
	if err != nil {
		return nil, err
	}
	if tc.Runner == nil {
		return nil, errors.New("require>: no runner to start the workflow with")
	}
	key := sessionKey(s.file, s.session)
	chain, _ := ctx.Value(requireChain{}).([]string)
	chain = append(chain[:len(chain):len(chain)], sessionKey(tc.Workflow.File, tc.SessionTime))
	for _, k := range chain {
		if k == key {
			// the session waits on itself: digdag would wait forever
			return nil, fmt.Errorf("require> %s: the workflow requires itself for session %s (through the require> chain)", s.name, s.session.Format(time.RFC3339))
		}
	}
	ctx = context.WithValue(ctx, requireChain{}, chain)
	mu, _ := requireLocks.LoadOrStore(key, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	sum, err := q.await(ctx, tc, s)
	if err != nil {
		return nil, err
	}
	start := sum == nil || s.rerunOn == "all" || (s.rerunOn == "failed" && sum.State != workflow.StateSuccess)
	if start {
		wf, err := workflow.ParseFile(s.file)
		if err != nil {
			return nil, err
		}
		child := *tc.Runner
		child.Params, child.SessionTime = s.params, s.session
		fmt.Fprintf(tc.Log, "starting %s for session %s\n", s.name, s.session.Format(time.RFC3339))
		sum, err = child.Run(ctx, wf)
		if sum == nil { // it did not start (its check failed)
			return nil, fmt.Errorf("require> %s: %w", s.name, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	} else {
		fmt.Fprintf(tc.Log, "%s ran for session %s already: run %s, %s\n", s.name, s.session.Format(time.RFC3339), sum.RunID, sum.State)
	}
	if sum.State != workflow.StateSuccess {
		// digdag's words first
		msg := fmt.Sprintf("Dependent workflow failed. (require> %s: its session %s ended %s, run %s)", s.name, s.session.Format(time.RFC3339), sum.State, sum.RunID)
		if !s.ignoreFailure {
			return nil, errors.New(msg)
		}
		fmt.Fprintln(tc.Log, msg+" (ignore_failure: true)")
	}
	return nil, nil
}

// requireChain is the context key of the sessions (sessionKey) whose
// require> tasks led to this one.
type requireChain struct{}

func sessionKey(file string, t time.Time) string {
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	return file + "\x00" + t.UTC().Format(time.RFC3339Nano)
}

// await returns the latest run of the workflow and session, once it is
// no longer running (nil when there is none).
func (q Require) await(ctx context.Context, tc *workflow.TaskContext, s requireSettings) (*workflow.Summary, error) {
	poll := q.Poll
	if poll <= 0 {
		poll = time.Second
	}
	logged := false
	for {
		sum := workflow.LatestAttempt(tc.Runner.RunsDir, s.file, s.session)
		if sum == nil || sum.State != workflow.StateRunning {
			return sum, nil
		}
		if !logged {
			fmt.Fprintf(tc.Log, "waiting for %s's running session %s (run %s)\n", s.name, s.session.Format(time.RFC3339), sum.RunID)
			logged = true
		}
		if err := backoff.Sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

package operators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/tdctl/tdctl/workflow"
)

// ExitError is a script that ended with a non-zero exit code.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string { return fmt.Sprintf("script exited with code %d", e.Code) }

// Shell is sh>: it runs the command with /bin/sh in the workflow's
// directory, with _env added to the environment. Output goes to the task
// log; "::set-param key=value" lines become params for the tasks after it.
// With _k8s settings the command runs in a Kubernetes pod instead (when a
// pod runner is configured).
type Shell struct {
	// Pod, when set, runs tasks that have _k8s settings.
	Pod func(ctx context.Context, tc *workflow.TaskContext, script string) (*workflow.Result, error)
	// CheckPod, when set, checks a task's _k8s settings for Validate.
	CheckPod func(tc *workflow.TaskContext) error
}

// Validate implements workflow.Validator.
func (s *Shell) Validate(tc *workflow.TaskContext) error {
	if workflow.Format(tc.Command) == "" && !tc.Dynamic[""] {
		return errShellCommand
	}
	if tc.Task.K8s != nil && s.CheckPod != nil {
		return s.CheckPod(tc)
	}
	return nil
}

var errShellCommand = errors.New("sh> needs a command, e.g. sh>: ./job.sh ${session_date}")

// Defines implements workflow.Definer: a script may print any
// ::set-param, so names it might define cannot be checked statically.
func (s *Shell) Defines(*workflow.Task) []string { return []string{workflow.AnyName} }

// Run implements workflow.Operator.
func (s *Shell) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	script := workflow.Format(tc.Command)
	if script == "" {
		return nil, errShellCommand
	}
	if tc.K8s != nil {
		if s.Pod == nil {
			return nil, errors.New("_k8s is set but no Kubernetes runner is configured (give --kubeconfig or run in a cluster)")
		}
		return s.Pod(ctx, tc, script)
	}
	cmd := exec.CommandContext(ctx, shellPath, "-c", script)
	cmd.Dir = tc.Workflow.Dir
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(tc.Env))
	for k := range tc.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+tc.Env[k])
	}
	ownProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	var sc setParamScanner
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc.scan(pr, tc.Log)
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &ExitError{Code: ee.ExitCode()}
		}
		return nil, fmt.Errorf("sh>: %w", err)
	}
	if sc.err != nil {
		return nil, sc.err
	}
	return &workflow.Result{Store: sc.params}, nil
}

package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/workflow"
)

// ExitError is a script that ended with a non-zero exit code, or (Code -1)
// was ended by a signal.
type ExitError struct {
	Code int
	// How says how a script without an exit code ended (e.g. "signal:
	// killed").
	How string
}

func (e *ExitError) Error() string {
	if e.Code < 0 && e.How != "" {
		return "script ended by " + e.How
	}
	return fmt.Sprintf("script exited with code %d", e.Code)
}

// Shell is sh>: it runs the command with /bin/sh in the workflow's
// directory, with the params and _env added to the environment (see
// ParamEnv). Output goes to the task
// log; "::set-param key=value" lines become params for the tasks after it
// (k8sexec.SetParamPrefix has the rules). With _k8s settings the command
// runs in a Kubernetes pod instead, through Env.PodRunner:
//
// As in digdag, shell: [bash, -eu] (beside sh> or as a param) runs the
// script as a file with that interpreter instead of /bin/sh -c.
//
//	+job:
//	  sh>: python job.py ${session_date}
//	  _k8s:
//	    image: myorg/job:1.2          # required
//	    cpu: 500m
//	    memory: 512Mi
//	    ephemeral_storage: 1Gi        # default 1Gi
//	    timeout: 30m
//	    deny_egress: false            # cloud metadata is always blocked
//	    run_as_user: 1000             # default 65532; 0 runs as root (see below)
//	    namespace: jobs               # default: the kubeconfig context's
//	    kubeconfig: ~/.kube/config    # default $KUBECONFIG, ~/.kube/config, in-cluster
//	    context: prod
//
// There _env values become plain environment variables, and the pod's log
// is read for ::set-param lines with the same parser. Any other _k8s key is
// refused (with the closest known key). The pod passes Pod Security
// "restricted" (a non-root uid, no privilege escalation, no capabilities,
// the runtime's seccomp profile); run_as_user: 0 is the per-task opt-out
// for images that need root, which a namespace enforcing "restricted"
// refuses.
//
// A local script runs in a process group of its own, and the task owns the
// whole group: when the task is cancelled, or when the shell exits, the
// group gets SIGTERM; it gets SIGKILL after Env.ShellGrace, or as soon as
// the shell has exited and nothing holds the output open. So a script that
// exits 0 leaving a background process succeeds, and the process is
// killed; a child that ignores SIGTERM does not outlive its task. On unix,
// a guard process in the group kills it too when the runner itself dies,
// even by SIGKILL. A process that leaves the group (setsid) is not
// followed.
type Shell struct{ Env *Env }

// validEnvName is digdag's rule for a param that becomes an environment
// variable.
var validEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*$`)

// maxEnvVar is the most bytes one NAME=value string may have (Linux's
// MAX_ARG_STRLEN).
const maxEnvVar = 128 << 10

// ParamEnv is the environment sh> adds for a task, as digdag's sh> makes
// it: every param whose name is a valid environment variable name (the
// built-ins, _export, -p, the task's own keys, what earlier tasks stored),
// a string as it is and any other value as JSON; then _env, which wins.
// Params named otherwise (with a dot or a dash) are left out, and so is a
// value too big for one variable (128 KiB, said in the task log).
func ParamEnv(tc *workflow.TaskContext) []string {
	vals := map[string]string{}
	add := func(m map[string]any) {
		for k, v := range m {
			if !validEnvName.MatchString(k) {
				continue
			}
			text := envText(v)
			if len(k)+1+len(text) >= maxEnvVar {
				// exec would fail with "argument list too long"
				delete(vals, k)
				if tc.Log != nil {
					fmt.Fprintf(tc.Log, "param %s is not in the script's environment: its value is %d bytes, over the %d KiB a variable may hold\n", k, len(text), maxEnvVar>>10)
				}
				continue
			}
			vals[k] = text
		}
	}
	add(tc.Scope)
	add(tc.Config)
	for k, v := range tc.Env {
		vals[k] = v
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// envText is a param's value in the environment: a string as is, anything
// else as compact JSON (null is "null", as digdag writes it).
func envText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return workflow.Format(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// shellSetting reads digdag's shell: setting (the task's key, else a param
// of that name): the interpreter and its arguments, given the script file.
// nil means /bin/sh -c.
func shellSetting(tc *workflow.TaskContext) ([]string, error) {
	v, ok := tc.Config["shell"]
	if !ok {
		v, ok = tc.Scope["shell"]
	}
	if !ok || v == nil {
		return nil, nil
	}
	out := commandList(v)
	if out == nil {
		return nil, fmt.Errorf("sh>: shell must be a list such as [bash] or [bash, -eu] (got %s)", workflow.Format(v))
	}
	return out, nil
}

// commandList reads an interpreter setting (sh>'s shell:, py>'s python:):
// a command, or a list of it and its arguments. nil when v is neither or
// names no command.
func commandList(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = []string{x}
	case []any:
		for _, e := range x {
			out = append(out, workflow.Format(e))
		}
	}
	if len(out) == 0 || out[0] == "" {
		return nil
	}
	return out
}

// Validate implements workflow.Validator.
func (s *Shell) Validate(tc *workflow.TaskContext) error {
	inPod, err := podSettings(tc)
	if err != nil {
		return err
	}
	if _, ok := tc.Config["shell"]; ok {
		if inPod {
			return errors.New("sh>: shell: is not supported with _k8s or docker: (the pod runs the script with its image's sh)")
		}
		if _, err := shellSetting(tc); err != nil {
			return err
		}
	}
	if workflow.Format(tc.Command) == "" && !tc.Dynamic[""] {
		return errShellCommand
	}
	if err := checkEnvKeys(tc); err != nil {
		return err
	}
	if inPod {
		return checkPod(tc)
	}
	return nil
}

// checkEnvKeys checks the names of a task's _env, as digdag does.
func checkEnvKeys(tc *workflow.TaskContext) error {
	if n := tc.Task.Env; n != nil {
		if n.Kind != yaml.MappingNode {
			return errors.New("_env must be a mapping of variable names to values")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			// digdag: "Invalid _env key name"
			if k := n.Content[i].Value; !validEnvName.MatchString(k) {
				return fmt.Errorf("_env key %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
			}
		}
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
	inPod, err := podSettings(tc)
	if err != nil {
		return nil, err
	}
	if inPod {
		if _, ok := tc.Config["shell"]; ok {
			return nil, errors.New("sh>: shell: is not supported with _k8s or docker: (the pod runs the script with its image's sh)")
		}
		return runPod(ctx, tc, script, s.Env.podRunner)
	}
	return runLocal(ctx, tc, script, s.Env.shellGrace())
}

// outputDrain bounds the wait for a killed script's output to close: a
// process that left the group may hold it open for ever.
const outputDrain = 2 * time.Second

func runLocal(ctx context.Context, tc *workflow.TaskContext, script string, grace time.Duration) (*workflow.Result, error) {
	shell, err := shellSetting(tc)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(shellPath, "-c", script)
	if shell != nil {
		// digdag's shell: runs the interpreter on a file holding the script
		f, err := os.CreateTemp("", "tdctl-sh-*.sh")
		if err != nil {
			return nil, fmt.Errorf("sh>: %w", err)
		}
		defer os.Remove(f.Name())
		_, err = f.WriteString(script)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("sh>: %w", err)
		}
		cmd = exec.Command(shell[0], append(shell[1:], f.Name())...)
	}
	cmd.Dir = tc.Workflow.Dir
	cmd.Env = append(os.Environ(), ParamEnv(tc)...)
	sc, err := runGroup(ctx, tc, cmd, grace, "sh")
	if err != nil {
		return nil, err
	}
	store, err := storeValues(sc.params)
	if err != nil {
		return nil, err
	}
	return &workflow.Result{Store: store}, nil
}

// runGroup runs cmd in a process group of its own (Shell's doc has the
// rules), its output to the task log; it returns the ::set-param lines
// read from the output. op names the operator in errors.
func runGroup(ctx context.Context, tc *workflow.TaskContext, cmd *exec.Cmd, grace time.Duration, op string) (*setParamScanner, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s>: %w", op, err)
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw
	g, err := startGroup(cmd)
	pw.Close() // the script's processes hold the only write ends now
	if err != nil {
		return nil, fmt.Errorf("%s>: %w", op, err)
	}
	var sc setParamScanner
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc.scan(pr, tc.Log)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Run until the shell exits or the task is cancelled; then SIGTERM the
	// group, and SIGKILL it once the shell has exited and the output is
	// closed, or after the grace period.
	var waitErr error
	shellDone := false
	select {
	case waitErr = <-exited:
		shellDone = true
	case <-ctx.Done():
	}
	g.signal(sigTerm)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for out := scanned; !shellDone || out != nil; {
		select {
		case waitErr = <-exited:
			shellDone = true
			continue
		case <-out:
			out = nil
			continue
		case <-timer.C:
		}
		break
	}
	g.kill()
	if !shellDone {
		waitErr = <-exited
	}
	g.wait()
	select {
	case <-scanned:
	case <-time.After(outputDrain):
		pr.Close() // ends the scan
		<-scanned
		fmt.Fprintf(tc.Log, "%s>: a process outside the script's process group still holds its output open; stopped reading\n", op)
	}

	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if waitErr != nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			xe := &ExitError{Code: ee.ExitCode()}
			if xe.Code < 0 {
				xe.How = ee.ProcessState.String()
			}
			return nil, xe
		}
		return nil, fmt.Errorf("%s>: %w", op, waitErr)
	}
	if sc.err != nil {
		return nil, sc.err
	}
	return &sc, nil
}

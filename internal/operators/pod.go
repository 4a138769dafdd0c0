package operators

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/workflow"
)

// runPod runs a sh> task that has _k8s settings in a Kubernetes pod (the
// settings are in Shell's doc); newRunner connects to the cluster.
func runPod(ctx context.Context, tc *workflow.TaskContext, script string, newRunner func(kubeconfig, context string) (*k8sexec.Runner, error)) (*workflow.Result, error) {
	spec, err := podSpec(tc, script)
	if err != nil {
		return nil, err
	}
	return runPodSpec(ctx, tc, spec, newRunner)
}

// runPodSpec runs spec, built by podSpec, and returns its ::set-param
// lines as stored params.
func runPodSpec(ctx context.Context, tc *workflow.TaskContext, spec k8sexec.Spec, newRunner func(kubeconfig, context string) (*k8sexec.Runner, error)) (*workflow.Result, error) {
	kubeconfig, kubeContext := k8sString(tc, "kubeconfig"), k8sString(tc, "context")
	r, err := newRunner(kubeconfig, kubeContext)
	if err != nil {
		if kubeconfig == "" && kubeContext == "" {
			// docker: or _k8s without a cluster: never run on this host
			return nil, fmt.Errorf("%s> runs in a Kubernetes pod (docker: or _k8s:), never on this host: %w; name the cluster with KUBECONFIG, a kube context, or _k8s: {kubeconfig: ..., context: ...}", tc.Task.Operator, err)
		}
		return nil, err
	}
	res, err := r.Run(ctx, spec)
	fmt.Fprintf(tc.Log, "pod %s/%s: %s, exit code %d\n", res.Namespace, res.Pod, res.Reason, res.ExitCode)
	if err != nil {
		if res.ExitCode > 0 {
			return nil, fmt.Errorf("%w: %w", &ExitError{Code: res.ExitCode}, err)
		}
		return nil, err
	}
	store, err := storeValues(res.Params)
	if err != nil {
		return nil, err
	}
	return &workflow.Result{Store: store}, nil
}

// checkPod is Shell.Validate for a task with _k8s: the checks of podSpec
// on the settings written literally (a value holding ${...} is checked
// when the task runs).
func checkPod(tc *workflow.TaskContext) error {
	if tc.K8s == nil {
		return errors.New("_k8s must be a mapping, e.g. _k8s: {image: python:3.13-slim, memory: 512Mi}")
	}
	script := workflow.Format(tc.Command)
	if script == "" {
		script = "${script}" // known at run time
	}
	if tc.Dynamic["_k8s.image"] {
		tc.K8s["image"] = "image" // known at run time
	}
	_, err := podSpec(tc, script)
	return err
}

// k8sString is the _k8s setting k as a string ("" when absent).
func k8sString(tc *workflow.TaskContext, k string) string {
	if v, ok := tc.K8s[k]; ok && v != nil {
		return workflow.Format(v)
	}
	return ""
}

// podSpec builds and checks the pod of a sh> task with _k8s settings.
func podSpec(tc *workflow.TaskContext, script string) (k8sexec.Spec, error) {
	s := func(k string) string { return k8sString(tc, k) }
	if err := checkK8sKeys(tc.K8s); err != nil {
		return k8sexec.Spec{}, err
	}
	spec := k8sexec.Spec{
		Image:     s("image"),
		Script:    script,
		Namespace: s("namespace"),
		Env:       tc.Env,
		Requests:  k8sexec.Resources{CPU: s("cpu"), Memory: s("memory"), EphemeralStorage: s("ephemeral_storage")},
		Log:       tc.Log,
		Labels:    map[string]string{"tdctl.io/workflow": labelValue(tc.Workflow.Name)},
	}
	if spec.Image == "" {
		return spec, errors.New("_k8s needs image: (the container image to run the script in)")
	}
	if t := s("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return spec, fmt.Errorf("_k8s timeout %q: use a duration such as 30m", t)
		}
		spec.Timeout = d
	}
	if v := s("run_as_user"); v != "" {
		uid, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return spec, fmt.Errorf("_k8s run_as_user %q: use a numeric uid (0 runs as root)", v)
		}
		spec.RunAsUser = &uid
	}
	if v := s("deny_egress"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return spec, fmt.Errorf("_k8s deny_egress %q: use true or false", v)
		}
		spec.DenyEgress = b
	}
	if err := spec.Validate(); err != nil {
		return spec, k8sKeyError(err)
	}
	return spec, nil
}

// labelValue makes s a valid label value (63 characters of [A-Za-z0-9._-]).
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}

// k8sKeys names the _k8s key of each Spec field a task sets.
var k8sKeys = map[string]string{
	"Image": "image", "Namespace": "namespace", "Timeout": "timeout",
	"Requests.CPU": "cpu", "Requests.Memory": "memory", "Requests.EphemeralStorage": "ephemeral_storage",
	"RunAsUser": "run_as_user",
}

// knownK8sKeys is every key _k8s takes.
var knownK8sKeys = []string{"image", "namespace", "timeout", "cpu", "memory", "ephemeral_storage",
	"run_as_user", "deny_egress", "kubeconfig", "context"}

// checkK8sKeys refuses a _k8s key the pod runner does not take, naming the
// closest known key: a misspelt memory: must not run the script without
// its limit.
func checkK8sKeys(k8s map[string]any) error {
	keys := make([]string, 0, len(k8s))
	for k := range k8s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(knownK8sKeys, k) {
			continue
		}
		if near := workflow.ClosestKey(k, knownK8sKeys); near != "" {
			return fmt.Errorf("_k8s: unknown key %q (did you mean %s?)", k, near)
		}
		return fmt.Errorf("_k8s: unknown key %q; known keys: %s", k, strings.Join(knownK8sKeys, ", "))
	}
	return nil
}

// k8sKeyError words a *k8sexec.SpecError after the _k8s key that set the
// field.
func k8sKeyError(err error) error {
	var se *k8sexec.SpecError
	if errors.As(err, &se) {
		if key, ok := k8sKeys[se.Field]; ok {
			return fmt.Errorf("_k8s %s: %s", key, se.Msg)
		}
	}
	return fmt.Errorf("_k8s: %w", err)
}

// knownDockerKeys is what tdctl reads of digdag's docker: setting; the
// others digdag reads are refused (dockerDigdagKeys says why).
var knownDockerKeys = []string{"image"}

var dockerDigdagKeys = map[string]string{
	"pull_always":   "the cluster's image pull policy applies",
	"build":         "build the image beforehand and give it as image:",
	"build_options": "build the image beforehand and give it as image:",
	"run_options":   "give resources and settings under _k8s:",
	"docker":        "the pod runs on Kubernetes, not with a docker command",
	"selinux":       "the pod's security context is tdctl's (see _k8s)",
}

// dockerSetting is digdag's docker: setting of a task (its own key, or an
// exported param): the image to run the script in, "" when not set.
func dockerSetting(tc *workflow.TaskContext) (string, error) {
	v, ok := tc.Config["docker"]
	if !ok {
		v, ok = tc.Scope["docker"]
	}
	if !ok || v == nil {
		return "", nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("docker: must be a mapping such as docker: {image: python:3.13-slim} (got %s)", workflow.Format(v))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if slices.Contains(knownDockerKeys, k) {
			continue
		}
		if why, ok := dockerDigdagKeys[k]; ok {
			return "", fmt.Errorf("docker: %s is a digdag setting tdctl does not support: %s", k, why)
		}
		if near := workflow.ClosestKey(k, knownDockerKeys); near != "" {
			return "", fmt.Errorf("docker: unknown key %q (did you mean %s?)", k, near)
		}
		return "", fmt.Errorf("docker: unknown key %q; tdctl reads image: (other settings go under _k8s:)", k)
	}
	image := workflow.Format(m["image"])
	if image == "" {
		return "", errors.New("docker: needs image:, e.g. docker: {image: python:3.13-slim}")
	}
	return image, nil
}

// podSettings folds docker: into the task's _k8s settings: with docker:
// {image: X} the task runs in a pod of image X (unless _k8s names its own
// image), on the cluster of _k8s or the default kube context. It reports
// whether the task runs in a pod.
func podSettings(tc *workflow.TaskContext) (bool, error) {
	image, err := dockerSetting(tc)
	if err != nil {
		return false, err
	}
	if image != "" {
		if tc.K8s == nil {
			tc.K8s = map[string]any{}
		}
		if k8sString(tc, "image") == "" {
			tc.K8s["image"] = image
		}
	}
	return tc.K8s != nil || tc.Task.K8s != nil, nil
}

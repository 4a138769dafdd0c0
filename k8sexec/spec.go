package k8sexec

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Ownership labels put on everything Run creates; GC finds leftovers by
// LabelManagedBy=ManagedBy.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "tdctl"
	LabelRunID     = "tdctl.io/run-id"
)

// Defaults applied to a Spec.
const (
	// DefaultEphemeralStorage is the ephemeral-storage request and limit
	// when Spec sets neither.
	DefaultEphemeralStorage = "1Gi"
	// DefaultNamePrefix starts the names of the objects Run creates.
	DefaultNamePrefix = "tdctl-"
	// DefaultShell runs Spec.Script.
	DefaultShell = "/bin/sh"
	// DefaultFilesDir is where Spec.Files are mounted.
	DefaultFilesDir = "/tdctl/files"
	// DefaultGracePeriod is the pod's terminationGracePeriodSeconds.
	DefaultGracePeriod = 10 * time.Second
	// ContainerName is the name of the pod's one container.
	ContainerName = "run"
	// DefaultRunAsUser is the uid the container runs as when
	// Spec.RunAsUser is nil: 65532, the "nonroot" user of the distroless
	// and Chainguard images, which has no entry in most other images and
	// owns nothing in them.
	DefaultRunAsUser int64 = 65532
)

// Metadata endpoints denied by the default NetworkPolicy: the IPv4 link-local
// address every major cloud serves instance metadata (and credentials) on,
// and AWS's IPv6 one.
const (
	MetadataCIDR     = "169.254.169.254/32"
	MetadataCIDRIPv6 = "fd00:ec2::254/128"
)

// Spec describes one script run. The CLI fills it from flags: --image
// (Image), --cpu/--memory/--ephemeral-storage (Requests; Limits default to
// them), --timeout (Timeout), --deny-egress (DenyEgress), and the words after
// "--" (Command).
type Spec struct {
	// Namespace to run in; empty uses the Runner's namespace.
	Namespace string
	// Image is the container image (required).
	Image string
	// Command replaces the image's entrypoint; Args are its arguments (or
	// the arguments of the image's entrypoint when Command is empty).
	Command []string
	Args    []string
	// Script, instead of Command, is run as Shell -c Script. It is visible
	// in the pod spec: pass secrets through Secrets or SecretEnv, never
	// inside the script.
	Script string
	// Shell runs Script; default DefaultShell.
	Shell string
	// WorkingDir of the container; empty uses the image's.
	WorkingDir string

	// Env sets plain environment variables.
	Env map[string]string
	// SecretEnv sets environment variables from keys of existing Secrets
	// (valueFrom.secretKeyRef); values never appear in the pod spec.
	SecretEnv map[string]SecretKeyRef
	// Secrets sets environment variables to secret values: Run stores them
	// in a Secret of its own (deleted with the pod) and references it with
	// valueFrom.secretKeyRef, so the values never appear in the pod spec.
	Secrets map[string]string
	// Files are working files (name -> content) put in a ConfigMap of the
	// run's own and mounted read-only under FilesDir.
	Files map[string]string
	// FilesDir is where Files are mounted; default DefaultFilesDir.
	FilesDir string

	// Requests are what the scheduler reserves for the pod.
	Requests Resources
	// Limits cap the pod; a field left empty takes the request's value.
	// EphemeralStorage defaults to DefaultEphemeralStorage for both.
	Limits Resources

	// Timeout bounds the pod's run time (activeDeadlineSeconds, counted by
	// the kubelet from the pod's start, image pull included); 0 means no
	// limit. Exceeding it is a *DeadlineExceededError.
	Timeout time.Duration
	// SchedulingTimeout is how long the pod may stay unschedulable before
	// Run gives up with an *UnschedulableError. 0 fails at the scheduler's
	// first "Unschedulable" verdict; set it when a cluster autoscaler adds
	// nodes on demand.
	SchedulingTimeout time.Duration
	// GracePeriod is the pod's termination grace period; default
	// DefaultGracePeriod.
	GracePeriod time.Duration

	// ServiceAccount runs the pod as this service account. When empty the
	// namespace's default account is used and no API token is mounted.
	ServiceAccount string
	// RunAsUser is the uid the container runs as. nil runs it as
	// DefaultRunAsUser; any uid above 0 runs it as that uid. Either way
	// the pod sets runAsNonRoot, so it passes Pod Security "restricted"
	// (see the package doc for the whole security context).
	//
	// 0 is the opt-out for images that need root: the container runs as
	// root with the container runtime's default capabilities, and
	// runAsNonRoot is not set. Such a pod passes Pod Security "baseline"
	// only; a namespace enforcing "restricted" refuses it. Negative uids
	// are refused.
	RunAsUser *int64
	// Labels are added to the pod (the ownership labels cannot be
	// overridden).
	Labels map[string]string
	// NamePrefix starts the names of created objects; default
	// DefaultNamePrefix. A random run id completes them.
	NamePrefix string

	// DenyEgress denies all egress from the pod (DNS included). By default
	// egress is allowed except to the cloud metadata endpoints.
	DenyEgress bool
	// NetworkPolicy, when set, names an existing NetworkPolicy to rely on
	// instead of creating one: it must select the pod's labels and restrict
	// egress. Run checks that and creates no policy.
	NetworkPolicy string

	// Log receives the container's output (stdout and stderr, as the
	// kubelet interleaves them) line by line as it arrives; nil discards it.
	Log io.Writer
}

// Resources are quantities in Kubernetes notation ("500m", "2", "512Mi",
// "1Gi").
type Resources struct {
	CPU              string
	Memory           string
	EphemeralStorage string
}

// SecretKeyRef names one key of a Secret in the run's namespace.
type SecretKeyRef struct {
	Name string
	Key  string
}

// runIDLen is the length of a run id: hex of five random bytes.
const runIDLen = 10

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// SpecError is a Spec that cannot be run as given (errors.Is
// ErrInvalidSpec). Field is the Spec field's path ("Requests.Memory"), so
// front ends can name their own flag or key for it.
type SpecError struct {
	Field string
	Msg   string // what is wrong with the field's value and how to fix it
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("%v: Spec.%s: %s", ErrInvalidSpec, e.Field, e.Msg)
}

// Is makes errors.Is(err, ErrInvalidSpec) true.
func (e *SpecError) Is(target error) bool { return target == ErrInvalidSpec }

// Validate reports what Run would refuse in s (a *SpecError naming the
// field; errors.Is ErrInvalidSpec), without a cluster: callers check a spec
// before they connect, so a typo in --memory is not hidden behind "no
// cluster configured". An empty Namespace is allowed (the Runner may have
// one).
func (s Spec) Validate() error {
	_, err := s.check()
	return err
}

// checkedSpec is a Spec that passed check, with its defaults applied and
// its quantities parsed: all the builders need besides the run's
// namespace and id. Building from it cannot fail.
type checkedSpec struct {
	Spec
	namePrefix    string
	command, args []string
	resources     corev1.ResourceRequirements
	grace         time.Duration
	filesDir      string
	runAsUser     int64
}

// check validates every field of s, in the order the Spec declares them,
// and stops at the first *SpecError.
func (s Spec) check() (*checkedSpec, error) {
	c := &checkedSpec{Spec: s}
	for _, step := range []func(*checkedSpec) error{
		checkNamespace,
		checkImage,
		checkCommand,
		checkEnv,
		checkFiles,
		checkResources,
		checkDurations,
		checkIdentity,
		checkLabels,
		checkNamePrefix,
		checkNetworkPolicy,
	} {
		if err := step(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkNamespace checks Spec.Namespace when it is set; namespaceFor checks
// the one a run ends up with.
func checkNamespace(c *checkedSpec) error {
	if c.Namespace == "" {
		return nil
	}
	return checkNamespaceName(c.Namespace)
}

// namespaceFor is the namespace a run of s uses: Spec.Namespace, else the
// Runner's.
func namespaceFor(s Spec, runnerNamespace string) (string, error) {
	ns := s.Namespace
	if ns == "" {
		ns = runnerNamespace
	}
	if ns == "" {
		return "", specErr("Namespace", "empty and the Runner has no default namespace; set Spec.Namespace or use WithNamespace")
	}
	return ns, checkNamespaceName(ns)
}

func checkNamespaceName(ns string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return specErr("Namespace", "%q is not a namespace name: %s", ns, errs[0])
	}
	return nil
}

func checkImage(c *checkedSpec) error {
	if strings.TrimSpace(c.Image) == "" {
		return specErr("Image", "empty; give the container image to run, e.g. --image python:3.13-slim")
	}
	if strings.ContainsAny(c.Image, " \t\n") {
		return specErr("Image", "%q contains whitespace", c.Image)
	}
	return nil
}

// checkCommand resolves Script/Shell or Command/Args into the container's
// command and arguments.
func checkCommand(c *checkedSpec) error {
	switch {
	case c.Script != "" && len(c.Command) > 0:
		return specErr("Script", "set together with Command; give one of them")
	case c.Script != "":
		shell := c.Shell
		if shell == "" {
			shell = DefaultShell
		}
		c.command = []string{shell, "-c", c.Script}
		c.args = slices.Clone(c.Args)
		if len(c.args) > 0 {
			// sh -c SCRIPT NAME ARGS...: $0 is NAME, $1... are the args.
			c.args = append([]string{"script"}, c.args...)
		}
	default:
		c.command = slices.Clone(c.Command)
		c.args = slices.Clone(c.Args)
	}
	return nil
}

// checkEnv checks the names of Env, SecretEnv and Secrets (each set once
// across the three) and the Secret references.
func checkEnv(c *checkedSpec) error {
	seen := map[string]string{}
	claim := func(name, field string) error {
		if prev, dup := seen[name]; dup {
			return specErr(field, "environment variable %q is also set by Spec.%s; set it once", name, prev)
		}
		if name == "" || strings.Contains(name, "=") {
			return specErr(field, "environment variable name %q is empty or contains '='", name)
		}
		if errs := validation.IsEnvVarName(name); len(errs) > 0 {
			return specErr(field, "environment variable name %q: %s", name, errs[0])
		}
		seen[name] = field
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if err := claim(k, "Env"); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.SecretEnv)) {
		if err := claim(k, "SecretEnv"); err != nil {
			return err
		}
		ref := c.SecretEnv[k]
		if errs := validation.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
			return specErr("SecretEnv", "%s: Secret name %q: %s", k, ref.Name, errs[0])
		}
		if errs := validation.IsConfigMapKey(ref.Key); len(errs) > 0 {
			return specErr("SecretEnv", "%s: key %q of Secret %s: %s", k, ref.Key, ref.Name, errs[0])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Secrets)) {
		if err := claim(k, "Secrets"); err != nil {
			return err
		}
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			return specErr("Secrets", "%q cannot be a Secret key: %s", k, errs[0])
		}
	}
	return nil
}

func checkFiles(c *checkedSpec) error {
	if len(c.Files) == 0 {
		return nil
	}
	c.filesDir = c.FilesDir
	if c.filesDir == "" {
		c.filesDir = DefaultFilesDir
	}
	if !strings.HasPrefix(c.filesDir, "/") {
		return specErr("FilesDir", "%q is not an absolute path", c.filesDir)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Files)) {
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			return specErr("Files", "file name %q: %s", k, errs[0])
		}
	}
	return nil
}

// checkResources parses Requests and Limits: a side left empty takes the
// other's value, and ephemeral storage defaults to DefaultEphemeralStorage.
func checkResources(c *checkedSpec) error {
	req, lim := c.Requests, c.Limits
	if req.EphemeralStorage == "" && lim.EphemeralStorage == "" {
		req.EphemeralStorage = DefaultEphemeralStorage
	}
	rr := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, r := range []struct {
		name       corev1.ResourceName
		field      string
		req, limit string
		example    string
	}{
		{corev1.ResourceCPU, "CPU", req.CPU, lim.CPU, `"500m" or "2"`},
		{corev1.ResourceMemory, "Memory", req.Memory, lim.Memory, `"512Mi" or "2Gi"`},
		{corev1.ResourceEphemeralStorage, "EphemeralStorage", req.EphemeralStorage, lim.EphemeralStorage, `"1Gi"`},
	} {
		parse := func(which, v string) (*resource.Quantity, error) {
			if v == "" {
				return nil, nil
			}
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return nil, specErr(which+"."+r.field, "%q is not a quantity; use e.g. %s", v, r.example)
			}
			if q.Sign() <= 0 {
				return nil, specErr(which+"."+r.field, "%q must be positive", v)
			}
			return &q, nil
		}
		rq, err := parse("Requests", r.req)
		if err != nil {
			return err
		}
		lq, err := parse("Limits", r.limit)
		if err != nil {
			return err
		}
		if lq == nil && rq != nil {
			lq = ptr(rq.DeepCopy())
		}
		if rq == nil && lq != nil {
			rq = ptr(lq.DeepCopy())
		}
		if rq == nil {
			continue
		}
		if rq.Cmp(*lq) > 0 {
			return specErr("Requests."+r.field, "%s is above the limit %s", rq, lq)
		}
		rr.Requests[r.name] = *rq
		rr.Limits[r.name] = *lq
	}
	c.resources = rr
	return nil
}

func checkDurations(c *checkedSpec) error {
	if c.Timeout < 0 {
		return specErr("Timeout", "%s is negative", c.Timeout)
	}
	if c.SchedulingTimeout < 0 {
		return specErr("SchedulingTimeout", "%s is negative", c.SchedulingTimeout)
	}
	if c.GracePeriod < 0 {
		return specErr("GracePeriod", "%s is negative", c.GracePeriod)
	}
	c.grace = c.GracePeriod
	if c.grace == 0 {
		c.grace = DefaultGracePeriod
	}
	return nil
}

// checkIdentity checks who the pod runs as: ServiceAccount and RunAsUser.
func checkIdentity(c *checkedSpec) error {
	if c.ServiceAccount != "" {
		if errs := validation.IsDNS1123Subdomain(c.ServiceAccount); len(errs) > 0 {
			return specErr("ServiceAccount", "%q: %s", c.ServiceAccount, errs[0])
		}
	}
	c.runAsUser = DefaultRunAsUser
	if c.RunAsUser != nil {
		c.runAsUser = *c.RunAsUser
		if c.runAsUser < 0 {
			return specErr("RunAsUser", "%d is negative; give a uid above 0, 0 to run as root, or leave it unset for %d", c.runAsUser, DefaultRunAsUser)
		}
		if errs := validation.IsValidUserID(c.runAsUser); len(errs) > 0 {
			return specErr("RunAsUser", "%d is not a uid: %s", c.runAsUser, errs[0])
		}
	}
	return nil
}

func checkLabels(c *checkedSpec) error {
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		v := c.Labels[k]
		if k == LabelManagedBy || k == LabelRunID {
			return specErr("Labels", "%q is set by k8sexec and cannot be overridden", k)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return specErr("Labels", "key %q: %s", k, errs[0])
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return specErr("Labels", "value %q of %q: %s", v, k, errs[0])
		}
	}
	return nil
}

// checkNamePrefix checks that NamePrefix followed by a run id (lower-case
// hex) is a valid object name.
func checkNamePrefix(c *checkedSpec) error {
	c.namePrefix = c.NamePrefix
	if c.namePrefix == "" {
		c.namePrefix = DefaultNamePrefix
	}
	maxLen := validation.DNS1123LabelMaxLength - runIDLen
	fix := fmt.Sprintf("use lower-case letters, digits and '-', starting with a letter or digit, at most %d characters", maxLen)
	if len(c.namePrefix) > maxLen {
		return specErr("NamePrefix", "%q is %d characters long; %s", c.namePrefix, len(c.namePrefix), fix)
	}
	// The run id only adds hex digits, so the prefix plus one digit is
	// valid exactly when every name made from it is.
	if errs := validation.IsDNS1123Label(c.namePrefix + "0"); len(errs) > 0 {
		return specErr("NamePrefix", "%q does not start a valid object name: %s; %s", c.namePrefix, errs[0], fix)
	}
	return nil
}

func checkNetworkPolicy(c *checkedSpec) error {
	if c.NetworkPolicy == "" {
		return nil
	}
	if c.DenyEgress {
		return specErr("NetworkPolicy", "set together with DenyEgress; an existing policy decides egress, so give one of them")
	}
	if errs := validation.IsDNS1123Subdomain(c.NetworkPolicy); len(errs) > 0 {
		return specErr("NetworkPolicy", "%q: %s", c.NetworkPolicy, errs[0])
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

package k8sexec

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// when Spec sets neither (the seed's 1Gi).
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

// plan is a validated Spec with defaults applied and every object to create.
type plan struct {
	namespace  string
	runID      string
	name       string
	labels     map[string]string // ownership labels (selectors use these)
	podLabels  map[string]string
	timeout    time.Duration
	schedule   time.Duration
	grace      time.Duration
	memLimit   string
	diskLimit  string
	image      string
	pod        *corev1.Pod
	policy     *networkingv1.NetworkPolicy // nil when reusing one
	reusePol   string
	configMap  *corev1.ConfigMap
	secret     *corev1.Secret
	logWriter  io.Writer
	denyEgress bool
}

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

// Validate reports what Run would refuse in s (an *ErrInvalidSpec error
// naming the field), without a cluster: callers check a spec before they
// connect, so a typo in --memory is not hidden behind "no cluster
// configured". An empty Namespace is allowed (the Runner may have one).
func (s Spec) Validate() error {
	ns := s.Namespace
	if ns == "" {
		ns = "default"
	}
	_, err := buildPlan(s, ns, "0000000000") // a run id as long as newRunID's
	return err
}

// buildPlan validates s and builds the objects of one run.
func buildPlan(s Spec, defaultNamespace, runID string) (*plan, error) {
	p := &plan{runID: runID, logWriter: s.Log, denyEgress: s.DenyEgress}
	if p.logWriter == nil {
		p.logWriter = io.Discard
	}

	p.namespace = s.Namespace
	if p.namespace == "" {
		p.namespace = defaultNamespace
	}
	if p.namespace == "" {
		return nil, specErr("Namespace", "empty and the Runner has no default namespace; set Spec.Namespace or use WithNamespace")
	}
	if errs := validation.IsDNS1123Label(p.namespace); len(errs) > 0 {
		return nil, specErr("Namespace", "%q is not a namespace name: %s", p.namespace, errs[0])
	}

	if strings.TrimSpace(s.Image) == "" {
		return nil, specErr("Image", "empty; give the container image to run, e.g. --image python:3.13-slim")
	}
	if strings.ContainsAny(s.Image, " \t\n") {
		return nil, specErr("Image", "%q contains whitespace", s.Image)
	}
	p.image = s.Image

	prefix := s.NamePrefix
	if prefix == "" {
		prefix = DefaultNamePrefix
	}
	p.name = prefix + runID
	if errs := validation.IsDNS1123Label(p.name); len(errs) > 0 {
		return nil, specErr("NamePrefix", "%q does not make a valid object name (%q): %s; use lower-case letters, digits and '-', at most %d characters",
			prefix, p.name, errs[0], validation.DNS1123LabelMaxLength-len(runID))
	}

	// Container command.
	var command, args []string
	switch {
	case s.Script != "" && len(s.Command) > 0:
		return nil, specErr("Script", "set together with Command; give one of them")
	case s.Script != "":
		shell := s.Shell
		if shell == "" {
			shell = DefaultShell
		}
		command = []string{shell, "-c", s.Script}
		args = slices.Clone(s.Args)
		if len(args) > 0 {
			// sh -c SCRIPT NAME ARGS...: $0 is NAME, $1... are the args.
			args = append([]string{"script"}, args...)
		}
	default:
		command = slices.Clone(s.Command)
		args = slices.Clone(s.Args)
	}

	// Labels.
	p.labels = map[string]string{LabelManagedBy: ManagedBy, LabelRunID: runID}
	p.podLabels = maps.Clone(p.labels)
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		v := s.Labels[k]
		if _, reserved := p.labels[k]; reserved {
			return nil, specErr("Labels", "%q is set by k8sexec and cannot be overridden", k)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, specErr("Labels", "key %q: %s", k, errs[0])
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, specErr("Labels", "value %q of %q: %s", v, k, errs[0])
		}
		p.podLabels[k] = v
	}

	// Environment.
	env, err := buildEnv(s, p.name)
	if err != nil {
		return nil, err
	}

	// Resources.
	res, err := buildResources(s)
	if err != nil {
		return nil, err
	}
	p.memLimit = quantityString(res.Limits, corev1.ResourceMemory)
	p.diskLimit = quantityString(res.Limits, corev1.ResourceEphemeralStorage)

	// Durations.
	if s.Timeout < 0 {
		return nil, specErr("Timeout", "%s is negative", s.Timeout)
	}
	if s.SchedulingTimeout < 0 {
		return nil, specErr("SchedulingTimeout", "%s is negative", s.SchedulingTimeout)
	}
	if s.GracePeriod < 0 {
		return nil, specErr("GracePeriod", "%s is negative", s.GracePeriod)
	}
	p.timeout, p.schedule = s.Timeout, s.SchedulingTimeout
	p.grace = s.GracePeriod
	if p.grace == 0 {
		p.grace = DefaultGracePeriod
	}

	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, Labels: maps.Clone(p.labels)}
	}

	container := corev1.Container{
		Name:       ContainerName,
		Image:      s.Image,
		Command:    command,
		Args:       args,
		WorkingDir: s.WorkingDir,
		Env:        env,
		Resources:  res,
		// The kubelet's message for a failed container is its last output
		// lines when the script leaves no termination-log file.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	podSpec := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		Containers:                    []corev1.Container{container},
		ServiceAccountName:            s.ServiceAccount,
		TerminationGracePeriodSeconds: ptr(int64(math.Ceil(p.grace.Seconds()))),
		EnableServiceLinks:            ptr(false),
	}
	if s.ServiceAccount == "" {
		podSpec.AutomountServiceAccountToken = ptr(false)
	} else if errs := validation.IsDNS1123Subdomain(s.ServiceAccount); len(errs) > 0 {
		return nil, specErr("ServiceAccount", "%q: %s", s.ServiceAccount, errs[0])
	}
	if p.timeout > 0 {
		podSpec.ActiveDeadlineSeconds = ptr(int64(math.Ceil(p.timeout.Seconds())))
	}

	if len(s.Files) > 0 {
		dir := s.FilesDir
		if dir == "" {
			dir = DefaultFilesDir
		}
		if !strings.HasPrefix(dir, "/") {
			return nil, specErr("FilesDir", "%q is not an absolute path", dir)
		}
		cm := &corev1.ConfigMap{ObjectMeta: meta(), Data: map[string]string{}, Immutable: ptr(true)}
		for _, k := range slices.Sorted(maps.Keys(s.Files)) {
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				return nil, specErr("Files", "file name %q: %s", k, errs[0])
			}
			cm.Data[k] = s.Files[k]
		}
		p.configMap = cm
		podSpec.Volumes = append(podSpec.Volumes, corev1.Volume{
			Name: "files",
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: p.name},
			}},
		})
		podSpec.Containers[0].VolumeMounts = append(podSpec.Containers[0].VolumeMounts,
			corev1.VolumeMount{Name: "files", MountPath: dir, ReadOnly: true})
	}
	if len(s.Secrets) > 0 {
		sec := &corev1.Secret{ObjectMeta: meta(), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}, Immutable: ptr(true)}
		for k, v := range s.Secrets {
			sec.Data[k] = []byte(v)
		}
		p.secret = sec
	}

	p.pod = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, Labels: p.podLabels},
		Spec:       podSpec,
	}

	if s.NetworkPolicy != "" {
		if s.DenyEgress {
			return nil, specErr("NetworkPolicy", "set together with DenyEgress; an existing policy decides egress, so give one of them")
		}
		if errs := validation.IsDNS1123Subdomain(s.NetworkPolicy); len(errs) > 0 {
			return nil, specErr("NetworkPolicy", "%q: %s", s.NetworkPolicy, errs[0])
		}
		p.reusePol = s.NetworkPolicy
	} else {
		p.policy = &networkingv1.NetworkPolicy{ObjectMeta: meta(), Spec: egressPolicySpec(p.labels, s.DenyEgress)}
	}
	return p, nil
}

// egressPolicySpec selects the run's pod by its ownership labels and allows
// egress to everything but the metadata endpoints, or to nothing.
//
// Besides the ipBlocks, an empty namespaceSelector peer allows traffic to
// pods in every namespace (cluster DNS among them): several CNIs do not
// apply ipBlock rules to pod and service addresses, and without it DNS would
// break there.
func egressPolicySpec(selector map[string]string, denyAll bool) networkingv1.NetworkPolicySpec {
	spec := networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: maps.Clone(selector)},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		Egress:      []networkingv1.NetworkPolicyEgressRule{},
	}
	if denyAll {
		return spec
	}
	spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{MetadataCIDR}}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{MetadataCIDRIPv6}}},
			{NamespaceSelector: &metav1.LabelSelector{}},
		},
	}}
	return spec
}

func buildEnv(s Spec, secretName string) ([]corev1.EnvVar, error) {
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
	var env []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if err := claim(k, "Env"); err != nil {
			return nil, err
		}
		env = append(env, corev1.EnvVar{Name: k, Value: s.Env[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(s.SecretEnv)) {
		if err := claim(k, "SecretEnv"); err != nil {
			return nil, err
		}
		ref := s.SecretEnv[k]
		if errs := validation.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
			return nil, specErr("SecretEnv", "%s: Secret name %q: %s", k, ref.Name, errs[0])
		}
		if errs := validation.IsConfigMapKey(ref.Key); len(errs) > 0 {
			return nil, specErr("SecretEnv", "%s: key %q of Secret %s: %s", k, ref.Key, ref.Name, errs[0])
		}
		env = append(env, secretEnv(k, ref.Name, ref.Key))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Secrets)) {
		if err := claim(k, "Secrets"); err != nil {
			return nil, err
		}
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			return nil, specErr("Secrets", "%q cannot be a Secret key: %s", k, errs[0])
		}
		env = append(env, secretEnv(k, secretName, k))
	}
	return env, nil
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret},
		Key:                  key,
	}}}
}

func buildResources(s Spec) (corev1.ResourceRequirements, error) {
	req, lim := s.Requests, s.Limits
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
			return rr, err
		}
		lq, err := parse("Limits", r.limit)
		if err != nil {
			return rr, err
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
			return rr, specErr("Requests."+r.field, "%s is above the limit %s", rq, lq)
		}
		rr.Requests[r.name] = *rq
		rr.Limits[r.name] = *lq
	}
	return rr, nil
}

func quantityString(l corev1.ResourceList, name corev1.ResourceName) string {
	if q, ok := l[name]; ok {
		return q.String()
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

package k8sexec

import (
	"io"
	"maps"
	"math"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// plan is one run of a checked Spec: its names and every object to create.
type plan struct {
	namespace string
	runID     string
	name      string            // of the pod and of every object beside it
	labels    map[string]string // ownership labels (selectors use these)
	podLabels map[string]string // labels plus Spec.Labels
	timeout   time.Duration
	schedule  time.Duration
	grace     time.Duration
	memLimit  string
	diskLimit string
	image     string
	runAsRoot bool
	logWriter io.Writer

	pod       *corev1.Pod
	policy    *networkingv1.NetworkPolicy // nil when reusing one
	reusePol  string                      // the NetworkPolicy to reuse
	configMap *corev1.ConfigMap           // nil without Spec.Files
	secret    *corev1.Secret              // nil without Spec.Secrets
}

// newPlan names the run's objects after runID and builds them.
func newPlan(c *checkedSpec, namespace, runID string) *plan {
	p := &plan{
		namespace: namespace,
		runID:     runID,
		name:      c.namePrefix + runID,
		labels:    map[string]string{LabelManagedBy: ManagedBy, LabelRunID: runID},
		timeout:   c.Timeout,
		schedule:  c.SchedulingTimeout,
		grace:     c.grace,
		memLimit:  quantityString(c.resources.Limits, corev1.ResourceMemory),
		diskLimit: quantityString(c.resources.Limits, corev1.ResourceEphemeralStorage),
		image:     c.Image,
		runAsRoot: c.runAsUser == 0,
		logWriter: c.Log,
	}
	if p.logWriter == nil {
		p.logWriter = io.Discard
	}
	p.podLabels = maps.Clone(p.labels)
	maps.Copy(p.podLabels, c.Labels)

	p.pod = buildPod(c, p)
	if c.NetworkPolicy != "" {
		p.reusePol = c.NetworkPolicy
	} else {
		p.policy = buildNetworkPolicy(p, c.DenyEgress)
	}
	if len(c.Files) > 0 {
		p.configMap = buildConfigMap(c, p)
	}
	if len(c.Secrets) > 0 {
		p.secret = buildSecret(c, p)
	}
	return p
}

// meta is the metadata of the objects beside the pod: the pod's name and
// the ownership labels.
func (p *plan) meta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, Labels: maps.Clone(p.labels)}
}

// buildPod builds the pod: one container, restartPolicy Never, the
// security contexts of podSecurity, no service links, no API token unless
// a service account is named, and the Files volume.
func buildPod(c *checkedSpec, p *plan) *corev1.Pod {
	podSC, containerSC := podSecurity(c.runAsUser)
	container := corev1.Container{
		Name:            ContainerName,
		Image:           c.Image,
		Command:         c.command,
		Args:            c.args,
		WorkingDir:      c.WorkingDir,
		Env:             podEnv(c, p.name),
		Resources:       *c.resources.DeepCopy(),
		SecurityContext: containerSC,
		// The kubelet's message for a failed container is its last output
		// lines when the script leaves no termination-log file.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	spec := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		ServiceAccountName:            c.ServiceAccount,
		SecurityContext:               podSC,
		TerminationGracePeriodSeconds: ptr(int64(math.Ceil(p.grace.Seconds()))),
		EnableServiceLinks:            ptr(false),
	}
	if c.ServiceAccount == "" {
		spec.AutomountServiceAccountToken = ptr(false)
	}
	if p.timeout > 0 {
		spec.ActiveDeadlineSeconds = ptr(int64(math.Ceil(p.timeout.Seconds())))
	}
	if len(c.Files) > 0 {
		spec.Volumes = []corev1.Volume{{
			Name: "files",
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: p.name},
			}},
		}}
		container.VolumeMounts = []corev1.VolumeMount{{Name: "files", MountPath: c.filesDir, ReadOnly: true}}
	}
	spec.Containers = []corev1.Container{container}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, Labels: maps.Clone(p.podLabels)},
		Spec:       spec,
	}
}

// podSecurity returns the pod's and the container's security contexts.
// For a non-root uid they meet Pod Security "restricted": runAsNonRoot
// with that numeric uid, the runtime's default seccomp profile, no
// privilege escalation, every capability dropped. uid 0 (the opt-out)
// runs as root with the runtime's default capabilities, still without
// privilege escalation and with the default seccomp profile: "baseline".
func podSecurity(uid int64) (*corev1.PodSecurityContext, *corev1.SecurityContext) {
	pod := &corev1.PodSecurityContext{
		RunAsUser:      ptr(uid),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	container := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)}
	if uid != 0 {
		pod.RunAsNonRoot = ptr(true)
		container.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
	return pod, container
}

// podEnv is the container's environment: Env as values, SecretEnv and
// Secrets (stored in the run's Secret, secretName) as secretKeyRefs.
func podEnv(c *checkedSpec, secretName string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		env = append(env, corev1.EnvVar{Name: k, Value: c.Env[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(c.SecretEnv)) {
		ref := c.SecretEnv[k]
		env = append(env, secretEnv(k, ref.Name, ref.Key))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Secrets)) {
		env = append(env, secretEnv(k, secretName, k))
	}
	return env
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret},
		Key:                  key,
	}}}
}

// buildNetworkPolicy builds the pod's egress policy (see egressPolicySpec).
func buildNetworkPolicy(p *plan, denyAll bool) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: p.meta(), Spec: egressPolicySpec(p.labels, denyAll)}
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

// buildConfigMap builds the immutable ConfigMap holding Spec.Files.
func buildConfigMap(c *checkedSpec, p *plan) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: p.meta(), Data: maps.Clone(c.Files), Immutable: ptr(true)}
}

// buildSecret builds the immutable Secret holding Spec.Secrets.
func buildSecret(c *checkedSpec, p *plan) *corev1.Secret {
	sec := &corev1.Secret{ObjectMeta: p.meta(), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}, Immutable: ptr(true)}
	for k, v := range c.Secrets {
		sec.Data[k] = []byte(v)
	}
	return sec
}

func quantityString(l corev1.ResourceList, name corev1.ResourceName) string {
	if q, ok := l[name]; ok {
		return q.String()
	}
	return ""
}

package k8sexec_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tdctl/tdctl/k8sexec"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunSuccessStreamsLogsAndParams(t *testing.T) {
	e := setup(t)
	e.serveLogs(append(
		lines(t0, 300*time.Millisecond, "starting", "::set-param last_executed_time=2026-11-24 21:00:00", "  ::set-param {\"rows\": 1200, \"ok\": true}"),
		lines(t0.Add(2*time.Second), 0, "done", "::set-param rows=1300")...))
	kubelet := e.kubelet(running, exited(0, "Completed"))

	var out syncBuffer
	res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "python:3.13-slim", Script: "python job.py", Log: &out})
	<-kubelet
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, "Completed", res.Reason)
	assert.Equal(t, ns, res.Namespace)
	assert.Equal(t, "tdctl-"+res.RunID, res.Pod)
	assert.Equal(t, t0, res.StartedAt.UTC())
	assert.Equal(t, t0.Add(3*time.Second), res.FinishedAt.UTC())

	// Every line once, timestamps stripped, although the log was read more
	// than once (the follow stream, then a last read after the container
	// ended).
	assert.Equal(t, joinLines("starting", "::set-param last_executed_time=2026-11-24 21:00:00",
		"  ::set-param {\"rows\": 1200, \"ok\": true}", "done", "::set-param rows=1300"), out.String())
	assert.Equal(t, map[string]json.RawMessage{
		"last_executed_time": json.RawMessage(`"2026-11-24 21:00:00"`),
		"rows":               json.RawMessage(`"1300"`), // the later line wins
		"ok":                 json.RawMessage(`true`),
	}, res.Params)

	reqs := e.logRequests()
	require.NotEmpty(t, reqs)
	for _, o := range reqs {
		assert.Equal(t, k8sexec.ContainerName, o.Container)
		assert.True(t, o.Timestamps, "timestamps are needed to resume without duplicates")
	}
	last := reqs[len(reqs)-1]
	assert.False(t, last.Follow, "the last read happens after the container ended")
	if len(reqs) > 1 {
		assert.True(t, reqs[0].Follow, "logs are followed while the container runs")
	}

	assert.Equal(t, []string{"create networkpolicies", "create pods", "delete pods", "delete networkpolicies"}, e.verbs(false))
	e.requireNothingLeft()
}

func TestRunPodSpec(t *testing.T) {
	e := setup(t)
	kubelet := e.kubelet(exited(0, "Completed"))
	res, err := e.runner.Run(ctxT(t), k8sexec.Spec{
		Image:          "registry.example.com/acme/job:1.2",
		Script:         "./job.sh \"$1\"",
		Args:           []string{"2026-11-24"},
		Env:            map[string]string{"TD_DATABASE": "www_access"},
		SecretEnv:      map[string]k8sexec.SecretKeyRef{"DB_PASSWORD": {Name: "db", Key: "password"}},
		Secrets:        map[string]string{"TD_API_KEY": "1/0123456789abcdef"},
		Files:          map[string]string{"job.sh": "#!/bin/sh\necho hi\n"},
		Requests:       k8sexec.Resources{CPU: "500m", Memory: "512Mi"},
		Limits:         k8sexec.Resources{CPU: "2"},
		Timeout:        90 * time.Minute,
		ServiceAccount: "etl",
		Labels:         map[string]string{"team": "data"},
		WorkingDir:     "/tdctl/files",
	})
	<-kubelet
	require.NoError(t, err)
	pod := e.createdPod()

	assert.Equal(t, res.Pod, pod.Name)
	assert.Equal(t, ns, pod.Namespace)
	assert.Equal(t, map[string]string{k8sexec.LabelManagedBy: "tdctl", k8sexec.LabelRunID: res.RunID, "team": "data"}, pod.Labels)
	assert.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy)
	assert.Equal(t, int64(5400), *pod.Spec.ActiveDeadlineSeconds)
	assert.Equal(t, "etl", pod.Spec.ServiceAccountName)
	assert.Nil(t, pod.Spec.AutomountServiceAccountToken, "a named service account keeps its token")
	assert.Equal(t, int64(10), *pod.Spec.TerminationGracePeriodSeconds)

	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	assert.Equal(t, "registry.example.com/acme/job:1.2", c.Image)
	assert.Equal(t, []string{"/bin/sh", "-c", "./job.sh \"$1\""}, c.Command)
	assert.Equal(t, []string{"script", "2026-11-24"}, c.Args)
	assert.Equal(t, "/tdctl/files", c.WorkingDir)

	// Requests and limits as asked; ephemeral storage defaults to 1Gi.
	assert.Equal(t, "500m", qty(c.Resources.Requests, corev1.ResourceCPU))
	assert.Equal(t, "2", qty(c.Resources.Limits, corev1.ResourceCPU))
	assert.Equal(t, "512Mi", qty(c.Resources.Requests, corev1.ResourceMemory))
	assert.Equal(t, "512Mi", qty(c.Resources.Limits, corev1.ResourceMemory))
	assert.Equal(t, "1Gi", qty(c.Resources.Requests, corev1.ResourceEphemeralStorage))
	assert.Equal(t, "1Gi", qty(c.Resources.Limits, corev1.ResourceEphemeralStorage))

	// Env: plain values plain, secrets only as secretKeyRef.
	env := map[string]corev1.EnvVar{}
	for _, v := range c.Env {
		env[v.Name] = v
	}
	assert.Equal(t, "www_access", env["TD_DATABASE"].Value)
	require.NotNil(t, env["DB_PASSWORD"].ValueFrom)
	assert.Equal(t, "db", env["DB_PASSWORD"].ValueFrom.SecretKeyRef.Name)
	assert.Equal(t, "password", env["DB_PASSWORD"].ValueFrom.SecretKeyRef.Key)
	assert.Empty(t, env["DB_PASSWORD"].Value)
	require.NotNil(t, env["TD_API_KEY"].ValueFrom)
	assert.Equal(t, res.Pod, env["TD_API_KEY"].ValueFrom.SecretKeyRef.Name)
	assert.Equal(t, "TD_API_KEY", env["TD_API_KEY"].ValueFrom.SecretKeyRef.Key)
	podJSON, err := json.Marshal(pod)
	require.NoError(t, err)
	assert.NotContains(t, string(podJSON), "0123456789abcdef", "a secret value is in the pod spec")

	// The run's Secret and ConfigMap, labelled like the pod.
	require.Len(t, e.secrets, 1)
	assert.Equal(t, res.Pod, e.secrets[0].Name)
	assert.Equal(t, "1/0123456789abcdef", string(e.secrets[0].Data["TD_API_KEY"]))
	assert.Equal(t, "tdctl", e.secrets[0].Labels[k8sexec.LabelManagedBy])
	require.Len(t, e.cms, 1)
	assert.Equal(t, "#!/bin/sh\necho hi\n", e.cms[0].Data["job.sh"])
	require.Len(t, pod.Spec.Volumes, 1)
	assert.Equal(t, res.Pod, pod.Spec.Volumes[0].ConfigMap.Name)
	require.Len(t, c.VolumeMounts, 1)
	assert.Equal(t, k8sexec.DefaultFilesDir, c.VolumeMounts[0].MountPath)
	assert.True(t, c.VolumeMounts[0].ReadOnly)

	assert.Equal(t, []string{"create secrets", "create configmaps", "create networkpolicies", "create pods",
		"delete pods", "delete networkpolicies", "delete configmaps", "delete secrets"}, e.verbs(false))
	e.requireNothingLeft()
}

func TestRunCommandAndDefaults(t *testing.T) {
	e := setup(t)
	kubelet := e.kubelet(exited(0, "Completed"))
	_, err := e.runner.Run(ctxT(t), k8sexec.Spec{
		Image:    "busybox",
		Command:  []string{"sh", "-c", "echo hi"},
		Requests: k8sexec.Resources{Memory: "1Gi", EphemeralStorage: "2Gi"},
	})
	<-kubelet
	require.NoError(t, err)
	pod := e.createdPod()
	c := pod.Spec.Containers[0]
	assert.Equal(t, []string{"sh", "-c", "echo hi"}, c.Command)
	assert.Empty(t, c.Args)
	assert.Nil(t, pod.Spec.ActiveDeadlineSeconds, "no timeout, no deadline")
	assert.Equal(t, false, *pod.Spec.AutomountServiceAccountToken, "no API token without a service account")
	assert.Empty(t, pod.Spec.ServiceAccountName)
	assert.Equal(t, "2Gi", qty(c.Resources.Limits, corev1.ResourceEphemeralStorage))
	assert.Equal(t, "1Gi", qty(c.Resources.Limits, corev1.ResourceMemory))
	_, hasCPU := c.Resources.Limits[corev1.ResourceCPU]
	assert.False(t, hasCPU, "no CPU limit unless asked")
}

// The pod Run builds passes Pod Security "restricted" by default: a
// numeric non-root uid with runAsNonRoot, RuntimeDefault seccomp, no
// privilege escalation, every capability dropped, no API token. RunAsUser
// changes the uid; 0 is the root opt-out.
func TestPodSecurityContext(t *testing.T) {
	run := func(t *testing.T, spec k8sexec.Spec) *corev1.Pod {
		t.Helper()
		e := setup(t)
		kubelet := e.kubelet(exited(0, "Completed"))
		_, err := e.runner.Run(ctxT(t), spec)
		<-kubelet
		require.NoError(t, err)
		return e.createdPod()
	}
	requireRestricted := func(t *testing.T, pod *corev1.Pod, uid int64) {
		t.Helper()
		psc := pod.Spec.SecurityContext
		require.NotNil(t, psc, "pod securityContext")
		require.NotNil(t, psc.RunAsNonRoot)
		assert.True(t, *psc.RunAsNonRoot)
		require.NotNil(t, psc.RunAsUser)
		assert.Equal(t, uid, *psc.RunAsUser)
		require.NotNil(t, psc.SeccompProfile)
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
		assert.Equal(t, false, *pod.Spec.AutomountServiceAccountToken, "no API token unless a service account is named")

		require.Len(t, pod.Spec.Containers, 1)
		sc := pod.Spec.Containers[0].SecurityContext
		require.NotNil(t, sc, "container securityContext")
		require.NotNil(t, sc.AllowPrivilegeEscalation)
		assert.False(t, *sc.AllowPrivilegeEscalation)
		require.NotNil(t, sc.Capabilities)
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
		assert.Empty(t, sc.Capabilities.Add)
		assert.Nil(t, sc.Privileged)
		assert.Nil(t, sc.RunAsNonRoot, "the pod's setting applies")
		assert.Nil(t, sc.RunAsUser, "the pod's setting applies")
	}

	t.Run("default: restricted, uid 65532", func(t *testing.T) {
		pod := run(t, k8sexec.Spec{Image: "busybox", Script: "id -u"})
		requireRestricted(t, pod, 65532)
		assert.Equal(t, int64(65532), k8sexec.DefaultRunAsUser)
	})
	t.Run("RunAsUser 1000: restricted, uid 1000", func(t *testing.T) {
		pod := run(t, k8sexec.Spec{Image: "busybox", Script: "id -u", RunAsUser: ptrInt64(1000)})
		requireRestricted(t, pod, 1000)
	})
	t.Run("RunAsUser 0: root, no runAsNonRoot, default capabilities", func(t *testing.T) {
		pod := run(t, k8sexec.Spec{Image: "debian", Script: "apt-get install -y jq", RunAsUser: ptrInt64(0)})
		psc := pod.Spec.SecurityContext
		require.NotNil(t, psc)
		assert.Nil(t, psc.RunAsNonRoot, "root is the opt-out: runAsNonRoot is not set")
		require.NotNil(t, psc.RunAsUser)
		assert.Equal(t, int64(0), *psc.RunAsUser)
		require.NotNil(t, psc.SeccompProfile)
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type, "seccomp stays on")
		sc := pod.Spec.Containers[0].SecurityContext
		require.NotNil(t, sc)
		assert.False(t, *sc.AllowPrivilegeEscalation, "no privilege escalation even for root")
		assert.Nil(t, sc.Capabilities, "root keeps the runtime's default capabilities")
		assert.Equal(t, false, *pod.Spec.AutomountServiceAccountToken)
	})
	t.Run("a named service account gets its token, the rest stays", func(t *testing.T) {
		pod := run(t, k8sexec.Spec{Image: "busybox", Script: "true", ServiceAccount: "etl"})
		assert.Nil(t, pod.Spec.AutomountServiceAccountToken)
		assert.True(t, *pod.Spec.SecurityContext.RunAsNonRoot)
	})
}

// A pod the namespace's Pod Security admission refuses: the apiserver's
// reason in one line, the fix after it, the API error type kept, and the
// objects created before the pod deleted.
func TestPodSecurityRejection(t *testing.T) {
	const reason = `violates PodSecurity "restricted:latest": runAsNonRoot != true (pod or container "run" must set securityContext.runAsNonRoot=true), runAsUser=0 (pod must not set runAsUser=0)`
	e := setup(t)
	e.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name
		return true, nil, apierrors.NewForbidden(podsGVR.GroupResource(), name, errors.New(reason))
	})
	res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "debian", Script: "true", RunAsUser: ptrInt64(0), Secrets: map[string]string{"K": "v"}})
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "the API error stays reachable: %v", err)
	msg := err.Error()
	assert.NotContains(t, msg, "\n")
	assert.Contains(t, msg, "k8sexec: create Pod "+ns+"/"+res.Pod+": pods \""+res.Pod+"\" is forbidden: "+reason)
	assert.Contains(t, msg, "does not admit root: leave RunAsUser unset (uid 65532) or above 0")
	assert.NotContains(t, msg, "grant create on pods", "not a permission problem")
	assert.Equal(t, -1, res.ExitCode)
	e.requireNothingLeft()

	t.Run("a plain forbidden create keeps the RBAC hint", func(t *testing.T) {
		e := setup(t)
		e.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(podsGVR.GroupResource(), "", errors.New(`User "ci" cannot create resource "pods"`))
		})
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true"})
		assert.ErrorContains(t, err, "; grant create on pods")
	})
}

func ptrInt64(v int64) *int64 { return &v }

func qty(l corev1.ResourceList, n corev1.ResourceName) string {
	q, ok := l[n]
	if !ok {
		return ""
	}
	return q.String()
}

func TestNetworkPolicy(t *testing.T) {
	t.Run("metadata denied, other egress allowed", func(t *testing.T) {
		e := setup(t)
		kubelet := e.kubelet(exited(0, "Completed"))
		res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", Labels: map[string]string{"team": "data"}})
		<-kubelet
		require.NoError(t, err)
		np := e.createdPolicy()
		assert.Equal(t, res.Pod, np.Name)
		assert.Equal(t, "tdctl", np.Labels[k8sexec.LabelManagedBy])
		assert.Equal(t, map[string]string{k8sexec.LabelManagedBy: "tdctl", k8sexec.LabelRunID: res.RunID}, np.Spec.PodSelector.MatchLabels)
		assert.Empty(t, np.Spec.PodSelector.MatchExpressions)
		assert.Equal(t, "[Egress]", toString(np.Spec.PolicyTypes))
		require.Len(t, np.Spec.Egress, 1)
		peers := np.Spec.Egress[0].To
		require.Len(t, peers, 3)
		assert.Equal(t, "0.0.0.0/0", peers[0].IPBlock.CIDR)
		assert.Equal(t, []string{"169.254.169.254/32"}, peers[0].IPBlock.Except)
		assert.Equal(t, "::/0", peers[1].IPBlock.CIDR)
		assert.Equal(t, []string{"fd00:ec2::254/128"}, peers[1].IPBlock.Except)
		require.NotNil(t, peers[2].NamespaceSelector, "in-cluster traffic (DNS) allowed")
		assert.Empty(t, peers[2].NamespaceSelector.MatchLabels)
		assert.Empty(t, np.Spec.Egress[0].Ports, "all ports")
		assert.Empty(t, np.Spec.Ingress)
	})
	t.Run("deny all egress", func(t *testing.T) {
		e := setup(t)
		kubelet := e.kubelet(exited(0, "Completed"))
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", DenyEgress: true})
		<-kubelet
		require.NoError(t, err)
		np := e.createdPolicy()
		assert.Equal(t, "[Egress]", toString(np.Spec.PolicyTypes))
		assert.NotNil(t, np.Spec.Egress)
		assert.Empty(t, np.Spec.Egress, "no egress rule: nothing allowed")
	})
	t.Run("reuse an existing policy", func(t *testing.T) {
		e := setup(t, networkingv1NP{name: "team-egress", labels: map[string]string{"team": "data"}, egress: true}.obj())
		kubelet := e.kubelet(exited(0, "Completed"))
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", NetworkPolicy: "team-egress", Labels: map[string]string{"team": "data"}})
		<-kubelet
		require.NoError(t, err)
		assert.Equal(t, []string{"create pods", "delete pods"}, e.verbs(false), "no policy created or deleted")
		_, err = e.cs.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), "team-egress", metav1GetOptions)
		require.NoError(t, err, "the reused policy stays")
	})
	t.Run("reused policy must select the pod", func(t *testing.T) {
		e := setup(t, networkingv1NP{name: "team-egress", labels: map[string]string{"team": "web"}, egress: true}.obj(),
			networkingv1NP{name: "ingress-only", labels: map[string]string{"team": "data"}}.obj())
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", NetworkPolicy: "team-egress", Labels: map[string]string{"team": "data"}})
		require.ErrorIs(t, err, k8sexec.ErrInvalidSpec)
		assert.ErrorContains(t, err, `does not select the pod's labels`)
		_, err = e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", NetworkPolicy: "ingress-only", Labels: map[string]string{"team": "data"}})
		assert.ErrorContains(t, err, "does not restrict egress")
		_, err = e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", NetworkPolicy: "missing"})
		assert.ErrorContains(t, err, `NetworkPolicy "missing" not found in namespace jobs`)
		assert.Empty(t, e.verbs(false), "nothing created")
	})
	t.Run("forbidden policy creation says what to do and leaves nothing", func(t *testing.T) {
		e := setup(t)
		e.cs.PrependReactor("create", "networkpolicies", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}, "", errors.New("RBAC: access denied"))
		})
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", Secrets: map[string]string{"K": "v"}})
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err), "the API error stays inspectable: %v", err)
		assert.ErrorContains(t, err, "grant create on networkpolicies.networking.k8s.io, or set Spec.NetworkPolicy")
		assert.Equal(t, []string{"create secrets", "create networkpolicies", "delete secrets"}, e.verbs(false))
		e.requireNothingLeft()
	})
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	// ["Egress"] -> [Egress]
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r != '"' {
			out = append(out, r)
		}
	}
	return string(out)
}

func TestOutcomes(t *testing.T) {
	exit137 := int32(137)
	cases := []struct {
		name     string
		spec     k8sexec.Spec
		steps    []step
		is       error
		as       func(t *testing.T, err error)
		exitCode int
		reason   string
		msg      string
	}{
		{
			name:     "non-zero exit",
			steps:    []step{running, exited(3, "Error")},
			is:       k8sexec.ErrNonZeroExit,
			exitCode: 3, reason: "Error",
			msg: "script exited with code 3",
			as: func(t *testing.T, err error) {
				var ee *k8sexec.ExitError
				require.ErrorAs(t, err, &ee)
				assert.Equal(t, 3, ee.ExitCode)
				assert.False(t, ee.OOMKilled())
				assert.NotErrorIs(t, err, k8sexec.ErrOOMKilled)
			},
		},
		{
			name:     "OOMKilled",
			spec:     k8sexec.Spec{Requests: k8sexec.Resources{Memory: "256Mi"}},
			steps:    []step{running, exited(137, "OOMKilled")},
			is:       k8sexec.ErrOOMKilled,
			exitCode: 137, reason: "OOMKilled",
			msg: "OOMKilled, exit code 137, memory limit 256Mi",
			as: func(t *testing.T, err error) {
				var ee *k8sexec.ExitError
				require.ErrorAs(t, err, &ee)
				assert.True(t, ee.OOMKilled())
				assert.ErrorIs(t, err, k8sexec.ErrNonZeroExit)
			},
		},
		{
			name: "evicted for ephemeral storage (the seed's exit 137)",
			steps: []step{running, podFailed("Evicted",
				"Pod ephemeral local storage usage exceeds the total limit of containers 1Gi. ", &exit137)},
			is:       k8sexec.ErrEvicted,
			exitCode: 137, reason: "Evicted",
			msg: "evicted: ephemeral local storage usage exceeds the total limit of containers (limit 1Gi)",
			as: func(t *testing.T, err error) {
				var ev *k8sexec.EvictedError
				require.ErrorAs(t, err, &ev)
				assert.True(t, ev.EphemeralStorage)
				assert.Equal(t, "1Gi", ev.EphemeralStorageLimit)
				assert.Equal(t, 137, ev.ExitCode)
				assert.NotErrorIs(t, err, k8sexec.ErrNonZeroExit)
			},
		},
		{
			name:  "evicted for a container over its own storage limit, custom limit",
			spec:  k8sexec.Spec{Limits: k8sexec.Resources{EphemeralStorage: "5Gi"}},
			steps: []step{running, podFailed("Evicted", `Container run exceeded its local ephemeral storage limit "5Gi". `, nil)},
			is:    k8sexec.ErrEvicted, exitCode: -1, reason: "Evicted",
			msg: "(limit 5Gi)",
		},
		{
			name:  "evicted for node memory pressure",
			steps: []step{running, podFailed("Evicted", "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. ", nil)},
			is:    k8sexec.ErrEvicted, exitCode: -1, reason: "Evicted",
			msg: "evicted: The node was low on resource: memory.",
			as: func(t *testing.T, err error) {
				var ev *k8sexec.EvictedError
				require.ErrorAs(t, err, &ev)
				assert.False(t, ev.EphemeralStorage)
			},
		},
		{
			name:  "deadline exceeded",
			spec:  k8sexec.Spec{Timeout: 90 * time.Second},
			steps: []step{running, podFailed("DeadlineExceeded", "Pod was active on the node longer than the specified deadline", nil)},
			is:    k8sexec.ErrDeadlineExceeded, exitCode: -1, reason: "DeadlineExceeded",
			msg: "longer than its timeout of 1m30s",
			as: func(t *testing.T, err error) {
				var de *k8sexec.DeadlineExceededError
				require.ErrorAs(t, err, &de)
				assert.Equal(t, 90*time.Second, de.Timeout)
				assert.NotErrorIs(t, err, context.DeadlineExceeded)
			},
		},
		{
			name:  "image pull error fails fast",
			steps: []step{scheduled, waiting("ErrImagePull", `rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/busybox:nope": not found`)},
			is:    k8sexec.ErrImagePull, exitCode: -1, reason: "ErrImagePull",
			msg: `cannot pull image "busybox:nope" (ErrImagePull)`,
			as: func(t *testing.T, err error) {
				var ie *k8sexec.ImagePullError
				require.ErrorAs(t, err, &ie)
				assert.Equal(t, "busybox:nope", ie.Image)
			},
		},
		{
			name:  "image pull back-off",
			steps: []step{scheduled, waiting("ImagePullBackOff", `Back-off pulling image "busybox:nope"`)},
			is:    k8sexec.ErrImagePull, exitCode: -1, reason: "ImagePullBackOff",
			msg: `cannot pull image "busybox:nope" (ImagePullBackOff)`,
		},
		{
			name:  "unschedulable with the scheduler's reason",
			steps: []step{unschedulable("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available.")},
			is:    k8sexec.ErrUnschedulable, exitCode: -1, reason: "Unschedulable",
			msg: "cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory.",
			as: func(t *testing.T, err error) {
				var ue *k8sexec.UnschedulableError
				require.ErrorAs(t, err, &ue)
				assert.Contains(t, ue.Message, "Insufficient memory")
			},
		},
		{
			name:  "missing secret key",
			steps: []step{scheduled, waiting("CreateContainerConfigError", `couldn't find key password in Secret jobs/db`)},
			is:    k8sexec.ErrPodFailed, exitCode: -1, reason: "CreateContainerConfigError",
			msg: "CreateContainerConfigError: couldn't find key password in Secret jobs/db",
		},
		{
			name:  "failed without exit code",
			steps: []step{podFailed("", "", nil)},
			is:    k8sexec.ErrPodFailed, exitCode: -1, reason: "Failed",
			msg: "failed: Failed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.serveLogs(lines(t0, time.Second, "working"))
			kubelet := e.kubelet(tc.steps...)
			spec := tc.spec
			spec.Image = "busybox:nope"
			spec.Script = "work"
			res, err := e.runner.Run(ctxT(t), spec)
			<-kubelet
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			assert.ErrorContains(t, err, tc.msg)
			assert.Contains(t, err.Error(), res.Pod, "errors name the pod")
			assert.Equal(t, tc.exitCode, res.ExitCode)
			assert.Equal(t, tc.reason, res.Reason)
			if tc.as != nil {
				tc.as(t, err)
			}
			// Cleanup on every outcome.
			assert.Equal(t, []string{"create networkpolicies", "create pods", "delete pods", "delete networkpolicies"}, e.verbs(false))
			e.requireNothingLeft()
		})
	}
}

func TestUnschedulableGrace(t *testing.T) {
	t.Run("scheduled within the grace", func(t *testing.T) {
		e := setup(t)
		e.serveLogs(lines(t0, time.Second, "ok"))
		kubelet := e.kubelet(unschedulable("0/1 nodes are available: 1 Insufficient cpu."), running, exited(0, "Completed"))
		res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", SchedulingTimeout: time.Minute})
		<-kubelet
		require.NoError(t, err)
		assert.Equal(t, 0, res.ExitCode)
	})
	t.Run("still unschedulable after the grace", func(t *testing.T) {
		e := setup(t)
		kubelet := e.kubelet(unschedulable("0/1 nodes are available: 1 Insufficient cpu."))
		start := time.Now()
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", SchedulingTimeout: 100 * time.Millisecond})
		<-kubelet
		require.ErrorIs(t, err, k8sexec.ErrUnschedulable)
		assert.ErrorContains(t, err, "Insufficient cpu")
		assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
		e.requireNothingLeft()
	})
}

func TestPodDeletedBySomeoneElse(t *testing.T) {
	e := setup(t)
	// Delete the pod once Run watches it (the fake's watch cannot replay
	// a deletion that happened before it started, as a real one can from
	// a resourceVersion).
	watching := make(chan string, 10)
	runner := e.newRunner(&wrapClient{Client: e.client, watchPods: func(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
		w, err := e.client.WatchPods(ctx, namespace, opts)
		watching <- strings.TrimPrefix(opts.FieldSelector, "metadata.name=")
		return w, err
	}})
	go func() {
		_ = e.cs.Tracker().Delete(podsGVR, ns, <-watching)
	}()
	res, err := runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "sleep 60"})
	require.ErrorIs(t, err, k8sexec.ErrPodFailed)
	assert.ErrorContains(t, err, "deleted before it finished")
	assert.Equal(t, -1, res.ExitCode)
	assert.Equal(t, "Deleted", res.Reason)
	e.requireNothingLeft()

	t.Run("before the watch starts", func(t *testing.T) {
		e := setup(t)
		e.cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetSubresource() == "" {
				return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, a.(k8stesting.GetAction).GetName())
			}
			return false, nil, nil
		})
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "sleep 60"})
		require.ErrorIs(t, err, k8sexec.ErrPodFailed)
		assert.ErrorContains(t, err, "deleted before it finished")
	})
}

func TestCancelDeletesPodAndPolicy(t *testing.T) {
	e := setup(t)
	e.serveLogs(lines(t0, time.Second, "working"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the pod runs and its logs are being read.
	logRead := make(chan struct{})
	var once syncOnce
	e.cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "log" {
			once.Do(func() { close(logRead) })
		}
		return false, nil, nil
	})
	kubelet := e.kubelet(running)
	go func() {
		<-logRead
		cancel()
	}()
	res, err := e.runner.Run(ctx, k8sexec.Spec{Image: "busybox", Script: "sleep 3600", Secrets: map[string]string{"K": "v"}, Files: map[string]string{"f": "x"}})
	<-kubelet
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, res.Pod)
	assert.Equal(t, -1, res.ExitCode)

	// Deleted on a fresh context although ctx is done: pod first (and
	// waited for), then its policy, ConfigMap and Secret.
	assert.Equal(t, []string{"create secrets", "create configmaps", "create networkpolicies", "create pods",
		"delete pods", "delete networkpolicies", "delete configmaps", "delete secrets"}, e.verbs(false))
	e.requireNothingLeft()
}

func TestCleanupFailureIsReported(t *testing.T) {
	e := setup(t)
	e.cs.PrependReactor("delete", "networkpolicies", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	kubelet := e.kubelet(exited(0, "Completed"))
	res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true"})
	<-kubelet
	var ce *k8sexec.CleanupError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, []string{"networkpolicy/" + res.Pod}, ce.Objects)
	assert.ErrorContains(t, err, "run GC")
	assert.Equal(t, 0, res.ExitCode, "the run itself succeeded")
}

func TestParamErrorAfterSuccess(t *testing.T) {
	e := setup(t)
	e.serveLogs(lines(t0, time.Second, "::set-param good=1", "::set-param {not json", "::set-param =x"))
	kubelet := e.kubelet(running, exited(0, "Completed"))
	res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true"})
	<-kubelet
	var pe *k8sexec.ParamError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "::set-param {not json", pe.Line, "the first bad line is reported")
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, map[string]json.RawMessage{"good": json.RawMessage(`"1"`)}, res.Params)
}

func TestSpecValidation(t *testing.T) {
	cases := []struct {
		name string
		spec k8sexec.Spec
		msg  string
	}{
		{"no image", k8sexec.Spec{Script: "true"}, "Spec.Image: empty"},
		{"script and command", k8sexec.Spec{Image: "i", Script: "x", Command: []string{"y"}}, "Spec.Script: set together with Command"},
		{"bad cpu", k8sexec.Spec{Image: "i", Requests: k8sexec.Resources{CPU: "two"}}, `Spec.Requests.CPU: "two" is not a quantity`},
		{"bad memory limit", k8sexec.Spec{Image: "i", Limits: k8sexec.Resources{Memory: "1GB!"}}, `Spec.Limits.Memory: "1GB!" is not a quantity`},
		{"request above limit", k8sexec.Spec{Image: "i", Requests: k8sexec.Resources{Memory: "2Gi"}, Limits: k8sexec.Resources{Memory: "1Gi"}}, "Spec.Requests.Memory: 2Gi is above the limit 1Gi"},
		{"zero storage", k8sexec.Spec{Image: "i", Limits: k8sexec.Resources{EphemeralStorage: "0"}}, "must be positive"},
		{"reserved label", k8sexec.Spec{Image: "i", Labels: map[string]string{k8sexec.LabelRunID: "x"}}, "cannot be overridden"},
		{"bad label", k8sexec.Spec{Image: "i", Labels: map[string]string{"a b": "x"}}, `Spec.Labels: key "a b"`},
		{"duplicate env", k8sexec.Spec{Image: "i", Env: map[string]string{"K": "1"}, Secrets: map[string]string{"K": "2"}}, `"K" is also set by Spec.Env`},
		{"bad env name", k8sexec.Spec{Image: "i", Env: map[string]string{"A=B": "1"}}, "contains '='"},
		{"bad secret ref", k8sexec.Spec{Image: "i", SecretEnv: map[string]k8sexec.SecretKeyRef{"P": {Name: "Bad_Name", Key: "k"}}}, "Spec.SecretEnv: P: Secret name"},
		{"negative timeout", k8sexec.Spec{Image: "i", Timeout: -time.Second}, "Spec.Timeout: -1s is negative"},
		{"bad namespace", k8sexec.Spec{Image: "i", Namespace: "Jobs"}, `Spec.Namespace: "Jobs" is not a namespace name`},
		{"bad prefix", k8sexec.Spec{Image: "i", NamePrefix: "Run_"}, "Spec.NamePrefix"},
		{"bad file name", k8sexec.Spec{Image: "i", Files: map[string]string{"../x": ""}}, `Spec.Files: file name "../x"`},
		{"policy and deny", k8sexec.Spec{Image: "i", NetworkPolicy: "p", DenyEgress: true}, "set together with DenyEgress"},
		{"negative uid", k8sexec.Spec{Image: "i", RunAsUser: ptrInt64(-1)}, "Spec.RunAsUser: -1 is negative; give a uid above 0, 0 to run as root, or leave it unset for 65532"},
		{"uid too large", k8sexec.Spec{Image: "i", RunAsUser: ptrInt64(1 << 31)}, "Spec.RunAsUser: 2147483648 is not a uid: must be between 0 and 2147483647"},
		{"long prefix", k8sexec.Spec{Image: "i", NamePrefix: strings.Repeat("a", 54)}, `Spec.NamePrefix: "` + strings.Repeat("a", 54) + `" is 54 characters long; use lower-case letters, digits and '-', starting with a letter or digit, at most 53 characters`},
		{"bad service account", k8sexec.Spec{Image: "i", ServiceAccount: "ETL"}, `Spec.ServiceAccount: "ETL"`},
		{"relative files dir", k8sexec.Spec{Image: "i", Files: map[string]string{"a": ""}, FilesDir: "files"}, `Spec.FilesDir: "files" is not an absolute path`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			_, err := e.runner.Run(ctxT(t), tc.spec)
			require.ErrorIs(t, err, k8sexec.ErrInvalidSpec)
			assert.ErrorContains(t, err, tc.msg)
			assert.Empty(t, e.cs.Actions(), "nothing created for an invalid spec")

			// Validate, with no cluster, refuses the same spec the same way
			verr := tc.spec.Validate()
			assert.ErrorContains(t, verr, tc.msg)
			var runErr, validateErr *k8sexec.SpecError
			require.ErrorAs(t, err, &runErr)
			require.ErrorAs(t, verr, &validateErr)
			assert.Equal(t, runErr.Field, validateErr.Field)
			assert.Contains(t, runErr.Error(), "Spec."+runErr.Field+": ", "Field names the field the message is about")
		})
	}
	t.Run("Validate accepts what Run accepts", func(t *testing.T) {
		ok := k8sexec.Spec{Image: "python:3.13-slim", Script: "true", Requests: k8sexec.Resources{CPU: "500m", Memory: "512Mi"},
			Labels: map[string]string{"team": "data"}, Timeout: time.Minute}
		require.NoError(t, ok.Validate(), "no namespace needed: the Runner may have one")
		ok.Namespace = "jobs"
		require.NoError(t, ok.Validate())
		ok.NamePrefix = strings.Repeat("a", 53) // the longest a run id still fits after
		ok.RunAsUser = ptrInt64(0)
		require.NoError(t, ok.Validate())
		e := setup(t)
		kubelet := e.kubelet(exited(0, "Completed"))
		res, err := e.runner.Run(ctxT(t), ok)
		<-kubelet
		require.NoError(t, err)
		assert.Len(t, res.Pod, 63)
	})
	t.Run("no namespace anywhere", func(t *testing.T) {
		e := setup(t)
		r := k8sexec.NewRunner(e.client)
		_, err := r.Run(ctxT(t), k8sexec.Spec{Image: "i"})
		assert.ErrorContains(t, err, "Spec.Namespace: empty and the Runner has no default namespace")
	})
	t.Run("secret values never in errors", func(t *testing.T) {
		e := setup(t)
		_, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "i", Env: map[string]string{"K": "1"}, Secrets: map[string]string{"K": "hunter2"}})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "hunter2")
	})
}

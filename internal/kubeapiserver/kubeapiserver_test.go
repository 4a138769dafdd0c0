//go:build unix

package kubeapiserver

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestSmoke drives a pod through the life k8sexec will see, playing the
// kubelet through the status subresource, against the real apiserver.
func TestSmoke(t *testing.T) {
	c := StartCluster(t)
	cs := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	ns := c.CreateNamespace(t)
	pods := cs.CoreV1().Pods(ns)

	// --- create a pod and its NetworkPolicy, read them back ---
	pod, err := pods.Create(ctx, smokePod("smoke"), metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.PodPending, pod.Status.Phase, "a new pod is Pending")
	assert.Empty(t, pod.Spec.NodeName, "no scheduler runs: the pod stays unbound")

	policy, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, smokePolicy("smoke"), metav1.CreateOptions{})
	require.NoError(t, err)

	got, err := pods.Get(ctx, "smoke", metav1.GetOptions{})
	require.NoError(t, err)
	limits := got.Spec.Containers[0].Resources.Limits
	assert.Equal(t, "1Gi", ptrString(limits.StorageEphemeral()))
	assert.Equal(t, "128Mi", ptrString(limits.Memory()))
	assert.Equal(t, corev1.RestartPolicyNever, got.Spec.RestartPolicy)
	assert.Equal(t, corev1.PodQOSGuaranteed, got.Status.QOSClass, "the apiserver computed the QoS class")
	assert.Empty(t, got.Spec.ServiceAccountName, "the ServiceAccount admission plugin is off")

	gotPolicy, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, policy.Name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, gotPolicy.Spec.Egress, 1)
	require.Len(t, gotPolicy.Spec.Egress[0].To, 1)
	block := gotPolicy.Spec.Egress[0].To[0].IPBlock
	require.NotNil(t, block)
	assert.Equal(t, "0.0.0.0/0", block.CIDR)
	assert.Equal(t, []string{"169.254.169.254/32"}, block.Except)
	assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, gotPolicy.Spec.PolicyTypes)

	// --- play the kubelet: Running, then Succeeded with exit code 0 ---
	w, err := pods.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", "smoke").String(),
		ResourceVersion: got.ResourceVersion,
	})
	require.NoError(t, err)
	defer w.Stop()

	started := metav1.NewTime(time.Now().Truncate(time.Second))
	got.Status.Phase = corev1.PodRunning
	got.Status.StartTime = &started
	got.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "main", Image: "busybox:1.36", ImageID: "docker.io/library/busybox@sha256:0000",
		Ready: true, Started: ptr(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
	}}
	running, err := pods.UpdateStatus(ctx, got, metav1.UpdateOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.PodRunning, running.Status.Phase)

	running.Status.Phase = corev1.PodSucceeded
	running.Status.ContainerStatuses[0].Ready = false
	running.Status.ContainerStatuses[0].Started = ptr(false)
	running.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: metav1.NewTime(started.Add(time.Second)),
	}}
	_, err = pods.UpdateStatus(ctx, running, metav1.UpdateOptions{})
	require.NoError(t, err)

	ev := nextEvent(t, w)
	assert.Equal(t, watch.Modified, ev.Type)
	assert.Equal(t, corev1.PodRunning, ev.Object.(*corev1.Pod).Status.Phase)
	ev = nextEvent(t, w)
	assert.Equal(t, watch.Modified, ev.Type)
	done := ev.Object.(*corev1.Pod)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase)
	require.Len(t, done.Status.ContainerStatuses, 1)
	term := done.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, term, "the watch carries the terminated state")
	assert.Equal(t, int32(0), term.ExitCode)
	assert.Equal(t, "Completed", term.Reason)

	// No kubelet: the log of a pod without a node is an empty 200 answer.
	logs, err := pods.GetLogs("smoke", &corev1.PodLogOptions{}).DoRaw(ctx)
	require.NoError(t, err)
	assert.Empty(t, logs)

	// --- delete: an unbound pod goes at once, even with the default grace ---
	require.NoError(t, pods.Delete(ctx, "smoke", metav1.DeleteOptions{}))
	for ev = nextEvent(t, w); ev.Type != watch.Deleted; ev = nextEvent(t, w) {
		p := ev.Object.(*corev1.Pod)
		t.Logf("before DELETED: %s deletionTimestamp=%v grace=%v", ev.Type, p.DeletionTimestamp, deref(p.DeletionGracePeriodSeconds))
		require.Equal(t, watch.Modified, ev.Type)
		require.NotNil(t, p.DeletionTimestamp, "only the deletion mark may come before DELETED")
	}
	_, err = pods.Get(ctx, "smoke", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "unbound pod deleted at once, got %v", err)
	require.NoError(t, cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, policy.Name, metav1.DeleteOptions{}))

	// --- real validation ---
	bad := smokePod("bad")
	c0 := &bad.Spec.Containers[0]
	c0.Resources.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse("2Gi") // > its 1Gi limit
	_, err = pods.Create(ctx, bad, metav1.CreateOptions{})
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %v", err)
	assert.Contains(t, err.Error(), "spec.containers[0].resources.requests")

	_, err = pods.Create(ctx, smokePod("Bad_Name"), metav1.CreateOptions{})
	assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid for the name, got %v", err)
	assert.ErrorContains(t, err, "metadata.name")

	badPolicy := smokePolicy("bad")
	badPolicy.Spec.Egress[0].To[0].IPBlock.Except = []string{"169.254.169.254"} // no prefix length
	_, err = cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, badPolicy, metav1.CreateOptions{})
	assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid for the except CIDR, got %v", err)
	assert.ErrorContains(t, err, "spec.egress[0].to[0].ipBlock.except[0]")
}

// TestPodDeletionWithoutKubelet shows what deletion does when no kubelet
// runs: a pod that is unbound or terminal goes at once, whatever the grace
// period; a bound pod that is not terminal only gets a deletion mark and
// waits for a kubelet forever, so only GracePeriodSeconds=0 removes it.
func TestPodDeletionWithoutKubelet(t *testing.T) {
	c := StartCluster(t)
	cs := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := c.CreateNamespace(t)
	pods := cs.CoreV1().Pods(ns)
	gone := func(name string) {
		t.Helper()
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%s: want NotFound, got %v", name, err)
	}

	// Pending and never bound: the default (graceful) delete removes it.
	_, err := pods.Create(ctx, smokePod("pending"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, pods.Delete(ctx, "pending", metav1.DeleteOptions{}))
	gone("pending")

	// Bound to a node that does not exist.
	bound := smokePod("bound")
	bound.Spec.NodeName = "node-that-never-was"
	_, err = pods.Create(ctx, bound, metav1.CreateOptions{})
	require.NoError(t, err)

	// Its log would come from that node's kubelet.
	_, err = pods.GetLogs("bound", &corev1.PodLogOptions{}).DoRaw(ctx)
	assert.True(t, apierrors.IsNotFound(err), "want 404 for the log of a pod on a missing node, got %v", err)

	require.NoError(t, pods.Delete(ctx, "bound", metav1.DeleteOptions{}))
	got, err := pods.Get(ctx, "bound", metav1.GetOptions{})
	require.NoError(t, err, "a bound, non-terminal pod outlives a graceful delete")
	require.NotNil(t, got.DeletionTimestamp)
	require.NotNil(t, got.DeletionGracePeriodSeconds)
	assert.Equal(t, int64(30), *got.DeletionGracePeriodSeconds, "the pod's terminationGracePeriodSeconds")

	require.NoError(t, pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}))
	gone("bound")

	// Bound and Succeeded (as the kubelet would report it): removed at once.
	done := smokePod("done")
	done.Spec.NodeName = "node-that-never-was"
	created, err := pods.Create(ctx, done, metav1.CreateOptions{})
	require.NoError(t, err)
	created.Status.Phase = corev1.PodSucceeded
	_, err = pods.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, pods.Delete(ctx, "done", metav1.DeleteOptions{}))
	gone("done")
}

// TestKubeconfigAndStop checks the kubeconfig file works, and that Stop
// leaves no process and no listener behind.
func TestKubeconfigAndStop(t *testing.T) {
	c := StartCluster(t)

	cfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath)
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	v, err := cs.Discovery().ServerVersion()
	require.NoError(t, err)
	assert.Equal(t, KubernetesVersion, v.GitVersion)
	fi, err := os.Stat(c.KubeconfigPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the kubeconfig holds a token")

	// A wrong token is refused: authentication is real.
	bad := *c.Config
	bad.BearerToken = "wrong"
	_, err = kubernetes.NewForConfigOrDie(&bad).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	assert.True(t, apierrors.IsUnauthorized(err), "want 401, got %v", err)

	pids := []int{c.apiserver.cmd.Process.Pid, c.etcd.cmd.Process.Pid}
	addr := strings.TrimPrefix(c.Host, "https://")
	c.Stop()
	for _, pid := range pids {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "process %d still exists after Stop", pid)
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	assert.Error(t, err, "%s still accepts connections after Stop", addr)
	c.Stop() // twice is fine
}

func smokePod(name string) *corev1.Pod {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("100m"),
		corev1.ResourceMemory:           resource.MustParse("128Mi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "tdctl", "tdctl.io/run": name},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr(false),
			TerminationGracePeriodSeconds: ptr(int64(30)),
			Containers: []corev1.Container{{
				Name:    "main",
				Image:   "busybox:1.36",
				Command: []string{"sh", "-c", "echo hello"},
				Resources: corev1.ResourceRequirements{
					Requests: rl.DeepCopy(),
					Limits:   rl.DeepCopy(),
				},
			}},
		},
	}
}

func smokePolicy(name string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tdctl.io/run": name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{
					IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"169.254.169.254/32"}},
				}},
			}},
		},
	}
}

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		require.True(t, ok, "watch closed")
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
		return watch.Event{}
	}
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func ptrString(q *resource.Quantity) string { return q.String() }

package k8sexec_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/tdctl/tdctl/internal/kubeapiserver"
	"github.com/tdctl/tdctl/k8sexec"
)

// TestE2E runs k8sexec against a real kube-apiserver and etcd (see
// internal/kubeapiserver; skipped when the binaries are absent). There is
// no kubelet: the test plays it by writing pod status through the status
// subresource, and for the log test it also binds the pod to a Node whose
// kubelet endpoint is an HTTPS server of the test (kubelet_e2e_test.go), so
// pods/log is proxied by the apiserver for real. What this adds: the API
// server's own
// validation of the pod, NetworkPolicy, Secret and ConfigMap k8sexec
// builds; the REST client and kubeconfig loading for real; real watches
// from the created pod's resourceVersion; deletion and GC by label
// selector on a real server.
func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("k8s e2e skipped in -short mode")
	}
	cluster := kubeapiserver.StartCluster(t)
	cs := cluster.Clientset(t)

	newRunner := func(t *testing.T) (*k8sexec.Runner, string) {
		ns := cluster.CreateNamespace(t)
		r, err := k8sexec.NewRunnerFromKubeconfig(cluster.KubeconfigPath, "",
			k8sexec.WithNamespace(ns), k8sexec.WithRetryDelay(10*time.Millisecond, 200*time.Millisecond),
			k8sexec.WithLogDrainTimeout(5*time.Second))
		require.NoError(t, err)
		return r, ns
	}
	ctxFor := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("success: objects accepted as built, then deleted", func(t *testing.T) {
		r, ns := newRunner(t)
		checked := make(chan struct{})
		kl := playKubelet(t, cs, ns, func(pod *corev1.Pod) {
			defer close(checked)
			// What the API server stored, while the run is on.
			ctx := context.Background()
			assert.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy)
			assert.Equal(t, "tdctl", pod.Labels[k8sexec.LabelManagedBy])
			assert.Equal(t, "data", pod.Labels["team"])
			c := pod.Spec.Containers[0]
			assert.Equal(t, "250m", qty(c.Resources.Requests, corev1.ResourceCPU))
			assert.Equal(t, "250m", qty(c.Resources.Limits, corev1.ResourceCPU))
			assert.Equal(t, "256Mi", qty(c.Resources.Limits, corev1.ResourceMemory))
			assert.Equal(t, "1Gi", qty(c.Resources.Limits, corev1.ResourceEphemeralStorage))
			assert.Equal(t, "1Gi", qty(c.Resources.Requests, corev1.ResourceEphemeralStorage))
			assert.Equal(t, corev1.PodQOSGuaranteed, pod.Status.QOSClass)
			assert.Equal(t, int64(600), *pod.Spec.ActiveDeadlineSeconds)
			for _, e := range c.Env {
				if e.Name == "TD_API_KEY" {
					require.NotNil(t, e.ValueFrom)
					assert.Empty(t, e.Value)
				}
			}
			np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			if assert.NoError(t, err) {
				assert.Equal(t, pod.Labels[k8sexec.LabelRunID], np.Spec.PodSelector.MatchLabels[k8sexec.LabelRunID])
				require.Len(t, np.Spec.Egress, 1)
				assert.Equal(t, []string{"169.254.169.254/32"}, np.Spec.Egress[0].To[0].IPBlock.Except)
			}
			sec, err := cs.CoreV1().Secrets(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			if assert.NoError(t, err) {
				assert.Equal(t, "1/secret", string(sec.Data["TD_API_KEY"]))
			}
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			if assert.NoError(t, err) {
				assert.Equal(t, "select 1", cm.Data["q.sql"])
			}
		}, statusRunning, statusExited(0, "Completed"))
		res, err := r.Run(ctxFor(t), k8sexec.Spec{
			Image:    "busybox:1.36",
			Script:   "cat /tdctl/files/q.sql",
			Files:    map[string]string{"q.sql": "select 1"},
			Secrets:  map[string]string{"TD_API_KEY": "1/secret"},
			Requests: k8sexec.Resources{CPU: "250m", Memory: "256Mi"},
			Timeout:  10 * time.Minute,
			Labels:   map[string]string{"team": "data"},
		})
		<-kl
		require.NoError(t, err)
		<-checked
		assert.Equal(t, 0, res.ExitCode)
		assert.Equal(t, "Completed", res.Reason)
		requireNoneLeft(t, cs, ns)
	})

	t.Run("logs through the apiserver from a fake kubelet", func(t *testing.T) {
		r, ns := newRunner(t)
		testLogsThroughKubelet(t, cs, r, ns, ctxFor(t))
	})

	t.Run("deny-egress policy accepted", func(t *testing.T) {
		r, ns := newRunner(t)
		kl := playKubelet(t, cs, ns, func(pod *corev1.Pod) {
			np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
			if assert.NoError(t, err) {
				assert.Empty(t, np.Spec.Egress)
				assert.Equal(t, "[Egress]", toString(np.Spec.PolicyTypes))
			}
		}, statusExited(0, "Completed"))
		_, err := r.Run(ctxFor(t), k8sexec.Spec{Image: "busybox:1.36", Command: []string{"true"}, DenyEgress: true})
		<-kl
		require.NoError(t, err)
		requireNoneLeft(t, cs, ns)
	})

	// A namespace enforcing Pod Security "restricted" (as many managed
	// clusters do for workloads like these) admits the pod as built and
	// refuses the root opt-out with the apiserver's reason.
	t.Run("Pod Security restricted: admitted by default, root refused", func(t *testing.T) {
		ns := cluster.CreateNamespaceEnforcing(t, "restricted")
		r, err := k8sexec.NewRunnerFromKubeconfig(cluster.KubeconfigPath, "",
			k8sexec.WithNamespace(ns), k8sexec.WithRetryDelay(10*time.Millisecond, 200*time.Millisecond))
		require.NoError(t, err)

		var stored *corev1.Pod
		kl := playKubelet(t, cs, ns, func(pod *corev1.Pod) { stored = pod }, statusRunning, statusExited(0, "Completed"))
		res, err := r.Run(ctxFor(t), k8sexec.Spec{Image: "busybox:1.36", Script: "id -u",
			Files: map[string]string{"q.sql": "select 1"}, Secrets: map[string]string{"K": "v"}})
		<-kl
		require.NoError(t, err, "the default pod is admitted and runs")
		assert.Equal(t, 0, res.ExitCode)
		require.NotNil(t, stored)
		assert.Equal(t, int64(k8sexec.DefaultRunAsUser), *stored.Spec.SecurityContext.RunAsUser)
		assert.True(t, *stored.Spec.SecurityContext.RunAsNonRoot)
		requireNoneLeft(t, cs, ns)

		root := int64(0)
		res, err = r.Run(ctxFor(t), k8sexec.Spec{Image: "debian:13", Script: "id -u", RunAsUser: &root,
			Secrets: map[string]string{"K": "v"}})
		require.Error(t, err)
		t.Logf("root refused: %v", err)
		assert.True(t, apierrors.IsForbidden(err), "the API error stays reachable: %v", err)
		msg := err.Error()
		assert.NotContains(t, msg, "\n", "one line")
		assert.Contains(t, msg, `is forbidden: violates PodSecurity "restricted:latest": `)
		assert.Contains(t, msg, "runAsNonRoot != true")
		assert.Contains(t, msg, "runAsUser=0")
		assert.Contains(t, msg, "does not admit root: leave RunAsUser unset (uid 65532)")
		assert.Equal(t, -1, res.ExitCode)
		requireNoneLeft(t, cs, ns)

		uid := int64(1000)
		kl = playKubelet(t, cs, ns, nil, statusExited(0, "Completed"))
		_, err = r.Run(ctxFor(t), k8sexec.Spec{Image: "busybox:1.36", Script: "id -u", RunAsUser: &uid})
		<-kl
		require.NoError(t, err, "another non-root uid is admitted too")
		requireNoneLeft(t, cs, ns)

		// The opt-out meets "baseline": a namespace enforcing it runs root.
		baseline := cluster.CreateNamespaceEnforcing(t, "baseline")
		kl = playKubelet(t, cs, baseline, func(pod *corev1.Pod) { stored = pod }, statusExited(0, "Completed"))
		_, err = r.Run(ctxFor(t), k8sexec.Spec{Namespace: baseline, Image: "debian:13", Script: "id -u", RunAsUser: &root})
		<-kl
		require.NoError(t, err, "baseline admits the root opt-out")
		assert.Equal(t, int64(0), *stored.Spec.SecurityContext.RunAsUser)
		requireNoneLeft(t, cs, baseline)
	})

	outcomes := []struct {
		name  string
		steps []func(*corev1.Pod)
		is    error
		code  int
	}{
		{"non-zero exit", []func(*corev1.Pod){statusRunning, statusExited(3, "Error")}, k8sexec.ErrNonZeroExit, 3},
		{"OOMKilled", []func(*corev1.Pod){statusRunning, statusExited(137, "OOMKilled")}, k8sexec.ErrOOMKilled, 137},
		{"evicted", []func(*corev1.Pod){statusRunning, statusEvicted}, k8sexec.ErrEvicted, 137},
		{"deadline", []func(*corev1.Pod){statusRunning, statusPodFailed("DeadlineExceeded")}, k8sexec.ErrDeadlineExceeded, -1},
		{"image pull", []func(*corev1.Pod){statusWaiting("ErrImagePull")}, k8sexec.ErrImagePull, -1},
		{"unschedulable", []func(*corev1.Pod){statusUnschedulable}, k8sexec.ErrUnschedulable, -1},
	}
	for _, tc := range outcomes {
		t.Run(tc.name, func(t *testing.T) {
			r, ns := newRunner(t)
			kl := playKubelet(t, cs, ns, nil, tc.steps...)
			res, err := r.Run(ctxFor(t), k8sexec.Spec{Image: "busybox:1.36", Script: "work", Timeout: time.Minute})
			<-kl
			require.ErrorIs(t, err, tc.is)
			assert.Equal(t, tc.code, res.ExitCode)
			if tc.name == "evicted" {
				assert.ErrorContains(t, err, "evicted: ephemeral local storage usage exceeds the total limit of containers (limit 1Gi)")
			}
			requireNoneLeft(t, cs, ns)
		})
	}

	t.Run("cancel deletes pod and policy", func(t *testing.T) {
		r, ns := newRunner(t)
		ctx, cancel := context.WithCancel(ctxFor(t))
		kl := playKubelet(t, cs, ns, nil, statusRunning, func(*corev1.Pod) { cancel() })
		res, err := r.Run(ctx, k8sexec.Spec{Image: "busybox:1.36", Script: "sleep 3600"})
		<-kl
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, -1, res.ExitCode)
		requireNoneLeft(t, cs, ns)
	})

	// The caller's deadline (tdctl's --timeout, a workflow's cancel) ends a
	// run wherever it is; what Run created is deleted all the same.
	t.Run("caller's deadline while the pod runs deletes everything", func(t *testing.T) {
		r, ns := newRunner(t)
		ctx, cancel := context.WithTimeout(ctxFor(t), 1500*time.Millisecond)
		defer cancel()
		kl := playKubelet(t, cs, ns, nil, statusRunning)
		start := time.Now()
		res, err := r.Run(ctx, k8sexec.Spec{Image: "busybox:1.36", Script: "sleep 3600", Secrets: map[string]string{"K": "v"}})
		<-kl
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 20*time.Second, "Run returns soon after the deadline")
		assert.Equal(t, -1, res.ExitCode)
		requireNoneLeft(t, cs, ns)
	})

	t.Run("caller's deadline while the pod is pending deletes everything", func(t *testing.T) {
		r, ns := newRunner(t) // no kubelet and no scheduler: the pod stays Pending
		ctx, cancel := context.WithTimeout(ctxFor(t), time.Second)
		defer cancel()
		_, err := r.Run(ctx, k8sexec.Spec{Image: "busybox:1.36", Script: "true", Files: map[string]string{"q.sql": "select 1"}})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		requireNoneLeft(t, cs, ns)
	})

	t.Run("GC removes labelled leftovers only", func(t *testing.T) {
		r, ns := newRunner(t)
		ctx := ctxFor(t)
		labels := map[string]string{k8sexec.LabelManagedBy: "tdctl", k8sexec.LabelRunID: "leftover"}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "tdctl-leftover", Labels: labels},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "run", Image: "busybox:1.36"}}},
		}
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		other := pod.DeepCopy()
		other.Name, other.Labels = "not-ours", map[string]string{"app": "x"}
		_, err = cs.CoreV1().Pods(ns).Create(ctx, other, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tdctl-leftover", Labels: labels}}, metav1.CreateOptions{})
		require.NoError(t, err)

		got, err := r.GC(ctx, "", time.Hour)
		require.NoError(t, err)
		assert.Zero(t, got.Total(), "nothing is an hour old")

		time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
		got, err = r.GC(ctx, "", time.Second)
		require.NoError(t, err)
		assert.Equal(t, []string{"tdctl-leftover"}, got.Pods)
		assert.Equal(t, []string{"tdctl-leftover"}, got.Secrets)
		requireNoneLeft(t, cs, ns)
		_, err = cs.CoreV1().Pods(ns).Get(ctx, "not-ours", metav1.GetOptions{})
		require.NoError(t, err, "unlabelled pods stay")
	})

	t.Run("API rejection is reported and cleaned up", func(t *testing.T) {
		r, ns := newRunner(t)
		// A quota of zero pods: the pod create fails after the policy and
		// Secret exist.
		q, err := cs.CoreV1().ResourceQuotas(ns).Create(context.Background(), &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "no-pods"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: mustQty("0")}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		// Play the quota controller too.
		q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePods: mustQty("0")}}
		_, err = cs.CoreV1().ResourceQuotas(ns).UpdateStatus(context.Background(), q, metav1.UpdateOptions{})
		require.NoError(t, err)
		// The quota admission sees the new quota a moment later: wait
		// until a dry-run pod is refused.
		probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}
		require.Eventually(t, func() bool {
			_, err := cs.CoreV1().Pods(ns).Create(context.Background(), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return apierrors.IsForbidden(err)
		}, 10*time.Second, 50*time.Millisecond, "quota never enforced")
		_, err = r.Run(ctxFor(t), k8sexec.Spec{Image: "busybox:1.36", Script: "true", Secrets: map[string]string{"K": "v"}})
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err), "quota rejection keeps its API type: %v", err)
		assert.ErrorContains(t, err, "create Pod")
		requireNoneLeft(t, cs, ns)
	})
}

// playKubelet waits for the pod Run creates in ns, calls check on it (if
// given), then applies the status steps through the status subresource.
func playKubelet(t *testing.T, cs kubernetes.Interface, ns string, check func(*corev1.Pod), steps ...func(*corev1.Pod)) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		// Right after start-up the apiserver's watch cache may answer
		// "Too large resource version" until it catches up: watch again.
		var pod *corev1.Pod
		for pod == nil && ctx.Err() == nil {
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Added {
					pod = ev.Object.(*corev1.Pod)
					break
				}
				if ev.Type == watch.Error {
					break
				}
			}
			w.Stop()
		}
		if pod == nil {
			t.Errorf("kubelet: no pod created")
			return
		}
		if check != nil {
			check(pod)
		}
		for _, step := range steps {
			cur, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return // deleted: the run is over
			}
			step(cur)
			if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
				// NotFound/Conflict: Run deleted the pod meanwhile.
				if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && !errors.Is(err, context.Canceled) {
					t.Errorf("kubelet: update status: %v", err)
				}
				return
			}
		}
	}()
	return done
}

func statusRunning(p *corev1.Pod) {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &now
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: k8sexec.ContainerName, Image: p.Spec.Containers[0].Image,
		ImageID: "docker.io/library/busybox@sha256:0000", Started: ptrBool(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
}

func statusExited(code int32, reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		statusRunning(p)
		p.Status.Phase = corev1.PodSucceeded
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		p.Status.ContainerStatuses[0].Started = ptrBool(false)
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: *p.Status.StartTime, FinishedAt: metav1.NewTime(p.Status.StartTime.Add(time.Second))}}
	}
}

func statusEvicted(p *corev1.Pod) {
	statusExited(137, "Error")(p)
	p.Status.Reason = "Evicted"
	p.Status.Message = "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi. "
}

func statusPodFailed(reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		statusRunning(p)
		p.Status.Phase = corev1.PodFailed
		p.Status.Reason = reason
		p.Status.Message = "Pod was active on the node longer than the specified deadline"
	}
}

func statusWaiting(reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: k8sexec.ContainerName, Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "pull access denied"}}}}
	}
}

func statusUnschedulable(p *corev1.Pod) {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available: 3 Insufficient memory.",
		LastTransitionTime: metav1.Now()}}
}

func requireNoneLeft(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: k8sexec.LabelManagedBy + "=tdctl"}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, sel)
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "pods left")
	nps, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, sel)
	require.NoError(t, err)
	assert.Empty(t, nps.Items, "policies left")
	secs, err := cs.CoreV1().Secrets(ns).List(ctx, sel)
	require.NoError(t, err)
	assert.Empty(t, secs.Items, "secrets left")
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
	require.NoError(t, err)
	assert.Empty(t, cms.Items, "configmaps left")
}

func ptrBool(b bool) *bool { return &b }

func mustQty(s string) resource.Quantity { return resource.MustParse(s) }

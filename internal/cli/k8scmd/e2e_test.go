package k8scmd_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tdctl/tdctl/internal/cli"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/kubeapiserver"
	"github.com/tdctl/tdctl/k8sexec"
)

// TestE2ERunAndGC runs `tdctl k8s run` and `tdctl k8s gc` in process
// (cli.Run, as main does) against a real kube-apiserver (internal/
// kubeapiserver; skipped without its binaries). The test plays scheduler
// and kubelet: it binds the pod to a Node whose kubelet endpoint is an
// HTTPS server of the test serving the container log, and writes the
// container's states through the status subresource.
func TestE2ERunAndGC(t *testing.T) {
	if testing.Short() {
		t.Skip("k8s e2e skipped in -short mode")
	}
	cluster := kubeapiserver.StartCluster(t)
	cs := cluster.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	node := "k8scmd-e2e-node"
	registerNode(t, cs, node, serveLog(t, "2026-11-25T09:00:00.1Z computing\n2026-11-25T09:00:00.2Z giving up\n"))

	run := func(args ...string) (code int, stdout, stderr string) {
		ios, _, out, errOut := iostreams.Test()
		f := factory.New(ios)
		f.Getenv = func(string) string { return "" } // no $KUBECONFIG from the environment
		code = cli.Run(ctx, f, args)
		return code, out.String(), errOut.String()
	}

	t.Run("run: the script's exit code, the pod deleted", func(t *testing.T) {
		ns := cluster.CreateNamespace(t)
		played := make(chan error, 1)
		var created *corev1.Pod
		go func() {
			var err error
			created, err = playKubelet(ctx, cs, ns, node, 3)
			played <- err
		}()
		code, stdout, stderr := run("k8s", "run", "--kubeconfig", cluster.KubeconfigPath, "-n", ns,
			"--image", "alpine", "--", "sh", "-c", "exit 3")
		require.NoError(t, <-played)
		c := created.Spec.Containers[0]
		assert.Equal(t, []string{"sh", "-c", "exit 3"}, append(c.Command, c.Args...), "the command after --")
		assert.Equal(t, "alpine", c.Image)
		assert.Equal(t, 3, code, "stderr: %s", stderr)
		assert.Equal(t, "computing\ngiving up\n", stdout, "the container log, streamed")
		assert.Contains(t, stderr, "(exit code 3)")
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, pods.Items, "the pod is deleted after the run")
	})

	t.Run("Pod Security restricted: admitted and run; --run-as-user 0 refused in one line, exit 2", func(t *testing.T) {
		ns := cluster.CreateNamespaceEnforcing(t, "restricted")
		played := make(chan error, 1)
		var created *corev1.Pod
		go func() {
			var err error
			created, err = playKubelet(ctx, cs, ns, node, 0)
			played <- err
		}()
		code, stdout, stderr := run("k8s", "run", "--kubeconfig", cluster.KubeconfigPath, "-n", ns,
			"--image", "alpine", "--", "id", "-u")
		require.NoError(t, <-played)
		assert.Equal(t, 0, code, "stderr: %s", stderr)
		assert.Equal(t, "computing\ngiving up\n", stdout, "the container log, streamed")
		assert.Equal(t, int64(65532), *created.Spec.SecurityContext.RunAsUser)

		start := time.Now()
		code, stdout, stderr = run("k8s", "run", "--kubeconfig", cluster.KubeconfigPath, "-n", ns,
			"--image", "alpine", "--run-as-user", "0", "--", "id", "-u")
		t.Logf("--run-as-user 0 in %s: exit %d, stderr: %s", time.Since(start).Round(time.Millisecond), code, stderr)
		assert.Equal(t, 2, code)
		assert.Empty(t, stdout)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		require.Len(t, lines, 1, "one line: %q", stderr)
		assert.Regexp(t, `^k8sexec: create Pod `+ns+`/tdctl-[0-9a-f]{10}: pods "tdctl-[0-9a-f]{10}" is forbidden: violates PodSecurity "restricted:latest": .*runAsNonRoot != true .*runAsUser=0 .*; the namespace's pod-security.kubernetes.io/enforce level does not admit root: leave RunAsUser unset \(uid 65532\) or above 0, or run in a namespace that admits root \(enforce=baseline\)$`, lines[0])
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, pods.Items)
		nps, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, nps.Items, "the policy created before the pod is deleted")
	})

	t.Run("gc removes a labelled leftover", func(t *testing.T) {
		ns := cluster.CreateNamespace(t)
		mk := func(name string, labels map[string]string) {
			_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "run", Image: "alpine"}}},
			}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		mk("tdctl-leftover", map[string]string{k8sexec.LabelManagedBy: k8sexec.ManagedBy, k8sexec.LabelRunID: "leftover"})
		mk("not-ours", map[string]string{"app": "x"})
		time.Sleep(10 * time.Millisecond)

		code, stdout, stderr := run("k8s", "gc", "--kubeconfig", cluster.KubeconfigPath, "-n", ns, "--older-than", "1ms")
		require.Equal(t, 0, code, "stderr: %s", stderr)
		assert.Equal(t, "pod/tdctl-leftover\n", stdout)
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		require.Len(t, pods.Items, 1)
		assert.Equal(t, "not-ours", pods.Items[0].Name, "unlabelled pods stay")
	})
}

// serveLog starts a kubelet stand-in answering every containerLogs request
// with log (already in the timestamps=true format) and returns its port.
func serveLog(t *testing.T, log string) int32 {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("timestamps") != "true" {
			http.Error(w, "expected timestamps=true", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, log)
	}))
	t.Cleanup(srv.Close)
	_, p, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return int32(n)
}

// registerNode creates a Ready Node at 127.0.0.1 whose kubelet listens on
// port.
func registerNode(t *testing.T, cs kubernetes.Interface, name string, port int32) {
	ctx := context.Background()
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	n.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
		Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}},
	}
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// playKubelet waits for the pod the run creates in ns, binds it to node,
// reports it Running, then terminated with exitCode (Succeeded for 0).
func playKubelet(ctx context.Context, cs kubernetes.Interface, ns, node string, exitCode int32) (*corev1.Pod, error) {
	var pod *corev1.Pod
	for pod == nil {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		if len(pods.Items) > 0 {
			pod = &pods.Items[0]
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no pod created: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name},
		Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	start := metav1.NewTime(time.Now().Truncate(time.Second))
	steps := []func(*corev1.Pod){
		func(p *corev1.Pod) {
			p.Status.Phase, p.Status.StartTime = corev1.PodRunning, &start
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: k8sexec.ContainerName, Image: "alpine",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}}
		},
		func(p *corev1.Pod) {
			reason := "Error"
			p.Status.Phase = corev1.PodFailed
			if exitCode == 0 {
				p.Status.Phase, reason = corev1.PodSucceeded, "Completed"
			}
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCode, Reason: reason, StartedAt: start, FinishedAt: metav1.NewTime(start.Add(time.Second))}}
		},
	}
	for _, step := range steps {
		cur, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		step(cur)
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("update status: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return pod, nil
}

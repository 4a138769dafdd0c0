package operators

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tdctl/tdctl/internal/kubeapiserver"
	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/workflow"
)

// TestPyDockerE2E runs a py> task with docker: against a real
// kube-apiserver and etcd (internal/kubeapiserver; skipped when the
// binaries are absent). The test plays the node: it binds the pod to a
// Node whose kubelet is a kubeapiserver.Kubelet and runs the container
// here (runContainer: the pod's command, environment and ConfigMap files,
// with python3 standing in for the image's), so the script really runs
// through the shipped digdag module, and its stored params come back
// through pods/log, proxied by the apiserver, to the next task.
func TestPyDockerE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("k8s e2e skipped in -short mode")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	cluster := kubeapiserver.StartCluster(t)
	cs := cluster.Clientset(t)
	ns := cluster.CreateNamespace(t)
	kl := kubeapiserver.NewKubelet(t, ns)
	node := "fake-node-" + ns
	kubeapiserver.RegisterNode(t, cs, node, kl.Port(t))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	played := make(chan error, 1)
	var stored *corev1.Pod
	go func() { played <- playNode(ctx, t, cs, kl, ns, node, &stored) }()

	wf, dir := parseProject(t, dockerPyWorkflow, dockerPyFiles)
	var out bytes.Buffer
	env := &Env{PodRunner: func(kubeconfig, kubeContext string) (*k8sexec.Runner, error) {
		// docker: alone uses the default kube context: here, the test's
		return k8sexec.NewRunnerFromKubeconfig(cluster.KubeconfigPath, "", k8sexec.WithNamespace(ns),
			k8sexec.WithRetryDelay(10*time.Millisecond, 200*time.Millisecond), k8sexec.WithLogDrainTimeout(5*time.Second))
	}}
	r := &workflow.Runner{Operators: Operators(env), RunsDir: filepath.Join(dir, "runs"), Output: &out}
	require.NoError(t, r.Check(wf))
	_, err := r.Run(ctx, wf)
	require.NoError(t, <-played, "node")
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "hello from the pod, n=2")
	assert.Contains(t, out.String(), "+wf+after: rows=42 who=pod\n", "the stored params reach the next task")
	require.NotNil(t, stored)
	assert.Equal(t, "python:3.13-slim", stored.Spec.Containers[0].Image)

	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "the pod is deleted")
}

// playNode waits for the task's pod, binds it to node, runs its container
// here and serves the output through kl, reporting the pod's status as a
// kubelet would.
func playNode(ctx context.Context, t *testing.T, cs kubernetes.Interface, kl *kubeapiserver.Kubelet, ns, node string, stored **corev1.Pod) error {
	var pod *corev1.Pod
	for pod == nil {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(list.Items) > 0 {
			pod = &list.Items[0]
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no pod created: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	*stored = pod
	kl.SetPod(pod.Name)
	if err := kubeapiserver.BindPod(ctx, cs, ns, pod.Name, node); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	start := metav1.NewTime(time.Now().Truncate(time.Second))
	if err := kubeapiserver.SetStatus(ctx, cs, ns, pod.Name, func(p *corev1.Pod) {
		p.Status.Phase, p.Status.StartTime = corev1.PodRunning, &start
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: k8sexec.ContainerName, Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}}
	}); err != nil {
		return fmt.Errorf("running: %w", err)
	}
	code, lines := runContainer(t, cs, pod)
	for _, l := range lines {
		kl.Write(time.Now(), l)
	}
	kl.Exit()
	return kubeapiserver.SetStatus(ctx, cs, ns, pod.Name, func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodSucceeded
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: "Completed", StartedAt: start, FinishedAt: metav1.Now()}}
	})
}

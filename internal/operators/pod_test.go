package operators

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/k8sexec/clientset"
	"github.com/tdctl/tdctl/workflow"
)

const podWorkflow = `
+job:
  sh>: ./job.sh ${session_date}
  _env:
    STAGE: load
  _k8s:
    image: alpine
    memory: 64Mi
    ephemeral_storage: 512Mi
    timeout: 5m
    kubeconfig: /etc/tdctl/kube.yaml
    context: prod
+after:
  echo>: rows=${rows} table=${table}
`

// fakeCluster is client-go's fake clientset behind k8sexec, with the test
// playing the kubelet: it reports the pod Running, then terminated with
// exitCode, and serves log as the container's log.
type fakeCluster struct {
	cs       *fake.Clientset
	mu       sync.Mutex
	pods     []*corev1.Pod // as PodShell created them
	factory  []string      // kubeconfig, context of each factory call
	kubelet  chan struct{} // closed when the kubelet is done
	exitCode int32
	log      string
	// play, when set, runs the container and gives its exit code and log
	play func(*corev1.Pod) (int32, string)
}

func newFakeCluster(t *testing.T, exitCode int32, log string) *fakeCluster {
	return newPlayingCluster(t, exitCode, log, nil)
}

func newPlayingCluster(t *testing.T, exitCode int32, log string, play func(*corev1.Pod) (int32, string)) *fakeCluster {
	f := &fakeCluster{cs: fake.NewClientset(), kubelet: make(chan struct{}), exitCode: exitCode, log: log, play: play}
	f.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.pods = append(f.pods, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy())
		return false, nil, nil
	})
	f.cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return true, &runtime.Unknown{Raw: []byte(f.log)}, nil
	})
	podsGVR := corev1.SchemeGroupVersion.WithResource("pods")
	w, err := f.cs.Tracker().Watch(podsGVR, "jobs")
	require.NoError(t, err)
	go func() {
		defer close(f.kubelet)
		defer w.Stop()
		var name string
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Added {
				t.Errorf("kubelet: first event %s, want ADDED", ev.Type)
				return
			}
			name = ev.Object.(*corev1.Pod).Name
			if f.play != nil {
				code, log := f.play(ev.Object.(*corev1.Pod))
				f.mu.Lock()
				f.exitCode, f.log = code, log
				f.mu.Unlock()
			}
		case <-time.After(5 * time.Second):
			t.Errorf("kubelet: no pod created")
			return
		}
		start := metav1.NewTime(time.Now().Truncate(time.Second))
		for _, step := range []func(*corev1.Pod){
			func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: k8sexec.ContainerName,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}}
			},
			func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
				reason := "Completed"
				if f.exitCode != 0 {
					p.Status.Phase, reason = corev1.PodFailed, "Error"
				}
				p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: f.exitCode, Reason: reason, StartedAt: start, FinishedAt: start}}
			},
		} {
			obj, err := f.cs.Tracker().Get(podsGVR, "jobs", name)
			if err != nil {
				t.Errorf("kubelet: pod gone before it ended: %v", err)
				return
			}
			pod := obj.(*corev1.Pod)
			step(pod)
			if err := f.cs.Tracker().Update(podsGVR, pod, "jobs"); err != nil {
				t.Errorf("kubelet: update: %v", err)
				return
			}
		}
	}()
	return f
}

func (f *fakeCluster) newRunner(kubeconfig, kubeContext string) (*k8sexec.Runner, error) {
	f.mu.Lock()
	f.factory = append(f.factory, kubeconfig, kubeContext)
	f.mu.Unlock()
	return k8sexec.NewRunner(clientset.New(f.cs), k8sexec.WithNamespace("jobs"),
		k8sexec.WithRetryDelay(time.Millisecond, 20*time.Millisecond), k8sexec.WithLogDrainTimeout(3*time.Second)), nil
}

func (f *fakeCluster) created(t *testing.T) *corev1.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.pods, 1, "pods created")
	return f.pods[0]
}

// runPodWorkflow runs podWorkflow with the operators over f, as the CLI
// does: it builds an Env, Operators gives the rest.
func runPodWorkflow(t *testing.T, f *fakeCluster) (stdout string, err error) {
	dir := writeProject(t, "pod.dig", podWorkflow, nil)
	wf, err := workflow.ParseFile(filepath.Join(dir, "pod.dig"))
	require.NoError(t, err)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: Operators(&Env{PodRunner: f.newRunner}), RunsDir: filepath.Join(dir, "runs"), Output: &out,
		SessionTime: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	err = f.run(t, r, wf)
	return out.String(), err
}

// run checks and runs wf with r, then waits for the kubelet to finish.
func (f *fakeCluster) run(t *testing.T, r *workflow.Runner, wf *workflow.Workflow) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, r.Check(wf))
	_, err := r.Run(ctx, wf)
	select {
	case <-f.kubelet:
	case <-time.After(10 * time.Second):
		t.Fatal("kubelet still playing")
	}
	return err
}

func TestPodShellRunsTaskInPod(t *testing.T) {
	f := newFakeCluster(t, 0, "2026-11-25T09:00:00.1Z loading\n"+
		"2026-11-25T09:00:00.2Z ::set-param rows=42\n"+
		`2026-11-25T09:00:00.3Z ::set-param {"table": "t1"}`+"\n")
	stdout, err := runPodWorkflow(t, f)
	require.NoError(t, err, "stdout: %s", stdout)

	assert.Equal(t, []string{"/etc/tdctl/kube.yaml", "prod"}, f.factory, "_k8s kubeconfig and context")
	pod := f.created(t)
	c := pod.Spec.Containers[0]
	assert.Equal(t, "alpine", c.Image)
	assert.Equal(t, "64Mi", qty(c.Resources.Limits, corev1.ResourceMemory))
	assert.Equal(t, "64Mi", qty(c.Resources.Requests, corev1.ResourceMemory))
	assert.Equal(t, "512Mi", qty(c.Resources.Limits, corev1.ResourceEphemeralStorage))
	assert.Equal(t, "512Mi", qty(c.Resources.Requests, corev1.ResourceEphemeralStorage))
	require.NotNil(t, pod.Spec.ActiveDeadlineSeconds)
	assert.Equal(t, int64(300), *pod.Spec.ActiveDeadlineSeconds, "timeout: 5m")
	assert.Contains(t, append(c.Command, c.Args...), "./job.sh 2026-11-25", "the interpolated script")
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "STAGE", Value: "load"}, "_env")
	assert.Equal(t, "pod", pod.Labels["tdctl.io/workflow"])

	assert.Contains(t, stdout, "loading")
	assert.Contains(t, stdout, "rows=42 table=t1", "the pod's ::set-param lines are params of the next task")

	pods, err := f.cs.CoreV1().Pods("jobs").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "the pod is deleted")
}

func TestPodShellNonZeroExitFailsTask(t *testing.T) {
	f := newFakeCluster(t, 3, "2026-11-25T09:00:00.1Z ::set-param rows=1\n2026-11-25T09:00:00.2Z boom\n")
	stdout, err := runPodWorkflow(t, f)
	require.Error(t, err)
	var exit *ExitError
	require.True(t, errors.As(err, &exit), "an *ExitError: %v", err)
	assert.Equal(t, 3, exit.Code)
	assert.ErrorIs(t, err, k8sexec.ErrNonZeroExit)
	assert.Contains(t, stdout, "boom")
	assert.NotContains(t, stdout, "+pod+after", "the next task does not run")
}

func TestPodShellSettingsErrors(t *testing.T) {
	newRunner := func(string, string) (*k8sexec.Runner, error) {
		t.Fatal("no runner is needed for a bad _k8s")
		return nil, nil
	}
	for _, tc := range []struct {
		k8s  map[string]any
		want string
	}{
		{map[string]any{"memory": "64Mi"}, "_k8s needs image:"},
		{map[string]any{"image": "alpine", "timeout": "5 minutes"}, `_k8s timeout "5 minutes": use a duration such as 30m`},
		{map[string]any{"image": "alpine", "deny_egress": "maybe"}, `_k8s deny_egress "maybe": use true or false`},
		{map[string]any{"image": "alpine", "run_as_user": "root"}, `_k8s run_as_user "root": use a numeric uid (0 runs as root)`},
		{map[string]any{"image": "alpine", "run_as_user": "-1"}, `_k8s run_as_user: -1 is negative`},
		// a misspelt limit must not run the script without it
		{map[string]any{"image": "alpine", "memroy": "64Mi"}, `_k8s: unknown key "memroy" (did you mean memory?)`},
		{map[string]any{"image": "alpine", "privileged": true}, `_k8s: unknown key "privileged"; known keys: image,`},
	} {
		_, err := runPod(context.Background(), &workflow.TaskContext{K8s: tc.k8s, Workflow: &workflow.Workflow{Name: "w"}, Log: io.Discard}, "true", newRunner)
		assert.ErrorContains(t, err, tc.want)
	}
}

// TestPodShellRunAsUser: _k8s run_as_user reaches the pod's security
// context; 0 is the documented opt-out that runs the script as root.
func TestPodShellRunAsUser(t *testing.T) {
	for _, c := range []struct {
		k8s  map[string]any
		want *int64
	}{
		{map[string]any{"image": "alpine"}, nil},
		{map[string]any{"image": "alpine", "run_as_user": 1000}, ptr(int64(1000))},
		{map[string]any{"image": "alpine", "run_as_user": 0}, ptr(int64(0))},
	} {
		spec, err := podSpec(&workflow.TaskContext{K8s: c.k8s, Workflow: &workflow.Workflow{Name: "w"}, Log: io.Discard}, "true")
		require.NoError(t, err)
		assert.Equal(t, c.want, spec.RunAsUser, "%v", c.k8s)
	}
}

func ptr[T any](v T) *T { return &v }

func qty(l corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := l[name]
	if !ok {
		return ""
	}
	return q.String()
}

package operators

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/workflow"
)

// runContainer plays the container of pod on this machine, as a kubelet
// would run it: the files of its ConfigMap volume are written to a
// directory that stands for the mount (the mount path is rewritten to it
// in the command, the environment and the files), and the container's
// command runs there with its environment added. It returns the exit code
// and the output's lines.
func runContainer(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) (int32, []string) {
	t.Helper()
	c := pod.Spec.Containers[0]
	dir := t.TempDir()
	files := map[string]string{}
	mount := ""
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm, err := cs.CoreV1().ConfigMaps(pod.Namespace).Get(context.Background(), v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("container: configmap %s: %v", v.ConfigMap.Name, err)
			return 127, nil
		}
		files = cm.Data
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				mount = m.MountPath
			}
		}
	}
	local := func(s string) string {
		if mount == "" {
			return s
		}
		return strings.ReplaceAll(s, mount, dir)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(local(body)), 0o600); err != nil {
			t.Errorf("container: %v", err)
			return 127, nil
		}
	}
	argv := append(append([]string{}, c.Command...), c.Args...)
	for i := range argv {
		argv[i] = local(argv[i])
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for _, e := range c.Env {
		v := e.Value
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			sec, err := cs.CoreV1().Secrets(pod.Namespace).Get(context.Background(), ref.SecretKeyRef.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("container: secret %s: %v", ref.SecretKeyRef.Name, err)
				return 127, nil
			}
			v = string(sec.Data[ref.SecretKeyRef.Key])
			if v == "" {
				v = sec.StringData[ref.SecretKeyRef.Key]
			}
		}
		cmd.Env = append(cmd.Env, e.Name+"="+local(v))
	}
	out, err := cmd.CombinedOutput()
	code := int32(0)
	if err != nil {
		code = 1
		if xe, ok := err.(*exec.ExitError); ok {
			code = int32(xe.ExitCode())
		}
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return code, lines
}

// playContainer is runContainer for a fakeCluster: the lines become a
// timestamped log.
func playContainer(t *testing.T, f **fakeCluster) func(*corev1.Pod) (int32, string) {
	return func(pod *corev1.Pod) (int32, string) {
		code, lines := runContainer(t, (*f).cs, pod)
		var log strings.Builder
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for _, l := range lines {
			log.WriteString(now + " " + l + "\n")
		}
		return code, log.String()
	}
}

// runPodProject runs dig (beside files) with the operators over f.
func runPodProject(t *testing.T, f *fakeCluster, dig string, files map[string]string) (string, error) {
	t.Helper()
	wf, dir := parseProject(t, dig, files)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: Operators(&Env{PodRunner: f.newRunner}), RunsDir: filepath.Join(dir, "runs"), Output: &out}
	err := f.run(t, r, wf)
	return out.String(), err
}

const dockerPyWorkflow = `
_export:
  docker:
    image: python:3.13-slim
  greeting: hello
+store:
  py>: scripts.jobs.Job.store
  n: 2
+after:
  echo>: rows=${rows} who=${who.name}
`

var dockerPyFiles = map[string]string{
	"scripts/__init__.py": "",
	"scripts/jobs.py": `
import digdag
class Job:
    def __init__(self, greeting):
        self.greeting = greeting
    def store(self, n):
        print("%s from the pod, n=%s" % (self.greeting, n))
        digdag.env.store({"rows": 21 * n, "who": {"name": "pod"}})
`,
}

// digdag's docker: (the TD Custom Scripts model): the py> task runs in a
// pod of the image with the project, the digdag module and the params;
// what it stores reaches the next task.
func TestPodPyDockerRunsInPod(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	var f *fakeCluster
	play := playContainer(t, &f)
	f = newPlayingCluster(t, 0, "", func(p *corev1.Pod) (int32, string) {
		// the params (which may hold secrets) are not in the ConfigMap
		cms, err := f.cs.CoreV1().ConfigMaps(p.Namespace).List(context.Background(), metav1.ListOptions{})
		if assert.NoError(t, err) && assert.Len(t, cms.Items, 1) {
			assert.NotContains(t, cms.Items[0].Data["input.json"], "greeting")
			assert.Contains(t, cms.Items[0].Data, "digdag.py")
		}
		return play(p)
	})
	out, err := runPodProject(t, f, dockerPyWorkflow, dockerPyFiles)
	require.NoError(t, err, out)
	pod := f.created(t)
	assert.Equal(t, "python:3.13-slim", pod.Spec.Containers[0].Image)
	assert.Equal(t, []string{"", ""}, f.factory, "the default kube context")
	assert.Contains(t, out, "hello from the pod, n=2")
	assert.Contains(t, out, "+wf+after: rows=42 who=pod\n")
}

// A script error in the pod fails the task; its traceback is in the log.
func TestPodPyErrorFailsTask(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	var f *fakeCluster
	f = newPlayingCluster(t, 0, "", playContainer(t, &f))
	out, err := runPodProject(t, f, "+a:\n  py>: bad.run\n  docker:\n    image: python:3\n",
		map[string]string{"bad.py": "def run():\n    raise ValueError('no rows')\n"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "py> bad.run failed in its pod")
	assert.Contains(t, out, "ValueError: no rows")
	assert.NotContains(t, out, "::set-param")
}

// Generated tasks cannot come back through a pod's log: add_subtask in a
// pod fails the task saying so.
func TestPodPyAddSubtaskRefused(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	var f *fakeCluster
	f = newPlayingCluster(t, 0, "", playContainer(t, &f))
	out, err := runPodProject(t, f, "+a:\n  py>: gen.f\n  docker:\n    image: python:3\n",
		map[string]string{"gen.py": "import digdag\ndef f():\n    digdag.env.add_subtask({'echo>': 'x'})\n"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "py> gen.f failed in its pod")
	assert.Contains(t, out, "digdag.env.add_subtask is not supported in a pod (docker: or _k8s:) by tdctl")
}

// docker: on sh> runs the script in a pod of the image, too; _k8s adds
// its settings (and its own image wins).
func TestPodShellDocker(t *testing.T) {
	f := newFakeCluster(t, 0, "2026-11-25T09:00:00.1Z ::set-param rows=7\n")
	out, err := runPodProject(t, f, `
+a:
  sh>: ./job.sh
  docker:
    image: alpine:3
  _k8s:
    memory: 64Mi
+b:
  echo>: rows=${rows}
`, nil)
	require.NoError(t, err, out)
	pod := f.created(t)
	assert.Equal(t, "alpine:3", pod.Spec.Containers[0].Image)
	assert.Equal(t, "64Mi", qty(pod.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory))
	assert.Contains(t, out, "+wf+b: rows=7\n")
}

// Without a cluster a docker: task fails naming what to configure; the
// script never runs on this host.
func TestDockerWithoutClusterNeverRunsOnHost(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", filepath.Join(home, "none.yaml"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	marker := filepath.Join(home, "ran")
	for _, dig := range []string{
		"+a:\n  sh>: touch " + marker + "\n  docker:\n    image: alpine\n",
		"_export:\n  docker:\n    image: python:3\n+a:\n  py>: m.f\n",
	} {
		_, err := runPyProject(t, dig, map[string]string{"m.py": "open(" + "'" + marker + "', 'w').close()\ndef f(): pass\n"})
		require.Error(t, err, dig)
		assert.Contains(t, err.Error(), "runs in a Kubernetes pod (docker: or _k8s:), never on this host: k8sexec: no Kubernetes cluster configured", dig)
		assert.Contains(t, err.Error(), "_k8s: {kubeconfig: ..., context: ...}")
		assert.NotContains(t, err.Error(), "\n")
		assert.NoFileExists(t, marker)
	}
}

// What cannot fit a pod is refused before anything is created: params
// over an environment variable's size, a project over a ConfigMap's.
func TestPodPyLimits(t *testing.T) {
	py := &Py{Env: &Env{PodRunner: func(string, string) (*k8sexec.Runner, error) {
		t.Fatal("no cluster is needed")
		return nil, nil
	}}}
	task := func(dir string, config map[string]any) *workflow.TaskContext {
		config["docker"] = map[string]any{"image": "python:3"}
		return &workflow.TaskContext{Task: &workflow.Task{Operator: "py"}, Workflow: &workflow.Workflow{Name: "w", Dir: dir},
			Command: "m.f", Config: config, Log: io.Discard}
	}
	_, err := py.Run(context.Background(), task(t.TempDir(), map[string]any{"big": strings.Repeat("x", 130<<10)}))
	assert.ErrorContains(t, err, "py>: the params are 130 KiB as JSON, more than a pod's environment variable may hold (120 KiB)")

	dir := t.TempDir()
	noise := make([]byte, 1<<20)
	_, _ = rand.Read(noise)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.bin"), noise, 0o644))
	_, err = py.Run(context.Background(), task(dir, map[string]any{}))
	assert.ErrorContains(t, err, "packs to over 900 KiB, more than a pod's files may hold")
}

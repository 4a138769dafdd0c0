package k8sexec_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	nethttptest "net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tdctl/tdctl/k8sexec"
)

// miniAPI answers the requests one successful run makes, the way
// kube-apiserver does on the wire (JSON objects, a JSON watch stream, a
// plain-text log), so the REST client's paths, query parameters and
// decoding are checked without a cluster.
type miniAPI struct {
	t        *testing.T
	mu       sync.Mutex
	requests []string
	pod      *corev1.Pod
}

func (m *miniAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests = append(m.requests, r.Method+" "+r.URL.Path)
	m.mu.Unlock()
	q := r.URL.Query()
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		require.NoError(m.t, json.NewEncoder(w).Encode(v))
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/apis/networking.k8s.io/v1/namespaces/jobs/networkpolicies":
		var np networkingv1.NetworkPolicy
		require.NoError(m.t, json.NewDecoder(r.Body).Decode(&np))
		assert.Equal(m.t, "NetworkPolicy", np.Kind)
		assert.Equal(m.t, "networking.k8s.io/v1", np.APIVersion)
		np.ResourceVersion = "3"
		writeJSON(np)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/jobs/pods":
		var pod corev1.Pod
		require.NoError(m.t, json.NewDecoder(r.Body).Decode(&pod))
		assert.Equal(m.t, "Pod", pod.Kind)
		assert.Equal(m.t, "v1", pod.APIVersion)
		pod.ResourceVersion = "5"
		m.mu.Lock()
		m.pod = pod.DeepCopy()
		m.mu.Unlock()
		writeJSON(pod)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/jobs/pods" && q.Get("watch") == "true":
		m.mu.Lock()
		pod := m.pod.DeepCopy()
		m.mu.Unlock()
		assert.Equal(m.t, "metadata.name="+pod.Name, q.Get("fieldSelector"))
		assert.Equal(m.t, "5", q.Get("resourceVersion"), "the watch starts at the created pod's version")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		pod.ResourceVersion = "6"
		running(pod)
		fmt.Fprintf(w, "%s\n", mustJSON(m.t, map[string]any{"type": "MODIFIED", "object": pod}))
		w.(http.Flusher).Flush()
		time.Sleep(20 * time.Millisecond)
		pod.ResourceVersion = "7"
		exited(0, "Completed")(pod)
		fmt.Fprintf(w, "%s\n", mustJSON(m.t, map[string]any{"type": "MODIFIED", "object": pod}))
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/log"):
		assert.Equal(m.t, "run", q.Get("container"))
		assert.Equal(m.t, "true", q.Get("timestamps"))
		w.Header().Set("Content-Type", "text/plain")
		var since time.Time
		if s := q.Get("sinceTime"); s != "" {
			var err error
			since, err = time.Parse(time.RFC3339, s)
			require.NoError(m.t, err)
		}
		w.Write(render(lines(t0, 500*time.Millisecond, "hello from the pod", "::set-param answer=42"), &corev1.PodLogOptions{
			Timestamps: true, SinceTime: ptrTime(since)}))
	case r.Method == http.MethodDelete:
		var opts metav1.DeleteOptions
		require.NoError(m.t, json.NewDecoder(r.Body).Decode(&opts))
		require.NotNil(m.t, opts.PropagationPolicy)
		assert.Equal(m.t, metav1.DeletePropagationBackground, *opts.PropagationPolicy)
		writeJSON(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/jobs/pods/nope":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		writeJSON(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Reason: metav1.StatusReasonNotFound, Code: 404, Message: `pods "nope" not found`})
	default:
		m.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotImplemented)
	}
}

func ptrTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestRESTClientRun(t *testing.T) {
	api := &miniAPI{t: t}
	srv := nethttptest.NewServer(api)
	defer srv.Close()
	c, err := k8sexec.NewRESTClient(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	r := k8sexec.NewRunner(c, k8sexec.WithNamespace(ns), k8sexec.WithRetryDelay(time.Millisecond, 10*time.Millisecond))

	var out syncBuffer
	res, err := r.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "echo hi", Log: &out})
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, "hello from the pod\n::set-param answer=42\n", out.String())
	assert.Equal(t, map[string]json.RawMessage{"answer": json.RawMessage(`"42"`)}, res.Params)

	api.mu.Lock()
	reqs := api.requests
	api.mu.Unlock()
	assert.Equal(t, "POST /apis/networking.k8s.io/v1/namespaces/jobs/networkpolicies", reqs[0])
	assert.Equal(t, "POST /api/v1/namespaces/jobs/pods", reqs[1])
	assert.Equal(t, []string{
		"DELETE /api/v1/namespaces/jobs/pods/" + res.Pod,
		"DELETE /apis/networking.k8s.io/v1/namespaces/jobs/networkpolicies/" + res.Pod,
	}, reqs[len(reqs)-2:])

	// API errors keep their type.
	_, err = c.GetPod(ctxT(t), ns, "nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pods "nope" not found`)
}

func writeKubeconfig(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(`apiVersion: v1
kind: Config
current-context: a
clusters:
- name: ca
  cluster: {server: "https://a.example.com:6443"}
- name: cb
  cluster: {server: "https://b.example.com:6443"}
users:
- name: u
  user: {token: "not-a-real-token"}
contexts:
- name: a
  context: {cluster: ca, user: u}
- name: b
  context: {cluster: cb, user: u, namespace: batch}
`), 0o600))
	return p
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := writeKubeconfig(t, dir, "config")
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod
	t.Setenv("KUBERNETES_SERVICE_PORT", "")

	t.Run("explicit path, current context", func(t *testing.T) {
		cfg, nsName, err := k8sexec.LoadConfig(path, "")
		require.NoError(t, err)
		assert.Equal(t, "https://a.example.com:6443", cfg.Host)
		assert.Equal(t, "default", nsName)
	})
	t.Run("context selected", func(t *testing.T) {
		cfg, nsName, err := k8sexec.LoadConfig(path, "b")
		require.NoError(t, err)
		assert.Equal(t, "https://b.example.com:6443", cfg.Host)
		assert.Equal(t, "batch", nsName)
	})
	t.Run("unknown context", func(t *testing.T) {
		_, _, err := k8sexec.LoadConfig(path, "nope")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "nope")
		assert.NotContains(t, err.Error(), "not-a-real-token")
	})
	t.Run("$KUBECONFIG", func(t *testing.T) {
		t.Setenv("KUBECONFIG", writeKubeconfig(t, t.TempDir(), "other"))
		t.Setenv("HOME", t.TempDir())
		cfg, _, err := k8sexec.LoadConfig("", "b")
		require.NoError(t, err)
		assert.Equal(t, "https://b.example.com:6443", cfg.Host)
	})
	t.Run("nothing configured", func(t *testing.T) {
		// clientcmd reads ~/.kube/config from the HOME it saw at start-up.
		if _, err := os.Stat(clientcmd.RecommendedHomeFile); err == nil {
			t.Skipf("%s exists on this machine", clientcmd.RecommendedHomeFile)
		}
		t.Setenv("KUBECONFIG", "")
		t.Setenv("HOME", t.TempDir())
		_, _, err := k8sexec.LoadConfig("", "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no Kubernetes cluster configured")
	})
	t.Run("runner from kubeconfig", func(t *testing.T) {
		r, err := k8sexec.NewRunnerFromKubeconfig(path, "b")
		require.NoError(t, err)
		assert.Equal(t, "batch", r.Namespace())
		r, err = k8sexec.NewRunnerFromKubeconfig(path, "b", k8sexec.WithNamespace("etl"))
		require.NoError(t, err)
		assert.Equal(t, "etl", r.Namespace())
	})
}

package kubeapiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// containerName is the container whose log the Kubelet serves (k8sexec's
// ContainerName; this package does not import k8sexec).
const containerName = "run"

// kubeletLine is one line of a container log as the kubelet stores it.
type kubeletLine struct {
	at   time.Time
	text string
}

// Kubelet is a fake kubelet: the node side of pods/log: an HTTPS server answering the
// kube-apiserver's GET /containerLogs/{ns}/{pod}/{container} from a log
// the test appends to, as a kubelet answers from the container runtime's
// log file. It honours follow, timestamps and sinceTime (compared at
// one-second resolution, as the kubelet does), and can cut follow streams
// short to make the client resume.
type Kubelet struct {
	srv       *httptest.Server
	namespace string
	container string

	mu       sync.Mutex
	pod      string
	log      []kubeletLine
	ended    bool          // the container exited: follow streams end
	changed  chan struct{} // closed and replaced on every append or end
	cuts     int           // follow streams still to cut short
	cutAfter int           // lines a cut stream serves
	requests []string      // query strings of the requests served
	errs     []string      // requests the fake could not serve
}

// NewKubelet starts a Kubelet serving the log of a pod in namespace.
func NewKubelet(t testing.TB, namespace string) *Kubelet {
	k := &Kubelet{namespace: namespace, container: containerName, changed: make(chan struct{})}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

// Port is the kubelet endpoint port for the Node's status.
func (k *Kubelet) Port(t testing.TB) int32 {
	_, p, err := net.SplitHostPort(k.srv.Listener.Addr().String())
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return int32(n)
}

// SetPod names the pod whose log it serves.
func (k *Kubelet) SetPod(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pod = name
}

// CutFollowStreams makes the next n follow streams end after `after` lines.
func (k *Kubelet) CutFollowStreams(n, after int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cuts, k.cutAfter = n, after
}

func (k *Kubelet) broadcastLocked() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// Write appends a line, as the container printing it at `at`.
func (k *Kubelet) Write(at time.Time, text string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.log = append(k.log, kubeletLine{at: at, text: text})
	k.broadcastLocked()
}

// Exit ends the container's output.
func (k *Kubelet) Exit() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ended = true
	k.broadcastLocked()
}

// Served returns the query strings of the requests served and the
// requests it could not serve.
func (k *Kubelet) Served() (requests, errs []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.requests...), append([]string(nil), k.errs...)
}

func (k *Kubelet) fail(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	k.mu.Lock()
	k.errs = append(k.errs, msg)
	k.mu.Unlock()
	http.Error(w, msg, code)
}

func (k *Kubelet) serve(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	want := "/containerLogs/" + k.namespace + "/" + k.pod + "/" + k.container
	k.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != want {
		k.fail(w, http.StatusNotFound, "unexpected %s %s (want GET %s)", r.Method, r.URL.Path, want)
		return
	}
	q := r.URL.Query()
	follow, timestamps := q.Get("follow") == "true", q.Get("timestamps") == "true"
	var since time.Time
	if s := q.Get("sinceTime"); s != "" {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			k.fail(w, http.StatusBadRequest, "sinceTime %q: %v", s, err)
			return
		}
		since = ts.Truncate(time.Second)
	}
	k.mu.Lock()
	k.requests = append(k.requests, r.URL.RawQuery)
	limit := -1
	if follow && k.cuts > 0 {
		k.cuts--
		limit = k.cutAfter
	}
	k.mu.Unlock()

	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	next, sent := 0, 0
	for {
		k.mu.Lock()
		pending := k.log[next:]
		next = len(k.log)
		ended, changed := k.ended, k.changed
		k.mu.Unlock()
		for _, l := range pending {
			if l.at.Before(since) {
				continue
			}
			if limit >= 0 && sent == limit {
				return // the stream breaks
			}
			line := l.text + "\n"
			if timestamps {
				line = l.at.UTC().Format(time.RFC3339Nano) + " " + line
			}
			if _, err := w.Write([]byte(line)); err != nil {
				return
			}
			sent++
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow || ended {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// RegisterNode creates a Ready Node whose kubelet is k, so that the
// apiserver proxies pods/log of pods bound to it to k.
func RegisterNode(t testing.TB, cs kubernetes.Interface, name string, port int32) {
	t.Helper()
	ctx := context.Background()
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	node.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// BindPod plays the scheduler: pods/binding sets spec.nodeName.
func BindPod(ctx context.Context, cs kubernetes.Interface, namespace, pod, node string) error {
	return cs.CoreV1().Pods(namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
}

// SetStatus applies step to the pod's current state through the status
// subresource.
func SetStatus(ctx context.Context, cs kubernetes.Interface, namespace, name string, step func(*corev1.Pod)) error {
	cur, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	step(cur)
	_, err = cs.CoreV1().Pods(namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return err
}

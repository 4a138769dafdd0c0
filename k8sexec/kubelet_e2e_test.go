package k8sexec_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tdctl/tdctl/k8sexec"
)

// fakeKubelet is the node side of pods/log: an HTTPS server answering the
// kube-apiserver's GET /containerLogs/{ns}/{pod}/{container} from a log
// the test appends to, as a kubelet answers from the container runtime's
// log file. It honours follow, timestamps and sinceTime (compared at
// one-second resolution, as the kubelet does), and can cut follow streams
// short to make the client resume.
type fakeKubelet struct {
	srv       *httptest.Server
	namespace string
	container string

	mu       sync.Mutex
	pod      string
	log      []logLine
	ended    bool          // the container exited: follow streams end
	changed  chan struct{} // closed and replaced on every append or end
	cuts     int           // follow streams still to cut short
	cutAfter int           // lines a cut stream serves
	requests []string      // query strings of the requests served
	errs     []string      // requests the fake could not serve
}

func newFakeKubelet(t *testing.T, namespace string) *fakeKubelet {
	k := &fakeKubelet{namespace: namespace, container: k8sexec.ContainerName, changed: make(chan struct{})}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

// port is the kubelet endpoint port for the Node's status.
func (k *fakeKubelet) port(t *testing.T) int32 {
	_, p, err := net.SplitHostPort(k.srv.Listener.Addr().String())
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return int32(n)
}

func (k *fakeKubelet) setPod(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pod = name
}

// cutFollowStreams makes the next n follow streams end after `after` lines.
func (k *fakeKubelet) cutFollowStreams(n, after int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cuts, k.cutAfter = n, after
}

func (k *fakeKubelet) broadcastLocked() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// write appends a line, as the container printing it at `at`.
func (k *fakeKubelet) write(at time.Time, text string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.log = append(k.log, logLine{at: at, text: text})
	k.broadcastLocked()
}

// exit ends the container's output.
func (k *fakeKubelet) exit() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ended = true
	k.broadcastLocked()
}

func (k *fakeKubelet) served() (requests, errs []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.requests...), append([]string(nil), k.errs...)
}

func (k *fakeKubelet) fail(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	k.mu.Lock()
	k.errs = append(k.errs, msg)
	k.mu.Unlock()
	http.Error(w, msg, code)
}

func (k *fakeKubelet) serve(w http.ResponseWriter, r *http.Request) {
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

// registerNode creates a Ready Node whose kubelet is k, so that the
// apiserver proxies pods/log of pods bound to it to k.
func registerNode(t *testing.T, cs kubernetes.Interface, name string, port int32) {
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

// bindPod plays the scheduler: pods/binding sets spec.nodeName.
func bindPod(ctx context.Context, cs kubernetes.Interface, namespace, pod, node string) error {
	return cs.CoreV1().Pods(namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
}

// setStatus applies step to the pod's current state through the status
// subresource.
func setStatus(ctx context.Context, cs kubernetes.Interface, namespace, name string, step func(*corev1.Pod)) error {
	cur, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	step(cur)
	_, err = cs.CoreV1().Pods(namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return err
}

// testLogsThroughKubelet binds the pod Run creates to a Node whose kubelet
// is a fakeKubelet, so that pods/log goes apiserver -> kubelet for real:
// Run must write exactly the lines served, in order, once each, across a
// follow stream that breaks, and return the ::set-param lines as params.
func testLogsThroughKubelet(t *testing.T, cs kubernetes.Interface, r *k8sexec.Runner, namespace string, ctx context.Context) {
	kl := newFakeKubelet(t, namespace)
	nodeName := "fake-node-" + namespace
	registerNode(t, cs, nodeName, kl.port(t))
	// The first follow stream breaks after 4 lines: line 3 (at :01.2)
	// shares its second with line 4, so the resumed stream (sinceTime
	// :01) repeats line 3, which Run must skip.
	kl.cutFollowStreams(1, 4)

	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	texts := []string{
		"starting",
		"::set-param rows=42",
		"loading part 1",
		"loading part 2",
		`::set-param {"table": "t1", "ok": true}`,
		"loading part 3",
		"  ::set-param rows=43",
		"done",
	}

	played := make(chan error, 1)
	go func() {
		played <- func() error {
			pod, err := waitCreatedPod(ctx, cs, namespace)
			if err != nil {
				return err
			}
			kl.setPod(pod.Name)
			if err := bindPod(ctx, cs, namespace, pod.Name, nodeName); err != nil {
				return fmt.Errorf("bind: %w", err)
			}
			if err := setStatus(ctx, cs, namespace, pod.Name, statusRunning); err != nil {
				return fmt.Errorf("running: %w", err)
			}
			for i, s := range texts {
				kl.write(base.Add(time.Duration(i)*400*time.Millisecond), s)
				time.Sleep(60 * time.Millisecond)
			}
			kl.exit()
			if err := setStatus(ctx, cs, namespace, pod.Name, statusExited(0, "Completed")); err != nil {
				return fmt.Errorf("exited: %w", err)
			}
			return nil
		}()
	}()

	var out syncBuffer
	res, err := r.Run(ctx, k8sexec.Spec{Image: "busybox:1.36", Script: "./job.sh", Log: &out})
	require.NoError(t, <-played, "kubelet")
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, strings.Join(texts, "\n")+"\n", out.String(), "every line once, in order, timestamps stripped")
	require.Len(t, res.Params, 3)
	assert.JSONEq(t, `"43"`, string(res.Params["rows"]), "a later line overrides")
	assert.JSONEq(t, `"t1"`, string(res.Params["table"]))
	assert.JSONEq(t, `true`, string(res.Params["ok"]))

	requests, errs := kl.served()
	assert.Empty(t, errs)
	require.GreaterOrEqual(t, len(requests), 2, "the cut stream was resumed")
	first := parseQuery(t, requests[0])
	assert.Equal(t, "true", first.Get("follow"))
	assert.Equal(t, "true", first.Get("timestamps"))
	assert.Empty(t, first.Get("sinceTime"))
	second := parseQuery(t, requests[1])
	assert.Equal(t, "2026-11-25T09:00:01Z", second.Get("sinceTime"), "resumed at the last line's second")
	last := parseQuery(t, requests[len(requests)-1])
	assert.Empty(t, last.Get("follow"), "a final read once the container ended")
	requireNoneLeft(t, cs, namespace)
}

func parseQuery(t *testing.T, raw string) url.Values {
	q, err := url.ParseQuery(raw)
	require.NoError(t, err)
	return q
}

// waitCreatedPod returns the first pod created in namespace.
func waitCreatedPod(ctx context.Context, cs kubernetes.Interface, namespace string) (*corev1.Pod, error) {
	for {
		pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) > 0 {
			return &pods.Items[0], nil
		}
		if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no pod created: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

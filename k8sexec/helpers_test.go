package k8sexec_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/k8sexec/clientset"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const ns = "jobs"

var (
	podsGVR     = corev1.SchemeGroupVersion.WithResource("pods")
	policiesGVR = networkingv1.SchemeGroupVersion.WithResource("networkpolicies")
	secretsGVR  = corev1.SchemeGroupVersion.WithResource("secrets")
	cmGVR       = corev1.SchemeGroupVersion.WithResource("configmaps")
)

// env is a Runner over client-go's fake clientset.
type env struct {
	t      *testing.T
	cs     *fake.Clientset
	client k8sexec.Client
	runner *k8sexec.Runner

	mu       sync.Mutex
	pods     []*corev1.Pod // pods as Run created them
	policies []*networkingv1.NetworkPolicy
	secrets  []*corev1.Secret
	cms      []*corev1.ConfigMap
}

func setup(t *testing.T, objs ...runtime.Object) *env {
	t.Helper()
	e := &env{t: t, cs: fake.NewClientset(objs...)}
	// Record what Run creates (the objects are gone once it returns).
	e.cs.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.CreateAction).GetObject()
		e.mu.Lock()
		defer e.mu.Unlock()
		switch o := obj.(type) {
		case *corev1.Pod:
			e.pods = append(e.pods, o.DeepCopy())
		case *networkingv1.NetworkPolicy:
			e.policies = append(e.policies, o.DeepCopy())
		case *corev1.Secret:
			e.secrets = append(e.secrets, o.DeepCopy())
		case *corev1.ConfigMap:
			e.cms = append(e.cms, o.DeepCopy())
		}
		return false, nil, nil
	})
	e.client = clientset.New(e.cs)
	e.runner = e.newRunner(e.client)
	return e
}

func (e *env) newRunner(c k8sexec.Client) *k8sexec.Runner {
	return k8sexec.NewRunner(c,
		k8sexec.WithNamespace(ns),
		k8sexec.WithRetryDelay(time.Millisecond, 20*time.Millisecond),
		k8sexec.WithCleanupTimeout(2*time.Second),
		k8sexec.WithLogDrainTimeout(3*time.Second),
	)
}

func (e *env) createdPod() *corev1.Pod {
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Len(e.t, e.pods, 1, "pods created")
	return e.pods[0]
}

func (e *env) createdPolicy() *networkingv1.NetworkPolicy {
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Len(e.t, e.policies, 1, "policies created")
	return e.policies[0]
}

// step changes a pod's status the way a kubelet (or scheduler) would.
type step func(*corev1.Pod)

// kubelet waits for the pod Run creates and applies the steps to it in
// order, each after its wait (if any) is closed. It returns a channel
// closed when all steps are applied.
func (e *env) kubelet(steps ...step) <-chan struct{} {
	return e.kubeletWaiting(nil, steps...)
}

// kubeletWaiting is kubelet with a gate before each step: waits[i], when
// non-nil, must be closed before steps[i] is applied.
func (e *env) kubeletWaiting(waits []<-chan struct{}, steps ...step) <-chan struct{} {
	e.t.Helper()
	w, err := e.cs.Tracker().Watch(podsGVR, ns)
	require.NoError(e.t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Stop()
		var name string
		timeout := time.After(5 * time.Second)
		for name == "" {
			select {
			case ev := <-w.ResultChan():
				if ev.Type == watch.Added {
					name = ev.Object.(*corev1.Pod).Name
				}
			case <-timeout:
				e.t.Errorf("kubelet: no pod created")
				return
			}
		}
		for i, s := range steps {
			if i < len(waits) && waits[i] != nil {
				select {
				case <-waits[i]:
				case <-time.After(5 * time.Second):
					e.t.Errorf("kubelet: step %d never allowed", i)
					return
				}
			}
			obj, err := e.cs.Tracker().Get(podsGVR, ns, name)
			if err != nil {
				return // deleted: the run is over
			}
			pod := obj.(*corev1.Pod)
			s(pod)
			if err := e.cs.Tracker().Update(podsGVR, pod, ns); err != nil {
				return
			}
		}
	}()
	return done
}

func scheduled(p *corev1.Pod) {
	p.Spec.NodeName = "node-1"
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: k8sexec.ContainerName, Image: p.Spec.Containers[0].Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
}

var t0 = time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)

func running(p *corev1.Pod) {
	scheduled(p)
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}
}

func exited(code int32, reason string) step {
	return func(p *corev1.Pod) {
		scheduled(p)
		p.Status.Phase = corev1.PodSucceeded
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: metav1.NewTime(t0), FinishedAt: metav1.NewTime(t0.Add(3 * time.Second)),
		}}
	}
}

func waiting(reason, message string) step {
	return func(p *corev1.Pod) {
		scheduled(p)
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	}
}

func unschedulable(msg string) step {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg}}
	}
}

func podFailed(reason, message string, exit *int32) step {
	return func(p *corev1.Pod) {
		scheduled(p)
		p.Status.Phase = corev1.PodFailed
		p.Status.Reason, p.Status.Message = reason, message
		if exit != nil {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: *exit, Reason: "Error"}}
		}
	}
}

// logLine is one line of a container log as the kubelet stores it.
type logLine struct {
	at   time.Time
	text string
}

func lines(at time.Time, step time.Duration, texts ...string) []logLine {
	out := make([]logLine, len(texts))
	for i, s := range texts {
		out[i] = logLine{at: at.Add(time.Duration(i) * step), text: s}
	}
	return out
}

// render formats lines as the log endpoint does with timestamps=true and
// sinceTime, which it compares at one-second resolution.
func render(ls []logLine, opts *corev1.PodLogOptions) []byte {
	var b bytes.Buffer
	for _, l := range ls {
		if opts != nil && opts.SinceTime != nil && l.at.Before(opts.SinceTime.Time.Truncate(time.Second)) {
			continue
		}
		if opts != nil && opts.Timestamps {
			b.WriteString(l.at.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " ")
		}
		b.WriteString(l.text + "\n")
	}
	return b.Bytes()
}

// serveLogs answers the fake's "get pods/log" with ls.
func (e *env) serveLogs(ls []logLine) {
	e.cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		opts := a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		return true, &runtime.Unknown{Raw: render(ls, opts)}, nil
	})
}

// logRequests returns the PodLogOptions of every log request made.
func (e *env) logRequests() []*corev1.PodLogOptions {
	var out []*corev1.PodLogOptions
	for _, a := range e.cs.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "pods" && a.GetSubresource() == "log" {
			out = append(out, a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions))
		}
	}
	return out
}

// verbs lists the recorded actions as "verb resource[/sub]" (gets of the
// log and lists, which vary with timing, are left out unless keepAll).
func (e *env) verbs(keepAll bool) []string {
	var out []string
	for _, a := range e.cs.Actions() {
		r := a.GetResource().Resource
		if a.GetSubresource() != "" {
			r += "/" + a.GetSubresource()
		}
		if !keepAll && (a.GetVerb() == "watch" || a.GetSubresource() == "log" || a.GetVerb() == "get") {
			continue
		}
		out = append(out, a.GetVerb()+" "+r)
	}
	return out
}

// requireNothingLeft checks that no pod, policy, Secret or ConfigMap remain.
func (e *env) requireNothingLeft() {
	e.t.Helper()
	for _, c := range []struct {
		gvr  schema.GroupVersionResource
		kind string
	}{{podsGVR, "Pod"}, {policiesGVR, "NetworkPolicy"}, {secretsGVR, "Secret"}, {cmGVR, "ConfigMap"}} {
		l, err := e.cs.Tracker().List(c.gvr, c.gvr.GroupVersion().WithKind(c.kind), ns)
		require.NoError(e.t, err)
		items, err := meta.ExtractList(l)
		require.NoError(e.t, err)
		require.Empty(e.t, items, "%s left behind", c.kind)
	}
}

// syncBuffer is a log writer safe to read while Run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// wrapClient overrides parts of a k8sexec.Client.
type wrapClient struct {
	k8sexec.Client
	podLogs   func(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
	watchPods func(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error)
}

func (w *wrapClient) PodLogs(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	if w.podLogs != nil {
		return w.podLogs(ctx, namespace, name, opts)
	}
	return w.Client.PodLogs(ctx, namespace, name, opts)
}

func (w *wrapClient) WatchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	if w.watchPods != nil {
		return w.watchPods(ctx, namespace, opts)
	}
	return w.Client.WatchPods(ctx, namespace, opts)
}

func joinLines(s ...string) string { return strings.Join(s, "\n") + "\n" }

var metav1GetOptions = metav1.GetOptions{}

type syncOnce = sync.Once

// networkingv1NP builds an existing NetworkPolicy selecting labels.
type networkingv1NP struct {
	name   string
	labels map[string]string
	egress bool
}

func (n networkingv1NP) obj() *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: n.labels},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if n.egress {
		np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	}
	return np
}

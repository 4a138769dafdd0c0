package k8sexec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tdctl/tdctl/internal/backoff"
)

// Runner runs scripts as pods through a Client. It is safe for concurrent
// use; every Run creates its own objects.
type Runner struct {
	client         Client
	namespace      string
	minDelay       time.Duration
	maxDelay       time.Duration
	cleanupTimeout time.Duration
	logDrain       time.Duration
}

// Option configures a Runner.
type Option func(*Runner)

// WithNamespace sets the namespace used when Spec.Namespace is empty.
func WithNamespace(ns string) Option { return func(r *Runner) { r.namespace = ns } }

// WithRetryDelay sets the back-off between attempts to re-establish a pod
// watch or log stream: min doubling up to max (default 200ms to 5s).
func WithRetryDelay(min, max time.Duration) Option {
	return func(r *Runner) { r.minDelay, r.maxDelay = min, max }
}

// WithCleanupTimeout bounds the deletion of a run's objects, which runs on
// a fresh context when the caller's is done (default 30s, plus the pod's
// grace period while waiting for a running pod to go).
func WithCleanupTimeout(d time.Duration) Option { return func(r *Runner) { r.cleanupTimeout = d } }

// WithLogDrainTimeout bounds how long Run keeps reading logs after the pod
// finished (default 1m).
func WithLogDrainTimeout(d time.Duration) Option { return func(r *Runner) { r.logDrain = d } }

// NewRunner returns a Runner over c. Without WithNamespace every Spec must
// name its namespace.
func NewRunner(c Client, opts ...Option) *Runner {
	r := &Runner{
		client:         c,
		minDelay:       200 * time.Millisecond,
		maxDelay:       5 * time.Second,
		cleanupTimeout: 30 * time.Second,
		logDrain:       time.Minute,
	}
	for _, o := range opts {
		o(r)
	}
	if r.minDelay <= 0 {
		r.minDelay = time.Millisecond
	}
	if r.maxDelay < r.minDelay {
		r.maxDelay = r.minDelay
	}
	return r
}

// Namespace returns the Runner's default namespace.
func (r *Runner) Namespace() string { return r.namespace }

// Result is what a run produced. Run returns it filled as far as the run
// got, also with an error.
type Result struct {
	Namespace string
	// Pod is the pod's name (also the name of the NetworkPolicy, ConfigMap
	// and Secret created for it).
	Pod   string
	RunID string
	// ExitCode is the container's exit code, or -1 when it never reported
	// one (image pull failure, unschedulable, cancelled, deadline before
	// the container ended).
	ExitCode int
	// Reason is the container's termination reason ("Completed", "Error",
	// "OOMKilled") or the pod's failure reason ("Evicted",
	// "DeadlineExceeded").
	Reason string
	// Params are the ::set-param lines of the log (see SetParamPrefix),
	// as JSON values keyed by name; nil when there were none.
	Params map[string]json.RawMessage
	// StartedAt and FinishedAt are the container's, when it reported them.
	StartedAt, FinishedAt time.Time
}

// Run runs spec as a pod and waits for it to end, streaming its output to
// spec.Log. In order, it creates: a Secret holding spec.Secrets and a
// ConfigMap holding spec.Files (when given), a NetworkPolicy for the pod's
// egress (unless spec.NetworkPolicy names one to reuse), and the pod
// (restartPolicy Never, ownership labels LabelManagedBy and LabelRunID).
// It watches the pod (re-establishing the watch from the last
// resourceVersion when it closes) and follows its logs once the container
// runs, resuming a broken log stream without losing or repeating lines.
//
// Outcomes: nil error and ExitCode 0 on success; otherwise an error for
// errors.Is / errors.As: *ExitError (ErrNonZeroExit, ErrOOMKilled),
// *EvictedError (ErrEvicted), *DeadlineExceededError (ErrDeadlineExceeded),
// *ImagePullError (ErrImagePull), *UnschedulableError (ErrUnschedulable),
// *PodError (ErrPodFailed), the context's error when ctx ends first, and
// *ParamError or *LogError after an otherwise successful run.
//
// Everything Run created is deleted before it returns — on success,
// failure, deadline and cancellation alike (on a fresh short context when
// ctx is done); what cannot be deleted is reported as a *CleanupError
// joined to the result, and GC removes it later.
func (r *Runner) Run(ctx context.Context, spec Spec) (res Result, err error) {
	res = Result{ExitCode: -1}
	checked, err := spec.check()
	if err != nil {
		return res, err
	}
	ns, err := namespaceFor(spec, r.namespace)
	if err != nil {
		return res, err
	}
	id, err := newRunID()
	if err != nil {
		return res, err
	}
	p := newPlan(checked, ns, id)
	res.Namespace, res.Pod, res.RunID = p.namespace, p.name, p.runID
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("k8sexec: pod %s not started: %w", p.name, err)
	}

	var created createdSet
	defer func() {
		if cerr := r.cleanup(ctx, p, &created); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	if p.secret != nil {
		if _, err := r.client.CreateSecret(ctx, p.secret); err != nil {
			return res, createErr("Secret", p, err, "grant create on secrets, or pass secrets with Spec.SecretEnv")
		}
		created.secret = true
	}
	if p.configMap != nil {
		if _, err := r.client.CreateConfigMap(ctx, p.configMap); err != nil {
			return res, createErr("ConfigMap", p, err, "grant create on configmaps")
		}
		created.configMap = true
	}
	if p.policy != nil {
		if _, err := r.client.CreateNetworkPolicy(ctx, p.policy); err != nil {
			return res, createErr("NetworkPolicy", p, err, "grant create on networkpolicies.networking.k8s.io, or set Spec.NetworkPolicy to an existing policy")
		}
		created.policy = true
	} else if err := r.checkPolicy(ctx, p); err != nil {
		return res, err
	}
	pod, err := r.client.CreatePod(ctx, p.pod)
	if err != nil {
		return res, createPodErr(p, err)
	}
	created.pod = true

	return r.await(ctx, p, pod, res, &created)
}

type createdSet struct {
	pod, policy, configMap, secret bool
	podEnded                       bool // the pod reached a terminal phase
}

func createErr(kind string, p *plan, err error, fix string) error {
	hint := ""
	if apierrors.IsForbidden(err) {
		hint = "; " + fix
	}
	return fmt.Errorf("k8sexec: create %s %s/%s: %w%s", kind, p.namespace, p.name, err, hint)
}

// createPodErr is createErr for the pod, with a fix of its own for a pod
// that the namespace's Pod Security admission refuses (its message is one
// line naming each check the pod fails).
func createPodErr(p *plan, err error) error {
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
		return createErr("Pod", p, err, "grant create on pods")
	}
	fix := "the namespace's pod-security.kubernetes.io/enforce level does not admit this pod"
	if p.runAsRoot {
		fix = fmt.Sprintf("the namespace's pod-security.kubernetes.io/enforce level does not admit root: leave RunAsUser unset (uid %d) or above 0, or run in a namespace that admits root (enforce=baseline)", DefaultRunAsUser)
	}
	return fmt.Errorf("k8sexec: create Pod %s/%s: %w; %s", p.namespace, p.name, err, fix)
}

// checkPolicy verifies the NetworkPolicy named by Spec.NetworkPolicy.
func (r *Runner) checkPolicy(ctx context.Context, p *plan) error {
	np, err := r.client.GetNetworkPolicy(ctx, p.namespace, p.reusePol)
	if apierrors.IsNotFound(err) {
		return specErr("NetworkPolicy", "NetworkPolicy %q not found in namespace %s", p.reusePol, p.namespace)
	}
	if err != nil {
		return fmt.Errorf("k8sexec: get NetworkPolicy %s/%s: %w", p.namespace, p.reusePol, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return specErr("NetworkPolicy", "NetworkPolicy %q has an unusable podSelector: %v", p.reusePol, err)
	}
	if !sel.Matches(labels.Set(p.podLabels)) {
		return specErr("NetworkPolicy", "NetworkPolicy %q (podSelector %q) does not select the pod's labels %v; add matching Spec.Labels",
			p.reusePol, sel.String(), labels.Set(p.podLabels).String())
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		return specErr("NetworkPolicy", "NetworkPolicy %q does not restrict egress (policyTypes lacks Egress)", p.reusePol)
	}
	return nil
}

// await watches the pod to its end and collects the result.
func (r *Runner) await(ctx context.Context, p *plan, pod *corev1.Pod, res Result, created *createdSet) (Result, error) {
	logCtx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	var (
		logs     *logStreamer
		logsDone chan struct{}
		finished = make(chan struct{}) // closed when the container has ended
	)
	startLogs := func() {
		if logs != nil {
			return
		}
		logs = &logStreamer{client: r.client, namespace: p.namespace, pod: p.name, out: p.logWriter, minDelay: r.minDelay, maxDelay: r.maxDelay}
		logsDone = make(chan struct{})
		go func() {
			defer close(logsDone)
			logs.err = logs.run(logCtx, finished)
		}()
	}
	// waitLogs lets the log stream finish (bounded) and returns its error.
	waitLogs := func(cancelled bool) error {
		if logs == nil {
			return nil
		}
		if cancelled {
			stopLogs()
			<-logsDone
			return nil
		}
		t := time.NewTimer(r.logDrain)
		defer t.Stop()
		select {
		case <-logsDone:
		case <-t.C:
			stopLogs()
			<-logsDone
			return &LogError{Pod: p.name, Err: fmt.Errorf("still streaming %s after the pod finished", r.logDrain)}
		case <-ctx.Done():
			<-logsDone
			return &LogError{Pod: p.name, Err: ctx.Err()}
		}
		if logs.err != nil {
			return &LogError{Pod: p.name, Err: logs.err}
		}
		return nil
	}

	v, err := r.watchPod(ctx, p, pod, startLogs)
	if err != nil { // ctx done or the API failed us
		waitLogs(true)
		if logs != nil {
			res.Params = logs.params
		}
		return res, err
	}
	created.podEnded = v.podEnded
	close(finished)
	res.ExitCode, res.Reason, res.StartedAt, res.FinishedAt = v.exitCode, v.reason, v.startedAt, v.finishedAt
	logErr := waitLogs(false)
	if logs != nil {
		res.Params = logs.params
	}
	switch {
	case v.err != nil:
		return res, errors.Join(v.err, logErr)
	case logErr != nil:
		return res, logErr
	case logs != nil && logs.paramErr != nil:
		return res, logs.paramErr
	}
	return res, nil
}

// verdict is what one observation of the pod means.
type verdict struct {
	final         bool // the run is over (err says how)
	podEnded      bool // the pod reached Succeeded or Failed
	err           error
	exitCode      int
	reason        string
	startedAt     time.Time
	finishedAt    time.Time
	logsReady     bool // the container runs or ran: its logs can be read
	unschedulable *UnschedulableError
}

var imagePullReasons = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "SignatureValidationFailed"}

// Waiting reasons that mean the container will not start without someone
// changing something (a missing Secret or key, a bad command).
var createReasons = []string{"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}

func classify(pod *corev1.Pod, p *plan) verdict {
	v := verdict{exitCode: -1}
	var cs *corev1.ContainerStatus
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == ContainerName {
			cs = &pod.Status.ContainerStatuses[i]
		}
	}
	var term *corev1.ContainerStateTerminated
	if cs != nil {
		term = cs.State.Terminated
		v.logsReady = cs.State.Running != nil || term != nil
		if term != nil {
			v.exitCode, v.reason = int(term.ExitCode), term.Reason
			v.startedAt, v.finishedAt = term.StartedAt.Time, term.FinishedAt.Time
		} else if cs.State.Running != nil {
			v.startedAt = cs.State.Running.StartedAt.Time
		}
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		v.final, v.podEnded = true, true
		if term == nil {
			v.exitCode = 0
		}
		if v.reason == "" {
			v.reason = "Completed"
		}
		return v
	case corev1.PodFailed:
		v.final, v.podEnded = true, true
		switch {
		case pod.Status.Reason == "Evicted":
			v.reason = "Evicted"
			v.err = &EvictedError{
				Pod:                   p.name,
				Message:               pod.Status.Message,
				EphemeralStorage:      isEphemeralStorageEviction(pod.Status.Message),
				EphemeralStorageLimit: p.diskLimit,
				ExitCode:              v.exitCode,
			}
		case pod.Status.Reason == "DeadlineExceeded":
			v.reason = "DeadlineExceeded"
			v.err = &DeadlineExceededError{Pod: p.name, Timeout: p.timeout, Message: pod.Status.Message}
		case term != nil && term.ExitCode != 0:
			v.err = &ExitError{Pod: p.name, ExitCode: int(term.ExitCode), Reason: term.Reason, Message: term.Message, MemoryLimit: p.memLimit}
		default:
			reason := pod.Status.Reason
			if reason == "" {
				reason = "Failed"
			}
			if v.reason == "" {
				v.reason = reason
			}
			v.err = &PodError{Pod: p.name, Reason: reason, Message: pod.Status.Message}
		}
		return v
	}
	if cs != nil && cs.State.Waiting != nil {
		w := cs.State.Waiting
		switch {
		case slices.Contains(imagePullReasons, w.Reason):
			v.final, v.reason = true, w.Reason
			v.err = &ImagePullError{Pod: p.name, Image: p.image, Reason: w.Reason, Message: w.Message}
			return v
		case slices.Contains(createReasons, w.Reason):
			v.final, v.reason = true, w.Reason
			v.err = &PodError{Pod: p.name, Reason: w.Reason, Message: w.Message}
			return v
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			v.unschedulable = &UnschedulableError{Pod: p.name, Reason: c.Reason, Message: c.Message}
		}
	}
	return v
}

// isEphemeralStorageEviction recognises the kubelet's eviction messages for
// local storage ("Pod ephemeral local storage usage exceeds the total limit
// of containers 1Gi.", "Container run exceeded its local ephemeral storage
// limit \"1Gi\".", "The node was low on resource: ephemeral-storage.").
func isEphemeralStorageEviction(msg string) bool {
	for _, s := range []string{"ephemeral local storage", "local ephemeral storage", "ephemeral-storage"} {
		if strings.Contains(strings.ToLower(msg), s) {
			return true
		}
	}
	return false
}

// podWatch follows one pod until classify says the run is over.
type podWatch struct {
	r         *Runner
	p         *plan
	startLogs func()
	rv        string
	timer     *time.Timer // running while the pod is unschedulable
	unsch     *UnschedulableError
}

// watchPod follows the pod from its created state. It returns an error
// only when ctx ends or the API keeps failing.
func (r *Runner) watchPod(ctx context.Context, p *plan, pod *corev1.Pod, startLogs func()) (verdict, error) {
	pw := &podWatch{r: r, p: p, startLogs: startLogs, rv: pod.ResourceVersion}
	defer pw.stopTimer()
	if v, done := pw.observe(pod); done {
		return v, nil
	}
	failures := 0
	for {
		var (
			w        watch.Interface
			err      error
			gotEvent bool
			done     bool
			v        verdict
		)
		if pw.rv == "" {
			// No version to resume from (or it expired): read the pod's
			// current state first, then watch from there, so that nothing
			// in between — its deletion included — goes unseen.
			var cur *corev1.Pod
			cur, err = r.client.GetPod(ctx, p.namespace, p.name)
			if apierrors.IsNotFound(err) {
				return podDeleted(p), nil
			}
			if err == nil {
				if v, done := pw.observe(cur); done {
					return v, nil
				}
				pw.rv = cur.ResourceVersion
			}
		}
		if err == nil {
			w, err = r.client.WatchPods(ctx, p.namespace, metav1.ListOptions{
				FieldSelector:       "metadata.name=" + p.name,
				ResourceVersion:     pw.rv,
				AllowWatchBookmarks: true,
			})
		}
		if err == nil {
			gotEvent, v, done, err = pw.drain(ctx, w)
			w.Stop()
			if done {
				return v, err
			}
		}
		if ctx.Err() != nil {
			return verdict{}, r.ctxErr(ctx, p)
		}
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			pw.rv = "" // too old: start again from the current state
		}
		if gotEvent {
			failures = 0
			continue // a watch that served events and closed: resume at once
		}
		failures++
		if err != nil && failures > maxWatchFailures {
			return verdict{}, fmt.Errorf("k8sexec: watch pod %s/%s: %w", p.namespace, p.name, err)
		}
		if backoff.Sleep(ctx, backoff.Exp(r.minDelay, r.maxDelay, failures-1)) != nil {
			return verdict{}, r.ctxErr(ctx, p)
		}
	}
}

const maxWatchFailures = 8

func podDeleted(p *plan) verdict {
	return verdict{final: true, exitCode: -1, reason: "Deleted", err: &PodError{
		Pod: p.name, Reason: "Deleted", Message: "the pod was deleted before it finished (by someone else, or a node failure)",
	}}
}

func (pw *podWatch) stopTimer() {
	if pw.timer != nil {
		pw.timer.Stop()
		pw.timer = nil
	}
}

func (pw *podWatch) timerC() <-chan time.Time {
	if pw.timer == nil {
		return nil
	}
	return pw.timer.C
}

// observe handles one state of the pod; done means the run is over.
func (pw *podWatch) observe(pod *corev1.Pod) (verdict, bool) {
	v := classify(pod, pw.p)
	if v.logsReady {
		pw.startLogs()
	}
	if v.final {
		return v, true
	}
	if v.unschedulable == nil {
		pw.unsch = nil
		pw.stopTimer()
		return v, false
	}
	pw.unsch = v.unschedulable
	if pw.p.schedule <= 0 {
		return pw.unschedulable(), true
	}
	if pw.timer == nil {
		pw.timer = time.NewTimer(pw.p.schedule)
	}
	return v, false
}

func (pw *podWatch) unschedulable() verdict {
	return verdict{final: true, exitCode: -1, reason: pw.unsch.Reason, err: pw.unsch}
}

// drain reads one watch until it closes (done=false: re-establish it) or
// the run is over (done=true).
func (pw *podWatch) drain(ctx context.Context, w watch.Interface) (gotEvent bool, v verdict, done bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return gotEvent, verdict{}, true, pw.r.ctxErr(ctx, pw.p)
		case <-pw.timerC():
			return gotEvent, pw.unschedulable(), true, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return gotEvent, verdict{}, false, nil
			}
			switch ev.Type {
			case watch.Error:
				return gotEvent, verdict{}, false, apierrors.FromObject(ev.Object)
			case watch.Bookmark:
				if m, ok := ev.Object.(metav1.Object); ok && m.GetResourceVersion() != "" {
					pw.rv = m.GetResourceVersion()
				}
			case watch.Added, watch.Modified, watch.Deleted:
				pod, ok := ev.Object.(*corev1.Pod)
				if !ok || pod.Name != pw.p.name {
					continue
				}
				gotEvent = true
				if pod.ResourceVersion != "" {
					pw.rv = pod.ResourceVersion
				}
				if v, final := pw.observe(pod); final {
					return gotEvent, v, true, nil
				}
				if ev.Type == watch.Deleted {
					return gotEvent, podDeleted(pw.p), true, nil
				}
			}
		}
	}
}

func (r *Runner) ctxErr(ctx context.Context, p *plan) error {
	return fmt.Errorf("k8sexec: pod %s/%s: run stopped: %w", p.namespace, p.name, ctx.Err())
}

// cleanup deletes what Run created: the pod first (waiting, bounded, until a
// pod that was still running is gone, so that its NetworkPolicy outlives
// it), then the policy, ConfigMap and Secret.
func (r *Runner) cleanup(ctx context.Context, p *plan, c *createdSet) error {
	if !c.pod && !c.policy && !c.configMap && !c.secret {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cleanupTimeout+p.grace)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var failed []string
	var errs []error
	del := func(kind string, f func(context.Context, string, string, metav1.DeleteOptions) error) {
		if err := f(ctx, p.namespace, p.name, opts); err != nil && !apierrors.IsNotFound(err) {
			failed = append(failed, kind+"/"+p.name)
			errs = append(errs, fmt.Errorf("delete %s: %w", kind, err))
		}
	}
	if c.pod {
		del("pod", r.client.DeletePod)
		if len(errs) == 0 && !c.podEnded {
			if err := r.waitGone(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.policy {
		del("networkpolicy", r.client.DeleteNetworkPolicy)
	}
	if c.configMap {
		del("configmap", r.client.DeleteConfigMap)
	}
	if c.secret {
		del("secret", r.client.DeleteSecret)
	}
	if len(failed) == 0 && len(errs) == 0 {
		return nil
	}
	return &CleanupError{Namespace: p.namespace, Objects: failed, Err: errors.Join(errs...)}
}

// waitGone waits until the deleted pod has left the API (it lingers while
// its containers get their grace period), bounded by ctx.
func (r *Runner) waitGone(ctx context.Context, p *plan) error {
	for attempt := 1; ; attempt++ {
		pod, err := r.client.GetPod(ctx, p.namespace, p.name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			w, werr := r.client.WatchPods(ctx, p.namespace, metav1.ListOptions{
				FieldSelector:   "metadata.name=" + p.name,
				ResourceVersion: pod.ResourceVersion,
			})
			if werr == nil {
				gone := waitDeleted(ctx, w, p.name)
				w.Stop()
				if gone {
					return nil
				}
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("pod %s still terminating; deleted its NetworkPolicy anyway: %w", p.name, ctx.Err())
		}
		if backoff.Sleep(ctx, backoff.Exp(r.minDelay, r.maxDelay, attempt-1)) != nil {
			return fmt.Errorf("pod %s still terminating; deleted its NetworkPolicy anyway: %w", p.name, ctx.Err())
		}
	}
}

func waitDeleted(ctx context.Context, w watch.Interface, name string) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return false
			}
			if pod, ok := ev.Object.(*corev1.Pod); ok && pod.Name == name && ev.Type == watch.Deleted {
				return true
			}
		}
	}
}

func newRunID() (string, error) {
	var b [runIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("k8sexec: run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

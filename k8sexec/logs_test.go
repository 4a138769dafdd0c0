package k8sexec_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tdctl/tdctl/k8sexec"
)

// logCall is one PodLogs request seen by a scripted log endpoint.
type logCall struct {
	opts *corev1.PodLogOptions
	w    *io.PipeWriter
}

// pipedLogs is a log endpoint whose streams the test writes by hand.
type pipedLogs struct {
	calls chan logCall
}

func (p *pipedLogs) podLogs(ctx context.Context, _, _ string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { // the request's context ends the stream, as with a real server
		<-ctx.Done()
		pw.CloseWithError(ctx.Err())
	}()
	select {
	case p.calls <- logCall{opts: opts.DeepCopy(), w: pw}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return pr, nil
}

func (p *pipedLogs) next(t *testing.T) logCall {
	t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no log request")
		return logCall{}
	}
}

func ts(at time.Time, text string) string {
	return at.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " " + text + "\n"
}

// TestLogsStreamAndResume: lines reach the writer while the pod runs; a
// stream that breaks mid-line is resumed from the last line's second
// without repeating lines of that second (even with equal timestamps) or
// losing the half-written one; after the container ends, one last read
// adds what the follow stream had not delivered.
func TestLogsStreamAndResume(t *testing.T) {
	e := setup(t)
	logs := &pipedLogs{calls: make(chan logCall)}
	runner := e.newRunner(&wrapClient{Client: e.client, podLogs: logs.podLogs})
	finish := make(chan struct{})
	kubelet := e.kubeletWaiting([]<-chan struct{}{nil, finish}, running, exited(0, "Completed"))

	var out syncBuffer
	type ran struct {
		res k8sexec.Result
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "job", Log: &out})
		done <- ran{res, err}
	}()

	sec := t0.Add(10 * time.Second)
	a, b, c := sec.Add(100*time.Millisecond), sec.Add(200*time.Millisecond), sec.Add(300*time.Millisecond)

	call := logs.next(t)
	assert.True(t, call.opts.Follow)
	assert.True(t, call.opts.Timestamps)
	assert.Nil(t, call.opts.SinceTime)
	_, err := io.WriteString(call.w, ts(t0, "one"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return out.String() == "one\n" }, 5*time.Second, time.Millisecond,
		"a line reaches the writer while the pod runs")
	_, err = io.WriteString(call.w, ts(a, "two")+ts(b, "three")+ts(b, "three again, same instant")+strings.TrimSuffix(ts(c, "four, half"), "\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.HasSuffix(out.String(), "three again, same instant\n") }, 5*time.Second, time.Millisecond)
	call.w.CloseWithError(io.ErrUnexpectedEOF) // the connection breaks

	call = logs.next(t)
	assert.True(t, call.opts.Follow)
	require.NotNil(t, call.opts.SinceTime)
	assert.Equal(t, sec, call.opts.SinceTime.Time.UTC(), "resumes at the last line's second")
	// The server repeats that second, then goes on; this stream ends
	// cleanly but in the middle of a line while the container still runs.
	_, err = io.WriteString(call.w, ts(a, "two")+ts(b, "three")+ts(b, "three again, same instant")+ts(c, "four, half and whole")+
		strings.TrimSuffix(ts(c.Add(time.Second), "five, hal"), "\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.HasSuffix(out.String(), "four, half and whole\n") }, 5*time.Second, time.Millisecond)
	call.w.Close()

	call = logs.next(t)
	assert.True(t, call.opts.Follow)
	assert.Equal(t, sec, call.opts.SinceTime.Time.UTC())
	_, err = io.WriteString(call.w, ts(a, "two")+ts(b, "three")+ts(b, "three again, same instant")+ts(c, "four, half and whole")+ts(c.Add(time.Second), "five"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.HasSuffix(out.String(), "five\n") }, 5*time.Second, time.Millisecond)
	close(finish) // the container ends; its follow stream ends cleanly
	call.w.Close()

	for {
		call = logs.next(t)
		assert.Equal(t, sec.Add(time.Second), call.opts.SinceTime.Time.UTC())
		if !call.opts.Follow {
			break // the last read, once Run saw the container end
		}
		// Reopened before Run saw the container end: the server sends
		// what it has and ends the stream.
		_, err = io.WriteString(call.w, ts(c.Add(time.Second), "five"))
		require.NoError(t, err)
		call.w.Close()
	}
	_, err = io.WriteString(call.w, ts(c.Add(time.Second), "five")+ts(c.Add(1500*time.Millisecond), "::set-param status=late line")+"no newline at the very end")
	require.NoError(t, err)
	call.w.Close()

	r := <-done
	<-kubelet
	require.NoError(t, r.err)
	assert.Equal(t, "one\ntwo\nthree\nthree again, same instant\nfour, half and whole\nfive\n::set-param status=late line\nno newline at the very end", out.String())
	assert.Equal(t, map[string]json.RawMessage{"status": json.RawMessage(`"late line"`)}, r.res.Params)
	e.requireNothingLeft()
}

// TestLogsUnavailableAfterFailure: when the logs of a finished pod cannot
// be read, Run says so (and still reports how the pod ended).
func TestLogsUnavailable(t *testing.T) {
	e := setup(t)
	e.cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "log" {
			return true, nil, apierrors.NewBadRequest(`container "run" in pod is terminated and its logs are gone`)
		}
		return false, nil, nil
	})
	t.Run("success", func(t *testing.T) {
		kubelet := e.kubelet(exited(0, "Completed"))
		res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true"})
		<-kubelet
		require.ErrorIs(t, err, k8sexec.ErrLogs)
		assert.ErrorContains(t, err, "logs are gone")
		assert.Equal(t, 0, res.ExitCode)
	})
	t.Run("failure", func(t *testing.T) {
		kubelet := e.kubelet(exited(2, "Error"))
		res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "false"})
		<-kubelet
		require.ErrorIs(t, err, k8sexec.ErrNonZeroExit)
		assert.ErrorIs(t, err, k8sexec.ErrLogs)
		assert.Equal(t, 2, res.ExitCode)
	})
}

// TestLogWriterError: a failing writer does not stop params being read,
// and the run reports it.
func TestLogWriterError(t *testing.T) {
	e := setup(t)
	e.serveLogs(lines(t0, time.Second, "x", "::set-param k=v"))
	kubelet := e.kubelet(exited(0, "Completed"))
	res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", Log: failWriter{}})
	<-kubelet
	require.ErrorIs(t, err, k8sexec.ErrLogs)
	assert.ErrorContains(t, err, "disk full")
	assert.Equal(t, map[string]json.RawMessage{"k": json.RawMessage(`"v"`)}, res.Params)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// scriptedWatch serves pod watches: the first closes after one event, so
// Run must re-establish it from the resourceVersion it saw.
type scriptedWatch struct {
	e     *env
	mu    sync.Mutex
	opts  []metav1.ListOptions
	calls chan struct{}
}

func (s *scriptedWatch) watchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	s.mu.Lock()
	s.opts = append(s.opts, opts)
	n := len(s.opts)
	s.mu.Unlock()
	defer func() { s.calls <- struct{}{} }()
	switch n {
	case 1:
		// One event, then the server closes the watch.
		fw := watch.NewFakeWithChanSize(1, false)
		obj, err := s.e.cs.Tracker().Get(podsGVR, namespace, strings.TrimPrefix(opts.FieldSelector, "metadata.name="))
		if err != nil {
			return nil, err
		}
		pod := obj.(*corev1.Pod)
		pod.ResourceVersion = "41"
		fw.Modify(pod)
		fw.Stop()
		return fw, nil
	case 2:
		// The resourceVersion is too old by now.
		fw := watch.NewFakeWithChanSize(1, false)
		fw.Error(&apierrors.NewResourceExpired("too old resource version: 41 (97)").ErrStatus)
		return fw, nil
	}
	return s.e.client.WatchPods(ctx, namespace, opts)
}

func TestWatchReestablished(t *testing.T) {
	e := setup(t)
	e.serveLogs(lines(t0, time.Second, "hi"))
	sw := &scriptedWatch{e: e, calls: make(chan struct{}, 10)}
	runner := e.newRunner(&wrapClient{Client: e.client, watchPods: sw.watchPods})
	third := make(chan struct{})
	go func() {
		for i := 0; i < 3; i++ {
			<-sw.calls
		}
		close(third)
	}()
	kubelet := e.kubeletWaiting([]<-chan struct{}{third}, exited(0, "Completed"))
	res, err := runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true"})
	<-kubelet
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)

	sw.mu.Lock()
	defer sw.mu.Unlock()
	require.GreaterOrEqual(t, len(sw.opts), 3)
	for _, o := range sw.opts {
		assert.Equal(t, "metadata.name="+res.Pod, o.FieldSelector)
	}
	assert.Equal(t, "41", sw.opts[1].ResourceVersion, "resumes from the last resourceVersion seen")
	assert.Equal(t, "", sw.opts[2].ResourceVersion, "after 410 Expired, starts again from the current state")
}

func TestWatchKeepsFailing(t *testing.T) {
	e := setup(t)
	runner := e.newRunner(&wrapClient{Client: e.client, watchPods: func(context.Context, string, metav1.ListOptions) (watch.Interface, error) {
		return nil, errors.New("connection refused")
	}})
	_, err := runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true"})
	require.Error(t, err)
	assert.ErrorContains(t, err, "watch pod jobs/tdctl-")
	assert.ErrorContains(t, err, "connection refused")
	e.requireNothingLeft()
}

// TestLogDrainTimeout: a log stream that never ends after the pod finished
// is cut after the drain timeout, and Run says so.
func TestLogDrainTimeout(t *testing.T) {
	e := setup(t)
	logs := &pipedLogs{calls: make(chan logCall, 10)}
	runner := k8sexec.NewRunner(&wrapClient{Client: e.client, podLogs: logs.podLogs},
		k8sexec.WithNamespace(ns), k8sexec.WithRetryDelay(time.Millisecond, 10*time.Millisecond),
		k8sexec.WithLogDrainTimeout(100*time.Millisecond))
	finish := make(chan struct{})
	kubelet := e.kubeletWaiting([]<-chan struct{}{nil, finish}, running, exited(0, "Completed"))
	go func() {
		c := logs.next(t)
		_, _ = io.WriteString(c.w, ts(t0, "stuck"))
		close(finish) // the stream stays open after the container ends
	}()
	var out syncBuffer
	start := time.Now()
	res, err := runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", Log: &out})
	<-kubelet
	require.ErrorIs(t, err, k8sexec.ErrLogs)
	assert.ErrorContains(t, err, "still streaming 100ms after the pod finished")
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, "stuck\n", out.String())
	assert.Less(t, time.Since(start), 3*time.Second)
	e.requireNothingLeft()
}

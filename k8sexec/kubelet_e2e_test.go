package k8sexec_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tdctl/tdctl/internal/kubeapiserver"
	"github.com/tdctl/tdctl/k8sexec"
)

// testLogsThroughKubelet binds the pod Run creates to a Node whose kubelet
// is a kubeapiserver.Kubelet, so that pods/log goes apiserver -> kubelet for real:
// Run must write exactly the lines served, in order, once each, across a
// follow stream that breaks, and return the ::set-param lines as params.
func testLogsThroughKubelet(t *testing.T, cs kubernetes.Interface, r *k8sexec.Runner, namespace string, ctx context.Context) {
	kl := kubeapiserver.NewKubelet(t, namespace)
	nodeName := "fake-node-" + namespace
	kubeapiserver.RegisterNode(t, cs, nodeName, kl.Port(t))
	// The first follow stream breaks after 4 lines: line 3 (at :01.2)
	// shares its second with line 4, so the resumed stream (sinceTime
	// :01) repeats line 3, which Run must skip.
	kl.CutFollowStreams(1, 4)

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
			kl.SetPod(pod.Name)
			if err := kubeapiserver.BindPod(ctx, cs, namespace, pod.Name, nodeName); err != nil {
				return fmt.Errorf("bind: %w", err)
			}
			if err := kubeapiserver.SetStatus(ctx, cs, namespace, pod.Name, statusRunning); err != nil {
				return fmt.Errorf("running: %w", err)
			}
			for i, s := range texts {
				kl.Write(base.Add(time.Duration(i)*400*time.Millisecond), s)
				time.Sleep(60 * time.Millisecond)
			}
			kl.Exit()
			if err := kubeapiserver.SetStatus(ctx, cs, namespace, pod.Name, statusExited(0, "Completed")); err != nil {
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

	requests, errs := kl.Served()
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

package k8sexec_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tdctl/tdctl/k8sexec"
)

func owned(name, runID string, age time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(time.Now().Add(-age)),
		Labels: map[string]string{k8sexec.LabelManagedBy: "tdctl", k8sexec.LabelRunID: runID}}
}

func TestGC(t *testing.T) {
	old, young := 3*time.Hour, 10*time.Minute
	foreign := metav1.ObjectMeta{Name: "someone-elses", Namespace: ns, CreationTimestamp: metav1.NewTime(time.Now().Add(-old)),
		Labels: map[string]string{k8sexec.LabelRunID: "x", "app.kubernetes.io/managed-by": "helm"}}
	otherNS := owned("tdctl-elsewhere", "e1", old)
	otherNS.Namespace = "other"
	// A policy made just before its pod: older than the cut-off while its
	// pod is not, so it stays with the pod.
	e := setup(t,
		&corev1.Pod{ObjectMeta: owned("tdctl-old1", "old1", old)},
		&corev1.Pod{ObjectMeta: owned("tdctl-young", "young", young)},
		&corev1.Pod{ObjectMeta: foreign},
		&corev1.Pod{ObjectMeta: otherNS},
		&networkingv1.NetworkPolicy{ObjectMeta: owned("tdctl-old1", "old1", old)},
		&networkingv1.NetworkPolicy{ObjectMeta: owned("tdctl-gone", "gone", old)},
		&networkingv1.NetworkPolicy{ObjectMeta: owned("tdctl-young", "young", 2*time.Hour)},
		&networkingv1.NetworkPolicy{ObjectMeta: foreign},
		&corev1.ConfigMap{ObjectMeta: owned("tdctl-gone", "gone", old)},
		&corev1.Secret{ObjectMeta: owned("tdctl-gone", "gone", old)},
		&corev1.Secret{ObjectMeta: owned("tdctl-young", "young", young)},
	)
	got, err := e.runner.GC(ctxT(t), "", time.Hour)
	require.NoError(t, err)
	gcActions := e.cs.Actions()
	assert.Equal(t, []string{"tdctl-old1"}, got.Pods)
	assert.Equal(t, []string{"tdctl-gone", "tdctl-old1"}, sorted(got.NetworkPolicies))
	assert.Equal(t, []string{"tdctl-gone"}, got.ConfigMaps)
	assert.Equal(t, []string{"tdctl-gone"}, got.Secrets)
	assert.Equal(t, 5, got.Total())

	pods, err := e.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"tdctl-young", "someone-elses"}, podNames(pods.Items))
	_, err = e.cs.CoreV1().Pods("other").Get(context.Background(), "tdctl-elsewhere", metav1.GetOptions{})
	require.NoError(t, err, "other namespaces untouched")
	nps, err := e.cs.NetworkingV1().NetworkPolicies(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, nps.Items, 2)

	// Lists ask for the ownership label.
	for _, a := range gcActions {
		if l, ok := a.(k8stesting.ListAction); ok {
			assert.Equal(t, "app.kubernetes.io/managed-by=tdctl", l.GetListRestrictions().Labels.String())
		}
	}

	t.Run("partial failure is reported, the rest still deleted", func(t *testing.T) {
		e := setup(t,
			&corev1.Pod{ObjectMeta: owned("tdctl-a", "a", old)},
			&corev1.Secret{ObjectMeta: owned("tdctl-b", "b", old)},
			&corev1.ConfigMap{ObjectMeta: owned("tdctl-b", "b", old)})
		e.cs.PrependReactor("delete", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("etcd timeout")
		})
		got, err := e.runner.GC(ctxT(t), ns, time.Hour)
		require.Error(t, err)
		assert.ErrorContains(t, err, "delete configmap jobs/tdctl-b: etcd timeout")
		assert.Equal(t, []string{"tdctl-a"}, got.Pods)
		assert.Equal(t, []string{"tdctl-b"}, got.Secrets)
	})
	t.Run("pods cannot be listed: nothing deleted", func(t *testing.T) {
		e := setup(t, &networkingv1.NetworkPolicy{ObjectMeta: owned("tdctl-a", "a", old)})
		e.cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("forbidden")
		})
		got, err := e.runner.GC(ctxT(t), ns, time.Hour)
		require.Error(t, err)
		assert.Zero(t, got.Total())
	})
	t.Run("needs a namespace", func(t *testing.T) {
		e := setup(t)
		_, err := k8sexec.NewRunner(e.client).GC(ctxT(t), "", time.Hour)
		assert.ErrorIs(t, err, k8sexec.ErrInvalidSpec)
	})
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

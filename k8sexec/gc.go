package k8sexec

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Collected lists the names of the objects GC deleted, by kind.
type Collected struct {
	Pods            []string
	NetworkPolicies []string
	ConfigMaps      []string
	Secrets         []string
}

// Total is the number of objects deleted.
func (c Collected) Total() int {
	return len(c.Pods) + len(c.NetworkPolicies) + len(c.ConfigMaps) + len(c.Secrets)
}

// GC deletes what runs left behind in namespace (empty: the Runner's) —
// pods, NetworkPolicies, ConfigMaps and Secrets labelled
// LabelManagedBy=ManagedBy and created more than olderThan ago — for
// example after tdctl was killed mid-run. Running pods are deleted too, so
// give an olderThan longer than any run. Objects not labelled by k8sexec
// are never touched. It deletes what it can and reports what it could not.
func (r *Runner) GC(ctx context.Context, namespace string, olderThan time.Duration) (Collected, error) {
	var out Collected
	if namespace == "" {
		namespace = r.namespace
	}
	if namespace == "" {
		return out, fmt.Errorf("%w: GC needs a namespace", ErrInvalidSpec)
	}
	if olderThan < 0 {
		return out, fmt.Errorf("%w: GC olderThan %s is negative", ErrInvalidSpec, olderThan)
	}
	cutoff := time.Now().Add(-olderThan)
	sel := metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy}
	bg := metav1.DeletePropagationBackground
	delOpts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var errs []error

	// Run IDs of pods that stay: their policy, ConfigMap and Secret stay too
	// (a policy is created just before its pod, so it is always a little
	// older).
	live := map[string]bool{}
	stale := func(m metav1.ObjectMeta) bool {
		return m.Labels[LabelManagedBy] == ManagedBy && m.CreationTimestamp.Time.Before(cutoff) &&
			m.DeletionTimestamp == nil && !live[m.Labels[LabelRunID]]
	}
	collect := func(kind string, names []string, del func(context.Context, string, string, metav1.DeleteOptions) error) []string {
		var done []string
		for _, n := range names {
			err := del(ctx, namespace, n, delOpts)
			switch {
			case err == nil:
				done = append(done, n)
			case apierrors.IsNotFound(err):
			default:
				errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", kind, namespace, n, err))
			}
		}
		return done
	}

	// Pods first, so a policy never goes before its pod.
	if pods, err := r.client.ListPods(ctx, namespace, sel); err != nil {
		// Without the pods, nothing else can be judged safe to delete.
		return out, fmt.Errorf("k8sexec: GC: list pods in %s: %w", namespace, err)
	} else {
		var names []string
		for _, o := range pods.Items {
			if stale(o.ObjectMeta) {
				names = append(names, o.Name)
			}
		}
		out.Pods = collect("pod", names, r.client.DeletePod)
		deleted := map[string]bool{}
		for _, n := range out.Pods {
			deleted[n] = true
		}
		for _, o := range pods.Items {
			if id := o.Labels[LabelRunID]; id != "" && !deleted[o.Name] {
				live[id] = true
			}
		}
	}
	if nps, err := r.client.ListNetworkPolicies(ctx, namespace, sel); err != nil {
		errs = append(errs, fmt.Errorf("list networkpolicies in %s: %w", namespace, err))
	} else {
		var names []string
		for _, o := range nps.Items {
			if stale(o.ObjectMeta) {
				names = append(names, o.Name)
			}
		}
		out.NetworkPolicies = collect("networkpolicy", names, r.client.DeleteNetworkPolicy)
	}
	if cms, err := r.client.ListConfigMaps(ctx, namespace, sel); err != nil {
		errs = append(errs, fmt.Errorf("list configmaps in %s: %w", namespace, err))
	} else {
		var names []string
		for _, o := range cms.Items {
			if stale(o.ObjectMeta) {
				names = append(names, o.Name)
			}
		}
		out.ConfigMaps = collect("configmap", names, r.client.DeleteConfigMap)
	}
	if secs, err := r.client.ListSecrets(ctx, namespace, sel); err != nil {
		errs = append(errs, fmt.Errorf("list secrets in %s: %w", namespace, err))
	} else {
		var names []string
		for _, o := range secs.Items {
			if stale(o.ObjectMeta) {
				names = append(names, o.Name)
			}
		}
		out.Secrets = collect("secret", names, r.client.DeleteSecret)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("k8sexec: GC: %w", errors.Join(errs...))
	}
	return out, nil
}

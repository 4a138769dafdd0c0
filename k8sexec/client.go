package k8sexec

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// Client is the part of the Kubernetes API a Runner uses. NewRESTClient
// implements it over client-go's rest package (what the CLI links);
// package k8sexec/clientset adapts a kubernetes.Interface (what tests use,
// with client-go's fake clientset). Errors are client-go's API errors
// (k8s.io/apimachinery/pkg/api/errors), so IsNotFound and friends work.
type Client interface {
	CreatePod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error)
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	ListPods(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error)
	// WatchPods watches pods; opts.ResourceVersion resumes a watch.
	WatchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error)
	DeletePod(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error
	// PodLogs opens the pod's log stream (GET pods/NAME/log).
	PodLogs(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error)

	CreateNetworkPolicy(ctx context.Context, np *networkingv1.NetworkPolicy) (*networkingv1.NetworkPolicy, error)
	GetNetworkPolicy(ctx context.Context, namespace, name string) (*networkingv1.NetworkPolicy, error)
	ListNetworkPolicies(ctx context.Context, namespace string, opts metav1.ListOptions) (*networkingv1.NetworkPolicyList, error)
	DeleteNetworkPolicy(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error

	CreateConfigMap(ctx context.Context, cm *corev1.ConfigMap) (*corev1.ConfigMap, error)
	ListConfigMaps(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.ConfigMapList, error)
	DeleteConfigMap(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error

	CreateSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error)
	ListSecrets(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.SecretList, error)
	DeleteSecret(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error
}

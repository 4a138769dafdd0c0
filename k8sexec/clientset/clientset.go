// Package clientset adapts a client-go kubernetes.Interface to
// k8sexec.Client, for tests with client-go's fake clientset (and programs
// that hold a typed clientset anyway). It is a separate package because
// the typed clientset is expensive to link: its scheme registers every API
// group at program start, which k8sexec itself avoids.
package clientset

import (
	"context"
	"io"

	"github.com/tdctl/tdctl/k8sexec"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Client is a k8sexec.Client over a kubernetes.Interface.
type Client struct {
	cs kubernetes.Interface
}

var _ k8sexec.Client = (*Client)(nil)

// New returns a Client over cs.
func New(cs kubernetes.Interface) *Client { return &Client{cs: cs} }

// CreatePod implements k8sexec.Client.
func (c *Client) CreatePod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	return c.cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
}

// GetPod implements k8sexec.Client.
func (c *Client) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return c.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

// ListPods implements k8sexec.Client.
func (c *Client) ListPods(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error) {
	return c.cs.CoreV1().Pods(namespace).List(ctx, opts)
}

// WatchPods implements k8sexec.Client.
func (c *Client) WatchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	return c.cs.CoreV1().Pods(namespace).Watch(ctx, opts)
}

// DeletePod implements k8sexec.Client.
func (c *Client) DeletePod(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.cs.CoreV1().Pods(namespace).Delete(ctx, name, opts)
}

// PodLogs implements k8sexec.Client.
func (c *Client) PodLogs(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.cs.CoreV1().Pods(namespace).GetLogs(name, opts).Stream(ctx)
}

// CreateNetworkPolicy implements k8sexec.Client.
func (c *Client) CreateNetworkPolicy(ctx context.Context, np *networkingv1.NetworkPolicy) (*networkingv1.NetworkPolicy, error) {
	return c.cs.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{})
}

// GetNetworkPolicy implements k8sexec.Client.
func (c *Client) GetNetworkPolicy(ctx context.Context, namespace, name string) (*networkingv1.NetworkPolicy, error) {
	return c.cs.NetworkingV1().NetworkPolicies(namespace).Get(ctx, name, metav1.GetOptions{})
}

// ListNetworkPolicies implements k8sexec.Client.
func (c *Client) ListNetworkPolicies(ctx context.Context, namespace string, opts metav1.ListOptions) (*networkingv1.NetworkPolicyList, error) {
	return c.cs.NetworkingV1().NetworkPolicies(namespace).List(ctx, opts)
}

// DeleteNetworkPolicy implements k8sexec.Client.
func (c *Client) DeleteNetworkPolicy(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.cs.NetworkingV1().NetworkPolicies(namespace).Delete(ctx, name, opts)
}

// CreateConfigMap implements k8sexec.Client.
func (c *Client) CreateConfigMap(ctx context.Context, cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	return c.cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
}

// ListConfigMaps implements k8sexec.Client.
func (c *Client) ListConfigMaps(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.ConfigMapList, error) {
	return c.cs.CoreV1().ConfigMaps(namespace).List(ctx, opts)
}

// DeleteConfigMap implements k8sexec.Client.
func (c *Client) DeleteConfigMap(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.cs.CoreV1().ConfigMaps(namespace).Delete(ctx, name, opts)
}

// CreateSecret implements k8sexec.Client.
func (c *Client) CreateSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error) {
	return c.cs.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
}

// ListSecrets implements k8sexec.Client.
func (c *Client) ListSecrets(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.SecretList, error) {
	return c.cs.CoreV1().Secrets(namespace).List(ctx, opts)
}

// DeleteSecret implements k8sexec.Client.
func (c *Client) DeleteSecret(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.cs.CoreV1().Secrets(namespace).Delete(ctx, name, opts)
}

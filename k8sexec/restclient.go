package k8sexec

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restClient implements Client with client-go's rest package and a scheme
// holding only core/v1 and networking/v1. It deliberately avoids the typed
// clientset (k8s.io/client-go/kubernetes), whose scheme registers every API
// group at program start and would cost every tdctl run ~20 ms.
type restClient struct {
	core   *rest.RESTClient
	netv1  *rest.RESTClient
	params runtime.ParameterCodec
}

// NewRESTClient returns a Client for the cluster cfg points at.
func NewRESTClient(cfg *rest.Config) (Client, error) {
	if cfg == nil {
		return nil, fmt.Errorf("k8sexec: no cluster config")
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := networkingv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	codecs := serializer.NewCodecFactory(scheme)

	base := rest.CopyConfig(cfg)
	if base.UserAgent == "" {
		base.UserAgent = "tdctl-k8sexec"
	}
	httpClient, err := rest.HTTPClientFor(base)
	if err != nil {
		return nil, fmt.Errorf("k8sexec: cluster config: %w", err)
	}
	build := func(apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
		c := rest.CopyConfig(base)
		c.APIPath = apiPath
		c.GroupVersion = &gv
		c.NegotiatedSerializer = codecs.WithoutConversion()
		c.ContentType = runtime.ContentTypeJSON
		return rest.RESTClientForConfigAndClient(c, httpClient)
	}
	core, err := build("/api", corev1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("k8sexec: cluster config: %w", err)
	}
	net, err := build("/apis", networkingv1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("k8sexec: cluster config: %w", err)
	}
	return &restClient{core: core, netv1: net, params: runtime.NewParameterCodec(scheme)}, nil
}

// LoadConfig finds the cluster the way kubectl does: the kubeconfig file
// at path if given, else the files in $KUBECONFIG, else ~/.kube/config;
// with none of them, the in-cluster config of a pod's service account.
// contextName selects a kubeconfig context (empty: the current one). The
// namespace is the context's (or the pod's own, in cluster), "default" when
// neither says.
func LoadConfig(path, contextName string) (cfg *rest.Config, namespace string, err error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	overrides := &clientcmd.ConfigOverrides{CurrentContext: contextName}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err = cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", fmt.Errorf("k8sexec: no Kubernetes cluster configured: give --kubeconfig, set $KUBECONFIG, create ~/.kube/config, or run inside a pod")
		}
		return nil, "", fmt.Errorf("k8sexec: load kubeconfig: %w", err)
	}
	namespace, _, err = cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("k8sexec: kubeconfig namespace: %w", err)
	}
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	return cfg, namespace, nil
}

// NewRunnerFromKubeconfig loads the cluster config (see LoadConfig) and
// returns a Runner whose default namespace is the config's; opts come
// after it, so WithNamespace overrides it.
func NewRunnerFromKubeconfig(path, contextName string, opts ...Option) (*Runner, error) {
	cfg, ns, err := LoadConfig(path, contextName)
	if err != nil {
		return nil, err
	}
	c, err := NewRESTClient(cfg)
	if err != nil {
		return nil, err
	}
	return NewRunner(c, append([]Option{WithNamespace(ns)}, opts...)...), nil
}

func (c *restClient) CreatePod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	err := c.core.Post().Namespace(pod.Namespace).Resource("pods").Body(pod).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	err := c.core.Get().Namespace(namespace).Resource("pods").Name(name).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) ListPods(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error) {
	out := &corev1.PodList{}
	err := c.core.Get().Namespace(namespace).Resource("pods").VersionedParams(&opts, c.params).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) WatchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.core.Get().Namespace(namespace).Resource("pods").VersionedParams(&opts, c.params).Watch(ctx)
}

func (c *restClient) DeletePod(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.core.Delete().Namespace(namespace).Resource("pods").Name(name).Body(&opts).Do(ctx).Error()
}

func (c *restClient) PodLogs(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.core.Get().Namespace(namespace).Resource("pods").Name(name).SubResource("log").VersionedParams(opts, c.params).Stream(ctx)
}

func (c *restClient) CreateNetworkPolicy(ctx context.Context, np *networkingv1.NetworkPolicy) (*networkingv1.NetworkPolicy, error) {
	out := &networkingv1.NetworkPolicy{}
	err := c.netv1.Post().Namespace(np.Namespace).Resource("networkpolicies").Body(np).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) GetNetworkPolicy(ctx context.Context, namespace, name string) (*networkingv1.NetworkPolicy, error) {
	out := &networkingv1.NetworkPolicy{}
	err := c.netv1.Get().Namespace(namespace).Resource("networkpolicies").Name(name).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) ListNetworkPolicies(ctx context.Context, namespace string, opts metav1.ListOptions) (*networkingv1.NetworkPolicyList, error) {
	out := &networkingv1.NetworkPolicyList{}
	err := c.netv1.Get().Namespace(namespace).Resource("networkpolicies").VersionedParams(&opts, c.params).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) DeleteNetworkPolicy(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.netv1.Delete().Namespace(namespace).Resource("networkpolicies").Name(name).Body(&opts).Do(ctx).Error()
}

func (c *restClient) CreateConfigMap(ctx context.Context, cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	out := &corev1.ConfigMap{}
	err := c.core.Post().Namespace(cm.Namespace).Resource("configmaps").Body(cm).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) ListConfigMaps(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.ConfigMapList, error) {
	out := &corev1.ConfigMapList{}
	err := c.core.Get().Namespace(namespace).Resource("configmaps").VersionedParams(&opts, c.params).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) DeleteConfigMap(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.core.Delete().Namespace(namespace).Resource("configmaps").Name(name).Body(&opts).Do(ctx).Error()
}

func (c *restClient) CreateSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error) {
	out := &corev1.Secret{}
	err := c.core.Post().Namespace(s.Namespace).Resource("secrets").Body(s).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) ListSecrets(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.SecretList, error) {
	out := &corev1.SecretList{}
	err := c.core.Get().Namespace(namespace).Resource("secrets").VersionedParams(&opts, c.params).Do(ctx).Into(out)
	return out, err
}

func (c *restClient) DeleteSecret(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
	return c.core.Delete().Namespace(namespace).Resource("secrets").Name(name).Body(&opts).Do(ctx).Error()
}

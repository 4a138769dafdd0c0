// Package kubeapiserver starts a real etcd and kube-apiserver on loopback
// for end-to-end tests of code that talks to Kubernetes (k8sexec).
//
// There is no kubelet, scheduler or controller-manager: objects are stored
// and validated for real, watches, authentication and RBAC are real, but
// nothing runs pods. What follows from that (pinned by this package's tests):
//   - Tests play the kubelet by writing pod status through the status
//     subresource (UpdateStatus): Pending -> Running -> Succeeded/Failed with
//     container states, which watches then deliver.
//   - Pods stay unbound (spec.nodeName empty). The log of an unbound pod is
//     an empty 200 answer; a pod bound to a node that does not exist has no
//     log (404).
//   - Deleting a pod that is unbound or in a terminal phase removes it at
//     once (a MODIFIED event with deletionTimestamp, then DELETED). A bound,
//     non-terminal pod only gets a deletion mark and would wait for its
//     kubelet forever: only GracePeriodSeconds=0 removes it.
//   - The ServiceAccount admission plugin is off (no controller makes
//     `default` service accounts), so pods keep an empty serviceAccountName
//     and get no token volume.
//   - Namespaces deleted here stay Terminating (no namespace controller);
//     the whole cluster is thrown away at the end of the test.
//   - The PodSecurity admission plugin is on (named in
//     --enable-admission-plugins, though recent versions enable it by
//     default): a namespace labelled pod-security.kubernetes.io/enforce
//     refuses the pods its level does not admit, as on a real cluster
//     (CreateNamespaceEnforcing).
//
// The binaries come from .ci/k8s-e2e-setup.sh (see FindBinaries); when they
// are missing the test is skipped with a message saying how to get them,
// unless TDCTL_K8S_E2E_REQUIRE=1 asks for a failure instead.
package kubeapiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// AdminUser is the user the returned Config authenticates as; it is in the
// group system:masters, which RBAC lets do anything.
const AdminUser = "tdctl-e2e-admin"

// Cluster is a running etcd + kube-apiserver pair owned by one test.
type Cluster struct {
	// Config reaches the apiserver as AdminUser with a bearer token and
	// verifies its self-signed serving certificate. Copy it with
	// rest.CopyConfig before changing it.
	Config *rest.Config
	// Host is the apiserver's URL, https://127.0.0.1:<port>.
	Host string
	// KubeconfigPath is a kubeconfig file for Config (mode 0600), for code
	// that loads its configuration through clientcmd.
	KubeconfigPath string
	// Dir holds the certificates, keys, logs and etcd data; it is removed
	// when the test ends.
	Dir string
	// APIServerLog and EtcdLog are the programs' output files inside Dir.
	APIServerLog, EtcdLog string
	// StartupTime is how long Start took, binaries found to default
	// namespace present.
	StartupTime time.Duration

	t         testing.TB
	etcd      *process
	apiserver *process
	stopOnce  sync.Once
	logsShown bool
}

// Option changes how StartCluster starts the cluster.
type Option func(*options)

type options struct {
	flags        map[string]string
	startTimeout time.Duration
}

// WithAPIServerFlag sets kube-apiserver's --name=value, replacing the
// harness's own value for that flag; an empty value removes the flag. For
// example WithAPIServerFlag("disable-admission-plugins", "") turns the
// ServiceAccount admission plugin back on (CreateNamespace makes the
// `default` service account it needs).
func WithAPIServerFlag(name, value string) Option {
	return func(o *options) { o.flags[strings.TrimLeft(name, "-")] = value }
}

// WithStartTimeout bounds how long kube-apiserver may take to become ready
// (default 60s).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// Start starts a cluster for t and returns its admin rest.Config. It skips
// t when the binaries are missing and stops everything when t ends.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	return StartCluster(t).Config
}

// StartCluster is Start with options, returning the whole Cluster.
func StartCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	begin := time.Now()
	bins, err := FindBinaries()
	if errors.Is(err, ErrNotFound) && !requireBinaries() {
		t.Skipf("skipping k8s e2e: %v", err)
	}
	if err != nil {
		t.Fatalf("k8s e2e: %v", err)
	}
	o := &options{flags: map[string]string{}, startTimeout: 60 * time.Second}
	for _, opt := range opts {
		opt(o)
	}

	dir := t.TempDir()
	c := &Cluster{
		t:            t,
		Dir:          dir,
		APIServerLog: filepath.Join(dir, "kube-apiserver.log"),
		EtcdLog:      filepath.Join(dir, "etcd.log"),
	}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(c.Stop)

	etcdURL, err := c.startEtcd(bins.Etcd)
	if err != nil {
		c.fatal("etcd: %v", err)
	}
	token, err := c.startAPIServer(bins.KubeAPIServer, etcdURL, o)
	if err != nil {
		c.fatal("kube-apiserver: %v", err)
	}
	if err := c.finishConfig(token); err != nil {
		c.fatal("kube-apiserver: %v", err)
	}
	if err := c.ensureDefaultNamespace(); err != nil {
		c.fatal("kube-apiserver: %v", err)
	}
	c.StartupTime = time.Since(begin)
	t.Logf("kube-apiserver %s ready at %s in %s (etcd %s, logs in %s)",
		KubernetesVersion, c.Host, c.StartupTime.Round(time.Millisecond), etcdURL, dir)
	return c
}

func requireBinaries() bool {
	v := strings.ToLower(os.Getenv(EnvRequire))
	return v == "1" || v == "true" || v == "yes"
}

// fatal fails the test with the tail of both logs.
func (c *Cluster) fatal(format string, args ...any) {
	c.t.Helper()
	c.logsShown = true
	c.t.Fatalf("k8s e2e: %s\n%s", fmt.Sprintf(format, args...), c.logTails())
}

func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, p := range []*process{c.etcd, c.apiserver} {
		if p == nil {
			continue
		}
		fmt.Fprintf(&b, "--- last lines of %s (%s)\n%s\n", p.name, p.logPath, tailFile(p.logPath, 40))
	}
	return b.String()
}

// Stop ends kube-apiserver and etcd (SIGTERM, then SIGKILL after 5s) and
// waits for them. It runs by itself when the test ends; calling it earlier
// is fine. If the test failed, the tail of both logs is logged first.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		if c.t.Failed() && !c.logsShown {
			c.t.Logf("k8s e2e: test failed; cluster logs:\n%s", c.logTails())
		}
		if c.apiserver != nil {
			c.apiserver.stop(5 * time.Second)
		}
		if c.etcd != nil {
			c.etcd.stop(5 * time.Second)
		}
	})
}

// Clientset returns a typed clientset for Config.
func (c *Cluster) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatalf("k8s e2e: clientset: %v", err)
	}
	return cs
}

// CreateNamespace creates a namespace named tdctl-e2e-<random> with a
// `default` service account in it, and returns its name.
func (c *Cluster) CreateNamespace(t testing.TB) string {
	t.Helper()
	cs := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "tdctl-e2e-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("k8s e2e: create namespace: %v", err)
	}
	if err := createDefaultServiceAccount(ctx, cs, ns.Name); err != nil {
		t.Fatalf("k8s e2e: %v", err)
	}
	return ns.Name
}

// LabelPodSecurityEnforce is the namespace label that sets the Pod
// Security level the PodSecurity admission plugin enforces there.
const LabelPodSecurityEnforce = "pod-security.kubernetes.io/enforce"

// CreateNamespaceEnforcing is CreateNamespace for a namespace labelled
// LabelPodSecurityEnforce=level ("baseline" or "restricted"). It returns
// once the admission plugin enforces the level there (a dry run of a pod
// on the host's network is refused), so a test's first pod meets it.
func (c *Cluster) CreateNamespaceEnforcing(t testing.TB, level string) string {
	t.Helper()
	cs := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "tdctl-e2e-" + level + "-", Labels: map[string]string{LabelPodSecurityEnforce: level}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("k8s e2e: create namespace: %v", err)
	}
	if err := createDefaultServiceAccount(ctx, cs, ns.Name); err != nil {
		t.Fatalf("k8s e2e: %v", err)
	}
	// hostNetwork breaks "baseline" and so "restricted" too (a privileged
	// container would be refused earlier, by --allow-privileged=false).
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-security-probe"},
		Spec:       corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
	}
	var last error
	for {
		_, err := cs.CoreV1().Pods(ns.Name).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "violates PodSecurity") {
			return ns.Name
		}
		if ctx.Err() != nil {
			t.Fatalf("k8s e2e: namespace %s: Pod Security %q is not enforced (is the PodSecurity admission plugin off?); last dry run: %v", ns.Name, level, last)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
}

func createDefaultServiceAccount(ctx context.Context, cs kubernetes.Interface, ns string) error {
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create service account %s/default: %w", ns, err)
	}
	return nil
}

// startEtcd starts etcd on two free loopback ports and waits for /health.
func (c *Cluster) startEtcd(bin string) (string, error) {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return "", err
		}
		clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		args := []string{
			"--name=tdctl-e2e",
			"--data-dir=" + filepath.Join(c.Dir, "etcd-data"),
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=tdctl-e2e=" + peerURL,
			"--initial-cluster-state=new",
			"--logger=zap",
			"--log-outputs=stderr",
		}
		_ = os.RemoveAll(filepath.Join(c.Dir, "etcd-data"))
		p, err := startProcess("etcd", bin, args, c.EtcdLog)
		if err != nil {
			return "", err
		}
		c.etcd = p
		err = waitFor(p, 20*time.Second, func(hc *http.Client) (bool, error) {
			body, code, err := get(hc, clientURL+"/health", "")
			if err != nil {
				return false, nil
			}
			return code == http.StatusOK && strings.Contains(body, `"health":"true"`), nil
		})
		if err == nil {
			return clientURL, nil
		}
		lastErr = err
		p.stop(2 * time.Second)
		if !p.logContains("address already in use") {
			break
		}
	}
	return "", lastErr
}

// startAPIServer writes the token file and service-account key, starts
// kube-apiserver on a free loopback port and waits for /readyz. It returns
// the admin token.
func (c *Cluster) startAPIServer(bin, etcdURL string, o *options) (string, error) {
	token, err := randomHex(32)
	if err != nil {
		return "", err
	}
	tokenFile := filepath.Join(c.Dir, "tokens.csv")
	// token,user,uid,"group1,group2"
	line := fmt.Sprintf("%s,%s,%s-uid,\"system:masters\"\n", token, AdminUser, AdminUser)
	if err := os.WriteFile(tokenFile, []byte(line), 0o600); err != nil {
		return "", err
	}
	saKey := filepath.Join(c.Dir, "service-account.key")
	if err := writeECKey(saKey); err != nil {
		return "", err
	}
	certDir := filepath.Join(c.Dir, "certs")

	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return "", err
		}
		port := strconv.Itoa(ports[0])
		flags := map[string]string{
			"etcd-servers":                     etcdURL,
			"bind-address":                     "127.0.0.1",
			"advertise-address":                "127.0.0.1",
			"secure-port":                      port,
			"cert-dir":                         certDir,
			"token-auth-file":                  tokenFile,
			"authorization-mode":               "RBAC",
			"service-account-issuer":           "https://kubernetes.default.svc.cluster.local",
			"service-account-key-file":         saKey,
			"service-account-signing-key-file": saKey,
			"service-cluster-ip-range":         "10.0.0.0/24",
			// No controller-manager makes `default` service accounts, so
			// the ServiceAccount admission plugin would reject every pod.
			"disable-admission-plugins": "ServiceAccount",
			// Named although it is on by default: the e2e tests rely on it.
			"enable-admission-plugins": "PodSecurity",
			// 127.0.0.1 is not a valid endpoint address for the
			// `kubernetes` service; nothing here needs that service.
			"endpoint-reconciler-type":     "none",
			"enable-priority-and-fairness": "false",
			"profiling":                    "false",
		}
		for k, v := range o.flags {
			if v == "" {
				delete(flags, k)
			} else {
				flags[k] = v
			}
		}
		args := make([]string, 0, len(flags))
		for k, v := range flags {
			args = append(args, "--"+k+"="+v)
		}
		slices.Sort(args)

		p, err := startProcess("kube-apiserver", bin, args, c.APIServerLog)
		if err != nil {
			return "", err
		}
		c.apiserver = p
		c.Host = "https://127.0.0.1:" + port
		var lastBody string
		err = waitFor(p, o.startTimeout, func(hc *http.Client) (bool, error) {
			body, code, err := get(hc, c.Host+"/readyz", token)
			if err != nil {
				return false, nil
			}
			lastBody = body
			return code == http.StatusOK, nil
		})
		if err == nil {
			return token, nil
		}
		if lastBody != "" {
			err = fmt.Errorf("%w; last /readyz answer:\n%s", err, failingChecks(lastBody))
		}
		lastErr = err
		p.stop(2 * time.Second)
		if !p.logContains("address already in use") {
			break
		}
	}
	return "", lastErr
}

// finishConfig builds Config with the serving certificate kube-apiserver
// generated in its cert dir, and writes the kubeconfig file.
func (c *Cluster) finishConfig(token string) error {
	caPath := filepath.Join(c.Dir, "certs", "apiserver.crt")
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return fmt.Errorf("read the self-signed serving certificate: %w", err)
	}
	c.Config = &rest.Config{
		Host:            c.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             200,
		Burst:           400,
		Timeout:         30 * time.Second,
		UserAgent:       "tdctl-e2e",
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["e2e"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e", Namespace: "default"}
	kc.CurrentContext = "e2e"
	c.KubeconfigPath = filepath.Join(c.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, c.KubeconfigPath); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return os.Chmod(c.KubeconfigPath, 0o600)
}

// ensureDefaultNamespace waits for kube-apiserver's own system-namespaces
// controller to create `default` (through the verified TLS config), makes it
// if it has not appeared after 10s, and gives it a `default` service account.
func (c *Cluster) ensureDefaultNamespace() error {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created := false
	for start := time.Now(); ; {
		_, err := cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get namespace default: %w", err)
		}
		if !created && time.Since(start) > 10*time.Second {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceDefault},
			}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create namespace default: %w", err)
			}
			created = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace default did not appear: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return createDefaultServiceAccount(ctx, cs, metav1.NamespaceDefault)
}

// waitFor polls ready every 100ms until it says yes, the process exits, or
// timeout passes.
func waitFor(p *process, timeout time.Duration, ready func(*http.Client) (bool, error)) error {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			// Only while waiting, only to 127.0.0.1: the certificate does
			// not exist until kube-apiserver has written it. Config
			// verifies it afterwards.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		},
	}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		if done, err := p.exited(); done {
			return err
		}
		ok, err := ready(hc)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s", p.name, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(hc *http.Client, url, token string) (string, int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if strings.HasSuffix(url, "/readyz") {
		req.URL.RawQuery = "verbose"
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(b), resp.StatusCode, nil
}

// failingChecks keeps the lines of a verbose /readyz answer that are not "ok".
func failingChecks(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "[-]") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return body
	}
	return strings.Join(out, "\n")
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// writeECKey writes a new P-256 private key; kube-apiserver reads it both as
// the token signing key and (its public half) as the verification key.
func writeECKey(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

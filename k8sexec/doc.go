// Package k8sexec runs a script in a Kubernetes pod and reports how it
// ended: customers' scripts, run with limits, no cloud credentials and no
// privileges.
//
//	r, err := k8sexec.NewRunnerFromKubeconfig("", "") // $KUBECONFIG, ~/.kube/config or in-cluster
//	res, err := r.Run(ctx, k8sexec.Spec{
//		Image:    "python:3.13-slim",
//		Script:   "python job.py",
//		Files:    map[string]string{"job.py": src},       // mounted under /tdctl/files
//		Secrets:  map[string]string{"TD_API_KEY": apiKey}, // never in the pod spec
//		Requests: k8sexec.Resources{CPU: "500m", Memory: "512Mi"},
//		Timeout:  30 * time.Minute,
//		Log:      os.Stdout,
//	})
//	os.Exit(res.ExitCode) // with errors.As(err, &exitErr) etc. for the why
//
// # What a run creates
//
// A pod with restartPolicy Never, one container named ContainerName, the
// ownership labels LabelManagedBy=ManagedBy and LabelRunID, CPU and memory
// requests/limits as given and an ephemeral-storage request and limit
// (DefaultEphemeralStorage, 1Gi, unless set) so that a script filling the
// node's disk is evicted instead; activeDeadlineSeconds from Spec.Timeout.
// Next to it, a NetworkPolicy selecting the pod that allows egress to
// 0.0.0.0/0 except 169.254.169.254/32 (cloud instance metadata and its
// credentials), to ::/0 except AWS's fd00:ec2::254/128, and to pods in all
// namespaces (cluster DNS); with Spec.DenyEgress it allows no egress at
// all. Spec.Secrets and Spec.Files live in a Secret and a ConfigMap of the
// run. All are named after the pod and deleted when Run returns.
//
// The NetworkPolicy only works where the cluster's network plugin (CNI)
// enforces NetworkPolicy — Calico, Cilium, Antrea, GKE Dataplane V2, EKS
// with network policy enabled, and so on. Elsewhere (e.g. flannel alone)
// the API accepts the policy and nothing enforces it: the metadata
// endpoint stays reachable. Check with the cluster's administrator, or
// block the address on the nodes.
//
// # Security context
//
// The pod passes the Pod Security Standards' "restricted" level, so a
// namespace labelled pod-security.kubernetes.io/enforce=restricted admits
// it:
//
//   - runAsNonRoot: true with runAsUser DefaultRunAsUser (65532), or the
//     uid in Spec.RunAsUser; a numeric uid, so the kubelet can check it
//     without looking into the image;
//   - seccompProfile RuntimeDefault (pod level);
//   - allowPrivilegeEscalation: false and capabilities drop ["ALL"] on the
//     container;
//   - automountServiceAccountToken: false unless Spec.ServiceAccount names
//     an account, and no service links.
//
// The uid need not exist in the image (container runtimes then usually set
// HOME to /): the script can write to /tmp and to directories the image
// makes world-writable, not to root-owned ones. Images built to run as some
// other user take that uid in Spec.RunAsUser.
//
// Spec.RunAsUser 0 is the opt-out for images that need root (installing
// packages, chown): runAsUser 0, runAsNonRoot unset, and the container
// runtime's default capabilities, still without privilege escalation and
// with RuntimeDefault seccomp. That pod meets "baseline" only; a namespace
// enforcing "restricted" refuses it, and Run returns the apiserver's
// reason (`violates PodSecurity "restricted:latest": runAsNonRoot != true
// ...`) in one line, with apierrors.IsForbidden true.
//
// # Outcomes
//
// Run watches the pod (the watch API, re-established from the last
// resourceVersion when it closes) and maps what it sees to typed errors:
// *ExitError (non-zero exit; OOMKilled), *EvictedError (ephemeral storage
// above its limit, which the script sees as exit code 137, or node
// pressure), *DeadlineExceededError, *ImagePullError (fails at the first
// pull error, naming the image), *UnschedulableError (with the scheduler's
// reason), *PodError for the rest. Each also matches a sentinel (ErrNonZeroExit,
// ErrOOMKilled, ErrEvicted, ...) with errors.Is.
//
// # Output params
//
// Lines the script prints as "::set-param key=value" or
// "::set-param {"key": value, ...}" come back in Result.Params (see
// SetParamPrefix).
//
// # Start-up cost
//
// This package talks to the API through client-go's rest package with a
// scheme of its own (core/v1 and networking/v1 only). It must not import
// k8s.io/client-go/kubernetes or its scheme/typed packages: they register
// every API group at init, which every tdctl run would pay. The adapter for
// a kubernetes.Interface (for tests with the fake clientset) lives in the
// separate package k8sexec/clientset.
package k8sexec

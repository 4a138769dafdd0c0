// Package k8scmd implements `tdctl k8s run` and `tdctl k8s gc`: a script in
// a Kubernetes pod with storage/CPU/memory limits and the cloud metadata
// address blocked (package k8sexec).
package k8scmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/k8sexec"
)

// RunOptions are the inputs of `k8s run`.
type RunOptions struct {
	IO  *iostreams.IOStreams
	Ctx context.Context
	// NewRunner connects to the cluster (tests substitute a fake).
	NewRunner func(kubeconfig, context string) (*k8sexec.Runner, error)

	Kubeconfig, Context string
	Spec                k8sexec.Spec
	Env, SecretEnv      []string
	Script              string
}

// NewCmdK8s returns `tdctl k8s` with run and gc.
func NewCmdK8s(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "k8s <command>",
		Short: "Run scripts in Kubernetes pods with limits and the cloud metadata API blocked",
		Long: `Run a script in a pod (restartPolicy Never) with CPU, memory and ephemeral-storage
limits (1Gi of local disk unless --ephemeral-storage), beside a NetworkPolicy that blocks
egress to 169.254.169.254 (cloud metadata) — or all egress with --deny-egress. Logs stream as
they come; the pod and everything created for it are deleted when the script ends, fails,
times out or is interrupted. The NetworkPolicy needs a CNI that enforces NetworkPolicy.

The pod passes Pod Security "restricted": it runs as uid 65532 (--run-as-user to change it)
with runAsNonRoot, the runtime's default seccomp profile, no privilege escalation, every
capability dropped, and no service-account token unless --service-account. For an image that
needs root, --run-as-user 0 runs it as root with the runtime's default capabilities; a
namespace enforcing "restricted" refuses that pod (exit 2, with the apiserver's reason).

Exit status of 'k8s run': the script's own exit code; 137 style codes for OOM kills and
evictions as the container reports them; 4 when --timeout passes; 2 when the pod never
ran (image pull failure, unschedulable, API errors); 130 when interrupted.`,
	}
	cmd.AddCommand(newCmdRun(f, nil), newCmdGC(f))
	return cmd
}

func addClusterFlags(cmd *cobra.Command, kubeconfig, kctx, ns *string) {
	cmd.Flags().StringVar(kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
	cmd.Flags().StringVar(kctx, "context", "", "kubeconfig context")
	cmd.Flags().StringVarP(ns, "namespace", "n", "", "namespace (default: the context's)")
}

// newCmdRun returns `k8s run`; runF, when not nil, replaces runRun (tests
// look at the options the flags made).
func newCmdRun(f *factory.Factory, runF func(*RunOptions) error) *cobra.Command {
	o := &RunOptions{IO: f.IOStreams, NewRunner: func(kc, c string) (*k8sexec.Runner, error) { return k8sexec.NewRunnerFromKubeconfig(kc, c) }}
	var timeout time.Duration
	var runAsUser int64
	cmd := &cobra.Command{
		Use:   "run --image IMAGE [flags] -- COMMAND [ARG...]",
		Short: "Run a command (or --script) in a pod and stream its logs",
		Example: `  tdctl k8s run --image python:3.13-slim --memory 512Mi -- python -c 'print(1)'
  tdctl k8s run --image alpine --ephemeral-storage 1Gi --deny-egress --script 'df -h /; echo done'
  tdctl k8s run --image myorg/job:1.2 --secret-env TD_API_KEY=td-secrets/apikey -- ./job.sh
  tdctl k8s run --image debian:13 --run-as-user 0 --script 'apt-get update && apt-get install -y jq'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ctx = cmd.Context()
			o.Spec.Timeout = timeout
			if cmd.Flags().Changed("run-as-user") {
				o.Spec.RunAsUser = &runAsUser
			}
			if err := o.complete(args); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runRun(o)
		},
	}
	fl := cmd.Flags()
	addClusterFlags(cmd, &o.Kubeconfig, &o.Context, &o.Spec.Namespace)
	fl.StringVar(&o.Spec.Image, "image", "", "container image (required)")
	fl.StringVar(&o.Script, "script", "", "run this shell script instead of COMMAND")
	fl.StringVar(&o.Spec.Requests.CPU, "cpu", "", "CPU request and limit, e.g. 500m")
	fl.StringVar(&o.Spec.Requests.Memory, "memory", "", "memory request and limit, e.g. 512Mi")
	fl.StringVar(&o.Spec.Requests.EphemeralStorage, "ephemeral-storage", "", "local disk request and limit (default 1Gi)")
	fl.DurationVar(&timeout, "timeout", 0, "stop the pod after this long (activeDeadlineSeconds)")
	fl.BoolVar(&o.Spec.DenyEgress, "deny-egress", false, "deny all egress (DNS included), not only cloud metadata")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "environment variable NAME=VALUE (repeatable; not for secrets)")
	fl.StringArrayVar(&o.SecretEnv, "secret-env", nil, "NAME=SECRET/KEY: environment variable from an existing Secret's key (repeatable)")
	fl.StringVar(&o.Spec.ServiceAccount, "service-account", "", "service account (default: none mounted)")
	fl.Int64Var(&runAsUser, "run-as-user", k8sexec.DefaultRunAsUser, "uid to run as; 0 runs as root, which Pod Security \"restricted\" refuses")
	return cmd
}

func (o *RunOptions) complete(args []string) error {
	if strings.TrimSpace(o.Spec.Image) == "" {
		return cmdutil.FlagErrorf("--image is required, e.g. --image python:3.13-slim")
	}
	switch {
	case o.Script != "" && len(args) > 0:
		return cmdutil.FlagErrorf("give either --script or a COMMAND after --, not both")
	case o.Script != "":
		o.Spec.Script = o.Script
	case len(args) > 0:
		o.Spec.Command = args
	}
	for _, e := range o.Env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return cmdutil.FlagErrorf("--env %q: expected NAME=VALUE", k)
		}
		if o.Spec.Env == nil {
			o.Spec.Env = map[string]string{}
		}
		o.Spec.Env[k] = v
	}
	for _, e := range o.SecretEnv {
		k, ref, ok := strings.Cut(e, "=")
		secret, key, ok2 := strings.Cut(ref, "/")
		if !ok || !ok2 || k == "" || secret == "" || key == "" {
			return cmdutil.FlagErrorf("--secret-env %q: expected NAME=SECRET/KEY", e)
		}
		if o.Spec.SecretEnv == nil {
			o.Spec.SecretEnv = map[string]k8sexec.SecretKeyRef{}
		}
		o.Spec.SecretEnv[k] = k8sexec.SecretKeyRef{Name: secret, Key: key}
	}
	return nil
}

// ScriptExitError ends `k8s run` with the script's exit code; see
// cmdutil.ScriptExitError.
type ScriptExitError = cmdutil.ScriptExitError

func runRun(o *RunOptions) error {
	if err := o.Spec.Validate(); err != nil {
		return specFlagError(err)
	}
	r, err := o.NewRunner(o.Kubeconfig, o.Context)
	if err != nil {
		return cmdutil.NewConfigError(err)
	}
	o.Spec.Log = o.IO.Out
	res, err := r.Run(o.Ctx, o.Spec)
	// A pod line only when something ran or Kubernetes said why not; a run
	// that never created its pod (no cluster) just ends with the error.
	switch {
	case res.ExitCode >= 0:
		fmt.Fprintf(o.IO.ErrOut, "pod %s/%s: %s (exit code %d)\n", res.Namespace, res.Pod, reasonOr(res.Reason, err), res.ExitCode)
	case res.Reason != "":
		fmt.Fprintf(o.IO.ErrOut, "pod %s/%s: %s\n", res.Namespace, res.Pod, res.Reason)
	}
	return MapError(o.Ctx, res, err)
}

func reasonOr(reason string, err error) string {
	if reason != "" {
		return reason
	}
	if err != nil {
		return "failed"
	}
	return "Completed"
}

// MapError turns a k8sexec outcome into the CLI's error: the script's
// exit code when it ran, a timeout, an interruption, or an API error.
func MapError(ctx context.Context, res k8sexec.Result, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return cmdutil.ErrCancel
	case errors.Is(err, k8sexec.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
	case res.ExitCode > 0 && res.ExitCode < 256:
		return &ScriptExitError{Code: res.ExitCode, Err: err}
	}
	return &ScriptExitError{Code: cmdutil.ExitAPI, Err: err}
}

func newCmdGC(f *factory.Factory) *cobra.Command {
	var kubeconfig, kctx, ns string
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete pods (and their policies, config maps, secrets) left by tdctl runs",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return cmdutil.FlagErrorf("--older-than must be positive, e.g. --older-than 1h")
			}
			r, err := k8sexec.NewRunnerFromKubeconfig(kubeconfig, kctx)
			if err != nil {
				return cmdutil.NewConfigError(err)
			}
			c, err := r.GC(cmd.Context(), ns, olderThan)
			printCollected(f.IOStreams.Out, c)
			if err != nil {
				return &ScriptExitError{Code: cmdutil.ExitAPI, Err: err}
			}
			return nil
		},
	}
	addClusterFlags(cmd, &kubeconfig, &kctx, &ns)
	cmd.Flags().DurationVar(&olderThan, "older-than", time.Hour, "delete what is older than this")
	return cmd
}

func printCollected(w io.Writer, c k8sexec.Collected) {
	for _, p := range c.Pods {
		fmt.Fprintf(w, "pod/%s\n", p)
	}
	for _, p := range c.NetworkPolicies {
		fmt.Fprintf(w, "networkpolicy/%s\n", p)
	}
	for _, p := range c.ConfigMaps {
		fmt.Fprintf(w, "configmap/%s\n", p)
	}
	for _, p := range c.Secrets {
		fmt.Fprintf(w, "secret/%s\n", p)
	}
}

// specFields names the flag of each Spec field that k8s run sets.
var specFields = map[string]string{
	"Image": "--image", "Namespace": "--namespace", "Timeout": "--timeout", "ServiceAccount": "--service-account",
	"Requests.CPU": "--cpu", "Requests.Memory": "--memory", "Requests.EphemeralStorage": "--ephemeral-storage",
	"SecretEnv": "--secret-env", "Script": "--script", "RunAsUser": "--run-as-user",
}

// specFlagError words a *k8sexec.SpecError after the flag that set the
// field, as a usage error (exit 1).
func specFlagError(err error) error {
	var se *k8sexec.SpecError
	if errors.As(err, &se) {
		if flag, ok := specFields[se.Field]; ok {
			return cmdutil.FlagErrorf("%s: %s", flag, se.Msg)
		}
	}
	return cmdutil.NewConfigError(err)
}

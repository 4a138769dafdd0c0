package workflowcmd

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/workflowui"
)

// uiOptions are the inputs of `workflow ui`.
type uiOptions struct {
	*Options
	Addr        string
	AllowRemote bool
	// Ready, when set, is called with the base URL once the UI listens
	// (tests).
	Ready func(baseURL string)
}

func newCmdUI(o *Options, runF func(*uiOptions) error) *cobra.Command {
	uo := &uiOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve a web page of the local runs, each task linked to its own log",
		Long: `Serve a small web UI of the runs kept in the runs directory: the list of runs; a run's task
tree (state, start, duration, attempts, td job id, num_records) with a filter of the failed tasks
and a link to the first failure; each task's own log; the whole run's log split into per-task
sections. A run still going updates in place. It reads the same records as 'workflow logs',
secrets masked the same way.

It listens on loopback only (--addr 127.0.0.1:0 picks a free port; the first stdout line is
the URL). The UI has no login: serving it on any other address needs --allow-remote.`,
		Example: "  tdctl workflow ui\n  tdctl workflow ui --addr 127.0.0.1:8081\n  tdctl workflow ui --addr 0.0.0.0:8081 --allow-remote",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			uo.Ctx = cmd.Context()
			if runF != nil {
				return runF(uo)
			}
			return uiRun(uo)
		},
	}
	cmd.Flags().StringVar(&uo.Addr, "addr", "127.0.0.1:0", "HOST:PORT to listen on (port 0: a free one)")
	cmd.Flags().BoolVar(&uo.AllowRemote, "allow-remote", false, "allow a non-loopback --addr (the UI has no login)")
	cmd.Flags().StringVar(&o.RunsDir, "runs-dir", "", "where run logs are kept (env TDCTL_RUNS_DIR)")
	cmd.Flags().StringVar(&o.SecretsFile, "secrets", "", "YAML/JSON file of secret names to values, masked in what the UI shows")
	return cmd
}

// checkLoopback refuses a non-loopback HOST:PORT, naming the flag that
// allows it. A host name must resolve to loopback addresses only.
func checkLoopback(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return cmdutil.FlagErrorf("invalid --addr %q: expected HOST:PORT, e.g. 127.0.0.1:8080 or 127.0.0.1:0", addr)
	}
	refuse := cmdutil.FlagErrorf("--addr %s is not a loopback address and the UI has no login (anyone who can reach it reads every run's logs): pass --allow-remote to serve it there anyway", addr)
	if host == "" {
		return refuse // every interface
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		if !ip.IsLoopback() {
			return refuse
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return cmdutil.FlagErrorf("--addr %s: %v", addr, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return refuse
		}
	}
	return nil
}

func uiRun(o *uiOptions) error {
	if !o.AllowRemote {
		if err := checkLoopback(o.Ctx, o.Addr); err != nil {
			return err
		}
	}
	dir := o.RunsDir
	if dir == "" {
		var err error
		if dir, err = RunsDir(o.getenv); err != nil {
			return cmdutil.NewConfigError(err)
		}
	}
	// What the UI shows is masked with every secret this process knows:
	// the configured API key (o.APIKey loads it), TDCTL_SECRET_* values
	// and the --secrets file.
	if o.APIKey != nil {
		o.APIKey()
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "TDCTL_SECRET_") {
			cmdutil.AddSecrets(v)
			cmdutil.AddURLSecrets(v)
		}
	}
	file, err := loadSecretsFile(o.Ctx, o.SecretsFile)
	if err != nil {
		if o.Ctx != nil && o.Ctx.Err() != nil {
			return err
		}
		return cmdutil.NewFlagError(err)
	}
	for _, v := range file {
		cmdutil.AddSecrets(v)
		cmdutil.AddURLSecrets(v)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return cmdutil.FlagErrorf("cannot listen on %s: %v (try --addr 127.0.0.1:0 for a free port)", o.Addr, err)
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()
	h := workflowui.New(workflowui.Options{Source: LocalRuns{Dir: dir}, Mask: cmdutil.Redact, AllowRemote: o.AllowRemote})
	fmt.Fprintf(o.IO.Out, "%s/\n", base)
	if f, ok := o.IO.Out.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	if o.IO.IsStderrTTY() {
		fmt.Fprintf(o.IO.ErrOut, "Serving the runs in %s. Stop with Ctrl-C.\n", dir)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if o.Ready != nil {
		o.Ready(base)
	}
	// live pages hold their event streams open: 2 s, then they are cut
	return cmdutil.Serve(o.Ctx, srv, ln, 2*time.Second)
}

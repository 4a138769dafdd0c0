// Package devserver implements `tdctl dev-server`: the TD API emulator
// (internal/emulator) served over HTTP, so every tdctl command can be tried
// without an account.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/internal/emulator/wfserver"
)

// DevServerOptions are the inputs of `dev-server`.
type DevServerOptions struct {
	IO  *iostreams.IOStreams
	Ctx context.Context

	Addr       string
	DataDir    string
	Keys       []string
	QueuedFor  time.Duration
	RunningFor time.Duration
	UserName   string
	Verbose    bool
	// ConnBandwidth is --conn-bandwidth as given ("" = unlimited).
	ConnBandwidth string
	connBandwidth int64
	// Ready, when set, is called with the base URL once the server listens
	// (tests).
	Ready func(baseURL string)
}

// NewCmdDevServer returns `dev-server`.
func NewCmdDevServer(f *factory.Factory, runF func(*DevServerOptions) error) *cobra.Command {
	opts := &DevServerOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "dev-server",
		Short: "Serve a local TD API emulator to try tdctl without an account",
		Long: `Serve the TD API emulator: jobs really run (on an embedded SQLite database seeded with
sample_datasets.www_access and nasdaq), move queued → running → success/error, and results
export to td://@/db/table, PostgreSQL or saved connections (predefined: my_td_connection, a
Treasure Data connection taking database/table/mode settings, and my_s3_connection, an S3-type
connection written as CSV files under the data directory).

It also serves digdag's REST API under /api/ (projects, workflows, sessions, attempts, tasks,
logs, schedules, project secrets): push a project, start a workflow and follow its attempt,
tasks and logs as on a digdag server. Workflows run inside the dev-server with tdctl's runner,
against the emulated TD API; params they store go to a store in the data directory.

The first line on stdout is the address ("listening on http://HOST:PORT"), the second a
line to paste into your shell. Any API key is accepted unless --require-key is given.
--addr 127.0.0.1:0 picks a free port. Stop it with Ctrl-C.`,
		Example: "  tdctl dev-server &\n  eval \"$(tdctl dev-server --addr 127.0.0.1:0 | sed -n 2p)\"  # in a script: read line 2",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Ctx = cmd.Context()
			if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
				return cmdutil.FlagErrorf("invalid --addr %q: expected HOST:PORT, e.g. 127.0.0.1:8080 or 127.0.0.1:0", opts.Addr)
			}
			if opts.QueuedFor < 0 || opts.RunningFor < 0 {
				return cmdutil.FlagErrorf("--queued-for and --running-for must not be negative")
			}
			if opts.ConnBandwidth != "" {
				n, err := humanize.ParseBytes(opts.ConnBandwidth)
				if err != nil || n == 0 || n > math.MaxInt64 {
					return cmdutil.FlagErrorf("invalid --conn-bandwidth %q: give bytes per second per connection, e.g. 50MB (SI) or 64MiB", opts.ConnBandwidth)
				}
				opts.connBandwidth = int64(n)
			}
			if runF != nil {
				return runF(opts)
			}
			return devServerRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	fl.StringVar(&opts.DataDir, "data", "", "keep the emulator's state in `DIR` (default: in memory, gone on exit); one dev-server per DIR")
	fl.StringSliceVar(&opts.Keys, "require-key", nil, "accept only these API keys (default: any key)")
	fl.DurationVar(&opts.QueuedFor, "queued-for", 0, "how long each job stays queued")
	fl.DurationVar(&opts.RunningFor, "running-for", 500*time.Millisecond, "how long each job stays running")
	fl.StringVar(&opts.UserName, "user", "dev@example.com", "user_name the emulator reports on jobs")
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "log every request on stderr")
	fl.StringVar(&opts.ConnBandwidth, "conn-bandwidth", "", "pace each connection's responses to `RATE` bytes per second, e.g. 50MB or 64MiB (default: unlimited); to try parallel downloads on loopback")
	return cmd
}

func devServerRun(opts *DevServerOptions) error {
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return cmdutil.FlagErrorf("--data %s: %v", opts.DataDir, err)
		}
	}
	to := emulator.Options{
		APIKeys:    opts.Keys,
		QueuedFor:  opts.QueuedFor,
		RunningFor: opts.RunningFor,
		DataDir:    opts.DataDir,
		UserName:   opts.UserName,

		ConnBandwidth: opts.connBandwidth,
	}
	if opts.Verbose {
		to.Logf = func(format string, args ...any) {
			fmt.Fprintf(opts.IO.ErrOut, format+"\n", args...)
		}
	}
	emu, err := emulator.New(to)
	var inUse *emulator.DataDirInUseError
	if errors.As(err, &inUse) {
		return cmdutil.NewConfigError(fmt.Errorf("--data %s is in use by another dev-server: stop that one or give another --data directory", opts.DataDir))
	}
	if err != nil {
		return fmt.Errorf("starting the emulator: %w", err)
	}
	defer emu.Close()
	// the connection the seed workflows and the README name: an S3-type
	// target written as CSV files under the data directory
	emu.AddConnection("my_s3_connection", "s3://", nil)
	emu.AddConnection("my_td_connection", "td://@/", nil)
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return cmdutil.FlagErrorf("cannot listen on %s: %v (is another dev-server running? try --addr 127.0.0.1:0)", opts.Addr, err)
	}
	base := "http://" + ln.Addr().String()
	key := "dev"
	if len(opts.Keys) > 0 {
		key = "<one of your --require-key values>"
	}
	wfDir := opts.DataDir
	if wfDir == "" {
		if wfDir, err = os.MkdirTemp("", "dev-server-workflows-"); err != nil {
			return err
		}
		defer os.RemoveAll(wfDir)
	} else {
		wfDir = filepath.Join(wfDir, "workflows")
	}
	schedKey := "dev" // what scheduled runs send to the emulator
	if len(opts.Keys) > 0 {
		schedKey = opts.Keys[0]
	}
	wf, err := wfserver.New(wfserver.Options{Emulator: emu, DataDir: wfDir, Endpoint: base, APIKey: schedKey, Logf: to.Logf})
	if err != nil {
		return fmt.Errorf("starting the workflow API: %w", err)
	}
	defer wf.Close()
	fmt.Fprintf(opts.IO.Out, "listening on %s\n", base)
	fmt.Fprintf(opts.IO.Out, "export TD_API_SERVER=%s TD_API_KEY=%s\n", base, key)
	if f, ok := opts.IO.Out.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	if opts.IO.IsStderrTTY() {
		fmt.Fprintln(opts.IO.ErrOut, "Try: tdctl query -d sample_datasets -w 'SELECT code, COUNT(1) AS n FROM www_access GROUP BY code'")
		fmt.Fprintln(opts.IO.ErrOut, "Stop with Ctrl-C.")
	}
	srv := &http.Server{Handler: wf, ReadHeaderTimeout: 10 * time.Second}
	if opts.Ready != nil {
		opts.Ready(base)
	}
	if err := cmdutil.Serve(opts.Ctx, srv, ln, 5*time.Second); err != nil {
		return err
	}
	if opts.Ctx.Err() != nil && opts.IO.IsStderrTTY() {
		fmt.Fprintln(opts.IO.ErrOut, "dev-server stopped")
	}
	return nil // Ctrl-C is how a dev-server ends: exit 0
}

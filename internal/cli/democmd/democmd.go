// Package democmd implements `tdctl demo`: the whole main job end to end
// with no account — the TD API emulator in-process, the embedded SQLite
// param store, and examples/workflows/demo.dig.
package democmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/examples"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd"
	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

// DemoKey is the API key the demo uses against its own emulator.
const DemoKey = "demo/0000000000000000"

// NewCmdDemo returns `tdctl demo`.
func NewCmdDemo(f *factory.Factory) *cobra.Command {
	var dataDir string
	var format output.Format
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the main job end to end with no account: query, num_records, export, params",
		Long: `Start the TD API emulator in this process and run examples/workflows/demo.dig on it:
a query on sample_datasets.www_access, its num_records, its result exported to a td table and
to a saved S3-type connection (written as CSV under the data directory) at once, and a param
kept in the embedded SQLite store. Run it twice: the second run prints what the first stored.

State (emulator databases, exported files, params.db, run logs) is kept in --data
(default: the user cache directory, tdctl/demo).`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), f, dataDir, format)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "keep the demo's state in `DIR`")
	output.AddFormatFlag(cmd, &format)
	return cmd
}

func run(ctx context.Context, f *factory.Factory, dataDir string, format output.Format) error {
	ios := f.IOStreams
	if dataDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return cmdutil.NewConfigError(fmt.Errorf("no user cache directory (%v): pass --data DIR", err))
		}
		dataDir = filepath.Join(cache, "tdctl", "demo")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		cause, _ := cmdutil.PathCause(err)
		return cmdutil.NewConfigError(fmt.Errorf("cannot create the demo's data directory %s: %w; pass --data DIR", dataDir, cause))
	}
	srv, err := emulator.New(emulator.Options{DataDir: filepath.Join(dataDir, "emulator"), APIKeys: []string{DemoKey}})
	var inUse *emulator.DataDirInUseError
	if errors.As(err, &inUse) {
		return cmdutil.NewConfigError(fmt.Errorf("another tdctl demo is using %s: wait for it to end or pass another --data DIR", dataDir))
	}
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.AddConnection("my_s3_connection", "s3://", nil)
	srv.AddConnection("my_td_connection", "td://@/", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(ios.ErrOut, "TD API emulator listening on %s (no account needed); state in %s\n\n", base, dataDir)

	// the embedded workflows, written next to the run logs
	wfDir := filepath.Join(dataDir, "workflows")
	if err := copyFS(examples.Workflows, "workflows", wfDir); err != nil {
		return err
	}
	client, err := td.NewClient(DemoKey, td.WithEndpoint(base))
	if err != nil {
		return err
	}
	o := &workflowcmd.Options{
		IO:            ios,
		TDClient:      func() (*td.Client, error) { return client, nil },
		APIKey:        func() string { return DemoKey },
		ParamStore:    workflowcmd.OpenParamStore,
		Getenv:        func(string) string { return "" },
		Ctx:           ctx,
		File:          filepath.Join(wfDir, "demo.dig"),
		ParamStoreURL: "sqlite://" + filepath.Join(dataDir, "params.db"),
		RunsDir:       filepath.Join(dataDir, "runs"),
		Format:        format,
	}
	if err := workflowcmd.Run(o); err != nil {
		return err
	}
	fmt.Fprintf(ios.ErrOut, "\nExported CSV files: %s\n", filepath.Join(dataDir, "emulator", "s3", "demo_bucket"))
	fmt.Fprintf(ios.ErrOut, "Run it again to see the param kept between runs; try the CLI on a dev-server:\n")
	fmt.Fprintf(ios.ErrOut, "  tdctl dev-server &   # then: export TD_API_SERVER=http://127.0.0.1:8080 TD_API_KEY=dev\n")
	fmt.Fprintf(ios.ErrOut, "  tdctl query -d sample_datasets -w 'SELECT 1 AS a, 2 AS b'\n")
	return nil
}

// copyFS writes dir of fsys to dst (overwriting: the embedded copy is the
// source of truth).
func copyFS(fsys fs.FS, dir, dst string) error {
	return fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".sh" {
			mode = 0o755
		}
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

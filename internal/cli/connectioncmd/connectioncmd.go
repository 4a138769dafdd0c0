// Package connectioncmd is the `tdctl connection` command group: TD's
// saved result-output connections (the Ruby td CLI's result:list and
// result:show).
package connectioncmd

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// Short is the group's one-line help.
const Short = "List and show saved result connections"

// Options are the inputs of the connection subcommands.
type Options struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context
	Format   output.Format

	Name string
}

// NewCmdConnection returns the `connection` group.
func NewCmdConnection(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "connection",
		Aliases: []string{"result"},
		Short:   Short,
		Long: "Saved result-output connections: the targets td> and 'tdctl job export --connection' name.\n" +
			"URLs are printed with their passwords masked.",
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdShow(f, nil))
	return cmdutil.MakeGroup(cmd)
}

func sanitize(c *td.Connection) *td.Connection {
	out := *c
	out.URL = cmdutil.Redact(out.URL)
	return &out
}

// NewCmdList returns `connection list`.
func NewCmdList(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List saved connections",
		Example: "  tdctl connection list\n  tdctl connection list -o json | jq -r '.[].name'",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			c, err := opts.TDClient()
			if err != nil {
				return err
			}
			all, err := c.Connections.List(opts.Ctx)
			if err != nil {
				return err
			}
			for i, conn := range all {
				all[i] = sanitize(conn)
			}
			p := output.New(opts.IO, opts.Format)
			if p.Structured() {
				return output.JSONList(p, all)
			}
			t := p.Table("name", "url", "organization")
			for _, conn := range all {
				t.Row(conn.Name, conn.URL, conn.Organization)
			}
			return t.Render()
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// NewCmdShow returns `connection show`.
func NewCmdShow(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a saved connection (with its id)",
		Example: "  tdctl connection show my_s3\n  tdctl connection show my_s3 -o json | jq .id",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx, opts.Name = cmd.Context(), args[0]
			if strings.TrimSpace(opts.Name) == "" {
				return cmdutil.FlagErrorf("the connection name is empty")
			}
			if runF != nil {
				return runF(opts)
			}
			c, err := opts.TDClient()
			if err != nil {
				return err
			}
			conn, err := c.Connections.Show(opts.Ctx, opts.Name)
			if err != nil {
				return err
			}
			conn = sanitize(conn)
			p := output.New(opts.IO, opts.Format)
			if p.Structured() {
				return p.JSON(conn)
			}
			id := ""
			if conn.ID != 0 {
				id = strconv.FormatInt(conn.ID, 10)
			}
			return p.KeyValues([][2]string{{"name", conn.Name}, {"id", id}, {"url", conn.URL}, {"organization", conn.Organization}})
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// Package schemacmd is the `tdctl schema` command group (the Ruby td CLI's
// schema:show, schema:set and schema:add).
package schemacmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/dbcmd"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// Options are the inputs of the `schema` commands.
type Options struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	Database string
	Table    string
	Columns  []td.TableColumn // set and add
	Format   output.Format
}

// NewCmdSchema returns the `schema` group.
func NewCmdSchema(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Show and change a table's schema",
	}
	cmd.AddCommand(NewCmdShow(f, nil), NewCmdSet(f, nil), NewCmdAdd(f, nil))
	return cmdutil.MakeGroup(cmd)
}

func parseArgs(opts *Options, cmd *cobra.Command, args []string, needCols bool) error {
	opts.Ctx = cmd.Context()
	opts.Database, opts.Table = args[0], args[1]
	if err := dbcmd.CheckName("database", opts.Database); err != nil {
		return err
	}
	if err := dbcmd.CheckName("table", opts.Table); err != nil {
		return err
	}
	if needCols && len(args) < 3 {
		return cmdutil.FlagErrorf("give at least one column as NAME:TYPE, for example user_id:long")
	}
	cols, err := td.ParseColumns(args[2:])
	if ae, ok := errors.AsType[*td.ArgumentError](err); ok {
		return cmdutil.FlagErrorf("%s", ae.Msg)
	}
	opts.Columns = cols
	return nil
}

// NewCmdShow returns `schema show`.
func NewCmdShow(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "show DATABASE TABLE",
		Short:   "Show a table's columns",
		Long:    "Print a table's columns (name and type; the implicit time column is not listed).\nWith -o json, an array of {name, type}.",
		Example: "  tdctl schema show sample_datasets www_access",
		Args:    cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := parseArgs(opts, cmd, args, false); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return showRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func showRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	t, err := c.Tables.Show(opts.Ctx, opts.Database, opts.Table)
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return output.JSONList(p, t.Schema)
	}
	tbl := p.Table("name", "type")
	for _, col := range t.Schema {
		tbl.Row(col.Name, col.Type)
	}
	return tbl.Render()
}

// NewCmdSet returns `schema set`.
func NewCmdSet(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:   "set DATABASE TABLE [NAME:TYPE ...]",
		Short: "Replace a table's columns",
		Long: "Replace a table's schema with the columns given (none clears it). Types: string, long,\n" +
			"int, double, float, boolean, array<...>. Names are lower-case letters, digits and\n" +
			"underscores; time and v are TD's own.",
		Example: "  tdctl schema set analytics events user_id:long action:string",
		Args:    cmdutil.RangeArgs(2, 1<<20),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := parseArgs(opts, cmd, args, false); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return setRun(opts)
		},
	}
	return cmd
}

func setRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Tables.SetSchema(opts.Ctx, opts.Database, opts.Table, opts.Columns); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Schema of %s.%s set (%d columns)\n", opts.Database, opts.Table, len(opts.Columns))
	return nil
}

// NewCmdAdd returns `schema add`.
func NewCmdAdd(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	cmd := &cobra.Command{
		Use:     "add DATABASE TABLE NAME:TYPE ...",
		Short:   "Add columns to a table",
		Long:    "Add columns after a table's current ones. A column the table has already is refused (exit 1).",
		Example: "  tdctl schema add analytics events referrer:string",
		Args:    cmdutil.RangeArgs(2, 1<<20),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := parseArgs(opts, cmd, args, true); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return addRun(opts)
		},
	}
	return cmd
}

func addRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Tables.AppendSchema(opts.Ctx, opts.Database, opts.Table, opts.Columns); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "%d column(s) added to %s.%s\n", len(opts.Columns), opts.Database, opts.Table)
	return nil
}

// Package dbcmd is the `tdctl db` command group: list, show, create and
// delete databases (the Ruby td CLI's db:list, db:show, db:create and
// db:delete).
package dbcmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// Options are the inputs of every `db` command.
type Options struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	Name   string
	Force  bool
	Format output.Format
}

// NewCmdDB returns the `db` group.
func NewCmdDB(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "List, show, create and delete databases",
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdShow(f, nil), NewCmdCreate(f, nil), NewCmdDelete(f, nil))
	return cmdutil.MakeGroup(cmd)
}

func newOptions(f *factory.Factory) *Options { return &Options{IO: f.IOStreams, TDClient: f.TDClient} }

// CheckNewName refuses a name TD would refuse for a new database or table
// (kind is "database" or "table"), before anything is sent.
func CheckNewName(kind, name string) error {
	if !td.ValidName(name) {
		return cmdutil.FlagErrorf("invalid %s name %q: use 3 to 255 lower-case letters, digits and underscores", kind, name)
	}
	return nil
}

// CheckName refuses an empty or blank name argument.
func CheckName(kind, name string) error {
	if name == "" || name != strings.TrimSpace(name) {
		return cmdutil.FlagErrorf("invalid %s name %q: give the name without white space around it", kind, name)
	}
	return nil
}

// NewCmdList returns `db list`.
func NewCmdList(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List databases",
		Long:    "List the databases the API key can see, with their row counts.\n\nWith -o json the fields are those of the TD API's database/list.",
		Example: "  tdctl db list\n  tdctl db list -o json | jq -r '.[].name'",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			return run(runF, listRun, opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func run(runF, def func(*Options) error, o *Options) error {
	if runF != nil {
		return runF(o)
	}
	return def(o)
}

var listHeaders = []string{"name", "count", "permission", "created_at", "updated_at"}

func listRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	dbs, err := c.Databases.List(opts.Ctx)
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return output.JSONList(p, dbs)
	}
	t := p.Table(listHeaders...)
	for i := range dbs {
		d := &dbs[i]
		t.Row(d.Name, fmt.Sprint(d.Count), d.Permission, p.Time(&d.CreatedAt), p.Time(&d.UpdatedAt))
	}
	return t.Render()
}

// NewCmdShow returns `db show`.
func NewCmdShow(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:     "show DATABASE",
		Short:   "Show a database",
		Long:    "Show a database's row count, permission and times (the API has no show call: the list is searched).\nAn unknown database exits 2. 'tdctl table list DATABASE' lists its tables.",
		Example: "  tdctl db show sample_datasets\n  tdctl db show analytics -o json | jq .count",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx, opts.Name = cmd.Context(), args[0]
			if err := CheckName("database", opts.Name); err != nil {
				return err
			}
			return run(runF, showRun, opts)
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
	d, err := c.Databases.Show(opts.Ctx, opts.Name)
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return p.JSON(d)
	}
	return p.KeyValues([][2]string{{"name", d.Name}, {"count", fmt.Sprint(d.Count)}, {"permission", d.Permission},
		{"delete_protected", fmt.Sprint(d.DeleteProtected)}, {"created_at", p.Time(&d.CreatedAt)}, {"updated_at", p.Time(&d.UpdatedAt)}})
}

// NewCmdCreate returns `db create`.
func NewCmdCreate(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:     "create DATABASE",
		Short:   "Create a database",
		Long:    "Create a database. One that exists already exits 2 (409 Conflict).",
		Example: "  tdctl db create analytics",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx, opts.Name = cmd.Context(), args[0]
			if err := CheckNewName("database", opts.Name); err != nil {
				return err
			}
			return run(runF, createRun, opts)
		},
	}
	return cmd
}

func createRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Databases.Create(opts.Ctx, opts.Name); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Database %s created\n", opts.Name)
	return nil
}

// NewCmdDelete returns `db delete`.
func NewCmdDelete(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:   "delete DATABASE",
		Short: "Delete a database",
		Long: "Delete a database. As in the Ruby td CLI, a database that still has tables is\n" +
			"refused (exit 1) unless --force, which deletes it with its tables.",
		Example: "  tdctl db delete scratch\n  tdctl db delete scratch --force",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx, opts.Name = cmd.Context(), args[0]
			if err := CheckName("database", opts.Name); err != nil {
				return err
			}
			return run(runF, deleteRun, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "delete the database even if it has tables")
	return cmd
}

func deleteRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if !opts.Force {
		tables, err := c.Tables.List(opts.Ctx, opts.Name)
		if err != nil {
			return err
		}
		if len(tables) > 0 {
			return cmdutil.FlagErrorf("database %s has %d table(s): delete them first, or pass --force to delete the database with its tables", opts.Name, len(tables))
		}
	}
	if err := c.Databases.Delete(opts.Ctx, opts.Name); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Database %s deleted\n", opts.Name)
	return nil
}

// Package tablecmd is the `tdctl table` command group (the Ruby td CLI's
// table:list, table:show, table:create, table:delete, table:rename,
// table:swap, table:tail, table:expire, table:partial_delete and
// table:export).
package tablecmd

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/dbcmd"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// Options are the inputs shared by the `table` commands.
type Options struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	Database string
	Table    string
	Format   output.Format
}

// NewCmdTable returns the `table` group.
func NewCmdTable(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "table",
		Short: "List, create, delete, rename, swap, tail and export tables",
	}
	cmd.AddCommand(
		NewCmdList(f, nil),
		NewCmdShow(f, nil),
		NewCmdCreate(f, nil),
		NewCmdDelete(f, nil),
		NewCmdRename(f, nil),
		NewCmdSwap(f, nil),
		NewCmdTail(f, nil),
		NewCmdExpire(f, nil),
		NewCmdPartialDelete(f, nil),
		NewCmdExport(f, nil),
	)
	return cmdutil.MakeGroup(cmd)
}

func base(f *factory.Factory) Options { return Options{IO: f.IOStreams, TDClient: f.TDClient} }

// dbTable reads DATABASE TABLE arguments.
func (o *Options) dbTable(cmd *cobra.Command, args []string) error {
	o.Ctx = cmd.Context()
	o.Database, o.Table = args[0], args[1]
	if err := dbcmd.CheckName("database", o.Database); err != nil {
		return err
	}
	return dbcmd.CheckName("table", o.Table)
}

// TableRow is a table as `table list` prints it: the API's table fields
// and the database it belongs to.
type TableRow struct {
	Database string `json:"database"`
	td.Table
}

var listHeaders = []string{"database", "table", "type", "count", "last_log_timestamp", "expire_days", "schema"}

// SchemaText renders columns as "name:type, ...".
func SchemaText(cols []td.TableColumn) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c.Name + ":" + c.Type
		if c.Alias != "" {
			parts[i] += " as " + c.Alias
		}
	}
	return strings.Join(parts, ", ")
}

func expireText(d *int64) string {
	if d == nil {
		return ""
	}
	return fmt.Sprint(*d)
}

// ListOptions are the inputs of `table list`.
type ListOptions struct{ Options }

// NewCmdList returns `table list`.
func NewCmdList(f *factory.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{base(f)}
	cmd := &cobra.Command{
		Use:     "list [DATABASE]",
		Aliases: []string{"ls"},
		Short:   "List the tables of a database, or of every database",
		Long: "List tables with their row counts, last log time, expiry and schema.\n" +
			"Without DATABASE, every database's tables. With -o json the fields are the TD API's\n" +
			"table fields (the schema as [{name, type}]) plus \"database\".",
		Example: "  tdctl table list sample_datasets\n  tdctl table list -o jsonl | jq -r 'select(.count == 0) | .database + \".\" + .name'",
		Args:    cmdutil.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if len(args) == 1 {
				opts.Database = args[0]
				if err := dbcmd.CheckName("database", opts.Database); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func listRun(opts *ListOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	dbs := []string{opts.Database}
	if opts.Database == "" {
		all, err := c.Databases.List(opts.Ctx)
		if err != nil {
			return err
		}
		dbs = dbs[:0]
		for _, d := range all {
			dbs = append(dbs, d.Name)
		}
		sort.Strings(dbs)
	}
	var rows []TableRow
	for _, db := range dbs {
		tables, err := c.Tables.List(opts.Ctx, db)
		if err != nil {
			return err
		}
		for _, t := range tables {
			rows = append(rows, TableRow{Database: db, Table: t})
		}
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return output.JSONList(p, rows)
	}
	t := p.Table(listHeaders...)
	for i := range rows {
		r := &rows[i]
		schema := SchemaText(r.Schema)
		if p.Human() {
			schema = output.Truncate(schema, 60)
		}
		t.Row(r.Database, r.Name, r.Type, fmt.Sprint(r.Count), p.Time(r.LastLogTimestamp), expireText(r.ExpireDays), schema)
	}
	return t.Render()
}

// NewCmdShow returns `table show`.
func NewCmdShow(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := base(f)
	cmd := &cobra.Command{
		Use:     "show DATABASE TABLE",
		Short:   "Show a table",
		Long:    "Show a table's id, row count, times, expiry and schema.\nWith -o json the fields are those of the TD API's table/show.",
		Example: "  tdctl table show sample_datasets www_access\n  tdctl table show analytics events -o json | jq .count",
		Args:    cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args); err != nil {
				return err
			}
			if runF != nil {
				return runF(&opts)
			}
			return showRun(&opts)
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
		return p.JSON(t)
	}
	return p.KeyValues([][2]string{
		{"database", opts.Database}, {"name", t.Name}, {"id", fmt.Sprint(t.ID)}, {"type", t.Type},
		{"count", fmt.Sprint(t.Count)}, {"estimated_storage_size", fmt.Sprint(t.EstimatedStorageSize)},
		{"created_at", p.Time(&t.CreatedAt)}, {"updated_at", p.Time(&t.UpdatedAt)},
		{"counter_updated_at", p.Time(t.CounterUpdatedAt)}, {"last_log_timestamp", p.Time(t.LastLogTimestamp)},
		{"expire_days", expireText(t.ExpireDays)}, {"include_v", fmt.Sprint(t.IncludeV)},
		{"delete_protected", fmt.Sprint(t.DeleteProtected)}, {"schema", SchemaText(t.Schema)},
	})
}

// CreateOptions are the inputs of `table create`.
type CreateOptions struct {
	Options
	ExpireDays int
}

// NewCmdCreate returns `table create`.
func NewCmdCreate(f *factory.Factory, runF func(*CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{Options: base(f)}
	cmd := &cobra.Command{
		Use:     "create DATABASE TABLE",
		Short:   "Create a log table",
		Long:    "Create an empty log table (its only column is the implicit time; add columns with\n'tdctl schema set'). A table that exists already exits 2; a missing database exits 2.",
		Example: "  tdctl table create analytics events\n  tdctl table create analytics events --expire-days 30",
		Args:    cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args); err != nil {
				return err
			}
			if err := dbcmd.CheckNewName("table", opts.Table); err != nil {
				return err
			}
			if opts.ExpireDays < 0 {
				return cmdutil.FlagErrorf("--expire-days must be 0 (never) or more, got %d", opts.ExpireDays)
			}
			if runF != nil {
				return runF(opts)
			}
			return createRun(opts)
		},
	}
	cmd.Flags().IntVar(&opts.ExpireDays, "expire-days", 0, "rows expire after this many days (0 = never)")
	return cmd
}

func createRun(opts *CreateOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Tables.Create(opts.Ctx, opts.Database, opts.Table); err != nil {
		return err
	}
	if opts.ExpireDays > 0 {
		if err := c.Tables.SetExpireDays(opts.Ctx, opts.Database, opts.Table, opts.ExpireDays); err != nil {
			return fmt.Errorf("table %s.%s was created, but setting its expiry failed: %w", opts.Database, opts.Table, err)
		}
	}
	fmt.Fprintf(opts.IO.ErrOut, "Table %s.%s created\n", opts.Database, opts.Table)
	return nil
}

// NewCmdDelete returns `table delete`.
func NewCmdDelete(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := base(f)
	cmd := &cobra.Command{
		Use:     "delete DATABASE TABLE",
		Short:   "Delete a table",
		Long:    "Delete a table and its rows. An unknown table exits 2.",
		Example: "  tdctl table delete analytics events_old",
		Args:    cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args); err != nil {
				return err
			}
			if runF != nil {
				return runF(&opts)
			}
			return deleteRun(&opts)
		},
	}
	return cmd
}

func deleteRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Tables.Delete(opts.Ctx, opts.Database, opts.Table); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Table %s.%s deleted\n", opts.Database, opts.Table)
	return nil
}

// RenameOptions are the inputs of `table rename`.
type RenameOptions struct {
	Options
	NewName   string
	Overwrite bool
}

// NewCmdRename returns `table rename`.
func NewCmdRename(f *factory.Factory, runF func(*RenameOptions) error) *cobra.Command {
	opts := &RenameOptions{Options: base(f)}
	cmd := &cobra.Command{
		Use:     "rename DATABASE TABLE NEW_NAME",
		Short:   "Rename a table",
		Long:    "Give a table a new name in the same database. A table already named NEW_NAME is\nrefused (exit 2) unless --overwrite, which replaces it.",
		Example: "  tdctl table rename analytics events_tmp events --overwrite",
		Args:    cmdutil.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args[:2]); err != nil {
				return err
			}
			opts.NewName = args[2]
			if err := dbcmd.CheckNewName("table", opts.NewName); err != nil {
				return err
			}
			if opts.NewName == opts.Table {
				return cmdutil.FlagErrorf("table %s already has that name", opts.Table)
			}
			if runF != nil {
				return runF(opts)
			}
			return renameRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Overwrite, "overwrite", false, "replace a table already named NEW_NAME")
	return cmd
}

func renameRun(opts *RenameOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Tables.Rename(opts.Ctx, opts.Database, opts.Table, opts.NewName, opts.Overwrite); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Table %s.%s renamed to %s\n", opts.Database, opts.Table, opts.NewName)
	return nil
}

// SwapOptions are the inputs of `table swap`.
type SwapOptions struct {
	Options
	Other string
}

// NewCmdSwap returns `table swap`.
func NewCmdSwap(f *factory.Factory, runF func(*SwapOptions) error) *cobra.Command {
	opts := &SwapOptions{Options: base(f)}
	cmd := &cobra.Command{
		Use:   "swap DATABASE TABLE1 TABLE2",
		Short: "Swap the contents of two tables",
		Long: "Exchange two tables' contents: rows, schema and settings follow the data, the names\n" +
			"stay. Build a new version in a staging table, then swap it in at once. It is sent\n" +
			"once: a lost answer is reported (exit 2), never retried (a second swap undoes the first).",
		Example: "  tdctl table swap analytics daily daily_staging",
		Args:    cmdutil.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args[:2]); err != nil {
				return err
			}
			opts.Other = args[2]
			if err := dbcmd.CheckName("table", opts.Other); err != nil {
				return err
			}
			if opts.Other == opts.Table {
				return cmdutil.FlagErrorf("cannot swap table %s with itself", opts.Table)
			}
			if runF != nil {
				return runF(opts)
			}
			return swapRun(opts)
		},
	}
	return cmd
}

func swapRun(opts *SwapOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Tables.Swap(opts.Ctx, opts.Database, opts.Table, opts.Other); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Tables %s.%s and %s swapped\n", opts.Database, opts.Table, opts.Other)
	return nil
}

// TailOptions are the inputs of `table tail`.
type TailOptions struct {
	Options
	Count int
}

// NewCmdTail returns `table tail`.
func NewCmdTail(f *factory.Factory, runF func(*TailOptions) error) *cobra.Command {
	opts := &TailOptions{Options: base(f)}
	cmd := &cobra.Command{
		Use:   "tail DATABASE TABLE",
		Short: "Print a table's newest rows",
		Long: "Print up to --count of a table's newest rows, newest first, without running a query.\n" +
			"Columns are time first, then the others by name; -o json/jsonl print each row as an object.",
		Example: "  tdctl table tail sample_datasets www_access -n 5\n  tdctl table tail analytics events -o jsonl",
		Args:    cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args); err != nil {
				return err
			}
			if opts.Count < 1 || opts.Count > 10000 {
				return cmdutil.FlagErrorf("--count must be between 1 and 10000, got %d", opts.Count)
			}
			if runF != nil {
				return runF(opts)
			}
			return tailRun(opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Count, "count", "n", 10, "number of rows")
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func tailRun(opts *TailOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	rows, err := c.Tables.Tail(opts.Ctx, opts.Database, opts.Table, opts.Count)
	if err != nil {
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return output.JSONList(p, rows)
	}
	seen := map[string]bool{}
	var cols []string
	for _, r := range rows {
		for k := range r {
			if !seen[k] && k != "time" {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	sort.Strings(cols)
	cols = append([]string{"time"}, cols...)
	t := p.Table(cols...)
	for _, r := range rows {
		fields := make([]string, len(cols))
		for i, k := range cols {
			fields[i] = shared.FormatValue(r[k])
		}
		t.Row(fields...)
	}
	return t.Render()
}

// ExpireOptions are the inputs of `table expire`.
type ExpireOptions struct {
	Options
	Days int
}

// NewCmdExpire returns `table expire`.
func NewCmdExpire(f *factory.Factory, runF func(*ExpireOptions) error) *cobra.Command {
	opts := &ExpireOptions{Options: base(f)}
	cmd := &cobra.Command{
		Use:     "expire DATABASE TABLE DAYS",
		Short:   "Set after how many days a table's rows expire",
		Long:    "Set after how many days a table's rows expire; 0 stops expiry.",
		Example: "  tdctl table expire analytics events 90",
		Args:    cmdutil.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args[:2]); err != nil {
				return err
			}
			n, err := parseDays(args[2])
			if err != nil {
				return err
			}
			opts.Days = n
			if runF != nil {
				return runF(opts)
			}
			return expireRun(opts)
		},
	}
	return cmd
}

func parseDays(s string) (int, error) {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 || fmt.Sprint(n) != s {
		return 0, cmdutil.FlagErrorf("invalid DAYS %q: give a whole number of days, 0 to stop expiry", s)
	}
	return n, nil
}

func expireRun(opts *ExpireOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	if err := c.Tables.SetExpireDays(opts.Ctx, opts.Database, opts.Table, opts.Days); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "Table %s.%s: expire days set to %d\n", opts.Database, opts.Table, opts.Days)
	return nil
}

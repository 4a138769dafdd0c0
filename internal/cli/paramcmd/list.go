package paramcmd

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/paramstore"
)

// ListOptions are the inputs of `param list`.
type ListOptions struct {
	IO    *iostreams.IOStreams
	Ctx   context.Context
	Store StoreOptions

	Prefix string
	// Limit: --limit, print at most this many params; 0 = all.
	Limit  int
	Format output.Format
}

// Item is one param in `param list -o json|jsonl`.
type Item struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

func newCmdList(f *factory.Factory, sf *StoreFlags, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:     "list [PREFIX]",
		Aliases: []string{"ls"},
		Short:   "List params, in key order",
		Long: `List the params whose key starts with PREFIX (all without one), in bytewise key
order, paging through the store. Values print as 'param get' prints them; in the
table and tsv a value's tabs and line breaks become spaces (-o json keeps them).
-o json prints an array of {"key": ..., "value": ...}, -o jsonl one such object a line.`,
		Example: `  tdctl param list
  tdctl param list daily. --limit 20
  tdctl param list -o jsonl | jq -r 'select(.value == null) | .key'`,
		Args: cmdutil.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if len(args) == 1 {
				opts.Prefix = args[0]
			}
			if opts.Limit < 0 {
				return cmdutil.FlagErrorf("--limit %d: give 0 (all) or more", opts.Limit)
			}
			var err error
			if opts.Store, err = sf.Resolve(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Limit, "limit", "l", 0, "print at most this many params (0 = all)")
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// walk pages through the params under prefix, at most limit of them (0 =
// all), and reports whether more were left out.
func walk(ctx context.Context, so StoreOptions, site *paramstore.Site, prefix string, limit int, fn func(paramstore.Entry) error) (more bool, err error) {
	lo := paramstore.ListOptions{Limit: paramstore.MaxListLimit}
	n := 0
	for {
		if limit > 0 {
			lo.Limit = min(limit-n, paramstore.MaxListLimit)
		}
		page, err := site.List(ctx, prefix, &lo)
		if err != nil {
			return false, storeError(so, err)
		}
		for _, e := range page.Entries {
			if err := fn(e); err != nil {
				return false, err
			}
		}
		n += len(page.Entries)
		if page.Next == "" {
			return false, nil
		}
		if limit > 0 && n >= limit {
			return true, nil
		}
		lo.After = page.Next
	}
}

func listRun(opts *ListOptions) error {
	p := output.New(opts.IO, opts.Format)
	var items []Item
	var t *output.Table
	if !p.Structured() {
		t = p.Table("key", "value")
	}
	var more bool
	count := 0
	err := withSite(opts.Ctx, opts.Store, func(_ *paramstore.Store, site *paramstore.Site) error {
		var err error
		more, err = walk(opts.Ctx, opts.Store, site, opts.Prefix, opts.Limit, func(e paramstore.Entry) error {
			count++
			if p.Structured() {
				items = append(items, Item{Key: e.Key, Value: e.Value})
				return nil
			}
			s, err := display(e.Value)
			if err != nil {
				return storeError(opts.Store, fmt.Errorf("param %s: %w", showKey(e.Key), err))
			}
			t.Row(e.Key, s)
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	if p.Structured() {
		err = output.JSONList(p, items)
	} else {
		err = t.Render()
	}
	if err == nil && count == 0 && opts.IO.IsStdoutTTY() {
		fmt.Fprintf(opts.IO.ErrOut, "no params%s (site %d, store %s)\n", underPrefix(opts.Prefix), opts.Store.Site, opts.Store.Redacted())
	}
	if err == nil && more && opts.IO.IsStdoutTTY() {
		fmt.Fprintf(opts.IO.ErrOut, "more params match: showing the first %d (--limit 0 lists all)\n", opts.Limit)
	}
	return err
}

func underPrefix(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " under " + showKey(prefix)
}

package paramcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/paramstore"
)

// GetOptions are the inputs of `param get`.
type GetOptions struct {
	IO    *iostreams.IOStreams
	Ctx   context.Context
	Store StoreOptions

	Key    string
	Format output.Format
}

func newCmdGet(f *factory.Factory, sf *StoreFlags, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a param's value",
		Long: `Print a param's value: for a string its text, for any other value its compact JSON
(what a workflow interpolates for ${KEY}), so $(tdctl param get KEY) works in scripts.
-o json prints the JSON value itself (a string in quotes). A param that is not set
(never set, deleted or expired) is an error, exit code 1.`,
		Example: `  since=$(tdctl param get last_executed_time)
  tdctl param get config -o json | jq .tables`,
		Args: cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key, opts.Ctx = args[0], cmd.Context()
			if err := checkKeyArg(opts.Key); err != nil {
				return err
			}
			if err := output.CheckFormat(opts.Format, output.FormatJSON, output.FormatJSONL); err != nil {
				return err
			}
			var err error
			if opts.Store, err = sf.Resolve(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return getRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func getRun(opts *GetOptions) error {
	var raw json.RawMessage
	err := withSite(opts.Ctx, opts.Store, func(_ *paramstore.Store, site *paramstore.Site) error {
		var err error
		raw, err = site.Get(opts.Ctx, opts.Key)
		if errors.Is(err, paramstore.ErrNotFound) {
			return notSet(opts.Store, opts.Key, err)
		}
		return storeError(opts.Store, err)
	})
	if err != nil {
		return err
	}
	if opts.Format != output.FormatAuto {
		return output.New(opts.IO, opts.Format).JSON(raw)
	}
	s, err := display(raw)
	if err != nil {
		return storeError(opts.Store, err)
	}
	_, err = fmt.Fprintln(opts.IO.Out, s)
	return err
}

// display is a value as `param get` and `param list` print it: a string's
// text, any other JSON value compact (null as null).
func display(raw json.RawMessage) (string, error) {
	if isString(raw) {
		return paramstore.Text(raw)
	}
	return compact(raw)
}

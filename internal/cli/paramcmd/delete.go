package paramcmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/paramstore"
)

// DeleteOptions are the inputs of `param delete`.
type DeleteOptions struct {
	IO    *iostreams.IOStreams
	Ctx   context.Context
	Store StoreOptions

	Key string
	// IgnoreMissing: --ignore-missing, a param that is not set is not an error.
	IgnoreMissing bool
}

func newCmdDelete(f *factory.Factory, sf *StoreFlags, runF func(*DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:     "delete KEY",
		Aliases: []string{"rm"},
		Short:   "Delete a param",
		Long: `Delete a param. Deleting a param that is not set is an error (exit code 1) unless
--ignore-missing is given.`,
		Example: "  tdctl param delete lock --ignore-missing",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key, opts.Ctx = args[0], cmd.Context()
			if err := checkKeyArg(opts.Key); err != nil {
				return err
			}
			var err error
			if opts.Store, err = sf.Resolve(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return deleteRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.IgnoreMissing, "ignore-missing", false, "succeed when the param is not set")
	return cmd
}

func deleteRun(opts *DeleteOptions) error {
	missing := false
	err := withSite(opts.Ctx, opts.Store, func(_ *paramstore.Store, site *paramstore.Site) error {
		err := site.Delete(opts.Ctx, opts.Key)
		if errors.Is(err, paramstore.ErrNotFound) {
			if opts.IgnoreMissing {
				missing = true
				return nil
			}
			return notSet(opts.Store, opts.Key, err)
		}
		return storeError(opts.Store, err)
	})
	if err != nil || !opts.IO.IsStdoutTTY() {
		return err
	}
	if missing {
		_, err = fmt.Fprintf(opts.IO.Out, "%s was not set (site %d)\n", showKey(opts.Key), opts.Store.Site)
	} else {
		_, err = fmt.Fprintf(opts.IO.Out, "Deleted %s (site %d)\n", showKey(opts.Key), opts.Store.Site)
	}
	return err
}

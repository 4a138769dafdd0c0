package paramcmd

import (
	"bytes"
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

// ExportOptions are the inputs of `param export`.
type ExportOptions struct {
	IO    *iostreams.IOStreams
	Ctx   context.Context
	Store StoreOptions

	Prefix string
	// Format: json (default: one object key → value) or jsonl (one
	// {"key": value} object a line).
	Format output.Format
}

func newCmdExport(f *factory.Factory, sf *StoreFlags, runF func(*ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "export [PREFIX]",
		Short: "Write params as JSON, for a backup or 'param import'",
		Long: `Write the params whose key starts with PREFIX (all without one) to stdout as one JSON
object of key → value, in key order; -o jsonl writes one {"key": value} object a line
instead. Both are what 'param import' reads. Values keep their JSON type; their
remaining lifetimes are not exported (an import gives them a fresh TTL).
Nothing is written to stdout unless every param was read.`,
		Example: `  tdctl param export > params.json
  tdctl param export daily. -o jsonl | gzip > daily.jsonl.gz`,
		Args: cmdutil.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if len(args) == 1 {
				opts.Prefix = args[0]
			}
			if opts.Format == output.FormatAuto {
				opts.Format = output.FormatJSON
			}
			var err error
			if opts.Store, err = sf.Resolve(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return exportRun(opts)
		},
	}
	cmd.Flags().VarP(newExportFormat(&opts.Format), "output", "o", "json (one object key → value) or jsonl (one {\"key\": value} object a line)")
	return cmd
}

func exportRun(opts *ExportOptions) error {
	var b bytes.Buffer
	n := 0
	if opts.Format == output.FormatJSON {
		b.WriteByte('{')
	}
	err := withSite(opts.Ctx, opts.Store, func(_ *paramstore.Store, site *paramstore.Site) error {
		_, err := walk(opts.Ctx, opts.Store, site, opts.Prefix, 0, func(e paramstore.Entry) error {
			var err error
			if opts.Format == output.FormatJSON {
				if n > 0 {
					b.WriteByte(',')
				}
				b.WriteString("\n  ")
				b.Write(paramstore.String(e.Key))
				b.WriteString(": ")
				err = json.Indent(&b, e.Value, "  ", "  ")
			} else {
				b.WriteByte('{')
				b.Write(paramstore.String(e.Key))
				b.WriteByte(':')
				err = json.Compact(&b, e.Value)
				b.WriteString("}\n")
			}
			if err != nil {
				return storeError(opts.Store, fmt.Errorf("param %s: %w: its value is not JSON", showKey(e.Key), paramstore.ErrSchema))
			}
			n++
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	if opts.Format == output.FormatJSON {
		if n > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("}\n")
	}
	_, err = opts.IO.Out.Write(b.Bytes())
	return err
}

// exportFormat is -o on export: json or jsonl only.
type exportFormat struct{ f *output.Format }

func newExportFormat(f *output.Format) *exportFormat { return &exportFormat{f: f} }

func (v *exportFormat) String() string { return string(*v.f) }
func (v *exportFormat) Type() string   { return "format" }
func (v *exportFormat) Set(s string) error {
	switch output.Format(s) {
	case output.FormatJSON, output.FormatJSONL:
		*v.f = output.Format(s)
		return nil
	}
	return fmt.Errorf("unknown format %q: use json or jsonl", s)
}

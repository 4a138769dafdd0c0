package paramcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/paramstore"
)

// maxImportBytes bounds an import file.
const maxImportBytes = 256 << 20

// ImportOptions are the inputs of `param import`.
type ImportOptions struct {
	IO    *iostreams.IOStreams
	Ctx   context.Context
	Store StoreOptions

	// File to read; "-" is stdin.
	File string
	// DryRun: --dry-run, check the file and print what would change;
	// write nothing.
	DryRun bool
	// TTL: --ttl, how long imported values live; 0 = the store's default.
	TTL time.Duration
	// Format of the --dry-run plan.
	Format output.Format
}

// Change is one param in the `param import --dry-run` plan.
type Change struct {
	Key string `json:"key"`
	// Action: add (not set now), update (set to another value) or same.
	Action string `json:"action"`
}

func newCmdImport(f *factory.Factory, sf *StoreFlags, runF func(*ImportOptions) error) *cobra.Command {
	opts := &ImportOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Write params from a JSON file ('param export' output), all or nothing",
		Long: `Write the params of FILE (- for stdin): JSON objects of key → value, as 'param export'
writes them — one object, or one object a line (jsonl), or several objects in a row.
A key given twice is an error. Every value is written or none is: the file is checked
first, then written in one transaction. Imported values get a fresh TTL (--ttl, or
the store's default).

--dry-run checks the file and the store and prints, for each key, whether it would
be added, updated or stay the same; it writes nothing.`,
		Example: `  tdctl param import params.json
  tdctl param export --store redis://old:6379/0 | tdctl param import --store postgres://digdag@db/digdag -
  tdctl param import --dry-run params.json`,
		Args: cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File, opts.Ctx = args[0], cmd.Context()
			if opts.TTL < 0 || (cmd.Flags().Changed("ttl") && opts.TTL == 0) {
				return cmdutil.FlagErrorf("--ttl %s: give a positive duration such as 24h or 90m", opts.TTL)
			}
			var err error
			if opts.Store, err = sf.Resolve(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return importRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "check the file, print what would change, write nothing")
	cmd.Flags().DurationVar(&opts.TTL, "ttl", 0, "how long imported values live, e.g. 720h (default: the store's, 90 days)")
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func importRun(opts *ImportOptions) error {
	name := opts.File
	var data []byte
	var err error
	if opts.File == "-" {
		name = "stdin"
		data, err = cmdutil.ReadAll(opts.Ctx, opts.IO.In, maxImportBytes, "stdin")
	} else {
		data, err = cmdutil.ReadFile(opts.Ctx, opts.File, maxImportBytes, opts.File)
	}
	if cause, ok := cmdutil.PathCause(err); ok {
		return cmdutil.NewFlagError(fmt.Errorf("cannot read %s: %w", opts.File, cause))
	}
	if err != nil {
		return err
	}
	values, keys, err := parseImport(data, name)
	if err != nil {
		return err
	}
	var plan []Change
	err = withSite(opts.Ctx, opts.Store, func(_ *paramstore.Store, site *paramstore.Site) error {
		if opts.TTL > 0 {
			site = site.WithTTL(opts.TTL)
		}
		if !opts.DryRun {
			return storeError(opts.Store, site.SetMany(opts.Ctx, values))
		}
		for _, k := range keys {
			cur, err := site.Get(opts.Ctx, k)
			c := Change{Key: k, Action: "same"}
			switch {
			case errors.Is(err, paramstore.ErrNotFound):
				c.Action = "add"
			case err != nil:
				return storeError(opts.Store, err)
			case !sameValue(cur, values[k]):
				c.Action = "update"
			}
			plan = append(plan, c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	where := fmt.Sprintf("site %d, store %s", opts.Store.Site, opts.Store.Redacted())
	if !opts.DryRun {
		_, err = fmt.Fprintf(opts.IO.ErrOut, "imported %s from %s (%s)\n", plural(len(keys)), name, where)
		return err
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		err = output.JSONList(p, plan)
	} else {
		t := p.Table("key", "action")
		for _, c := range plan {
			t.Row(c.Key, c.Action)
		}
		err = t.Render()
	}
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, c := range plan {
		counts[c.Action]++
	}
	_, err = fmt.Fprintf(opts.IO.ErrOut, "dry run: would import %s from %s (%d new, %d changed, %d unchanged; %s); nothing written\n",
		plural(len(keys)), name, counts["add"], counts["update"], counts["same"], where)
	return err
}

func plural(n int) string {
	if n == 1 {
		return "1 param"
	}
	return fmt.Sprintf("%d params", n)
}

// parseImport reads a stream of JSON objects of key → value and returns
// the values and their keys in file order. Errors name the line.
func parseImport(data []byte, name string) (map[string]json.RawMessage, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	values := map[string]json.RawMessage{}
	var keys []string
	objects := 0
	fail := func(format string, args ...any) error {
		line := 1 + bytes.Count(data[:min(int(dec.InputOffset()), len(data))], []byte("\n"))
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	const want = `expected JSON objects of key → value, as 'tdctl param export' writes ({"key": "value", "n": 1})`
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fail("%s: %s", syntaxMsg(err), want)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return nil, nil, fail("found %s: %s", tokenName(tok), want)
		}
		objects++
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, nil, fail("%s", syntaxMsg(err))
			}
			k := tok.(string) // object keys are always strings
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, nil, fail("param %s: %s", showKey(k), syntaxMsg(err))
			}
			if err := paramstore.CheckKey(k); err != nil {
				return nil, nil, fail("key %s: %s", showKey(k), strings.TrimPrefix(err.Error(), paramstore.ErrInvalid.Error()+": "))
			}
			if _, dup := values[k]; dup {
				return nil, nil, fail("param %s is given twice", showKey(k))
			}
			values[k] = raw
			keys = append(keys, k)
		}
		if _, err := dec.Token(); err != nil { // '}'
			return nil, nil, fail("%s", syntaxMsg(err))
		}
	}
	if objects == 0 {
		return nil, nil, fmt.Errorf("%s is empty: %s", name, want)
	}
	return values, slices.Clip(keys), nil
}

func syntaxMsg(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the JSON ends early (a truncated file?)"
	}
	return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

func tokenName(tok any) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}

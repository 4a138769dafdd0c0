package paramcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/paramstore"
)

// SetOptions are the inputs of `param set`.
type SetOptions struct {
	IO    *iostreams.IOStreams
	Ctx   context.Context
	Store StoreOptions

	Key string
	// Value is the JSON value to store (VALUE, or stdin for "-", already
	// parsed: JSON when it is JSON, else a JSON string).
	Value json.RawMessage
	// AsString: --string, VALUE is a string even when it parses as JSON.
	AsString bool
	// TTL: --ttl, the value's lifetime; 0 = the store's default.
	TTL time.Duration
}

func newCmdSet(f *factory.Factory, sf *StoreFlags, runF func(*SetOptions) error) *cobra.Command {
	opts := &SetOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "set KEY VALUE|-",
		Short: "Store a param's value",
		Long: `Store a param's value, replacing any value it had. VALUE is stored as JSON when it
parses as JSON (42, 1.50, true, null, [1,2], {"a":1}, "quoted") and as a string
otherwise; --string always stores the string as given. VALUE - reads the value from
stdin (one trailing newline removed).

Strings are stored as digdag stores them, so a digdag server sharing the store reads
them with param_get>; other JSON values are tdctl's own (digdag rejects them).
The value lives for --ttl, or the store's default (the URL's ?ttl=, else 90 days).`,
		Example: `  tdctl param set last_executed_time 2026-11-24T21:00:00Z
  tdctl param set tables '["a","b"]'
  tdctl param set version --string 1.10
  tdctl param set lock "$HOSTNAME" --ttl 1h
  jq -c .config settings.json | tdctl param set config -`,
		Args: cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key, opts.Ctx = args[0], cmd.Context()
			if err := checkKeyArg(opts.Key); err != nil {
				return err
			}
			if opts.TTL < 0 || (cmd.Flags().Changed("ttl") && opts.TTL == 0) {
				return cmdutil.FlagErrorf("--ttl %s: give a positive duration such as 24h or 90m", opts.TTL)
			}
			v := args[1]
			if v == "-" {
				b, err := cmdutil.ReadAll(opts.Ctx, opts.IO.In, cmdutil.MaxInputBytes, "the value on stdin")
				if err != nil {
					return err
				}
				v = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			}
			if !utf8.ValidString(v) {
				return cmdutil.FlagErrorf("VALUE %s is not valid UTF-8: params hold text or JSON (stored, the bad bytes would become U+FFFD)", badUTF8(v))
			}
			opts.Value = parseValue(v, opts.AsString)
			var err error
			if opts.Store, err = sf.Resolve(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return setRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.AsString, "string", false, "store VALUE as a string even when it parses as JSON")
	cmd.Flags().DurationVar(&opts.TTL, "ttl", 0, "how long the value lives, e.g. 24h (default: the store's, 90 days)")
	return cmd
}

func setRun(opts *SetOptions) error {
	var ttl time.Duration
	err := withSite(opts.Ctx, opts.Store, func(_ *paramstore.Store, site *paramstore.Site) error {
		if opts.TTL > 0 {
			site = site.WithTTL(opts.TTL)
		}
		ttl = site.TTL()
		return storeError(opts.Store, site.Set(opts.Ctx, opts.Key, opts.Value))
	})
	if err != nil {
		return err
	}
	if opts.IO.IsStdoutTTY() {
		_, err = fmt.Fprintf(opts.IO.Out, "Set %s (%s, site %d, expires in %s)\n", showKey(opts.Key), kind(opts.Value), opts.Store.Site, fmtTTL(ttl))
	}
	return err
}

// badUTF8 names the first byte of s that is not UTF-8 and where it is,
// without echoing the value (it may be long, or a secret).
func badUTF8(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("(byte 0x%02x at offset %d)", s[i], i)
		}
		i += size
	}
	return ""
}

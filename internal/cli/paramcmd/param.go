// Package paramcmd implements `tdctl param`: get, set, delete, list,
// export and import of the params workflows keep between runs (digdag's
// param_get> / param_set>), in the store the paramstore package opens.
//
// Every subcommand works on one store (--store, env TDCTL_PARAM_STORE, a
// profile's param_store, default the embedded SQLite file of
// paramstore.DefaultURL) and one site (--site, env TDCTL_SITE, a profile's
// site, default 0), resolved by StoreFlags.Resolve — the resolution
// `workflow run` uses too.
package paramcmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/config"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/driver"
)

// Environment variables read by every param command.
const (
	EnvStore = "TDCTL_PARAM_STORE"
	EnvSite  = "TDCTL_SITE"
)

// Opener opens a param store from its URL.
type Opener func(ctx context.Context, url string) (*paramstore.Store, error)

// StoreOptions name the store and site a param command works on, resolved
// from --store/--site, the environment and the defaults.
type StoreOptions struct {
	// URL of the store (it may carry a password: print Redacted instead).
	URL string
	// Site is digdag's site id params are scoped to.
	Site int32
	// Open opens URL (OpenStore unless a test replaces it).
	Open Opener
}

// Redacted is the store URL with any password masked, for messages.
func (s StoreOptions) Redacted() string { return driver.RedactURL(s.URL) }

// runFuncs replace the commands' run functions (argv → options tests).
type runFuncs struct {
	get    func(*GetOptions) error
	set    func(*SetOptions) error
	delete func(*DeleteOptions) error
	list   func(*ListOptions) error
	export func(*ExportOptions) error
	imp    func(*ImportOptions) error
}

// NewCmdParam returns the `param` group: get, set, delete, list, export
// and import.
func NewCmdParam(f *factory.Factory) *cobra.Command {
	return newCmdParam(f, runFuncs{})
}

func newCmdParam(f *factory.Factory, run runFuncs) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "param <command>",
		Short: "Read and write the params workflows keep between runs (param_get> / param_set>)",
		Long: `Read and write the params workflows keep between runs: what param_set> stores and
param_get> reads, in the same store 'tdctl workflow run' uses.

Values are JSON. 'param set' stores VALUE as JSON when it parses as JSON (42, true,
{"a":1}, "quoted") and as a string otherwise; --string always stores a string.
'param get' prints what a workflow interpolates for ${KEY}: a string's text, any
other value as compact JSON.

Store (--store, env TDCTL_PARAM_STORE, a profile's param_store; default the SQLite file
~/.config/tdctl/params.db):
  sqlite:///abs/path/params.db
  postgres://user[:password]@host[:port]/db[?search_path=schema]   digdag's params table
  redis://[:password@]host[:port][/db]                           digdag's <site>:<key> keys
Add ?ttl=24h to any URL to change how long written values live (default 90 days).
Site (--site, env TDCTL_SITE, a profile's site; default 0): digdag's site id; sites never
see each other's params.

Exit codes: 0 ok; 1 usage, a param that is not set, or a bad file; 2 the store
failed (unreachable server, refused login, a table not in digdag's layout).`,
		Example: `  tdctl param set last_run "$(date -u +%FT%TZ)"
  since=$(tdctl param get last_run)
  tdctl param list --store postgres://digdag@db/digdag --site 3
  tdctl param export > params.json && tdctl param import --store redis://127.0.0.1:6379/0 params.json`,
	}
	sf := AddStoreFlags(cmd.PersistentFlags(), "store", f.Config)
	cmd.AddCommand(
		newCmdGet(f, sf, run.get),
		newCmdSet(f, sf, run.set),
		newCmdDelete(f, sf, run.delete),
		newCmdList(f, sf, run.list),
		newCmdExport(f, sf, run.export),
		newCmdImport(f, sf, run.imp),
	)
	return cmdutil.MakeGroup(cmd)
}

// StoreFlags are a command's store URL flag (--store of `param`,
// --param-store of `workflow run`) and --site; Resolve turns them into the
// store and site the command works on.
type StoreFlags struct {
	urlFlag string
	url     string
	site    int32
	config  func() (*config.Config, error)
}

// AddStoreFlags adds the store URL flag, named urlFlag, and --site to fs;
// cfg (factory.Factory.Config) gives the environment's and the profile's
// values.
func AddStoreFlags(fs *pflag.FlagSet, urlFlag string, cfg func() (*config.Config, error)) *StoreFlags {
	sf := &StoreFlags{urlFlag: urlFlag, config: cfg}
	fs.StringVar(&sf.url, urlFlag, "", "param store URL: sqlite:///path, postgres://..., redis://... (env TDCTL_PARAM_STORE; default SQLite in the user config dir)")
	fs.Int32Var(&sf.site, "site", 0, "site id params are scoped to (env TDCTL_SITE; default 0)")
	return sf
}

// Resolve is the one resolution of the param store and site, for every
// command that opens the store: the flag, then the environment
// (TDCTL_PARAM_STORE, TDCTL_SITE), then the profile (param_store, site),
// then the default (paramstore.DefaultURL, site 0). A flag given
// explicitly wins even when its value is the default (--site 0).
func (sf *StoreFlags) Resolve(cmd *cobra.Command) (StoreOptions, error) {
	o := StoreOptions{Open: OpenStore}
	urlFlag, siteFlag := cmd.Flags().Lookup(sf.urlFlag), cmd.Flags().Lookup("site")
	urlSet, siteSet := urlFlag != nil && urlFlag.Changed, siteFlag != nil && siteFlag.Changed
	if urlSet {
		if o.URL = strings.TrimSpace(sf.url); o.URL == "" {
			return o, cmdutil.FlagErrorf("--%s is empty: give a store URL such as sqlite:///abs/path/params.db, postgres://user@host/db or redis://host:6379/0", sf.urlFlag)
		}
	}
	if siteSet {
		o.Site = sf.site
	}
	if (!urlSet || !siteSet) && sf.config != nil {
		cfg, err := sf.config()
		if err != nil {
			return o, err
		}
		if !urlSet {
			o.URL = cfg.ParamStore.Value
		}
		if !siteSet && cfg.Site.Set() {
			if o.Site, err = ParseSite(cfg.Site); err != nil {
				return o, err
			}
		}
	}
	cmdutil.AddURLSecrets(o.URL) // masked in every output, whatever it holds
	if o.URL == "" {
		var err error
		if o.URL, err = DefaultStoreURL(); err != nil {
			return o, err
		}
	}
	return o, nil
}

// ParseSite reads a site id from the environment or a profile; the error
// names where the value came from.
func ParseSite(v config.Value) (int32, error) {
	s := strings.TrimSpace(v.Value)
	n, err := strconv.ParseInt(s, 10, 32)
	if err == nil {
		return int32(n), nil
	}
	what := fmt.Sprintf("site %q (%s)", s, v.Source)
	if env, ok := strings.CutPrefix(v.Source, "env "); ok {
		what = fmt.Sprintf("%s=%q", env, s)
	}
	return 0, cmdutil.NewConfigError(fmt.Errorf("%s is not a site id: give an integer such as 0 (digdag's site_id)", what))
}

// DefaultStoreURL is the store used when nothing names one: the embedded
// SQLite file (paramstore.DefaultURL).
func DefaultStoreURL() (string, error) {
	u, err := paramstore.DefaultURL()
	if err != nil {
		return "", cmdutil.NewConfigError(err)
	}
	return u, nil
}

// OpenStore opens the store at url for the CLI: like paramstore.Open, but
// a Redis store does not let go-redis log its own connection errors to
// stderr (the command reports the failure once, as its error).
func OpenStore(ctx context.Context, url string) (*paramstore.Store, error) {
	scheme, _, _ := strings.Cut(url, "://")
	switch strings.ToLower(scheme) {
	case "redis", "rediss":
		redis.SetLogger(quietLogger{})
	}
	return paramstore.Open(ctx, url)
}

// quietLogger drops go-redis's log lines.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// withSite opens the store, runs fn on the site and closes the store. Its
// errors are typed for the exit code and never contain the URL's password.
func withSite(ctx context.Context, so StoreOptions, fn func(st *paramstore.Store, site *paramstore.Site) error) (err error) {
	open := so.Open
	if open == nil {
		open = OpenStore
	}
	st, err := open(ctx, so.URL)
	if err != nil {
		return storeError(so, err)
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = storeError(so, cerr)
		}
	}()
	return fn(st, st.Site(so.Site))
}

// StoreError is a failure of the param store itself (exit 2); see
// cmdutil.StoreError.
type StoreError = cmdutil.StoreError

// NotSetError is a param that has no value (never set, deleted or
// expired). tdctl exits 1 on it.
type NotSetError struct {
	Key   string
	Site  int32
	Store string // the store URL, password masked
	err   error
}

func (e *NotSetError) Error() string {
	return fmt.Sprintf("param %s not set (site %d, store %s)", showKey(e.Key), e.Site, e.Store)
}

// Unwrap returns the paramstore error: errors.Is(err, paramstore.ErrNotFound).
func (e *NotSetError) Unwrap() error { return e.err }

// ExitCode is the exit code of a missing param: 1.
func (e *NotSetError) ExitCode() int { return cmdutil.ExitUsage }

func notSet(so StoreOptions, key string, err error) error {
	return &NotSetError{Key: key, Site: so.Site, Store: so.Redacted(), err: err}
}

// scrubbed is an error whose message had the store's password masked.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// storeError types a paramstore error for the exit code: bad input is a
// usage error (1), a bad URL a configuration error (1), anything else a
// StoreError (2) — a connect or query timeout included: exit 4 is only the
// user's --timeout, and an interrupt (the command's context cancelled) is
// still 130, as app checks that first. The message never contains the
// URL's password.
func storeError(so StoreOptions, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := driver.Scrub(msg, driver.Secrets(so.URL)); clean != msg {
		err = &scrubbed{msg: clean, err: err}
	}
	switch {
	case errors.Is(err, paramstore.ErrInvalid):
		return cmdutil.NewFlagError(err)
	case errors.Is(err, paramstore.ErrBadURL):
		return cmdutil.NewConfigError(err)
	}
	return &StoreError{Err: err}
}

// showKey prints a key as is, or quoted when it is empty or holds spaces
// or control characters.
func showKey(k string) string {
	if k == "" || strings.IndexFunc(k, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' }) >= 0 {
		return strconv.Quote(k)
	}
	return k
}

// checkKeyArg rejects a key argument paramstore cannot store.
func checkKeyArg(key string) error {
	if err := paramstore.CheckKey(key); err != nil {
		return cmdutil.FlagErrorf("KEY %s: %s", showKey(key), strings.TrimPrefix(err.Error(), paramstore.ErrInvalid.Error()+": "))
	}
	return nil
}

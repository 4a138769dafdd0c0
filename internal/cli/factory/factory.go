// Package factory builds what commands need — streams, configuration, the
// TD client — lazily and at most once per run, so a command that needs none
// of it (tdctl version, completion) loads nothing.
package factory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/tdctl/tdctl/internal/cli/build"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/config"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/td"
)

// GlobalFlags are the root command's persistent flags.
type GlobalFlags struct {
	APIKey     string
	Endpoint   string
	Profile    string
	ConfigFile string
	Debug      bool
	// WorkflowEndpoint is `tdctl workflow`'s --workflow-endpoint.
	WorkflowEndpoint string
}

// Factory hands out lazily built, cached dependencies.
type Factory struct {
	IOStreams *iostreams.IOStreams
	// Flags are filled in by the root command's flag parsing.
	Flags GlobalFlags
	// Getenv reads the environment (os.Getenv unless a test sets it).
	Getenv func(string) string
	// HomeDir overrides the home directory (tests); "" = $HOME.
	HomeDir string
	// HTTPClient, when set, is used by the TD client (tests).
	HTTPClient *http.Client
	// RetryPolicy, when set, replaces td's default retry policy (tests).
	RetryPolicy *td.RetryPolicy
	// Context is the command line's context (app.Run sets it): it
	// interrupts reading the configuration files.
	Context context.Context

	configOnce sync.Once
	config     *config.Config
	configErr  error

	clientOnce sync.Once
	client     *td.Client
	clientErr  error
}

// New returns a Factory over the given streams reading the process
// environment.
func New(ios *iostreams.IOStreams) *Factory {
	return &Factory{IOStreams: ios, Getenv: os.Getenv}
}

// Config loads the configuration once.
func (f *Factory) Config() (*config.Config, error) {
	f.configOnce.Do(func() {
		f.config, f.configErr = config.Load(config.Options{
			Flags: config.Flags{
				APIKey:           f.Flags.APIKey,
				Endpoint:         f.Flags.Endpoint,
				WorkflowEndpoint: f.Flags.WorkflowEndpoint,
				Profile:          f.Flags.Profile,
				ConfigFile:       f.Flags.ConfigFile,
			},
			Getenv:  f.Getenv,
			HomeDir: f.HomeDir,
			Context: f.Context,
		})
		if f.configErr != nil {
			f.configErr = cmdutil.NewConfigError(f.configErr)
			return
		}
		// masked in every output from now on, whatever they hold
		cmdutil.AddSecrets(f.config.APIKey.Value)
		cmdutil.AddURLSecrets(f.config.Endpoint.Value)
		cmdutil.AddURLSecrets(f.config.WorkflowEndpoint.Value)
	})
	return f.config, f.configErr
}

// ErrNoAPIKey is returned by TDClient when no API key is configured.
var ErrNoAPIKey = errors.New("no API key: set TD_API_KEY (or TDCTL_API_KEY), pass --apikey, " +
	"add [account] apikey to ~/.td/td.conf (what 'td account' writes) or a profile to ~/.config/tdctl/config.yaml; " +
	"to try tdctl without an account run 'tdctl dev-server'")

// TDClient builds the TD client once from the configuration.
func (f *Factory) TDClient() (*td.Client, error) {
	f.clientOnce.Do(func() {
		cfg, err := f.Config()
		if err != nil {
			f.clientErr = err
			return
		}
		if !cfg.APIKey.Set() {
			f.clientErr = cmdutil.NewConfigError(ErrNoAPIKey)
			return
		}
		opts := []td.Option{
			// the client masks every secret the process knows, those
			// learned after it was made (a workflow's) too
			td.WithSecrets(cmdutil.KnownSecrets()),
			td.WithEndpoint(cfg.Endpoint.Value),
			td.WithUserAgent("tdctl/" + build.Version),
		}
		if f.HTTPClient != nil {
			opts = append(opts, td.WithHTTPClient(f.HTTPClient))
		}
		if f.RetryPolicy != nil {
			opts = append(opts, td.WithRetryPolicy(*f.RetryPolicy))
		}
		if l := f.DebugLogger(); l != nil {
			opts = append(opts, td.WithLogger(l))
		}
		// The endpoint is checked on its own first, so that the error can
		// say which setting (and where it came from) is wrong.
		if _, err := td.ResolveEndpoint(cfg.Endpoint.Value); err != nil {
			f.clientErr = configError(err, "endpoint set by "+cfg.Endpoint.Source)
			return
		}
		c, err := td.NewClient(cfg.APIKey.Value, opts...)
		if err != nil {
			f.clientErr = configError(err, "API key set by "+cfg.APIKey.Source)
			return
		}
		f.client = c
	})
	return f.client, f.clientErr
}

// DebugLogger is the --debug (TDCTL_DEBUG) logger of HTTP traffic, every
// secret the process knows masked on its way to stderr; nil without
// --debug. The TD client uses it, and the workflow API's client.
func (f *Factory) DebugLogger() *slog.Logger {
	if !f.Flags.Debug && !truthy(f.getenv("TDCTL_DEBUG")) {
		return nil
	}
	return slog.New(slog.NewTextHandler(&redactingWriter{w: f.IOStreams.ErrOut}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// ConfigError words an SDK's configuration error for the CLI: without the
// SDK's "td: " or "digdag: " prefix, with where the setting came from.
func ConfigError(err error, source string) error { return configError(err, source) }

// configError words a td configuration error for the CLI: without the
// SDK's "td: " prefix, with where the setting came from.
func configError(err error, source string) error {
	msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "td: "), "digdag: ")
	return cmdutil.NewConfigError(fmt.Errorf("%s (%s)", msg, source))
}

func (f *Factory) getenv(k string) string {
	if f.Getenv == nil {
		return os.Getenv(k)
	}
	return f.Getenv(k)
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// redactingWriter is a second line of defence for --debug output: td already
// redacts what it logs, and this masks every secret the process knows
// (cmdutil.Redact) again on the way to stderr. slog's handlers write one
// record per Write.
type redactingWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	s := cmdutil.Redact(string(p))
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := io.WriteString(r.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

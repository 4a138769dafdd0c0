// Package remote implements the `tdctl workflow` commands that drive a
// workflow server — TD Workflow or any digdag server — over digdag's REST
// API (package digdag): push, start, attempts, attempt, kill, retry,
// sessions, schedules, secrets, and `workflow logs` of an attempt.
//
// Local runs and server attempts share two verbs: `workflow logs ID` and
// `workflow retry ID` take a server attempt when ID is a number (digdag's
// attempt ids are) and a local run otherwise (local run ids are
// 20261206T130000Z-1a2b3c); IsAttemptID tells them apart.
package remote

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/build"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
)

// Options are what every remote command needs.
type Options struct {
	IO     *iostreams.IOStreams
	Client func() (*digdag.Client, error)
	Ctx    context.Context
	Format output.Format
	// Now is the clock (tests).
	Now func() time.Time
	// Poll is the wait between polls of --wait and --follow (0: 1 s
	// doubling to 30 s for --wait, 2 s for --follow).
	Poll time.Duration
}

// HeaderEnv names the environment variable holding a header for a plain
// digdag server behind an authenticator ("Authorization: Bearer ..."): a
// value that never belongs on a command line.
const HeaderEnv = "TDCTL_WORKFLOW_HEADER"

// NewOptions returns Options whose client is built once from f's
// configuration (NewClient).
func NewOptions(f *factory.Factory) *Options {
	var c *digdag.Client
	var err error
	built := false
	return &Options{IO: f.IOStreams, Now: time.Now, Client: func() (*digdag.Client, error) {
		if !built {
			built = true
			c, err = NewClient(f)
		}
		return c, err
	}}
}

// NewClient builds the workflow API's client from the configuration:
// --workflow-endpoint / TDCTL_WORKFLOW_ENDPOINT / a profile's
// workflow_endpoint, else derived from the TD endpoint
// (digdag.ResolveEndpoint). The API key, when one is configured, is sent
// as TD Workflow wants it (TD1); a plain digdag server needs none, or the
// header in TDCTL_WORKFLOW_HEADER.
func NewClient(f *factory.Factory) (*digdag.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	src := "endpoint set by " + cfg.Endpoint.Source
	if cfg.WorkflowEndpoint.Set() {
		src = "workflow endpoint set by " + cfg.WorkflowEndpoint.Source
	}
	base, err := digdag.ResolveEndpoint(cfg.WorkflowEndpoint.Value, cfg.Endpoint.Value)
	if err != nil {
		return nil, factory.ConfigError(err, src)
	}
	opts := []digdag.Option{digdag.WithUserAgent("tdctl/" + build.Version)}
	if cfg.APIKey.Set() {
		opts = append(opts, digdag.WithAPIKey(cfg.APIKey.Value))
	}
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if h := getenv(HeaderEnv); h != "" {
		name, value, ok := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		cmdutil.AddSecrets(value)
		if !ok {
			return nil, cmdutil.NewConfigError(fmt.Errorf("%s: expected \"Name: value\"", HeaderEnv))
		}
		opts = append(opts, digdag.WithHeader(name, value))
	}
	// after the key and the header: the shared set learns both
	opts = append(opts, digdag.WithSecrets(cmdutil.KnownSecrets()))
	if f.HTTPClient != nil {
		opts = append(opts, digdag.WithHTTPClient(f.HTTPClient))
	}
	if f.RetryPolicy != nil {
		opts = append(opts, digdag.WithRetryPolicy(*f.RetryPolicy))
	}
	if l := f.DebugLogger(); l != nil {
		opts = append(opts, digdag.WithLogger(l))
	}
	c, err := digdag.NewClient(base, opts...)
	if err != nil {
		return nil, factory.ConfigError(err, src)
	}
	return c, nil
}

// AddEndpointFlag adds --workflow-endpoint to the workflow group.
func AddEndpointFlag(cmd *cobra.Command, f *factory.Factory) {
	cmd.PersistentFlags().StringVar(&f.Flags.WorkflowEndpoint, "workflow-endpoint", "",
		"workflow API (TD Workflow or a digdag server): a site, host or URL (env TDCTL_WORKFLOW_ENDPOINT; default: derived from --endpoint)")
}

// Commands returns the remote commands of the workflow group (logs and
// retry dispatch through LogsRun and NewCmdRetry).
func Commands(o func() *Options) []*cobra.Command {
	return []*cobra.Command{
		newCmdPush(o(), nil), newCmdStart(o(), nil), newCmdAttempts(o(), nil), newCmdAttempt(o(), nil),
		newCmdKill(o(), nil), newCmdSessions(o(), nil), newCmdSchedules(o(), nil), newCmdSecrets(o),
	}
}

// IsAttemptID reports whether id is a server's attempt id (digits) rather
// than a local run id.
func IsAttemptID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// params builds a start's params as digdag start does: the -P YAML file,
// then each -p key=value, a dotted key nesting (td.database=x is
// {td: {database: x}}).
func params(ctx context.Context, file string, kvs []string) (map[string]any, error) {
	out := map[string]any{}
	if file != "" {
		data, err := cmdutil.ReadFile(ctx, file, cmdutil.MaxConfigBytes, "-P "+file)
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(data, &out); err != nil {
			return nil, cmdutil.FlagErrorf("-P %s: not a YAML mapping of params: %v", file, err)
		}
		if out == nil {
			out = map[string]any{}
		}
	}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, cmdutil.FlagErrorf("-p %q: expected key=value", kv)
		}
		keys := strings.Split(k, ".")
		m := out
		for i, part := range keys[:len(keys)-1] {
			next, ok := m[part].(map[string]any)
			if !ok {
				if _, set := m[part]; set {
					return nil, cmdutil.FlagErrorf("-p %s: %s is set but is not a mapping", k, strings.Join(keys[:i+1], "."))
				}
				next = map[string]any{}
				m[part] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	return out, nil
}

func addParamFlags(cmd *cobra.Command, kvs *[]string, file *string) {
	cmd.Flags().StringArrayVarP(kvs, "param", "p", nil, "set a param: -p key=value (repeatable; td.database=x nests)")
	cmd.Flags().StringVarP(file, "params-file", "P", "", "YAML file of params")
}

// attemptPairs are an attempt's key/value lines.
func attemptPairs(p *output.Printer, a *digdag.Attempt) [][2]string {
	pairs := [][2]string{
		{"attempt_id", a.ID},
		{"session_id", a.SessionID},
		{"project", a.Project.Name},
		{"workflow", a.Workflow.Name},
		{"session_time", a.SessionTime.Format(time.RFC3339)},
		{"status", a.State()},
	}
	if a.RetryAttemptName != "" {
		pairs = append(pairs, [2]string{"retry_attempt_name", a.RetryAttemptName})
	}
	pairs = append(pairs, [2]string{"created_at", p.Time(&a.CreatedAt)}, [2]string{"finished_at", p.Time(a.FinishedAt)})
	return pairs
}

// printAttempt prints one attempt: its JSON, or its key/value lines.
func printAttempt(o *Options, a *digdag.Attempt) error {
	p := printer(o.IO, o.Format)
	if p.Structured() {
		return p.JSON(a)
	}
	return p.KeyValues(attemptPairs(p, a))
}

// wait follows an attempt until it is done, saying on stderr when its
// state changes.
func wait(o *Options, c *digdag.Client, a *digdag.Attempt, timeout time.Duration) (*digdag.Attempt, error) {
	last := ""
	w := &digdag.WaitOptions{Timeout: timeout, MinDelay: o.Poll, MaxDelay: o.Poll * 30, OnPoll: func(a *digdag.Attempt) {
		if s := a.State(); s != last {
			last = s
			fmt.Fprintf(o.IO.ErrOut, "attempt %s: %s\n", a.ID, s)
		}
	}}
	return c.Attempts.Wait(o.Ctx, a.ID, w)
}

// printer is output.New with JSON masked: a server returns params,
// stored params and errors as they were given, and a `-p password=...`
// must not come back in clear.
func printer(ios *iostreams.IOStreams, f output.Format) *output.Printer {
	p := output.New(ios, f)
	p.Redact = cmdutil.Redact
	return p
}

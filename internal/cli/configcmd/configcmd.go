// Package configcmd implements `tdctl config show`.
package configcmd

import (
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"

	"github.com/tdctl/tdctl/internal/cli/config"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// ShowOptions are the inputs of `config show`.
type ShowOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Format output.Format
}

// NewCmdConfig returns the `config` group.
func NewCmdConfig(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect tdctl's configuration",
		Long: `tdctl reads its settings, first match wins, from:
  1. flags: --apikey, --endpoint (and --profile to pick a profile)
  2. environment: TDCTL_API_KEY, TDCTL_ENDPOINT, then TD_API_KEY, TD_API_SERVER
  3. the profile picked with --profile or TDCTL_PROFILE, in tdctl's config file
  4. ~/.td/td.conf ([account] user, apikey, endpoint — what the Ruby td CLI writes)
  5. the default profile of tdctl's config file ($XDG_CONFIG_HOME/tdctl/config.yaml,
     else ~/.config/tdctl/config.yaml; --config or TDCTL_CONFIG name another file):
       default_profile: work
       profiles:
         work: {apikey: "1/abc...", endpoint: us01, database: sample_datasets}
         eu:   {apikey: "2/def...", endpoint: eu01}
  6. defaults (endpoint https://api.treasuredata.com)
The workflow server of 'tdctl workflow push|start|...' is --workflow-endpoint,
TDCTL_WORKFLOW_ENDPOINT or a profile's workflow_endpoint; unset, it is derived from
the endpoint (us01: api-workflow.treasuredata.com).`,
	}
	cmd.AddCommand(NewCmdShow(f, nil))
	return cmdutil.MakeGroup(cmd)
}

// NewCmdShow returns `config show`.
func NewCmdShow(f *factory.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IOStreams, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the settings in effect and where each came from (API key masked)",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return showRun(opts)
		},
	}
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

// setting is one line of `config show -o json`.
type setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func showRun(opts *ShowOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	rows := []setting{
		{"apikey", config.MaskKey(cfg.APIKey.Value), cfg.APIKey.Source},
		{"endpoint", td.RedactURL(cfg.Endpoint.Value), cfg.Endpoint.Source},
		{"workflow_endpoint", td.RedactURL(cfg.WorkflowEndpoint.Value), cfg.WorkflowEndpoint.Source},
		{"user", cfg.User.Value, cfg.User.Source},
		{"database", cfg.Database.Value, cfg.Database.Source},
		{"profile", cfg.Profile.Value, cfg.Profile.Source},
		{"td_conf", cfg.TDConfPath, ""},
		{"config_file", cfg.ConfigPath, ""},
	}
	for i := range rows {
		rows[i].Value = cmdutil.Redact(rows[i].Value)
		if rows[i].Value == "" && rows[i].Source == "" && i < 6 {
			rows[i].Source = "not set"
			if rows[i].Key == "workflow_endpoint" {
				rows[i].Source = "not set: derived from endpoint"
			}
		}
	}
	p := output.New(opts.IO, opts.Format)
	if p.Structured() {
		return output.JSONList(p, rows)
	}
	t := p.Table("key", "value", "source")
	for _, r := range rows {
		t.Row(r.Key, r.Value, r.Source)
	}
	return t.Render()
}

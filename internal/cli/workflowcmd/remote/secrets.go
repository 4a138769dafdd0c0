package remote

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tdctl/tdctl/digdag"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/output"
)

// SecretsOptions are the inputs of `workflow secrets set|list|delete`.
type SecretsOptions struct {
	*Options
	Project string
	Key     string
	File    string
}

func newCmdSecrets(o func() *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets <command>",
		Short: "Set, list and delete a pushed project's secrets on the workflow server",
		Long: `Keep the secrets a project's ${secret:NAME} reads on the workflow server (digdag's project
secrets; TD Workflow's too). A value is read from stdin or --file, never from the command
line, and never printed. Local runs ('workflow run') take their secrets from
TDCTL_SECRET_<NAME> and --secrets instead.`,
	}
	cmd.AddCommand(newCmdSecretsSet(o(), nil), newCmdSecretsList(o(), nil), newCmdSecretsDelete(o(), nil))
	return cmdutil.MakeGroup(cmd)
}

func newCmdSecretsSet(o *Options, runF func(*SecretsOptions) error) *cobra.Command {
	so := &SecretsOptions{Options: o}
	cmd := &cobra.Command{
		Use:     "set --project PROJECT KEY",
		Short:   "Set a project secret from stdin or --file",
		Example: "  printf %s \"$PG_PASSWORD\" | tdctl workflow secrets set --project examples pg.password\n  tdctl workflow secrets set --project examples td.apikey --file ~/.td/key",
		Args:    cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Key, so.Ctx = args[0], cmd.Context()
			if err := checkSecretArgs(so); err != nil {
				return err
			}
			if runF != nil {
				return runF(so)
			}
			return secretsSetRun(so)
		},
	}
	cmd.Flags().StringVar(&so.Project, "project", "", "the project (required)")
	cmd.Flags().StringVar(&so.File, "file", "", "read the value from this file (default: stdin)")
	return cmd
}

func newCmdSecretsList(o *Options, runF func(*SecretsOptions) error) *cobra.Command {
	so := &SecretsOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "list --project PROJECT",
		Short: "List a project's secret keys (never their values)",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Ctx = cmd.Context()
			if so.Project == "" {
				return cmdutil.FlagErrorf("--project is required")
			}
			if runF != nil {
				return runF(so)
			}
			c, proj, err := secretsProject(so)
			if err != nil {
				return err
			}
			keys, err := c.Projects.Secrets(so.Ctx, proj.ID)
			if err != nil {
				return err
			}
			p := printer(so.IO, so.Format)
			if p.Structured() {
				return output.JSONList(p, keys)
			}
			t := p.Table("key")
			for _, k := range keys {
				t.Row(k)
			}
			return t.Render()
		},
	}
	cmd.Flags().StringVar(&so.Project, "project", "", "the project (required)")
	output.AddFormatFlag(cmd, &o.Format)
	return cmd
}

func newCmdSecretsDelete(o *Options, runF func(*SecretsOptions) error) *cobra.Command {
	so := &SecretsOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "delete --project PROJECT KEY",
		Short: "Delete a project secret",
		Args:  cmdutil.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Key, so.Ctx = args[0], cmd.Context()
			if err := checkSecretArgs(so); err != nil {
				return err
			}
			if runF != nil {
				return runF(so)
			}
			c, proj, err := secretsProject(so)
			if err != nil {
				return err
			}
			if err := c.Projects.DeleteSecret(so.Ctx, proj.ID, so.Key); err != nil {
				return err
			}
			_, err = fmt.Fprintf(so.IO.Out, "deleted secret %s of project %s\n", so.Key, proj.Name)
			return err
		},
	}
	cmd.Flags().StringVar(&so.Project, "project", "", "the project (required)")
	return cmd
}

func checkSecretArgs(o *SecretsOptions) error {
	if o.Project == "" {
		return cmdutil.FlagErrorf("--project is required")
	}
	if strings.TrimSpace(o.Key) == "" || strings.ContainsAny(o.Key, "/ \t\n") {
		return cmdutil.FlagErrorf("secret key %q: give a name such as pg.password", o.Key)
	}
	return nil
}

func secretsProject(o *SecretsOptions) (*digdag.Client, *digdag.Project, error) {
	c, err := o.Client()
	if err != nil {
		return nil, nil, err
	}
	proj, err := c.Projects.Get(o.Ctx, o.Project)
	if err != nil {
		return nil, nil, err
	}
	return c, proj, nil
}

func secretsSetRun(o *SecretsOptions) error {
	var data []byte
	var err error
	if o.File != "" {
		data, err = cmdutil.ReadFile(o.Ctx, o.File, cmdutil.MaxConfigBytes, "--file "+o.File)
		if cause, ok := cmdutil.PathCause(err); ok && o.Ctx.Err() == nil {
			return cmdutil.FlagErrorf("--file %s: %v", o.File, cause)
		}
	} else {
		if f, ok := o.IO.In.(*os.File); ok && o.IO.IsStdinTTY() && term.IsTerminal(int(f.Fd())) {
			// typed at a terminal: not echoed
			fmt.Fprintf(o.IO.ErrOut, "value of %s: ", o.Key)
			data, err = term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(o.IO.ErrOut)
		} else {
			data, err = cmdutil.ReadAll(o.Ctx, o.IO.In, cmdutil.MaxConfigBytes, "stdin")
		}
	}
	if err != nil {
		return err
	}
	// one trailing newline is the shell's (echo, a file's last line)
	value := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	cmdutil.AddSecrets(value)
	if value == "" {
		return cmdutil.FlagErrorf("the value of %s is empty", o.Key)
	}
	c, proj, err := secretsProject(o)
	if err != nil {
		return err
	}
	if err := c.Projects.SetSecret(o.Ctx, proj.ID, o.Key, value); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.IO.Out, "set secret %s of project %s\n", o.Key, proj.Name)
	return err
}

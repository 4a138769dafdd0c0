package workflowcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/workflow"
)

// secretSource resolves ${secret:NAME}: TDCTL_SECRET_<NAME> in the
// environment, then the --secrets file, then td.apikey from the configured
// API key.
type secretSource struct {
	getenv func(string) string
	file   map[string]string
	apiKey func() string
}

// Secret implements workflow.Secrets. Every value it hands out joins the
// process's known secrets (cmdutil.AddSecrets), which the TD client
// shares: a ${secret:...} value a td> task puts in a query or a result URL
// is masked in the client's errors and --debug lines, not only in the
// runner's logs.
func (s *secretSource) Secret(name string) (string, bool) {
	v, ok := s.lookup(name)
	if ok {
		cmdutil.AddSecrets(v)
		cmdutil.AddURLSecrets(v) // a secret that is a whole URL: its password alone too
	}
	return v, ok
}

func (s *secretSource) lookup(name string) (string, bool) {
	if v := s.getenv("TDCTL_SECRET_" + workflow.SecretEnvName(name)); v != "" {
		return v, true
	}
	if v, ok := s.file[name]; ok {
		return v, true
	}
	if name == "td.apikey" && s.apiKey != nil {
		if k := s.apiKey(); k != "" {
			return k, true
		}
	}
	return "", false
}

// loadSecretsFile reads a YAML or JSON mapping of secret names to values;
// nested mappings give dotted names ({td: {apikey: x}} is td.apikey).
func loadSecretsFile(ctx context.Context, path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--secrets: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(os.Stderr, "warning: %s is readable by other users; chmod 600 it\n", path)
	}
	data, err := cmdutil.ReadFile(ctx, path, cmdutil.MaxConfigBytes, "--secrets "+path)
	if err != nil {
		if ctx != nil && ctx.Err() != nil {
			return nil, err
		}
		if _, ok := cmdutil.PathCause(err); ok {
			err = fmt.Errorf("--secrets: %w", err)
		}
		return nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		// never echo the file's content: it holds secrets
		return nil, fmt.Errorf("--secrets %s: not a YAML/JSON mapping of names to values", path)
	}
	out := map[string]string{}
	flatten("", raw, out)
	return out, nil
}

func flatten(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			flatten(name, x, out)
		case string:
			out[name] = x
		case nil:
		default:
			b, _ := json.Marshal(x)
			out[name] = strings.Trim(string(b), `"`)
		}
	}
}

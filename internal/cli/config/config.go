// Package config resolves tdctl's settings — API key, endpoint, user and
// default database — from, in order of precedence:
//
//  1. flags (--apikey, --endpoint);
//  2. environment: TDCTL_API_KEY, TDCTL_ENDPOINT, then TD_API_KEY,
//     TD_API_SERVER (the Ruby td CLI's names);
//  3. a profile selected explicitly with --profile or TDCTL_PROFILE;
//  4. ~/.td/td.conf, the INI file the Ruby td CLI writes ([account] with
//     user, apikey, endpoint);
//  5. the default profile of tdctl's own config file
//     ($XDG_CONFIG_HOME/tdctl/config.yaml, else ~/.config/tdctl/config.yaml;
//     --config or TDCTL_CONFIG name another file);
//  6. built-in defaults (endpoint https://api.treasuredata.com).
//
// Every value remembers where it came from, so `tdctl config show` can say.
// The YAML config is read with go.yaml.in/yaml/v3; callers get a typed Config.
package config

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
)

// Value is one setting and where it came from.
type Value struct {
	Value  string `json:"value"`
	Source string `json:"source"` // e.g. "flag --apikey", "env TD_API_KEY", "/home/me/.td/td.conf"
}

// Set reports whether the value is non-empty.
func (v Value) Set() bool { return v.Value != "" }

// Config is the configuration in effect for one run.
type Config struct {
	APIKey   Value `json:"apikey"`
	Endpoint Value `json:"endpoint"`
	// WorkflowEndpoint is the digdag / TD Workflow API (flag
	// --workflow-endpoint, env TDCTL_WORKFLOW_ENDPOINT or a profile's
	// workflow_endpoint); "" = derived from Endpoint (digdag.ResolveEndpoint).
	WorkflowEndpoint Value `json:"workflow_endpoint"`
	User             Value `json:"user"`
	// Database is the default database for `tdctl query` (profile only).
	Database Value `json:"database"`
	// ParamStore is the param store URL (env TDCTL_PARAM_STORE or a
	// profile's param_store; it may hold a password: mask it before
	// printing) and Site the param site id (env TDCTL_SITE or a profile's
	// site), both "" when not set; flags and defaults are applied by the
	// commands (paramcmd.ResolveStore).
	ParamStore Value `json:"param_store"`
	Site       Value `json:"site"`
	// Profile is the tdctl profile in use ("" when none).
	Profile Value `json:"profile"`
	// TDConfPath and ConfigPath are the files consulted (they may not exist).
	TDConfPath string `json:"td_conf_path"`
	ConfigPath string `json:"config_path"`
}

// Profile is one named profile in tdctl's config file.
type Profile struct {
	APIKey   string
	Endpoint string
	// WorkflowEndpoint is the workflow API of `tdctl workflow push|start...`.
	WorkflowEndpoint string
	User             string
	Database         string
	// ParamStore and Site are the param store URL and site id of
	// `tdctl param` and `workflow run`.
	ParamStore string
	Site       string
}

// Flags are the values given on the command line ("" = not given).
type Flags struct {
	APIKey           string
	Endpoint         string
	WorkflowEndpoint string
	Profile          string
	ConfigFile       string
}

// Options tell Load where to look. The zero value of a field means "from the
// process": Getenv defaults to os.Getenv, HomeDir to os.UserHomeDir.
type Options struct {
	Flags   Flags
	Getenv  func(string) string
	HomeDir string
	// Context interrupts reading the files (a FIFO with no writer, a
	// file that never ends); nil = never.
	Context context.Context
}

// DefaultEndpoint is used when nothing configures one.
const DefaultEndpoint = "https://api.treasuredata.com"

// Load resolves the configuration. It fails on a file that exists but
// cannot be read or parsed, and on a --profile that is not defined.
func Load(o Options) (*Config, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	home := o.HomeDir
	if home == "" {
		home = getenv("HOME")
	}
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	c := &Config{
		TDConfPath: filepath.Join(home, ".td", "td.conf"),
		ConfigPath: ConfigFilePath(o.Flags.ConfigFile, getenv, home),
	}

	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	tdconf, err := readTDConf(ctx, c.TDConfPath)
	if err != nil {
		return nil, err
	}
	file, err := readConfigFile(ctx, c.ConfigPath)
	if err != nil {
		return nil, err
	}

	// Which profile?
	var explicit bool
	switch {
	case o.Flags.Profile != "":
		c.Profile = Value{o.Flags.Profile, "flag --profile"}
		explicit = true
	case getenv("TDCTL_PROFILE") != "":
		c.Profile = Value{getenv("TDCTL_PROFILE"), "env TDCTL_PROFILE"}
		explicit = true
	case file.defaultProfile != "":
		c.Profile = Value{file.defaultProfile, c.ConfigPath + " default_profile"}
	case file.profiles["default"] != nil:
		c.Profile = Value{"default", c.ConfigPath}
	}
	var prof *Profile
	if c.Profile.Set() {
		prof = file.profiles[strings.ToLower(c.Profile.Value)]
		if prof == nil {
			names := make([]string, 0, len(file.profiles))
			for n := range file.profiles {
				names = append(names, n)
			}
			slices.Sort(names)
			have := "it defines no profiles"
			if len(names) > 0 {
				have = "it defines: " + strings.Join(names, ", ")
			}
			if !file.exists {
				have = "the file does not exist"
			}
			return nil, fmt.Errorf("profile %q (%s) is not defined in %s (%s); add it under profiles: or drop --profile/TDCTL_PROFILE",
				c.Profile.Value, c.Profile.Source, c.ConfigPath, have)
		}
	}
	profSource := c.ConfigPath + " profile " + c.Profile.Value
	pick := func(flag, flagName string, envs []string, fromProfile, fromTDConf string) Value {
		if flag != "" {
			return Value{flag, "flag " + flagName}
		}
		for _, e := range envs {
			if v := strings.TrimSpace(getenv(e)); v != "" {
				return Value{v, "env " + e}
			}
		}
		if explicit && fromProfile != "" {
			return Value{fromProfile, profSource}
		}
		if fromTDConf != "" {
			return Value{fromTDConf, c.TDConfPath}
		}
		if fromProfile != "" {
			return Value{fromProfile, profSource}
		}
		return Value{}
	}
	var p Profile
	if prof != nil {
		p = *prof
	}
	c.APIKey = pick(o.Flags.APIKey, "--apikey", []string{"TDCTL_API_KEY", "TD_API_KEY"}, p.APIKey, tdconf["apikey"])
	c.Endpoint = pick(o.Flags.Endpoint, "--endpoint", []string{"TDCTL_ENDPOINT", "TD_API_SERVER"}, p.Endpoint, tdconf["endpoint"])
	c.WorkflowEndpoint = pick(o.Flags.WorkflowEndpoint, "--workflow-endpoint", []string{"TDCTL_WORKFLOW_ENDPOINT"}, p.WorkflowEndpoint, "")
	c.User = pick("", "", []string{"TDCTL_USER"}, p.User, tdconf["user"])
	c.Database = pick("", "", []string{"TDCTL_DATABASE"}, p.Database, "")
	c.ParamStore = pick("", "", []string{"TDCTL_PARAM_STORE"}, p.ParamStore, "")
	c.Site = pick("", "", []string{"TDCTL_SITE"}, p.Site, "")
	if !c.Endpoint.Set() {
		c.Endpoint = Value{DefaultEndpoint, "default"}
	}
	return c, nil
}

// ConfigFilePath is the tdctl config file: flag, then TDCTL_CONFIG, then
// $XDG_CONFIG_HOME/tdctl/config.yaml, then ~/.config/tdctl/config.yaml
// (%AppData%\tdctl\config.yaml on Windows).
func ConfigFilePath(flag string, getenv func(string) string, home string) string {
	if flag != "" {
		return flag
	}
	if p := getenv("TDCTL_CONFIG"); p != "" {
		return p
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "tdctl", "config.yaml")
	}
	if runtime.GOOS == "windows" {
		if d, err := os.UserConfigDir(); err == nil {
			return filepath.Join(d, "tdctl", "config.yaml")
		}
	}
	return filepath.Join(home, ".config", "tdctl", "config.yaml")
}

// readTDConf reads the [account] section of the Ruby CLI's td.conf. A missing
// file is no error. Lines end at "\n", "\r\n" or a bare "\r"
// (scanConfLines), so no key or value holds a line break of any kind.
func readTDConf(ctx context.Context, path string) (map[string]string, error) {
	data, err := readFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Split(scanConfLines)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: malformed section header %q (expected [account])", path, n, line)
			}
			section = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected key = value", path, n)
		}
		if section != "account" {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		key := strings.ToLower(strings.TrimSpace(k))
		if i := strings.IndexFunc(v, isControl); i >= 0 {
			// The value is not shown: it may be the API key.
			return nil, fmt.Errorf("%s:%d: the value of %s holds a control character (%U): td.conf values are plain text", path, n, key, []rune(v[i:])[0])
		}
		out[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// isControl matches the characters that can rewrite what a terminal shows
// (escape sequences, backspace, form feed...). A tab is allowed.
func isControl(r rune) bool {
	return r != '\t' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0))
}

// scanConfLines is bufio.ScanLines with one difference: a bare "\r" ends a
// line too, as "\n" and "\r\n" do. bufio.ScanLines only drops the "\r" of a
// "\r\n", so "apikey = 1/x\rinjected = y" would otherwise be one line whose
// value carries a carriage return: printed on a terminal, the text after it
// overwrites what came before, so a crafted td.conf could hide part of a
// value. (The Ruby td CLI splits on "\n" only and keeps such a "\r" inside
// the value; tdctl reads it as two lines instead.)
func scanConfLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		switch {
		case data[i] == '\n':
			return i + 1, data[:i], nil
		case i+1 < len(data) && data[i+1] == '\n': // "\r\n"
			return i + 2, data[:i], nil
		case i+1 < len(data) || atEOF: // a bare "\r"
			return i + 1, data[:i], nil
		}
		// a "\r" at the end of what has been read: a "\n" may follow
		return 0, nil, nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

type configFile struct {
	exists         bool
	defaultProfile string
	profiles       map[string]*Profile
}

// readConfigFile reads tdctl's YAML config (JSON, being YAML, reads too):
//
//	default_profile: work
//	profiles:
//	  work: {apikey: ..., endpoint: us01, database: sample_datasets,
//	         param_store: postgres://digdag@db/digdag, site: 3}
//
// Keys and profile names are case-insensitive; scalar values (site: 3)
// read as their text. A missing file is no error.
func readConfigFile(ctx context.Context, path string) (*configFile, error) {
	out := &configFile{profiles: map[string]*Profile{}}
	data, err := readFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext != "" && ext != ".yaml" && ext != ".yml" && ext != ".json" {
		return nil, fmt.Errorf("reading %s: unsupported config type %q (use a .yaml file)", path, ext)
	}
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out.exists = true
	top = lowerKeys(top)
	if err := checkKeys(path, top); err != nil {
		return nil, err
	}
	if v, ok := top["default_profile"]; ok && v != nil {
		s, ok := scalarString(v)
		if !ok {
			return nil, fmt.Errorf("%s: default_profile: expected a profile name, got %s", path, kindOf(v))
		}
		out.defaultProfile = s
	}
	raw, ok := top["profiles"].(map[string]any)
	if !ok && top["profiles"] != nil {
		return nil, fmt.Errorf("%s: profiles: expected a mapping, got %s (expected profiles: {NAME: {apikey: ..., endpoint: ...}})", path, kindOf(top["profiles"]))
	}
	for name, pv := range raw {
		fields, ok := pv.(map[string]any)
		if !ok && pv != nil {
			return nil, fmt.Errorf("%s: profiles: %s: expected a mapping, got %s (expected profiles: {NAME: {apikey: ..., endpoint: ...}})", path, name, kindOf(pv))
		}
		p := &Profile{}
		for k, v := range fields {
			if v == nil {
				continue
			}
			s, ok := scalarString(v)
			if !ok {
				return nil, fmt.Errorf("%s: profile %s: %s: expected a string, got %s", path, name, k, kindOf(v))
			}
			*p.field(k) = s
		}
		out.profiles[strings.ToLower(name)] = p
	}
	return out, nil
}

// field is the Profile field of a key of profileKeys.
func (p *Profile) field(key string) *string {
	switch key {
	case "apikey":
		return &p.APIKey
	case "endpoint":
		return &p.Endpoint
	case "user":
		return &p.User
	case "database":
		return &p.Database
	case "param_store":
		return &p.ParamStore
	case "workflow_endpoint":
		return &p.WorkflowEndpoint
	default: // "site"; checkKeys refused every other key
		return &p.Site
	}
}

// lowerKeys lower-cases the keys of the top level and of each profile.
func lowerKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && strings.EqualFold(k, "profiles") {
			profiles := make(map[string]any, len(sub))
			for name, pv := range sub {
				if pm, ok := pv.(map[string]any); ok {
					lp := make(map[string]any, len(pm))
					for pk, x := range pm {
						lp[strings.ToLower(pk)] = x
					}
					pv = lp
				}
				profiles[name] = pv
			}
			v = profiles
		}
		out[strings.ToLower(k)] = v
	}
	return out
}

// scalarString is a YAML scalar's text: strings as they are, numbers and
// booleans as written (site: 3 is "3").
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(x), true
	}
	return "", false
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// profileKeys are the keys a profile may hold (Profile's fields).
var profileKeys = []string{"apikey", "endpoint", "workflow_endpoint", "user", "database", "param_store", "site"}

// checkKeys refuses a key tdctl does not know, at the top of the file or
// in a profile, rather than ignore it (a misspelt param-store would
// otherwise silently leave the default store in use).
func checkKeys(path string, top map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "default_profile" && k != "profiles" {
			return fmt.Errorf("%s: unknown key %q (known: default_profile, profiles)", path, k)
		}
	}
	profiles, _ := top["profiles"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		p, _ := profiles[name].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(p)) {
			if !slices.Contains(profileKeys, k) {
				return fmt.Errorf("%s: profile %s: unknown key %q (known: %s)", path, name, k, strings.Join(profileKeys, ", "))
			}
		}
	}
	return nil
}

// readFile reads a configuration file: at most cmdutil.MaxConfigBytes,
// and interrupted by ctx (a FIFO with no writer cannot hold tdctl). A
// missing file is an error matching fs.ErrNotExist.
func readFile(ctx context.Context, path string) ([]byte, error) {
	data, err := cmdutil.ReadFile(ctx, path, cmdutil.MaxConfigBytes, path)
	if errors.Is(err, fs.ErrNotExist) || ctx.Err() != nil {
		return nil, err
	}
	if cause, ok := cmdutil.PathCause(err); ok {
		return nil, fmt.Errorf("reading %s: %w", path, cause)
	}
	return data, err
}

// MaskKey hides an API key for display: the account part before "/" stays,
// the secret part becomes "***".
func MaskKey(key string) string {
	if key == "" {
		return ""
	}
	if i := strings.IndexByte(key, '/'); i > 0 && i < 12 {
		return key[:i+1] + "***"
	}
	return "***"
}

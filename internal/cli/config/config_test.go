package config

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type env map[string]string

func (e env) get(k string) string { return e[k] }

func write(t *testing.T, path, body string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
}

const tdconf = `[account]
  user = ruby@example.com
  apikey = 1/from-tdconf
  endpoint = https://api.treasuredata.co.jp
[http]
  proxy = http://proxy:8080
`

const yamlConf = `default_profile: work
profiles:
  work:
    apikey: 2/from-work
    endpoint: eu01
    database: sample_datasets
  Other:
    apikey: 3/from-other
    endpoint: ap02
`

func setup(t *testing.T, withTDConf, withYAML bool) (home string, e env) {
	home = t.TempDir()
	if withTDConf {
		write(t, filepath.Join(home, ".td", "td.conf"), tdconf)
	}
	if withYAML {
		write(t, filepath.Join(home, "xdg", "tdctl", "config.yaml"), yamlConf)
	}
	return home, env{"XDG_CONFIG_HOME": filepath.Join(home, "xdg")}
}

func TestNothingConfigured(t *testing.T) {
	home, e := setup(t, false, false)
	c, err := Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err)
	assert.False(t, c.APIKey.Set())
	assert.Equal(t, Value{DefaultEndpoint, "default"}, c.Endpoint)
	assert.Equal(t, filepath.Join(home, "xdg", "tdctl", "config.yaml"), c.ConfigPath)
}

func TestTDConfBeatsDefaultProfile(t *testing.T) {
	home, e := setup(t, true, true)
	c, err := Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err)
	tdPath := filepath.Join(home, ".td", "td.conf")
	assert.Equal(t, Value{"1/from-tdconf", tdPath}, c.APIKey)
	assert.Equal(t, Value{"https://api.treasuredata.co.jp", tdPath}, c.Endpoint)
	assert.Equal(t, Value{"ruby@example.com", tdPath}, c.User)
	// td.conf has no database: the default profile's fills it in
	assert.Equal(t, "sample_datasets", c.Database.Value)
	assert.Contains(t, c.Database.Source, "profile work")
	assert.Equal(t, "work", c.Profile.Value)
}

func TestDefaultProfileWithoutTDConf(t *testing.T) {
	home, e := setup(t, false, true)
	c, err := Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err)
	assert.Equal(t, "2/from-work", c.APIKey.Value)
	assert.Equal(t, "eu01", c.Endpoint.Value)
	assert.Contains(t, c.APIKey.Source, "config.yaml profile work")
}

func TestExplicitProfileBeatsTDConf(t *testing.T) {
	home, e := setup(t, true, true)
	c, err := Load(Options{Getenv: e.get, HomeDir: home, Flags: Flags{Profile: "other"}})
	require.NoError(t, err)
	assert.Equal(t, "3/from-other", c.APIKey.Value, "profile names are case-insensitive")
	assert.Equal(t, "ap02", c.Endpoint.Value)
	assert.Equal(t, "flag --profile", c.Profile.Source)

	e["TDCTL_PROFILE"] = "work"
	c, err = Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err)
	assert.Equal(t, "2/from-work", c.APIKey.Value)
	assert.Equal(t, "env TDCTL_PROFILE", c.Profile.Source)
}

func TestEnvBeatsFilesAndFlagsBeatEnv(t *testing.T) {
	home, e := setup(t, true, true)
	e["TD_API_KEY"] = "4/from-env"
	e["TD_API_SERVER"] = "http://127.0.0.1:9"
	c, err := Load(Options{Getenv: e.get, HomeDir: home, Flags: Flags{Profile: "work"}})
	require.NoError(t, err)
	assert.Equal(t, Value{"4/from-env", "env TD_API_KEY"}, c.APIKey)
	assert.Equal(t, Value{"http://127.0.0.1:9", "env TD_API_SERVER"}, c.Endpoint)

	e["TDCTL_API_KEY"] = "5/from-tdctl-env"
	c, err = Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err)
	assert.Equal(t, Value{"5/from-tdctl-env", "env TDCTL_API_KEY"}, c.APIKey, "TDCTL_ beats TD_")

	c, err = Load(Options{Getenv: e.get, HomeDir: home, Flags: Flags{APIKey: "6/flag", Endpoint: "us01"}})
	require.NoError(t, err)
	assert.Equal(t, Value{"6/flag", "flag --apikey"}, c.APIKey)
	assert.Equal(t, Value{"us01", "flag --endpoint"}, c.Endpoint)
}

func TestConfigFileFlagAndEnv(t *testing.T) {
	home, e := setup(t, false, false)
	p := filepath.Join(home, "custom.yml")
	write(t, p, "profiles:\n  default:\n    apikey: 7/custom\n")
	c, err := Load(Options{Getenv: e.get, HomeDir: home, Flags: Flags{ConfigFile: p}})
	require.NoError(t, err)
	assert.Equal(t, "7/custom", c.APIKey.Value, "a profile named default is used without default_profile")
	e["TDCTL_CONFIG"] = p
	c, err = Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err)
	assert.Equal(t, p, c.ConfigPath)
}

func TestUnknownProfile(t *testing.T) {
	home, e := setup(t, false, true)
	_, err := Load(Options{Getenv: e.get, HomeDir: home, Flags: Flags{Profile: "nope"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `profile "nope"`)
	assert.Contains(t, err.Error(), "it defines: other, work")
	assert.NotContains(t, err.Error(), "from-work", "no key in errors")
}

func TestBrokenFiles(t *testing.T) {
	home, e := setup(t, false, false)
	write(t, filepath.Join(home, ".td", "td.conf"), "[account\napikey = x\n")
	_, err := Load(Options{Getenv: e.get, HomeDir: home})
	require.ErrorContains(t, err, "td.conf:1: malformed section header")

	home, e = setup(t, false, false)
	write(t, filepath.Join(home, "xdg", "tdctl", "config.yaml"), "profiles: [1, 2\n")
	_, err = Load(Options{Getenv: e.get, HomeDir: home})
	require.ErrorContains(t, err, "config.yaml")
}

func TestMaskKey(t *testing.T) {
	assert.Equal(t, "1234/***", MaskKey("1234/abcdefabcdef"))
	assert.Equal(t, "***", MaskKey("abcdefabcdef"))
	assert.Equal(t, "", MaskKey(""))
}

// A bare "\r" ends a line like "\n" and "\r\n": the fuzz seed that used to
// leave "1/x\rinjected = y" as the API key (a value that, printed on a
// terminal, shows "injected = y" over "1/x") reads as two lines.
func TestTDConfBareCarriageReturnEndsALine(t *testing.T) {
	home, e := setup(t, false, false)
	path := filepath.Join(home, ".td", "td.conf")
	write(t, path, "[account]\napikey = 1/x\rinjected = y\n")
	m, err := readTDConf(t.Context(), path)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"apikey": "1/x", "injected": "y"}, m)
	c, err := Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err)
	assert.Equal(t, Value{"1/x", path}, c.APIKey)

	// every line ending, mixed in one file, with a "\r" last at EOF
	write(t, path, "[account]\r  user = u@example.com\r\n\r\n\r  apikey = 1/mixed\n\rendpoint = eu01\r")
	m, err = readTDConf(t.Context(), path)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"user": "u@example.com", "apikey": "1/mixed", "endpoint": "eu01"}, m)

	// line numbers in errors count a bare "\r" as a line end and "\r\n" as one
	write(t, path, "[account]\r\napikey = 1/k\r# comment\r\rno equals sign\n")
	_, err = readTDConf(t.Context(), path)
	require.ErrorContains(t, err, "td.conf:5: expected key = value")
	write(t, path, "[account]\r[broken\r\napikey = 1/k\n")
	_, err = readTDConf(t.Context(), path)
	require.ErrorContains(t, err, `td.conf:2: malformed section header "[broken"`)
}

// scanConfLines gives the same lines however the file arrives: a "\r\n"
// split across two reads is one line end, not a "\r" line end and an empty
// line after it.
func TestScanConfLinesAcrossReads(t *testing.T) {
	lines := func(r io.Reader) []string {
		sc := bufio.NewScanner(r)
		sc.Split(scanConfLines)
		var out []string
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		require.NoError(t, sc.Err())
		return out
	}
	for in, want := range map[string][]string{
		"a\nb\r\nc\rd":     {"a", "b", "c", "d"},
		"a\r\n":            {"a"},
		"a\r":              {"a"},
		"a\r\r\n\n":        {"a", "", ""},
		"\r":               {""},
		"":                 nil,
		"x = 1\ry = 2\r\n": {"x = 1", "y = 2"},
	} {
		assert.Equal(t, want, lines(strings.NewReader(in)), "%q whole", in)
		assert.Equal(t, want, lines(iotest.OneByteReader(strings.NewReader(in))), "%q one byte per read", in)
	}

	// at the end of what has been read, a "\r" waits for the next byte
	adv, tok, err := scanConfLines([]byte("a\r"), false)
	require.NoError(t, err)
	assert.Equal(t, 0, adv)
	assert.Nil(t, tok)
	adv, tok, err = scanConfLines([]byte("a\r"), true)
	require.NoError(t, err)
	assert.Equal(t, 2, adv)
	assert.Equal(t, "a", string(tok))
}

// A td.conf value with a terminal control character (an escape sequence
// could hide part of it when printed) is refused, without echoing it.
func TestTDConfControlCharacterIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "td.conf")
	require.NoError(t, os.WriteFile(path, []byte("[account]\n  apikey = 1/secretpart\x1b[2Kfake\n"), 0o600))
	_, err := readTDConf(t.Context(), path)
	require.Error(t, err)
	assert.Equal(t, path+":2: the value of apikey holds a control character (U+001B): td.conf values are plain text", err.Error())

	require.NoError(t, os.WriteFile(path, []byte("[account]\n  apikey = \"1/with\ttab\"\n"), 0o600))
	m, err := readTDConf(t.Context(), path)
	require.NoError(t, err)
	assert.Equal(t, "1/with\ttab", m["apikey"], "a tab is plain text")
}

// TestUnknownKeysRefused: a key tdctl does not know is named, not ignored.
func TestUnknownKeysRefused(t *testing.T) {
	for yaml, want := range map[string]string{
		"profiles:\n  work:\n    param-store: sqlite:///x.db\n": `profile work: unknown key "param-store" (known: apikey, endpoint, workflow_endpoint, user, database, param_store, site)`,
		"default_profle: work\n":                                `unknown key "default_profle" (known: default_profile, profiles)`,
	} {
		home := t.TempDir()
		p := filepath.Join(home, "xdg", "tdctl", "config.yaml")
		write(t, p, yaml)
		_, err := Load(Options{Getenv: env{"XDG_CONFIG_HOME": filepath.Join(home, "xdg")}.get, HomeDir: home})
		require.Error(t, err, yaml)
		assert.Equal(t, p+": "+want, err.Error())
	}
	home, e := setup(t, false, true)
	c, err := Load(Options{Getenv: e.get, HomeDir: home})
	require.NoError(t, err, "every key of the documented example is known")
	assert.Equal(t, "2/from-work", c.APIKey.Value)
}

// TestYAMLValuesAsText: the config file's keys are case-insensitive and a
// scalar reads as its text (site: 3), as it did when the file was read with
// viper (which tdctl no longer links); a value of the wrong shape is named with its key.
func TestYAMLValuesAsText(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, "xdg", "tdctl", "config.yaml")
	write(t, p, "Default_Profile: Work\nprofiles:\n  Work:\n    APIKey: 4/upper\n    site: 3\n    param_store: sqlite:///x.db\n")
	got, err := readConfigFile(t.Context(), p)
	require.NoError(t, err)
	assert.Equal(t, "Work", got.defaultProfile)
	require.Contains(t, got.profiles, "work")
	assert.Equal(t, Profile{APIKey: "4/upper", Site: "3", ParamStore: "sqlite:///x.db"}, *got.profiles["work"])

	for body, want := range map[string]string{
		"profiles:\n  work:\n    site: [1, 2]\n": "profile work: site: expected a string, got a list",
		"profiles: [a]\n":                        "profiles: expected a mapping, got a list",
		"profiles:\n  work: x\n":                 "profiles: work: expected a mapping, got string",
	} {
		write(t, p, body)
		_, err := readConfigFile(t.Context(), p)
		require.Error(t, err, body)
		assert.Contains(t, err.Error(), want, body)
	}
	toml := filepath.Join(home, "c.toml")
	write(t, toml, "x = 1\n")
	_, err = readConfigFile(t.Context(), toml)
	assert.ErrorContains(t, err, `unsupported config type ".toml"`)
}

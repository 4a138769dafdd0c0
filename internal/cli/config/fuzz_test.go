package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzTDConf feeds arbitrary td.conf content to the parser and to Load:
// neither may panic, no key or value read from it (API key, endpoint, user)
// may span lines or hold a carriage return (a bare "\r" ends a line, so a
// crafted file cannot hide text on a terminal), and the masked API key never
// shows its secret part.
//
//	go test -run '^$' -fuzz FuzzTDConf -fuzztime 60s ./internal/cli/config/
func FuzzTDConf(f *testing.F) {
	for _, seed := range []string{
		"[account]\n  user = u@example.com\n  apikey = 1234/abcdef0123456789\n",
		"[account]\nuser = u@example.com\napikey = 1/k\nendpoint = https://api.treasuredata.co.jp\n",
		"[account]\r\n  apikey = 1/crlf\r\n  endpoint = api.eu01.treasuredata.com\r\n",
		"# written by td account\n; another comment\n[account]\n\tapikey\t=\t\"1/quoted\"\n\tuser='single@example.com'\n",
		"apikey = 1/no-section\n",
		"[Account]\nAPIKEY=1/upper\n",
		"[account]\napikey = 1/first\n[other]\napikey = 2/second\n",
		"[account\napikey = 1/bad-header\n",
		"[account]\njust a line\n",
		"[account]\napikey =\n",
		"[account]\napikey = \"\n",
		"[account]\napikey = a = b\n",
		"[account]\napikey = 1/x\rinjected = y\n",
		"[account]\napikey = 1/x\x1b[2K\x1b[1Ghidden\n",
		"[account]\rapikey = 1/cr-only\ruser = u\r",
		"[account]\napikey = 1/\r\r\n\n\rx\r",
		"",
		"\n\n\n",
		"[]\n=\n",
		"[account]\n" + strings.Repeat("k", 70000) + " = v\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, content string) {
		home := t.TempDir()
		path := filepath.Join(home, ".td", "td.conf")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))

		m, err := readTDConf(t.Context(), path)
		if err != nil {
			require.Nil(t, m)
			require.NotContains(t, err.Error(), "\n", "one-line error")
		}
		for k, v := range m {
			for _, eol := range []string{"\n", "\r"} {
				require.NotContainsf(t, v, eol, "td.conf value %q holds %q", k, eol)
				require.NotContainsf(t, k, eol, "td.conf key %q holds %q", k, eol)
			}
			require.Falsef(t, strings.ContainsFunc(v, isControl), "td.conf value of %q holds a control character", k)
		}

		c, err := Load(Options{HomeDir: home, Getenv: func(string) string { return "" }})
		if err != nil {
			require.Nil(t, c)
			return
		}
		require.NotNil(t, c)
		for name, v := range map[string]Value{"apikey": c.APIKey, "endpoint": c.Endpoint, "user": c.User} {
			require.NotContainsf(t, v.Value, "\n", "%s spans lines", name)
			require.NotContainsf(t, v.Value, "\r", "%s holds a carriage return", name)
		}
		if c.APIKey.Set() {
			require.Equal(t, m["apikey"], c.APIKey.Value, "the API key comes from td.conf")
			require.Equal(t, path, c.APIKey.Source)
			// Shown masked, the secret part never survives.
			masked := MaskKey(c.APIKey.Value)
			if _, secret, ok := strings.Cut(c.APIKey.Value, "/"); ok && len(secret) > 3 {
				require.NotContains(t, masked, secret)
			}
			require.True(t, strings.HasSuffix(masked, "***"), masked)
		}
	})
}

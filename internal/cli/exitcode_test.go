package cli

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// silentServer accepts connections and never says a word: a store whose
// server hangs before its greeting.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

// TestStoreConnectTimeoutIsExit2: a store that never answers is a store
// failure (2), not the user's --timeout (4), which is the only exit 4.
func TestStoreConnectTimeoutIsExit2(t *testing.T) {
	e := newEnv(t, fast())
	addr := silentServer(t)
	for _, url := range []string{
		"postgres://u:pw@" + addr + "/db?connect_timeout=1",
		"redis://:pw@" + addr + "/0?dial_timeout=1s&read_timeout=300ms&max_retries=-1",
	} {
		start := time.Now()
		r := e.run("param", "get", "k", "--store", url)
		assert.Equal(t, 2, r.code, "%s: %s", url, r.stderr)
		assert.Less(t, time.Since(start), 10*time.Second, url)
		assert.NotContains(t, r.stderr, "pw@", url)
	}
}

//go:build unix

package cli

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// -o to a device or a FIFO writes into it; the atomic write-then-rename
// used for regular files must never replace it (as root, -o /dev/null
// would otherwise turn /dev/null into a file).
func TestResultToFIFOKeepsTheFIFO(t *testing.T) {
	e := newEnv(t, fast())
	id := e.issue("SELECT 1 AS a, 2 AS b")
	e.waitOK(id)
	fifo := filepath.Join(t.TempDir(), "pipe")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	r := e.run("job", "result", id, "-f", "csv", "-o", fifo)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "1,2\n", <-got)
	st, err := os.Lstat(fifo)
	require.NoError(t, err)
	assert.Equal(t, os.ModeNamedPipe, st.Mode().Type(), "still a FIFO")
}

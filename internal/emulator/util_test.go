package emulator

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return out
}

func decodeMsgpack(t testing.TB, b []byte) [][]any {
	t.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	var rows [][]any
	for {
		n, err := dec.DecodeArrayLen()
		if err == io.EOF {
			return rows
		}
		require.NoError(t, err)
		row := make([]any, n)
		for i := range row {
			row[i], err = dec.DecodeInterfaceLoose()
			require.NoError(t, err)
			if u, ok := row[i].(uint64); ok && u <= math.MaxInt64 {
				row[i] = int64(u)
			}
		}
		rows = append(rows, row)
	}
}

func decodeMsgpackGz(t testing.TB, b []byte) [][]any {
	t.Helper()
	return decodeMsgpack(t, gunzip(t, b))
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// logSink collects Logf output safely.
type logSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logSink) logf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, f+"\n", a...)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

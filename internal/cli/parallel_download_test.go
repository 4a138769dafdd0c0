package cli

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
)

// `job result --parallel N` fetches ranges at once: the bytes are the
// result's, to -o FILE (written at offsets) and to stdout (in order), and
// -f csv decodes the same rows; a range cut on the way resumes.
func TestJobResultParallel(t *testing.T) {
	e, s := newEnvServer(t, fast())
	r := rand.New(rand.NewPCG(7, 7))
	var buf bytes.Buffer
	const rows = 300_000 // about 6 MB of msgpack.gz: a few ranges
	require.NoError(t, emulator.WriteMsgpackGz(&buf, func(yield func([]any) bool) {
		for i := range rows {
			if !yield([]any{int64(i), strconv.FormatUint(r.Uint64(), 36) + strconv.FormatUint(r.Uint64(), 36)}) {
				return
			}
		}
	}))
	src := filepath.Join(t.TempDir(), "r.msgpack.gz")
	require.NoError(t, os.WriteFile(src, buf.Bytes(), 0o644))
	require.Greater(t, buf.Len(), 5<<20)
	id, err := s.AddFinishedJob(emulator.FinishedJob{ResultFile: src, NumRecords: rows,
		Schema: []emulator.Column{{Name: "a", Type: "long"}, {Name: "b", Type: "varchar"}}})
	require.NoError(t, err)

	ranges := func() int {
		n := 0
		for _, q := range s.Requests() {
			if strings.HasPrefix(q.Path, "/v3/job/result/") && q.Header.Get("Range") != "" {
				n++
			}
		}
		return n
	}
	before := ranges()
	file := filepath.Join(t.TempDir(), "out.msgpack.gz")
	res := e.run("job", "result", id, "-f", "msgpack.gz", "-o", file, "--parallel", "4")
	require.Equal(t, 0, res.code, res.stderr)
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(buf.Bytes(), got), "-o FILE holds the result's bytes")

	s.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/result/", Times: 2, ResetAfterBytes: 100_000})
	res = e.run("job", "result", id, "-f", "msgpack.gz", "--parallel", "4")
	require.Equal(t, 0, res.code, res.stderr)
	assert.True(t, bytes.Equal(buf.Bytes(), []byte(res.stdout)), "stdout holds the result's bytes, after two cuts")
	assert.Greater(t, ranges()-before, 4, "fetched in ranges")

	res = e.run("job", "result", id, "-f", "csv", "--parallel", "3")
	require.Equal(t, 0, res.code, res.stderr)
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	require.Len(t, lines, rows)
	assert.True(t, strings.HasPrefix(lines[rows-1], strconv.Itoa(rows-1)+","), lines[rows-1])
}

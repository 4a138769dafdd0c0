//go:build unix

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
)

// newEnvServer is newEnv that also returns the emulator (for faults and
// jobs registered by hand).
func newEnvServer(t *testing.T, opts emulator.Options) (*env, *emulator.Server) {
	t.Helper()
	s, base := emulator.NewTestServer(t, opts)
	home := t.TempDir()
	return &env{t: t, base: base, home: home, ctx: context.Background(), vars: map[string]string{
		"TD_API_KEY":      testKey,
		"TD_API_SERVER":   base,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
	}}, s
}

// dirNames lists dir's entries (a leftover temporary file shows up here).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// A download that fails, or is interrupted, leaves neither FILE nor the
// temporary .FILE.tdctl-NNNN beside it (issue 20: the cleanup checked a
// shadowed err and never ran).
func TestResultFileLeavesNothingOnFailure(t *testing.T) {
	e, s := newEnvServer(t, fast())
	id := e.issue("SELECT 1 AS a, 'x' AS b")
	e.waitOK(id)

	// the download is cut after 10 bytes, and every try to resume fails
	for _, f := range []string{"csv", "msgpack.gz", "table"} {
		s.Faults().Reset()
		s.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/result/", ResetAfterBytes: 10, Times: 1})
		s.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/result/", Status: 500})
		dir := t.TempDir()
		file := filepath.Join(dir, "out")
		r := e.run("job", "result", id, "-f", f, "-o", file)
		assert.Equal(t, 2, r.code, "%s: %s", f, r.stderr)
		assert.Empty(t, dirNames(t, dir), "-f %s: nothing left after a failed download", f)
	}
	s.Faults().Reset()

	// interrupted (the context is cancelled, as Ctrl-C, SIGTERM and
	// SIGHUP do) while the answer is awaited
	s.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/result/", Latency: time.Minute})
	for _, f := range []string{"csv", "msgpack.gz"} {
		dir := t.TempDir()
		file := filepath.Join(dir, "out")
		ctx, cancel := context.WithCancel(context.Background())
		e.ctx = ctx
		done := make(chan result, 1)
		go func() { done <- e.run("job", "result", id, "-f", f, "-o", file) }()
		require.Eventually(t, func() bool { return len(dirNames(t, dir)) == 1 }, 10*time.Second, 5*time.Millisecond, "the temporary file appears")
		cancel()
		r := <-done
		assert.Equal(t, 130, r.code, "%s: %s", f, r.stderr)
		assert.Contains(t, r.stderr, "interrupted: "+file+" not written")
		assert.Empty(t, dirNames(t, dir), "-f %s: nothing left after an interrupt", f)
	}
}

// -f table -o FILE writes the table into FILE (it went to stdout, leaving
// FILE empty), and -o - is stdout.
func TestResultTableToFile(t *testing.T) {
	e := newEnv(t, fast())
	id := e.issue("SELECT 1 AS a, 'x y' AS b")
	e.waitOK(id)
	file := filepath.Join(t.TempDir(), "out.txt")
	r := e.run("job", "result", id, "-f", "table", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Regexp(t, `^A\s+B\n1\s+x y\n$`, string(b))

	r = e.run("job", "result", id, "-f", "csv", "-o", "-")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "1,x y\n", r.stdout)
	_, err = os.Stat("-")
	assert.ErrorIs(t, err, os.ErrNotExist, "-o - writes no file named -")
}

// A msgpack.gz result whose gzip CRC is wrong fails with exit 2 and
// leaves no file, as the decoding formats do.
func TestResultMsgpackGzCorruptIsRefused(t *testing.T) {
	e, s := newEnvServer(t, fast())
	var buf bytes.Buffer
	require.NoError(t, emulator.WriteMsgpackGz(&buf, func(yield func([]any) bool) {
		for i := range 1000 {
			if !yield([]any{int64(i), "row"}) {
				return
			}
		}
	}))
	body := buf.Bytes()
	body[len(body)-8] ^= 0xff // the CRC-32 of the trailer
	src := filepath.Join(t.TempDir(), "bad.msgpack.gz")
	require.NoError(t, os.WriteFile(src, body, 0o644))
	id, err := s.AddFinishedJob(emulator.FinishedJob{ResultFile: src, NumRecords: 1000,
		Schema: []emulator.Column{{Name: "a", Type: "long"}, {Name: "b", Type: "varchar"}}})
	require.NoError(t, err)

	for _, f := range []string{"msgpack.gz", "csv"} {
		dir := t.TempDir()
		file := filepath.Join(dir, "out")
		r := e.run("job", "result", id, "-f", f, "-o", file)
		assert.Equal(t, 2, r.code, "-f %s: %s", f, r.stderr)
		assert.Contains(t, r.stderr, "checksum", "-f %s", f)
		assert.Empty(t, dirNames(t, dir), "-f %s: a corrupt result is not committed", f)
	}
	// to stdout the bytes are gone, but the exit code still says so
	r := e.run("job", "result", id, "-f", "msgpack.gz")
	assert.Equal(t, 2, r.code, r.stderr)

	// --no-verify: the body is written as the API sent it, whole (its
	// length matches result_size), to a file and to stdout, with every
	// --parallel
	for _, par := range []string{"1", "3"} {
		file := filepath.Join(t.TempDir(), "out")
		r = e.run("job", "result", id, "-f", "msgpack.gz", "--no-verify", "--parallel", par, "-o", file)
		require.Equal(t, 0, r.code, r.stderr)
		got, err := os.ReadFile(file)
		require.NoError(t, err)
		assert.Equal(t, body, got, "--parallel %s", par)
		r = e.run("job", "result", id, "-f", "msgpack.gz", "--no-verify", "--parallel", par)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, string(body), r.stdout, "--parallel %s", par)
	}
	r = e.run("job", "result", id, "-f", "csv", "--no-verify")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--no-verify applies to -f msgpack.gz only")
}

// -o FILE: a new file gets 0666 less the umask, an existing file keeps its
// mode, and a symbolic link is written through (the link stays a link,
// no temporary file is left in either directory).
func TestResultFileModeAndSymlink(t *testing.T) {
	e := newEnv(t, fast())
	id := e.issue("SELECT 1 AS a")
	e.waitOK(id)
	umask := syscall.Umask(0o027)
	defer syscall.Umask(umask)

	dir := t.TempDir()
	file := filepath.Join(dir, "new.csv")
	r := e.run("job", "result", id, "-f", "csv", "-o", file)
	require.Equal(t, 0, r.code, r.stderr)
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "0666 less the umask 027")

	for _, mode := range []os.FileMode{0o644, 0o600, 0o664} {
		require.NoError(t, os.Chmod(file, mode))
		r = e.run("job", "result", id, "-f", "csv", "-o", file)
		require.Equal(t, 0, r.code, r.stderr)
		st, err = os.Stat(file)
		require.NoError(t, err)
		assert.Equal(t, mode, st.Mode().Perm(), "an existing file keeps its mode")
	}

	realDir := t.TempDir()
	real := filepath.Join(realDir, "real.csv")
	require.NoError(t, os.WriteFile(real, []byte("old\n"), 0o644))
	require.NoError(t, os.Chmod(real, 0o644))
	link := filepath.Join(dir, "link.csv")
	require.NoError(t, os.Symlink(real, link))
	rel := filepath.Join(dir, "rel.csv")
	require.NoError(t, os.Symlink("link.csv", rel)) // a link to the link, relative
	r = e.run("job", "result", id, "-f", "csv", "-o", rel)
	require.Equal(t, 0, r.code, r.stderr)
	for _, l := range []string{link, rel} {
		lst, err := os.Lstat(l)
		require.NoError(t, err)
		assert.Equal(t, os.ModeSymlink, lst.Mode().Type(), "%s is still a link", l)
	}
	b, err := os.ReadFile(real)
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(b), "written through to the link's target")
	st, err = os.Stat(real)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	assert.Equal(t, []string{"real.csv"}, dirNames(t, realDir))
	for _, n := range dirNames(t, dir) {
		assert.False(t, strings.Contains(n, ".tdctl-"), "temporary file %s left", n)
	}

	// a dangling link: its target is created
	gone := filepath.Join(realDir, "gone.csv")
	dangling := filepath.Join(dir, "dangling.csv")
	require.NoError(t, os.Symlink(gone, dangling))
	r = e.run("job", "result", id, "-f", "csv", "-o", dangling)
	require.Equal(t, 0, r.code, r.stderr)
	b, err = os.ReadFile(gone)
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(b))
}

package cmdutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadAllCaps(t *testing.T) {
	b, err := ReadAll(t.Context(), bytes.NewReader(make([]byte, 1024)), 1024, "x")
	require.NoError(t, err)
	assert.Len(t, b, 1024)

	_, err = ReadAll(t.Context(), bytes.NewReader(make([]byte, 1025)), 1024, "the query on stdin")
	var ie *InputError
	require.ErrorAs(t, err, &ie)
	assert.EqualError(t, err, "the query on stdin is larger than 1 KiB: give a smaller input")
	assert.Equal(t, ExitUsage, ie.ExitCode())

	_, err = ReadAll(t.Context(), io.MultiReader(bytes.NewReader([]byte("a")), errReader{}), 10, "stdin")
	assert.EqualError(t, err, "reading stdin: broken")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

func TestReadAllStopsOnCancel(t *testing.T) {
	pr, pw := io.Pipe() // never written to
	defer pw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ReadAll(ctx, pr, 10, "stdin")
	assert.ErrorIs(t, err, context.Canceled)
}

func TestReadFile(t *testing.T) {
	_, err := ReadFile(t.Context(), filepath.Join(t.TempDir(), "none"), 10, "x")
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, ok := PathCause(err)
	assert.True(t, ok, "a missing file stays an *fs.PathError for the caller to word")
	_, err = ReadFile(t.Context(), t.TempDir(), 10, "x")
	_, ok = PathCause(err)
	assert.True(t, ok, "so does a directory: %v", err)

	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte("12345"), 0o600))
	_, err = ReadFile(t.Context(), p, 4, "--settings @f")
	assert.EqualError(t, err, "--settings @f is larger than 4 bytes: give a smaller input")
	b, err := ReadFile(t.Context(), p, 5, "x")
	require.NoError(t, err)
	assert.Equal(t, "12345", string(b))
}

func TestForcedExitRemovesRegisteredFiles(t *testing.T) {
	dir := t.TempDir()
	kept, removed := filepath.Join(dir, "kept"), filepath.Join(dir, "tmp")
	for _, p := range []string{kept, removed} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	RemoveOnForcedExit(kept)() // unregistered: renamed into place already
	RemoveOnForcedExit(removed)
	ForcedExit()
	assert.FileExists(t, kept)
	assert.NoFileExists(t, removed)
}

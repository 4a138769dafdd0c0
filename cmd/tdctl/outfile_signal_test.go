//go:build unix

package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
)

// outfileSignals are the signals that cancel a command. SIGHUP belongs
// here once the signal handler cancels on it as on SIGTERM.
var outfileSignals = []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}

// A real tdctl process signalled while a download into -o FILE is under
// way exits 130 and leaves neither FILE nor its temporary file (issue 20).
// The result's body stalls after its first bytes, so the signal always
// arrives mid-download.
func TestSignalDuringDownloadLeavesNoFile(t *testing.T) {
	bin := buildTdctl(t)
	emu, err := emulator.New(emulator.Options{RunningFor: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { emu.Close() })
	id, err := emu.AddFinishedJob(emulator.FinishedJob{Schema: []emulator.Column{{Name: "a", Type: "long"}},
		Rows: func(yield func([]any) bool) {
			for i := range 50000 {
				if !yield([]any{int64(i)}) {
					return
				}
			}
		}})
	require.NoError(t, err)
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v3/job/result/") {
			emu.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes()[:min(rec.Body.Len(), 1000)])
		w.(http.Flusher).Flush()
		select { // the rest never comes
		case <-r.Context().Done():
		case <-stall:
		}
	}))
	t.Cleanup(func() { close(stall); srv.Close() })
	env := testEnv(t, bin, srv.URL)

	for _, sig := range outfileSignals {
		for _, f := range []string{"msgpack.gz", "csv"} {
			dir := t.TempDir()
			file := filepath.Join(dir, "out")
			cmd := exec.Command(bin, "job", "result", id, "-f", f, "-o", file)
			cmd.Env = env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			// the temporary file exists and has received the first bytes
			require.Eventually(t, func() bool {
				ents, _ := os.ReadDir(dir)
				return len(ents) == 1
			}, 20*time.Second, 10*time.Millisecond, "the download starts")
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, cmd.Process.Signal(sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("%s -f %s: still running 20 s after %s", bin, f, sig)
			}
			var ee *exec.ExitError
			require.True(t, errors.As(werr, &ee), "%v: %v", sig, werr)
			assert.Equal(t, 130, ee.ExitCode(), "%v -f %s: %s", sig, f, stderr.String())
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, ents, "%v -f %s: nothing left after the signal", sig, f)
		}
	}
}

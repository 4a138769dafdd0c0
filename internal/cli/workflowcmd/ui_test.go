package workflowcmd

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/internal/operators"
	"github.com/tdctl/tdctl/workflow"
)

// `workflow ui` prints its URL first and serves the runs of the runs
// directory; a run's JSON there is byte for byte what `workflow logs RUN
// -o json` prints: both read runs through LocalRuns.
func TestUIServesWhatLogsPrints(t *testing.T) {
	runs := t.TempDir()
	wf, err := workflow.Parse("w.dig", []byte("+a:\n  echo>: hello\n+b:\n  sh>: echo bye; exit 1\n"))
	require.NoError(t, err)
	r := &workflow.Runner{Operators: operators.Operators(&operators.Env{}), RunsDir: runs}
	sum, err := r.Run(context.Background(), wf)
	require.Error(t, err)

	ios, _, out, _ := iostreams.Test()
	require.NoError(t, logsRun(&logsOptions{Options: &Options{IO: ios, RunsDir: runs, Format: output.FormatJSON}, Run: sum.RunID}))
	want := out.String()

	ios, _, out, _ = iostreams.Test()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- uiRun(&uiOptions{Options: &Options{IO: ios, RunsDir: runs, Ctx: ctx, Getenv: func(string) string { return "" }},
			Addr: "127.0.0.1:0", Ready: func(base string) { ready <- base }})
	}()
	base := <-ready
	assert.Equal(t, base+"/\n", out.String(), "the first stdout line is the URL")
	resp, err := http.Get(base + "/runs/" + sum.RunID + "/summary.json")
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, want, string(got))

	resp, err = http.Get(base + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.True(t, strings.Contains(string(page), sum.RunID))
	cancel()
	require.NoError(t, <-done, "Ctrl-C ends the UI with exit 0")
}

// A loopback address or name is served; anything else needs --allow-remote.
func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, "[::1]:8080": true, "localhost:80": true, "127.0.0.2:1": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:1": false, "192.0.2.1:80": false} {
		err := checkLoopback(context.Background(), addr)
		if ok {
			assert.NoError(t, err, addr)
		} else {
			require.Error(t, err, addr)
			assert.Contains(t, err.Error(), "pass --allow-remote", addr)
		}
	}
	err := checkLoopback(context.Background(), "8080")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `invalid --addr "8080": expected HOST:PORT`)
}

package workflowui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd"
	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/internal/operators"
	"github.com/tdctl/tdctl/internal/workflowui"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// failingTasks are the fixture's two failures (task-075 is retried once).
var failingTasks = []string{"task-075", "task-140"}

// fixtureDig is a 150-task workflow: 3 td> queries, then three parallel
// groups of 49 tasks each, two of which fail. Every task prints lines
// naming itself (task-NNN) and no other.
func fixtureDig() string {
	var b strings.Builder
	b.WriteString("timezone: UTC\n\n+prepare:\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "  +count_%03d:\n    td>:\n    data: SELECT %d AS task_%03d\n    database: sample_datasets\n", i, i, i)
	}
	b.WriteString("\n+process:\n  _parallel: true\n")
	n := 3
	for _, g := range []string{"extract", "transform", "load"} {
		fmt.Fprintf(&b, "  +%s:\n    _parallel: true\n", g)
		for i := 0; i < 49; i++ {
			n++
			id := fmt.Sprintf("task-%03d", n)
			fmt.Fprintf(&b, "    +%s_%03d:\n", g, n)
			switch {
			case id == failingTasks[0]:
				fmt.Fprintf(&b, "      _retry: 1\n      sh>: echo '%s reading the staging table'; echo '%s column price is not a number' >&2; exit 2\n", id, id)
			case id == failingTasks[1]:
				fmt.Fprintf(&b, "      sh>: echo '%s loading 5 files'; echo '%s access denied to the bucket' >&2; exit 1\n", id, id)
			case g == "extract":
				fmt.Fprintf(&b, "      echo>: '%s extracted part %d'\n", id, n)
			default:
				fmt.Fprintf(&b, "      sh>: echo '%s %s step 1 of 2'; echo '%s %s step 2 of 2'\n", id, g, id, g)
			}
		}
	}
	return b.String()
}

// runner is a workflow runner with every operator, td> against an emulator.
func runner(t testing.TB, runsDir string) *workflow.Runner {
	_, base := emulator.NewTestServer(t, emulator.Options{DataDir: t.TempDir()})
	env := &operators.Env{
		TD:   func() (*td.Client, error) { return td.NewClient("dev", td.WithEndpoint(base)) },
		Wait: &td.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
	}
	return &workflow.Runner{Operators: operators.Operators(env), RunsDir: runsDir, MaxParallel: 8}
}

func parse(t testing.TB, name, src string) *workflow.Workflow {
	t.Helper()
	wf, err := workflow.Parse(name, []byte(src))
	require.NoError(t, err)
	return wf
}

// fixtureRun runs the 150-task workflow through the runner.
func fixtureRun(t testing.TB, runsDir string) *workflow.Summary {
	t.Helper()
	sum, err := runner(t, runsDir).Run(context.Background(), parse(t, "nightly.dig", fixtureDig()))
	require.Error(t, err, "two tasks fail")
	require.NotNil(t, sum)
	require.Len(t, sum.Tasks, 151, "150 tasks, one of them tried twice")
	return sum
}

// serve serves the UI of runsDir with the reader of `workflow logs`.
func serve(t testing.TB, runsDir string) string {
	srv := httptest.NewServer(workflowui.New(workflowui.Options{
		Source: workflowcmd.LocalRuns{Dir: runsDir}, Mask: cmdutil.Redact, Interval: 50 * time.Millisecond}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, err = ioCopy(&b, resp)
	require.NoError(t, err)
	return resp.StatusCode, b.String()
}

// liveDig is a run whose second task waits for a file to appear.
func liveDig(flag string) string {
	return fmt.Sprintf("+first:\n  echo>: first done\n+wait:\n  sh>: while [ ! -f '%s' ]; do sleep 0.05; done; echo the file is here\n+last:\n  echo>: last done\n", flag)
}

// startLive starts the live run and waits until its record shows the
// waiting task running.
func startLive(t *testing.T, runsDir string) (id, flag string, done chan error) {
	flag = filepath.Join(t.TempDir(), "go")
	done = make(chan error, 1)
	r := runner(t, runsDir)
	wf := parse(t, "live.dig", liveDig(flag))
	go func() {
		_, err := r.Run(context.Background(), wf)
		done <- err
	}()
	t.Cleanup(func() {
		_ = os.WriteFile(flag, nil, 0o600) // never leave the run waiting
		<-done
	})
	require.Eventually(t, func() bool {
		sum, err := workflow.LoadSummary(runsDir, "")
		if err != nil || sum.Workflow != "live" || len(sum.Tasks) != 2 {
			return false
		}
		id = sum.RunID
		return sum.Tasks[1].State == workflow.StateRunning
	}, 10*time.Second, 20*time.Millisecond, "the live run reaches its waiting task")
	return id, flag, done
}

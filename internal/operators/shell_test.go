package operators

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tdctl/tdctl/internal/setparamtest"
	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/workflow"
)

func runWorkflow(t *testing.T, dig string, ops map[string]workflow.Operator, secrets workflow.Secrets) (*workflow.Summary, string, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "wf.dig")
	require.NoError(t, os.WriteFile(file, []byte(dig), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: ops, Secrets: secrets, RunsDir: filepath.Join(dir, "runs"), Output: &out}
	sum, err := r.Run(context.Background(), wf)
	return sum, out.String(), err
}

func TestShellSetParamAndEnv(t *testing.T) {
	ops := Operators(nil)
	_, out, err := runWorkflow(t, `
+a:
  sh>: |
    echo "hello $GREETING"; echo '::set-param finished_time=2026-11-25T21:00:00Z'; echo '::set-param {"n": 3, "list": [1,2]}'
  _env:
    GREETING: ${session_date}
+b:
  echo>: ${finished_time} n=${n} list=${list}
`, ops, nil)
	require.NoError(t, err)
	assert.Regexp(t, `\+wf\+a: hello \d{4}-\d{2}-\d{2}\n`, out)
	assert.Contains(t, out, "+wf+b: 2026-11-25T21:00:00Z n=3 list=[1,2]\n")
}

func TestShellExitCode(t *testing.T) {
	_, out, err := runWorkflow(t, "+a:\n  sh>: echo about to fail; exit 7\n", Operators(nil), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "script exited with code 7")
	assert.Contains(t, out, "about to fail")
}

func TestShellKilledBySignalSaysSo(t *testing.T) {
	// $$ renders as $ (digdag's template rules), so the shell's $$ is $$$$
	_, _, err := runWorkflow(t, "+a:\n  sh>: kill -9 $$$$\n", Operators(nil), nil)
	var xe *ExitError
	require.ErrorAs(t, err, &xe)
	assert.Equal(t, -1, xe.Code)
	assert.ErrorContains(t, err, "script ended by signal: killed")
}

func TestShellCancelKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "wf.dig")
	require.NoError(t, os.WriteFile(file, []byte("+a:\n  sh>: sleep 30 & sleep 30; echo never\n"), 0o644))
	wf, err := workflow.ParseFile(file)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := &workflow.Runner{Operators: Operators(nil), RunsDir: filepath.Join(dir, "runs")}
	start := time.Now()
	_, err = r.Run(ctx, wf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "deadline exceeded")
	assert.Less(t, time.Since(start), 7*time.Second, "the script is stopped, not waited for")
}

func TestShellLongLineKeepsLaterOutput(t *testing.T) {
	_, out, err := runWorkflow(t, `
+a:
  sh>: |
    head -c 300000 /dev/zero | tr '\0' x; echo; echo AFTER; echo '::set-param k=v'
+b:
  echo>: k=${k}
`, Operators(nil), nil)
	require.NoError(t, err)
	assert.Contains(t, out, "+wf+a: AFTER\n")
	assert.Contains(t, out, "+wf+b: k=v\n")
}

// TestSetParamThroughLocalShell runs each line of the table shared with
// k8sexec's pod test as a local script's output: the params the next task
// sees, or the task's error.
func TestSetParamThroughLocalShell(t *testing.T) {
	for _, tc := range setparamtest.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "out.txt"), []byte("before\n"+tc.Line+"\nafter\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "wf.dig"), []byte("+a:\n  sh>: cat out.txt\n"), 0o644))
			wf, err := workflow.ParseFile(filepath.Join(dir, "wf.dig"))
			require.NoError(t, err)
			var got map[string]any
			ops := Operators(nil)
			sh := ops["sh"]
			ops["sh"] = workflow.OperatorFunc(func(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
				res, err := sh.Run(ctx, tc)
				if res != nil {
					got = res.Store
				}
				return res, err
			})
			var out bytes.Buffer
			r := &workflow.Runner{Operators: ops, RunsDir: filepath.Join(dir, "runs"), Output: &out}
			_, err = r.Run(context.Background(), wf)
			assert.Contains(t, out.String(), strings.TrimRight(tc.Line, " \t\r"), "the line is in the log")
			if tc.Err != "" {
				var pe *k8sexec.ParamError
				require.ErrorAs(t, err, &pe)
				assert.ErrorContains(t, err, tc.Err)
				return
			}
			require.NoError(t, err)
			if tc.Params == nil {
				assert.Empty(t, got)
				return
			}
			want := map[string]any{}
			for k, v := range tc.Params {
				want[k] = json.RawMessage(v)
			}
			gotJSON, err := json.Marshal(got)
			require.NoError(t, err)
			wantJSON, err := json.Marshal(want)
			require.NoError(t, err)
			assert.JSONEq(t, string(wantJSON), string(gotJSON))
			if n, ok := got["n"].(json.Number); ok {
				assert.Equal(t, tc.Params["n"], n.String(), "digits kept")
			}
		})
	}
}

package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `tdctl dev-server` serves digdag's workflow API beside the TD API: a
// pushed workflow runs against the dev-server's own TD API, and with
// --data the projects and attempts are there after a restart.
func TestDevServerWorkflowAPI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "devdata")
	base, stop, err := startDevServer(t, t.TempDir(), "--data", data, "--running-for", "0s")
	require.NoError(t, err)
	call := func(method, path string, body []byte, out any) int {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "TD1 dev")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if out != nil {
			require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
		}
		return res.StatusCode
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	dig := "+q:\n  td>:\n  data: SELECT 1 AS a\n  database: sample_datasets\n+n:\n  sh>: echo records=${td.last_job.num_records}\n"
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "hello.dig", Mode: 0o644, Size: int64(len(dig)), Typeflag: tar.TypeReg}))
	tw.Write([]byte(dig))
	tw.Close()
	zw.Close()
	var p struct{ ID string }
	require.Equal(t, 200, call("PUT", "/api/projects?project=hello&revision=r1", buf.Bytes(), &p))
	var wf struct{ ID string }
	require.Equal(t, 200, call("GET", "/api/projects/"+p.ID+"/workflows/hello", nil, &wf))
	var a struct {
		ID     string
		Done   bool
		Status string
	}
	require.Equal(t, 200, call("PUT", "/api/attempts", []byte(`{"workflowId":"`+wf.ID+`","sessionTime":"2026-01-02T00:00:00Z","params":{}}`), &a))
	for deadline := time.Now().Add(30 * time.Second); !a.Done && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		call("GET", "/api/attempts/"+a.ID, nil, &a)
	}
	require.Equal(t, "success", a.Status)
	var jobs struct{ Jobs []any }
	require.Equal(t, 200, call("GET", "/v3/job/list", nil, &jobs))
	assert.Len(t, jobs.Jobs, 1, "the td> task ran on the dev-server's TD API")
	code, _, _ := stop()
	require.Equal(t, 0, code)

	base, _, err = startDevServer(t, t.TempDir(), "--data", data)
	require.NoError(t, err)
	var again struct{ Status string }
	require.Equal(t, 200, call("GET", "/api/attempts/"+a.ID, nil, &again))
	assert.Equal(t, "success", again.Status)
	var files struct{ Files []struct{ TaskName string } }
	require.Equal(t, 200, call("GET", "/api/logs/"+a.ID+"/files", nil, &files))
	var names []string
	for _, f := range files.Files {
		names = append(names, f.TaskName)
	}
	assert.Equal(t, "+hello+q,+hello+n", strings.Join(names, ","))
}

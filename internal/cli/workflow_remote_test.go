package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDigdag is a digdag server in the shapes of digdag-client's models
// (the field list is digdag/restmodel_test.go): one project, workflow 42,
// attempts that run for a given number of polls and then end as told.
type fakeDigdag struct {
	*httptest.Server
	mu       sync.Mutex
	pushed   map[string]string // query of the last push
	archive  []byte
	starts   []map[string]any
	secrets  map[string]string
	polls    int
	runPolls int    // polls an attempt stays running
	outcome  string // success or error
	killed   bool
	auth     []string
}

func newFakeDigdag(t *testing.T) *fakeDigdag {
	f := &fakeDigdag{secrets: map[string]string{}, outcome: "success", runPolls: 1}
	mux := http.NewServeMux()
	project := `{"id":"7","name":"%s","revision":"%s","createdAt":"2026-12-06T00:00:00Z","updatedAt":"2026-12-06T00:00:00Z","deletedAt":null,"archiveType":"db","archiveMd5":null}`
	mux.HandleFunc("PUT /api/projects", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.archive, _ = io.ReadAll(r.Body)
		f.pushed = map[string]string{"project": r.URL.Query().Get("project"), "revision": r.URL.Query().Get("revision")}
		fmt.Fprintf(w, project, f.pushed["project"], f.pushed["revision"])
	})
	mux.HandleFunc("GET /api/projects", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("name") != "examples" {
			io.WriteString(w, `{"projects":[]}`)
			return
		}
		fmt.Fprintf(w, `{"projects":[`+project+`]}`, "examples", "rev1")
	})
	mux.HandleFunc("GET /api/projects/7/workflows/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "num_records" {
			w.WriteHeader(404)
			io.WriteString(w, `{"message":"Resource not found: workflow","status":404}`)
			return
		}
		io.WriteString(w, `{"id":"42","name":"num_records","project":{"id":"7","name":"examples"},"revision":"rev1","timezone":"UTC","config":{}}`)
	})
	mux.HandleFunc("GET /api/workflows/42/truncated_session_time", func(w http.ResponseWriter, r *http.Request) {
		at := r.URL.Query().Get("session_time")
		if !strings.HasSuffix(at, "Z") {
			at += "Z"
		}
		fmt.Fprintf(w, `{"project":{"id":"7","name":"examples"},"revision":"rev1","sessionTime":%q,"timezone":"UTC"}`, strings.Replace(at, "Z", "+00:00", 1))
	})
	mux.HandleFunc("PUT /api/attempts", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.starts = append(f.starts, body)
		f.polls = 0
		f.mu.Unlock()
		io.WriteString(w, f.attempt(false))
	})
	mux.HandleFunc("GET /api/attempts/100", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.polls++
		done := f.polls > f.runPolls
		f.mu.Unlock()
		io.WriteString(w, f.attempt(done))
	})
	mux.HandleFunc("GET /api/attempts/100/tasks", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"tasks":[
			{"id":"1","fullName":"+num_records","parentId":null,"config":{},"upstreams":[],"isGroup":true,"state":"success","cancelRequested":false,
			 "exportParams":{},"storeParams":{},"stateParams":{},"updatedAt":"2026-12-06T01:00:09Z","retryAt":null,"startedAt":"2026-12-06T01:00:00Z","error":{}},
			{"id":"2","fullName":"+num_records+run","parentId":"1","config":{"td>":"queries/num_records.sql"},"upstreams":[],"isGroup":false,"state":"success",
			 "cancelRequested":false,"exportParams":{},"storeParams":{"td":{"last_job_id":"9001","last_job":{"id":"9001","num_records":1}}},"stateParams":{},
			 "updatedAt":"2026-12-06T01:00:05Z","retryAt":null,"startedAt":"2026-12-06T01:00:01Z","error":{}},
			{"id":"3","fullName":"+num_records+show_num_records","parentId":"1","config":{"echo>":"${td.last_job.num_records}"},"upstreams":["2"],
			 "isGroup":false,"state":"`+f.outcome+`","cancelRequested":false,"exportParams":{},"storeParams":{},"stateParams":{},
			 "updatedAt":"2026-12-06T01:00:09Z","retryAt":null,"startedAt":"2026-12-06T01:00:06Z","error":{}}]}`)
	})
	mux.HandleFunc("POST /api/attempts/100/kill", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.killed = true
		f.mu.Unlock()
		io.WriteString(w, f.attempt(false))
	})
	mux.HandleFunc("GET /api/logs/100/files", func(w http.ResponseWriter, r *http.Request) {
		files := []string{
			`{"fileName":"+num_records+run@1.log.gz","fileSize":10,"taskName":"+num_records+run","fileTime":"2026-12-06T01:00:02Z","agentId":"a","direct":null}`,
			`{"fileName":"+num_records+show_num_records@2.log.gz","fileSize":10,"taskName":"+num_records+show_num_records","fileTime":"2026-12-06T01:00:07Z","agentId":"a","direct":null}`,
		}
		if task := r.URL.Query().Get("task"); task != "" {
			files = files[1:]
		}
		io.WriteString(w, `{"files":[`+strings.Join(files, ",")+`]}`)
	})
	mux.HandleFunc("GET /api/logs/100/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		fmt.Fprintf(zw, "log line of %s\n", r.PathValue("name"))
		zw.Close()
		w.Write(b.Bytes())
	})
	mux.HandleFunc("PUT /api/projects/7/secrets/{key}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Value string }
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.secrets[r.PathValue("key")] = body.Value
		f.mu.Unlock()
		io.WriteString(w, `{}`)
	})
	mux.HandleFunc("GET /api/projects/7/secrets", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"secrets":[{"key":"pg.password"}]}`)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeDigdag) attempt(done bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	success := done && f.outcome == "success"
	finished := "null"
	if done {
		finished = `"2026-12-06T01:00:09Z"`
	}
	return fmt.Sprintf(`{"id":"100","index":1,"project":{"id":"7","name":"examples"},"workflow":{"name":"num_records","id":"42"},
		"sessionId":"55","sessionUuid":"3f1c1d9e-6b1b-4a54-9b55-3c9e8b6b6d10","sessionTime":"2026-12-06T00:00:00+00:00",
		"retryAttemptName":null,"done":%t,"success":%t,"cancelRequested":%t,"params":{},"createdAt":"2026-12-06T01:00:00Z","finishedAt":%s}`,
		done, success, f.killed, finished)
}

func remoteEnv(t *testing.T) (*env, *fakeDigdag) {
	f := newFakeDigdag(t)
	e := newEnv(t, fast())
	e.vars["TDCTL_WORKFLOW_ENDPOINT"] = f.URL
	e.vars["TDCTL_RUNS_DIR"] = filepath.Join(e.home, "runs")
	return e, f
}

func TestWorkflowPushStartAttemptLogs(t *testing.T) {
	e, f := remoteEnv(t)
	r := e.run("workflow", "push", examplesDir(t), "--project", "examples", "--revision", "rev1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "7\texamples\trev1\n", r.stdout, "project id, name, revision")
	assert.Equal(t, map[string]string{"project": "examples", "revision": "rev1"}, f.pushed)
	assert.NotEmpty(t, f.archive)
	assert.Equal(t, "TD1 "+testKey, f.auth[0], "TD Workflow's auth")

	r = e.run("workflow", "start", "examples", "num_records", "--session", "2026-12-06", "-p", "td.database=www", "--wait", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"status": "success"`)
	require.Len(t, f.starts, 1)
	assert.Equal(t, map[string]any{"workflowId": "42", "sessionTime": "2026-12-06T00:00:00Z", "params": map[string]any{"td": map[string]any{"database": "www"}}}, f.starts[0])

	r = e.run("workflow", "attempt", "100")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "+num_records+run\tsuccess\t2026-12-06T01:00:01Z\t2026-12-06T01:00:05Z\t9001\t1\n", "a td> task's job id and num_records")

	r = e.run("workflow", "logs", "100")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "log line of +num_records+run@1.log.gz\nlog line of +num_records+show_num_records@2.log.gz\n", r.stdout)
	r = e.run("workflow", "logs", "100", "--task", "+num_records+show_num_records", "-f")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "log line of +num_records+show_num_records@2.log.gz\n", r.stdout)
}

func TestWorkflowStartExitCodes(t *testing.T) {
	e, f := remoteEnv(t)
	f.outcome = "error"
	r := e.run("workflow", "start", "examples", "num_records", "--wait")
	assert.Equal(t, 3, r.code, "a failed attempt exits 3: %s", r.stderr)
	assert.Contains(t, r.stderr, "failed: +num_records+show_num_records")

	f.runPolls = 1 << 30
	r = e.run("workflow", "start", "examples", "num_records", "--wait", "--timeout", "50ms")
	assert.Equal(t, 4, r.code, "--timeout exits 4: %s", r.stderr)

	r = e.run("workflow", "start", "examples", "nope")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "Resource not found: workflow")

	r = e.run("workflow", "start", "examples", "num_records", "--session", "tomorrow")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `--session "tomorrow"`)

	r = e.run("workflow", "attempt", "abc")
	assert.Equal(t, 1, r.code)
	r = e.run("workflow", "kill", "100")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, f.killed)
}

func TestWorkflowRetryAndSecrets(t *testing.T) {
	e, f := remoteEnv(t)
	r := e.run("workflow", "retry", "100", "--resume-from", "+show_num_records", "--name", "fix1", "--keep-revision")
	require.Equal(t, 0, r.code, r.stderr)
	require.Len(t, f.starts, 1)
	assert.Equal(t, "fix1", f.starts[0]["retryAttemptName"])
	assert.Equal(t, map[string]any{"mode": "from", "attemptId": "100", "from": "+show_num_records"}, f.starts[0]["resume"])

	r = e.run("workflow", "retry", "100", "--all", "--resume")
	assert.Equal(t, 1, r.code)
	r = e.run("workflow", "retry", "20261206T130000Z-1a2b3c")
	assert.Equal(t, 1, r.code, "a local run id does not go to the server")
	assert.Len(t, f.starts, 1)
	r = e.run("workflow", "retry", "20261206T130000Z-1a2b3c", "--wait")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--wait is for an attempt on the workflow server")
	r = e.run("workflow", "retry", "100", "--runs-dir", e.home)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--runs-dir is for a local run")
	assert.Len(t, f.starts, 1)

	e.stdin = "hunter2-pg-secret\n"
	r = e.run("--debug", "workflow", "secrets", "set", "--project", "examples", "pg.password")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "hunter2-pg-secret", f.secrets["pg.password"])
	assert.Contains(t, r.stderr, "digdag request", "--debug traces the workflow API")
	assert.NotContains(t, r.stdout+r.stderr, "hunter2")
	r = e.run("workflow", "secrets", "list", "--project", "examples")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "pg.password\n", r.stdout)
}

// A plain digdag server behind an authenticator: the header comes from
// TDCTL_WORKFLOW_HEADER, is sent in place of TD1, and never printed.
func TestWorkflowHeaderForPlainDigdag(t *testing.T) {
	e, f := remoteEnv(t)
	e.vars["TDCTL_WORKFLOW_HEADER"] = "Authorization: Bearer tok-5ecret-5ecret"
	r := e.run("--debug", "workflow", "attempt", "100")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "Bearer tok-5ecret-5ecret", f.auth[len(f.auth)-1])
	assert.NotContains(t, r.stdout+r.stderr, "tok-5ecret")

	e.vars["TDCTL_WORKFLOW_HEADER"] = "no colon"
	r = e.run("workflow", "attempt", "100")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `TDCTL_WORKFLOW_HEADER: expected "Name: value"`)
}

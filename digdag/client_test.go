package digdag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/td"
)

// The fixtures are digdag's shapes: checked against the field list.
func TestFixturesAreDigdagShaped(t *testing.T) {
	checkRESTFields(t, "RestProject", []byte(fxProject))
	checkRESTFields(t, "RestWorkflowDefinition", []byte(fxWorkflow))
	checkRESTFields(t, "RestSessionAttempt", []byte(fxRunning))
	checkRESTFields(t, "RestSessionAttempt", []byte(fxFailed))
	checkRESTFields(t, "RestSession", []byte(fxSession))
	checkRESTFields(t, "RestSchedule", []byte(fxSchedule))
	checkRESTCollection(t, "RestTask", "tasks", []byte(fxTasks))
	checkRESTCollection(t, "RestLogFileHandle", "files", []byte(fxLogFiles))
}

func TestResolveEndpoint(t *testing.T) {
	for _, tc := range []struct{ workflow, api, want string }{
		// derived from the TD API endpoint, as the td CLI does
		{"", "", "https://api-workflow.treasuredata.com"},
		{"", "us01", "https://api-workflow.treasuredata.com"},
		{"", "jp01", "https://api-workflow.treasuredata.co.jp"},
		{"", "tokyo", "https://api-workflow.treasuredata.co.jp"},
		{"", "eu01", "https://api-workflow.eu01.treasuredata.com"},
		{"", "ap02", "https://api-workflow.ap02.treasuredata.com"},
		{"", "ap03", "https://api-workflow.ap03.treasuredata.com"},
		{"", "http://api.treasuredata.com", "https://api-workflow.treasuredata.com"},
		{"", "api-staging.eu01.treasuredata.com", "https://api-staging-workflow.eu01.treasuredata.com"},
		{"", "api-hoge.connect.treasuredata.com", "https://api-workflow-hoge.connect.treasuredata.com"},
		// any other host serves the workflow API itself (tdctl dev-server)
		{"", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		// given explicitly: a site, a host, a URL
		{"ap02", "us01", "https://api-workflow.ap02.treasuredata.com"},
		{"digdag.example.com", "us01", "https://digdag.example.com"},
		{"http://localhost:65432/", "us01", "http://localhost:65432"},
	} {
		got, err := ResolveEndpoint(tc.workflow, tc.api)
		require.NoError(t, err, "%q %q", tc.workflow, tc.api)
		assert.Equal(t, tc.want, got, "%q %q", tc.workflow, tc.api)
	}
	_, err := ResolveEndpoint("ap01", "")
	require.ErrorIs(t, err, td.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "invalid workflow endpoint")
	_, err = ResolveEndpoint("https://user:s3cretpw@digdag.example.com", "")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cretpw")
}

func TestPushSendsTheArchiveOnce(t *testing.T) {
	f := newFake(t)
	f.json("PUT /api/projects", 200, fxProject)
	c := f.client(t)
	arc := gz("archive")
	p, err := c.Projects.Push(context.Background(), "examples", "rev1", arc, &PushOptions{ScheduleFrom: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	assert.Equal(t, "7", p.ID)
	assert.Equal(t, "rev1", p.Revision)
	assert.Equal(t, []byte{0, 1, 2, 3}, p.ArchiveMD5)
	r := f.last()
	q, _ := url.ParseQuery(r.Query)
	assert.Equal(t, url.Values{"project": {"examples"}, "revision": {"rev1"}, "schedule_from": {"2026-12-01T00:00:00Z"}}, q)
	assert.Equal(t, "application/gzip", r.ContentType)
	assert.Equal(t, "TD1 1/abcdef0123456789", r.Auth)
	assert.Equal(t, arc, r.Body)

	// a 5xx on a push is not retried: it may have been stored
	f2 := newFake(t)
	f2.json("PUT /api/projects", 503, `{"message":"busy","status":503}`)
	_, err = f2.client(t).Projects.Push(context.Background(), "examples", "", arc, nil)
	require.ErrorIs(t, err, td.ErrServer)
	assert.Len(t, f2.requests(), 1)
	q, _ = url.ParseQuery(f2.last().Query)
	assert.Len(t, q.Get("revision"), 36, "a UUID revision as digdag push makes")
}

func TestGetsAreRetriedAndErrorsTyped(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.mux.HandleFunc("GET /api/attempts/100", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte(fxRunning))
	})
	f.json("GET /api/attempts/404", 404, `{"message":"Resource not found: attempt id=404 (key 1/abcdef0123456789)","status":404}`)
	c := f.client(t)
	a, err := c.Attempts.Get(context.Background(), "100")
	require.NoError(t, err)
	assert.EqualValues(t, 3, n.Load())
	assert.Equal(t, "running", a.State())
	var old Attempt // an older digdag writes no status: derived
	require.NoError(t, json.Unmarshal([]byte(strings.Replace(fxFailed, `,"status":"error"`, "", 1)), &old))
	assert.Equal(t, "error", old.Status)
	assert.Equal(t, "+00:00", a.SessionTime.Format("-07:00"))

	_, err = c.Attempts.Get(context.Background(), "404")
	require.ErrorIs(t, err, td.ErrNotFound)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Contains(t, err.Error(), "Resource not found: attempt id=404")
	assert.NotContains(t, err.Error(), "abcdef0123456789", "the API key is masked")

	_, err = c.Attempts.Get(context.Background(), "12a")
	require.ErrorIs(t, err, td.ErrInvalidArgument)

	// an answer that is no JSON is not retried
	f.json("GET /api/attempts/7", 200, `<html>proxy</html>`)
	before := len(f.requests())
	_, err = c.Attempts.Get(context.Background(), "7")
	require.ErrorIs(t, err, td.ErrProtocol)
	assert.Len(t, f.requests(), before+1)

	// no server at all
	c2, err := NewClient("http://127.0.0.1:1", WithRetryPolicy(td.RetryPolicy{}))
	require.NoError(t, err)
	_, err = c2.Attempts.Get(context.Background(), "1")
	require.ErrorIs(t, err, td.ErrNetwork)
}

func TestStartAttempt(t *testing.T) {
	f := newFake(t)
	f.json("PUT /api/attempts", 200, fxRunning)
	c := f.client(t)
	st := time.Date(2026, 12, 6, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	a, err := c.Attempts.Start(context.Background(), &StartRequest{WorkflowID: "42", SessionTime: st, Params: map[string]any{"k": "v"}})
	require.NoError(t, err)
	assert.Equal(t, "100", a.ID)
	assert.Equal(t, "42", a.Workflow.ID)
	r := f.last()
	assert.Equal(t, "application/json", r.ContentType)
	assert.Equal(t, map[string]any{"workflowId": "42", "sessionTime": "2026-12-06T00:00:00Z", "params": map[string]any{"k": "v"}}, decodeBody(t, r.Body))

	// 409: the session exists; the answer is the existing attempt
	f2 := newFake(t)
	f2.json("PUT /api/attempts", 409, fxFailed)
	_, err = f2.client(t).Attempts.Start(context.Background(), &StartRequest{WorkflowID: "42", SessionTime: st})
	require.ErrorIs(t, err, td.ErrConflict)
	var ce *AttemptConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "100", ce.Attempt.ID)
	assert.Contains(t, err.Error(), "already exists")

	// a 409 answering a retried start is the first start's doing
	f3 := newFake(t)
	var n atomic.Int32
	f3.mux.HandleFunc("PUT /api/attempts", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(502)
			return
		}
		w.WriteHeader(409)
		w.Write([]byte(fxRunning))
	})
	a, err = f3.client(t).Attempts.Start(context.Background(), &StartRequest{WorkflowID: "42", SessionTime: st})
	require.NoError(t, err)
	assert.Equal(t, "100", a.ID)
}

func TestRetryResumes(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/attempts/100", 200, fxFailed)
	f.json("GET /api/projects/7/workflows/num_records", 200, strings.Replace(fxWorkflow, `"id":"42"`, `"id":"43"`, 1))
	f.json("PUT /api/attempts", 200, fxRunning)
	c := f.client(t)

	_, err := c.Attempts.Retry(context.Background(), "100", &RetryOptions{Name: "fix1", ResumeFrom: "+num_records+check", Params: map[string]any{"x": "1"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"workflowId": "42", "sessionTime": "2026-12-06T00:00:00Z", "retryAttemptName": "fix1",
		"params": map[string]any{"k": "v", "x": "1"},
		"resume": map[string]any{"mode": "from", "attemptId": "100", "from": "+num_records+check"}}, decodeBody(t, f.last().Body))

	_, err = c.Attempts.Retry(context.Background(), "100", &RetryOptions{Revision: LatestRevision, Failed: true})
	require.NoError(t, err)
	body := decodeBody(t, f.last().Body)
	assert.Equal(t, "43", body["workflowId"], "the latest revision's definition")
	assert.Equal(t, map[string]any{"mode": "failed", "attemptId": "100"}, body["resume"])
	assert.Len(t, body["retryAttemptName"], 36, "a UUID name as digdag retry makes")

	_, err = c.Attempts.Retry(context.Background(), "100", &RetryOptions{})
	require.NoError(t, err)
	assert.NotContains(t, decodeBody(t, f.last().Body), "resume", "--all: no resume")
}

func TestKill(t *testing.T) {
	f := newFake(t)
	f.json("POST /api/attempts/100/kill", 200, fxRunning)
	f.json("POST /api/attempts/101/kill", 409, `{"message":"Session attempt already killed or finished","status":409}`)
	c := f.client(t)
	require.NoError(t, c.Attempts.Kill(context.Background(), "100"))
	assert.Equal(t, "POST", f.last().Method)
	err := c.Attempts.Kill(context.Background(), "101")
	require.ErrorIs(t, err, td.ErrConflict)
	assert.Contains(t, err.Error(), "already killed or finished")
}

func TestWait(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.mux.HandleFunc("GET /api/attempts/100", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.Write([]byte(fxRunning))
			return
		}
		w.Write([]byte(fxFailed))
	})
	f.json("GET /api/attempts/100/tasks", 200, fxTasks)
	c := f.client(t)
	var polls int
	a, err := c.Attempts.Wait(context.Background(), "100", &WaitOptions{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
		OnPoll: func(*Attempt) { polls++ }})
	require.ErrorIs(t, err, td.ErrJobFailed)
	var fe *AttemptFailedError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, []string{"+num_records+check"}, fe.Failed)
	assert.Equal(t, "error", a.State())
	assert.Equal(t, 3, polls)
	assert.Contains(t, err.Error(), "attempt 100 of examples/num_records ended with status error (failed: +num_records+check)")

	// Timeout, then the context
	f2 := newFake(t)
	f2.json("GET /api/attempts/100", 200, fxRunning)
	c2 := f2.client(t)
	_, err = c2.Attempts.Wait(context.Background(), "100", &WaitOptions{MinDelay: time.Millisecond, Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, td.ErrWaitTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c2.Attempts.Wait(ctx, "100", nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestTasksAndLists(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/attempts/100/tasks", 200, fxTasks)
	f.json("GET /api/attempts", 200, `{"attempts":[`+fxFailed+`]}`)
	f.json("GET /api/sessions", 200, `{"sessions":[`+fxSession+`]}`)
	f.json("GET /api/schedules", 200, `{"schedules":[`+fxSchedule+`]}`)
	f.json("GET /api/projects", 200, `{"projects":[`+fxProject+`]}`)
	c := f.client(t)
	ctx := context.Background()
	tasks, err := c.Attempts.Tasks(ctx, "100")
	require.NoError(t, err)
	require.Len(t, tasks, 3)
	assert.True(t, tasks[0].IsGroup)
	assert.Equal(t, "", tasks[0].ParentID)
	assert.Equal(t, []string{"2"}, tasks[2].Upstreams)
	assert.Equal(t, "901", tasks[1].StoreParams["td"].(map[string]any)["last_job_id"])

	as, err := c.Attempts.List(ctx, &ListOptions{Project: "examples", IncludeRetried: true, PageSize: 5})
	require.NoError(t, err)
	require.Len(t, as, 1)
	q, _ := url.ParseQuery(f.last().Query)
	assert.Equal(t, url.Values{"project": {"examples"}, "include_retried": {"true"}, "page_size": {"5"}}, q)
	_, err = c.Attempts.List(ctx, &ListOptions{Workflow: "w"})
	require.ErrorIs(t, err, td.ErrInvalidArgument)

	ss, err := c.Sessions.List(ctx, "", 0)
	require.NoError(t, err)
	assert.Equal(t, "100", ss[0].LastAttempt.ID)
	sc, err := c.Schedules.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, "num_records", sc[0].Workflow.Name)
	p, err := c.Projects.Get(ctx, "examples")
	require.NoError(t, err)
	assert.Equal(t, "7", p.ID)
	assert.Equal(t, "name=examples", f.last().Query)
	_, err = c.Projects.Get(ctx, "nope")
	require.ErrorIs(t, err, td.ErrNotFound)
}

func TestLogs(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/logs/100/files", 200, fxLogFiles)
	f.mux.HandleFunc("GET /api/logs/100/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		w.Write(gz("log of " + r.PathValue("name") + " key=1/abcdef0123456789\n"))
	})
	c := f.client(t)
	ctx := context.Background()
	files, err := c.Logs.Files(ctx, "100", "+num_records+q")
	require.NoError(t, err)
	require.Len(t, files, 2)
	q, _ := url.ParseQuery(f.last().Query)
	assert.Equal(t, url.Values{"task": {"+num_records+q"}, "direct_download": {"false"}}, q)

	text, err := c.Logs.Download(ctx, "100", "+num_records+q@a.log.gz")
	require.NoError(t, err)
	assert.Equal(t, "log of +num_records+q@a.log.gz key=1/abcdef0123456789\n", string(text))

	var out bytes.Buffer
	require.NoError(t, c.Logs.Write(ctx, "100", &out, nil))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Equal(t, []string{"log of +num_records+q@a.log.gz key=***", "log of +num_records+check@b.log.gz key=***"}, lines, "oldest first, the key masked")
}

func TestFollowUntilDone(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.mux.HandleFunc("GET /api/attempts/100", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 2 {
			w.Write([]byte(fxRunning))
			return
		}
		w.Write([]byte(fxFailed))
	})
	f.mux.HandleFunc("GET /api/logs/100/files", func(w http.ResponseWriter, r *http.Request) {
		if n.Load() < 2 { // the first file only while running
			w.Write([]byte(`{"files":[{"fileName":"a.log.gz","fileSize":1,"taskName":"+wf+a","fileTime":"2026-12-06T01:00:02Z","agentId":"x"}]}`))
			return
		}
		w.Write([]byte(`{"files":[{"fileName":"a.log.gz","fileSize":1,"taskName":"+wf+a","fileTime":"2026-12-06T01:00:02Z","agentId":"x"},
			{"fileName":"b.log.gz","fileSize":1,"taskName":"+wf+b","fileTime":"2026-12-06T01:00:03Z","agentId":"x"}]}`))
	})
	f.mux.HandleFunc("GET /api/logs/100/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Write(gz(r.PathValue("name") + "\n"))
	})
	var out bytes.Buffer
	a, err := f.client(t).Logs.Follow(context.Background(), "100", &out, &FollowOptions{Poll: time.Millisecond})
	require.NoError(t, err)
	assert.True(t, a.Done)
	assert.Equal(t, "a.log.gz\nb.log.gz\n", out.String(), "each file once")
}

func TestSecrets(t *testing.T) {
	f := newFake(t)
	f.json("PUT /api/projects/7/secrets/{key}", 200, `{}`)
	f.json("GET /api/projects/7/secrets", 200, `{"secrets":[{"key":"td.apikey"},{"key":"pg.password"}]}`)
	f.json("DELETE /api/projects/7/secrets/pg.password", 200, `{}`)
	f.json("DELETE /api/projects/7/secrets/nope", 404, `{"message":"secret not found","status":404}`)
	f.json("PUT /api/projects/8/secrets/{key}", 403, `{"message":"denied for value hunter2-secret","status":403}`)
	var logs bytes.Buffer
	c := f.client(t, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	ctx := context.Background()
	require.NoError(t, c.Projects.SetSecret(ctx, "7", "pg.password", "hunter2-secret"))
	assert.Equal(t, map[string]any{"value": "hunter2-secret"}, decodeBody(t, f.last().Body))
	assert.Equal(t, "/api/projects/7/secrets/pg.password", f.last().Path)
	keys, err := c.Projects.Secrets(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, []string{"td.apikey", "pg.password"}, keys)
	require.NoError(t, c.Projects.DeleteSecret(ctx, "7", "pg.password"))
	require.ErrorIs(t, c.Projects.DeleteSecret(ctx, "7", "nope"), td.ErrNotFound)
	err = c.Projects.SetSecret(ctx, "8", "x", "hunter2-secret")
	require.ErrorIs(t, err, td.ErrUnauthorized)
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, logs.String(), "abcdef0123456789")
	assert.Contains(t, logs.String(), "digdag request")
}

func TestScheduleBackfill(t *testing.T) {
	f := newFake(t)
	f.json("POST /api/schedules/3/backfill", 200, `{"id":"3","project":{"id":"7","name":"examples"},"workflow":{"id":"42","name":"num_records"},"attempts":[`+fxRunning+`]}`)
	c := f.client(t)
	two := 2
	as, err := c.Schedules.Backfill(context.Background(), "3", &BackfillRequest{FromTime: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), AttemptName: "bf1", Count: &two})
	require.NoError(t, err)
	require.Len(t, as, 1)
	assert.Equal(t, map[string]any{"fromTime": "2026-12-01T00:00:00Z", "dryRun": false, "attemptName": "bf1", "count": float64(2)}, decodeBody(t, f.last().Body))
	_, err = c.Schedules.Backfill(context.Background(), "3", &BackfillRequest{})
	require.ErrorIs(t, err, td.ErrInvalidArgument)
}

func TestHeaderAuthForPlainDigdag(t *testing.T) {
	f := newFake(t)
	var got http.Header
	f.mux.HandleFunc("GET /api/projects", func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(401)
		w.Write([]byte(`{"message":"bad token tok-987654321","status":401}`))
	})
	c, err := NewClient(f.URL, WithHeader("Authorization", "Bearer tok-987654321"))
	require.NoError(t, err)
	_, err = c.Projects.List(context.Background())
	require.ErrorIs(t, err, td.ErrUnauthorized)
	assert.Equal(t, "Bearer tok-987654321", got.Get("Authorization"))
	assert.NotContains(t, err.Error(), "tok-987654321")

	c, err = NewClient(f.URL) // no key: no Authorization at all
	require.NoError(t, err)
	_, _ = c.Projects.List(context.Background())
	assert.Empty(t, got.Get("Authorization"))

	_, err = NewClient(f.URL, WithHeader("Bad Name", "x"))
	require.ErrorIs(t, err, td.ErrInvalidArgument)
	_, err = NewClient("")
	require.ErrorIs(t, err, td.ErrInvalidArgument)
}

func TestArchive(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	write("wf.dig", "+a:\n  td>: queries/q.sql\n")
	write("queries/q.sql", "SELECT 1")
	write("scripts/run.sh", "echo hi")
	require.NoError(t, os.Chmod(filepath.Join(dir, "scripts/run.sh"), 0o755))
	write(".secret", "no")
	write(".git/config", "no")
	write("tmp/big.csv", "no")
	write("notes.bak", "no")
	write("sub/keep.bak.txt", "yes")
	write(".digdagignore", "tmp/\n*.bak\n")
	require.NoError(t, os.Symlink("queries/q.sql", filepath.Join(dir, "link.sql")))

	arc, names, err := Archive(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"link.sql", "queries/q.sql", "scripts/run.sh", "sub/keep.bak.txt", "wf.dig"}, names)
	files := untar(t, arc)
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, names, keys)
	assert.Equal(t, "SELECT 1", files["queries/q.sql"].text)
	assert.Equal(t, "queries/q.sql", files["link.sql"].link)
	assert.EqualValues(t, 0o755, files["scripts/run.sh"].mode)

	// a link out of the project is refused, as digdag push does
	require.NoError(t, os.Symlink("/etc/hosts", filepath.Join(dir, "out")))
	_, _, err = Archive(dir)
	require.ErrorIs(t, err, td.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "outside the project")

	empty := t.TempDir()
	_, _, err = Archive(empty)
	require.ErrorIs(t, err, td.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "no .dig file")
}

func TestErrorsMatchTD(t *testing.T) {
	assert.True(t, errors.Is(&APIError{StatusCode: 429}, td.ErrRateLimited))
	assert.True(t, errors.Is(&APIError{StatusCode: 500}, td.ErrServer))
	assert.True(t, errors.Is(&APIError{StatusCode: 422}, td.ErrInvalidRequest))
	assert.False(t, errors.Is(&APIError{StatusCode: 404}, td.ErrServer))
	var te *td.APIError
	require.True(t, errors.As(fmt.Errorf("wrapped: %w", &APIError{StatusCode: 413, Method: "PUT", Path: "/api/projects"}), &te))
	assert.Equal(t, 413, te.StatusCode)
}

// The remaining reads and the schedule switches: each hits digdag's path.
func TestPathsOfTheOtherCalls(t *testing.T) {
	f := newFake(t)
	summary := `{"id":"3","project":{"id":"7","name":"examples"},"workflow":{"id":"42","name":"num_records"},"nextRunTime":"2026-12-07T00:00:00Z",
		"nextScheduleTime":"2026-12-07T00:00:00+00:00","createdAt":"2026-12-01T00:00:00Z","updatedAt":"2026-12-06T00:00:00Z","disabledAt":"2026-12-06T00:00:00Z"}`
	checkRESTFields(t, "RestScheduleSummary", []byte(summary))
	f.json("GET /api/projects/7", 200, fxProject)
	f.json("GET /api/projects/7/revisions", 200, `{"revisions":[{"revision":"rev1","createdAt":"2026-12-01T00:00:00Z","archiveType":"db","archiveMd5":null,"userInfo":{}}]}`)
	f.json("GET /api/projects/7/workflows", 200, `{"workflows":[`+fxWorkflow+`]}`)
	f.json("GET /api/workflows", 200, `{"workflows":[`+fxWorkflow+`]}`)
	f.json("GET /api/workflows/42", 200, fxWorkflow)
	f.json("GET /api/workflows/42/truncated_session_time", 200, `{"project":{"id":"7","name":"examples"},"revision":"rev1","sessionTime":"2026-12-06T00:00:00+09:00","timezone":"Asia/Tokyo"}`)
	f.json("GET /api/sessions/55", 200, fxSession)
	f.json("GET /api/sessions/55/attempts", 200, `{"attempts":[`+fxFailed+`]}`)
	f.json("GET /api/attempts/100/retries", 200, `{"attempts":[`+fxFailed+`]}`)
	f.json("GET /api/projects/7/sessions", 200, `{"sessions":[`+fxSession+`]}`)
	f.json("GET /api/projects/7/schedules", 200, `{"schedules":[`+fxSchedule+`]}`)
	f.json("GET /api/schedules/3", 200, fxSchedule)
	f.json("POST /api/schedules/3/disable", 200, summary)
	f.json("POST /api/schedules/3/enable", 200, strings.Replace(summary, `"disabledAt":"2026-12-06T00:00:00Z"`, `"disabledAt":null`, 1))
	c := f.client(t)
	ctx := context.Background()
	query := func() url.Values { q, _ := url.ParseQuery(f.last().Query); return q }

	p, err := c.Projects.GetByID(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, "examples", p.Name)
	revs, err := c.Projects.Revisions(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, "rev1", revs[0].Revision)
	wfs, err := c.Projects.Workflows(ctx, "7", "rev1")
	require.NoError(t, err)
	assert.Equal(t, "UTC", wfs[0].Timezone)
	assert.Equal(t, url.Values{"revision": {"rev1"}}, query())
	all, err := c.Workflows.List(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 1)
	wf, err := c.Workflows.Get(ctx, "42")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"td>": "q.sql"}, wf.Config["+q"])
	st, err := c.Workflows.TruncatedSessionTime(ctx, "42", "2026-12-06T10:00:00", TruncateDay)
	require.NoError(t, err)
	assert.Equal(t, url.Values{"session_time": {"2026-12-06T10:00:00"}, "mode": {"day"}}, query())
	assert.Equal(t, "2026-12-05T15:00:00Z", st.SessionTime.UTC().Format(time.RFC3339))
	se, err := c.Sessions.Get(ctx, "55")
	require.NoError(t, err)
	assert.Equal(t, "num_records", se.Workflow.Name)
	sa, err := c.Sessions.Attempts(ctx, "55")
	require.NoError(t, err)
	assert.Equal(t, "100", sa[0].ID)
	ra, err := c.Attempts.Retries(ctx, "100")
	require.NoError(t, err)
	assert.Len(t, ra, 1)
	ps, err := c.Projects.Sessions(ctx, "7", "num_records", "60", 10)
	require.NoError(t, err)
	assert.Len(t, ps, 1)
	assert.Equal(t, url.Values{"workflow": {"num_records"}, "last_id": {"60"}, "page_size": {"10"}}, query())
	sc, err := c.Projects.Schedules(ctx, "7", "")
	require.NoError(t, err)
	assert.Equal(t, "3", sc[0].ID)
	one, err := c.Schedules.Get(ctx, "3")
	require.NoError(t, err)
	assert.Nil(t, one.DisabledAt)
	off, err := c.Schedules.Disable(ctx, "3")
	require.NoError(t, err)
	assert.NotNil(t, off.DisabledAt)
	assert.Equal(t, "POST", f.last().Method)
	on, err := c.Schedules.Enable(ctx, "3")
	require.NoError(t, err)
	assert.Nil(t, on.DisabledAt)
}

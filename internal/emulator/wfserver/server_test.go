package wfserver

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tdctl/tdctl/internal/emulator"
)

// The workflow API driven over HTTP as digdag's client drives it
// (digdag-client's DigdagClient: push = PUT /api/projects with the
// archive, start = PUT /api/attempts, then GET /api/attempts/{id},
// /tasks and /api/logs/{id}/files).

type harness struct {
	t   *testing.T
	emu *emulator.Server
	srv *Server
	url string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	emu, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	emu.AddConnection("my_s3_connection", "s3://", nil)
	srv, _, base := NewTestServer(t, Options{Emulator: emu, ShellGrace: 200 * time.Millisecond})
	return &harness{t: t, emu: emu, srv: srv, url: base}
}

// do sends a request with the TD1 key and decodes a JSON answer into out
// (when not nil); it returns the status.
func (h *harness) do(method, path string, body io.Reader, ctype string, out any) int {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "TD1 1/testkey")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, data, err)
		}
	}
	return res.StatusCode
}

func (h *harness) mustDo(method, path string, body io.Reader, ctype string, out any) {
	h.t.Helper()
	var raw json.RawMessage
	if st := h.do(method, path, body, ctype, &raw); st != http.StatusOK {
		h.t.Fatalf("%s %s: %d %s", method, path, st, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatal(err)
		}
	}
}

// tarball packs files (name → content) as digdag push does.
func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// seedFiles are the files of examples/workflows.
func seedFiles(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join("..", "..", "..", "examples", "workflows")
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func (h *harness) push(project, revision string, files map[string]string) restProject {
	h.t.Helper()
	var p restProject
	h.mustDo("PUT", "/api/projects?project="+project+"&revision="+revision, bytes.NewReader(tarball(h.t, files)), "application/gzip", &p)
	return p
}

func (h *harness) workflowID(projectID, name string) string {
	h.t.Helper()
	var wf restWorkflow
	h.mustDo("GET", "/api/projects/"+projectID+"/workflows/"+name, nil, "", &wf)
	return wf.ID
}

func (h *harness) start(workflowID, sessionTime string, retryName *string, params map[string]any) (int, restSessionAttempt) {
	h.t.Helper()
	body, _ := json.Marshal(map[string]any{"workflowId": workflowID, "sessionTime": sessionTime, "retryAttemptName": retryName, "params": params})
	var a restSessionAttempt
	st := h.do("PUT", "/api/attempts", bytes.NewReader(body), "application/json", &a)
	return st, a
}

func (h *harness) wait(id string) restSessionAttempt {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var a restSessionAttempt
		h.mustDo("GET", "/api/attempts/"+id, nil, "", &a)
		if a.Done {
			return a
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("attempt %s still running", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) tasks(id string) map[string]restTask {
	h.t.Helper()
	var tc struct{ Tasks []restTask }
	h.mustDo("GET", "/api/attempts/"+id+"/tasks", nil, "", &tc)
	out := map[string]restTask{}
	for _, t := range tc.Tasks {
		out[t.FullName] = t
	}
	return out
}

func (h *harness) log(attemptID, task string) string {
	h.t.Helper()
	var files struct{ Files []restLogFileHandle }
	h.mustDo("GET", "/api/logs/"+attemptID+"/files?task="+url.QueryEscape(task), nil, "", &files)
	if len(files.Files) == 0 {
		h.t.Fatalf("no log file for %s", task)
	}
	f := files.Files[len(files.Files)-1]
	req, _ := http.NewRequest("GET", h.url+"/api/logs/"+attemptID+"/files/"+f.FileName, nil)
	req.Header.Set("Authorization", "TD1 1/testkey")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/gzip" {
		h.t.Fatalf("log %s: %d %s", f.FileName, res.StatusCode, res.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(res.Body)
	if int64(len(body)) != f.FileSize {
		h.t.Errorf("log %s: fileSize %d, served %d bytes", f.FileName, f.FileSize, len(body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	data, _ := io.ReadAll(zr)
	return string(data)
}

func TestPushStartTasksLogs(t *testing.T) {
	h := newHarness(t)
	p := h.push("seeds", "r1", seedFiles(t))
	if p.Name != "seeds" || p.Revision != "r1" || p.ArchiveType != "db" || len(p.ArchiveMd5) != 16 {
		t.Fatalf("project: %+v", p)
	}
	var wfs struct{ Workflows []restWorkflow }
	h.mustDo("GET", "/api/projects/"+p.ID+"/workflows", nil, "", &wfs)
	var names []string
	for _, w := range wfs.Workflows {
		names = append(names, w.Name)
	}
	if got := strings.Join(names, ","); got != "control_flow,daily_params,demo,num_records,parallel_params,pg_http,python,result_export,shell_envvar,table_swap" {
		t.Fatalf("workflows: %s", got)
	}

	st, a := h.start(h.workflowID(p.ID, "num_records"), "2026-01-02T00:00:00Z", nil, nil)
	if st != 200 || a.Done || a.Status != "running" || a.SessionTime != "2026-01-02T00:00:00+00:00" || a.Project.Name != "seeds" {
		t.Fatalf("start: %d %+v", st, a)
	}
	a = h.wait(a.ID)
	if !a.Success || a.Status != "success" || a.FinishedAt == nil {
		t.Fatalf("attempt: %+v\n%v", a, h.tasks(a.ID))
	}
	tasks := h.tasks(a.ID)
	root, run, show := tasks["+num_records"], tasks["+num_records+run"], tasks["+num_records+show_num_records"]
	if root.State != "success" || !root.IsGroup || root.ParentID != nil {
		t.Errorf("root: %+v", root)
	}
	if run.State != "success" || run.ParentID == nil || *run.ParentID != root.ID || run.Config["td>"] == nil {
		t.Errorf("+run: %+v", run)
	}
	if show.State != "success" || len(show.Upstreams) != 1 || show.Upstreams[0] != run.ID {
		t.Errorf("+show_num_records: %+v", show)
	}
	if got := h.log(a.ID, "+num_records+show_num_records"); !strings.Contains(got, "1") {
		t.Errorf("log of +show_num_records: %q", got)
	}
	if h.emu.JobCount() != 1 {
		t.Errorf("jobs: %d", h.emu.JobCount())
	}

	// the same session again is a conflict answering the existing attempt
	st, again := h.start(h.workflowID(p.ID, "num_records"), "2026-01-02T00:00:00Z", nil, nil)
	if st != http.StatusConflict || again.ID != a.ID {
		t.Fatalf("second start: %d %+v", st, again)
	}
	var sessions struct{ Sessions []restSession }
	h.mustDo("GET", "/api/projects/"+p.ID+"/sessions", nil, "", &sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].LastAttempt.ID != a.ID {
		t.Fatalf("sessions: %+v", sessions)
	}

	// a parallel for_each>: every iteration is a task under the loop
	_, pa := h.start(h.workflowID(p.ID, "parallel_params"), "2026-01-02T00:00:00Z", nil, nil)
	pa = h.wait(pa.ID)
	tasks = h.tasks(pa.ID)
	n := 0
	for name, tk := range tasks {
		if strings.HasPrefix(name, "+parallel_params+loop_task^sub+for-") && strings.HasSuffix(name, "+show_value") {
			n++
			if tk.State != "success" {
				t.Errorf("%s: %s", name, tk.State)
			}
		}
	}
	if !pa.Success || n != 5 {
		t.Fatalf("parallel_params: success=%v, %d show_value tasks in %v", pa.Success, n, tasks)
	}
}

func TestKill(t *testing.T) {
	h := newHarness(t)
	p := h.push("sleepy", "r1", map[string]string{"sleep.dig": "+first:\n  echo>: hi\n+nap:\n  sh>: sleep 30\n+after:\n  echo>: never\n"})
	_, a := h.start(h.workflowID(p.ID, "sleep"), "2026-01-02T00:00:00Z", nil, nil)
	for deadline := time.Now().Add(10 * time.Second); h.tasks(a.ID)["+sleep+nap"].State != "running"; {
		if time.Now().After(deadline) {
			t.Fatalf("+nap never ran: %v", h.tasks(a.ID))
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mustDo("POST", "/api/attempts/"+a.ID+"/kill", strings.NewReader("{}"), "application/json", nil)
	start := time.Now()
	a = h.wait(a.ID)
	if time.Since(start) > 10*time.Second || a.Success || !a.CancelRequested || a.Status != "killed" {
		t.Fatalf("killed attempt: %+v", a)
	}
	tasks := h.tasks(a.ID)
	if tasks["+sleep+first"].State != "success" || tasks["+sleep+nap"].State != "canceled" || tasks["+sleep+after"].State != "canceled" {
		t.Errorf("tasks: %+v", tasks)
	}
	var e map[string]any
	if st := h.do("POST", "/api/attempts/"+a.ID+"/kill", strings.NewReader("{}"), "application/json", &e); st != http.StatusConflict || e["status"] != float64(409) {
		t.Errorf("second kill: %d %v", st, e)
	}
}

// A retry (digdag retry: PUT /api/attempts with the session's time and a
// retryAttemptName) is a new attempt of the same session. With resume
// mode "failed" (retry --resume) the tasks that succeeded are restored,
// not run again: the emulator sees no second query; without resume
// (retry --all) the whole workflow runs again.
func TestRetry(t *testing.T) {
	h := newHarness(t)
	flag := filepath.Join(t.TempDir(), "ok")
	p := h.push("flaky", "r1", map[string]string{"flaky.dig": "+query:\n  td>:\n  data: SELECT 1\n  database: sample_datasets\n+check:\n  sh>: test -e ${flag}\n+show:\n  echo>: job ${td.last_job_id} attempt ${attempt_id} session ${session_id} ${retry_attempt_name}\n"})
	wfID := h.workflowID(p.ID, "flaky")
	_, first := h.start(wfID, "2026-01-02T00:00:00Z", nil, map[string]any{"flag": flag})
	first = h.wait(first.ID)
	if first.Success || first.Status != "error" {
		t.Fatalf("first attempt: %+v", first)
	}
	tasks := h.tasks(first.ID)
	if tasks["+flaky+query"].State != "success" || tasks["+flaky+check"].State != "error" || tasks["+flaky"].State != "group_error" || tasks["+flaky+show"].State != "blocked" {
		t.Fatalf("tasks: %+v", tasks)
	}
	if msg, _ := tasks["+flaky+check"].Error["message"].(string); msg == "" {
		t.Errorf("no error message on +check: %+v", tasks["+flaky+check"])
	}
	if h.emu.JobCount() != 1 {
		t.Fatalf("jobs: %d", h.emu.JobCount())
	}
	os.WriteFile(flag, nil, 0o600)

	retry := func(name, resume string) (int, restSessionAttempt) {
		body := fmt.Sprintf(`{"workflowId":%q,"sessionTime":"2026-01-02T00:00:00Z","retryAttemptName":%q,"params":{"flag":%q}%s}`, wfID, name, flag, resume)
		var raw json.RawMessage
		st := h.do("PUT", "/api/attempts", strings.NewReader(body), "application/json", &raw)
		var a restSessionAttempt
		if st == 200 {
			json.Unmarshal(raw, &a)
		}
		return st, a
	}
	var e map[string]any
	body := fmt.Sprintf(`{"workflowId":%q,"sessionTime":"2026-01-02T00:00:00Z","resume":{"mode":"sideways","attemptId":%q}}`, wfID, first.ID)
	if st := h.do("PUT", "/api/attempts", strings.NewReader(body), "application/json", &e); st != 400 || e["message"] != "Unknown resuming mode: sideways" {
		t.Errorf("unknown mode: %d %v", st, e)
	}
	st, second := retry("r2", fmt.Sprintf(`,"resume":{"mode":"failed","attemptId":%q}`, first.ID))
	if st != 200 || second.SessionID != first.SessionID || second.Index != 2 || second.RetryAttemptName == nil || *second.RetryAttemptName != "r2" {
		t.Fatalf("retry: %d %+v", st, second)
	}
	second = h.wait(second.ID)
	if !second.Success {
		t.Fatalf("retry: %+v %v", second, h.tasks(second.ID))
	}
	if n := h.emu.JobCount(); n != 1 {
		t.Errorf("jobs after a resumed retry: %d, want 1 (+query was restored)", n)
	}
	tasks = h.tasks(second.ID)
	if tasks["+flaky+query"].State != "success" || tasks["+flaky+check"].State != "success" || tasks["+flaky"].State != "success" {
		t.Errorf("resumed tasks: %+v", tasks)
	}
	// the built-in params are the API's ids
	if got, want := h.log(second.ID, "+flaky+show"), fmt.Sprintf("job 1 attempt %s session %s r2", second.ID, second.SessionID); !strings.Contains(got, want) {
		t.Errorf("+show after a resume: %q, want %q (the restored query's job id should reach it)", got, want)
	}
	// a successful attempt cannot be resumed; retry --all runs everything
	if st, _ := retry("r3", fmt.Sprintf(`,"resume":{"mode":"failed","attemptId":%q}`, second.ID)); st != 400 {
		t.Errorf("resuming a successful attempt: %d", st)
	}
	st, third := retry("r3", "")
	if st != 200 || !h.wait(third.ID).Success || h.emu.JobCount() != 2 {
		t.Errorf("retry --all: %d %+v, jobs %d", st, third, h.emu.JobCount())
	}
	var retries struct{ Attempts []restSessionAttempt }
	h.mustDo("GET", "/api/attempts/"+first.ID+"/retries", nil, "", &retries)
	if len(retries.Attempts) != 3 {
		t.Errorf("retries: %+v", retries)
	}
	var list struct{ Attempts []restSessionAttempt }
	h.mustDo("GET", "/api/attempts?project=flaky", nil, "", &list)
	if len(list.Attempts) != 1 || list.Attempts[0].ID != third.ID {
		t.Errorf("attempts without include_retried: %+v", list)
	}
	h.mustDo("GET", "/api/attempts?project=flaky&include_retried=true", nil, "", &list)
	if len(list.Attempts) != 3 {
		t.Errorf("attempts with include_retried: %+v", list)
	}
}

func TestSecrets(t *testing.T) {
	h := newHarness(t)
	p := h.push("sec", "r1", map[string]string{"sec.dig": "+show:\n  sh>: echo pass=${secret:db.pass}\n"})
	var sec restSecret
	h.mustDo("PUT", "/api/projects/"+p.ID+"/secrets/db.pass", strings.NewReader(`{"value":"hunter2-s3cret"}`), "application/json", &sec)
	if sec.Key != "db.pass" || sec.Project.Name != "sec" {
		t.Fatalf("put secret: %+v", sec)
	}
	var raw json.RawMessage
	h.mustDo("GET", "/api/projects/"+p.ID+"/secrets", nil, "", &raw)
	if string(raw) != `{"secrets":[{"key":"db.pass"}]}` {
		t.Fatalf("secrets: %s", raw)
	}
	_, a := h.start(h.workflowID(p.ID, "sec"), "2026-01-02T00:00:00Z", nil, nil)
	if a = h.wait(a.ID); !a.Success {
		t.Fatalf("attempt: %+v", a)
	}
	if got := h.log(a.ID, "+sec+show"); strings.Contains(got, "hunter2") || !strings.Contains(got, "pass=") {
		t.Errorf("log shows the secret or nothing: %q", got)
	}
	// the value is in no file of the data directory (SQLite, its WAL, run
	// records, logs): secrets live in memory only
	filepath.Walk(h.srv.dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "hunter2-s3cret") {
				t.Errorf("%s holds the secret", p)
			}
		}
		return nil
	})
	var e map[string]any
	if st := h.do("PUT", "/api/projects/"+p.ID+"/secrets/9bad", strings.NewReader(`{"value":"x"}`), "application/json", &e); st != 400 || e["message"] != "Invalid secret" {
		t.Errorf("bad key: %d %v", st, e)
	}
	h.mustDo("DELETE", "/api/projects/"+p.ID+"/secrets/db.pass", nil, "", nil)
	h.mustDo("GET", "/api/projects/"+p.ID+"/secrets", nil, "", &raw)
	if string(raw) != `{"secrets":[]}` {
		t.Fatalf("secrets after delete: %s", raw)
	}
}

func TestSchedulesAndErrors(t *testing.T) {
	h := newHarness(t)
	p := h.push("seeds", "r1", seedFiles(t))
	var sc struct{ Schedules []restSchedule }
	h.mustDo("GET", "/api/schedules", nil, "", &sc)
	if len(sc.Schedules) != 1 || sc.Schedules[0].Workflow.Name != "daily_params" || // daily>: 21:00:00 is a daily session at 00:00 run at 21:00 (digdag's delay)
		!strings.HasSuffix(sc.Schedules[0].NextScheduleTime, "T00:00:00+00:00") || !strings.HasSuffix(sc.Schedules[0].NextRunTime, "T21:00:00Z") {
		t.Fatalf("schedules: %+v", sc)
	}
	// truncated_session_time: in the workflow's zone, by mode
	daily := h.workflowID(p.ID, "daily_params")
	for q, want := range map[string]string{
		"session_time=2026-03-04T05:06:07Z&mode=day":           "2026-03-04T00:00:00+00:00",
		"session_time=2026-03-04T05:06:07&mode=hour":           "2026-03-04T05:00:00+00:00",
		"session_time=2026-03-04T05:06:07Z&mode=schedule":      "2026-03-05T00:00:00+00:00",
		"session_time=2026-03-04T00:00:00Z&mode=schedule":      "2026-03-04T00:00:00+00:00",
		"session_time=2026-03-04T00:00:00Z&mode=next_schedule": "2026-03-05T00:00:00+00:00",
		"session_time=2026-03-04T05:06:07%2B09:00":             "2026-03-03T20:06:07+00:00",
	} {
		var st struct{ SessionTime, Timezone string }
		h.mustDo("GET", "/api/workflows/"+daily+"/truncated_session_time?"+q, nil, "", &st)
		if st.SessionTime != want || st.Timezone != "UTC" {
			t.Errorf("%s: %+v, want %s", q, st, want)
		}
	}
	var sum restScheduleSummary
	h.mustDo("POST", "/api/schedules/"+sc.Schedules[0].ID+"/disable", nil, "", &sum)
	if sum.DisabledAt == nil {
		t.Errorf("disable: %+v", sum)
	}
	// a revision without the workflow ends its schedule
	files := seedFiles(t)
	delete(files, "daily_params.dig")
	h.push("seeds", "r2", files)
	h.mustDo("GET", "/api/projects/"+p.ID+"/schedules", nil, "", &sc)
	if len(sc.Schedules) != 0 {
		t.Errorf("schedules after r2: %+v", sc)
	}

	var e map[string]any
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/projects/999", "", 404},
		{"GET", "/api/attempts/999", "", 404},
		{"GET", "/api/nothing", "", 404},
		{"DELETE", "/api/attempts", "", 405},
		{"PUT", "/api/projects?project=seeds&revision=r1", string(tarball(t, map[string]string{"a.dig": "+a:\n  echo>: x\n"})), 409},
		{"PUT", "/api/projects?project=x&revision=r1", "not a tarball", 400},
		{"PUT", "/api/projects?project=x&revision=r1", string(tarball(t, map[string]string{"a.dig": "+a:\n  echo>: [unclosed\n"})), 400},
		{"PUT", "/api/projects?revision=r1", "", 400},
		{"PUT", "/api/attempts", `{"workflowId":"999","sessionTime":"2026-01-02T00:00:00Z"}`, 404},
		{"PUT", "/api/attempts", `{"workflowId":"1"}`, 400},
		{"GET", "/api/attempts?page_size=101", "", 400},
		{"GET", "/api/workflows/" + h.workflowID(p.ID, "num_records") + "/truncated_session_time?session_time=2026-03-04T05:06:07Z&mode=schedule", "", 400},
		{"GET", "/api/workflows/1/truncated_session_time?session_time=yesterday", "", 404},
	} {
		e = nil
		st := h.do(c.method, c.path, strings.NewReader(c.body), "", &e)
		if st != c.status || e["status"] != float64(c.status) || e["message"] == "" {
			t.Errorf("%s %s: %d %v, want %d", c.method, c.path, st, e, c.status)
		}
	}
	// digdag's auth: the TD1 key, as on the TD endpoints
	res, err := http.Get(h.url + "/api/projects")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("no key: %d", res.StatusCode)
	}
	// the TD API is still served beside it
	req, _ := http.NewRequest("GET", h.url+"/v3/job/list", nil)
	req.Header.Set("Authorization", "TD1 1/testkey")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("/v3/job/list: %d", res.StatusCode)
	}
}

// Backfill (digdag backfill): the past sessions from fromTime up to the
// schedule's next one, each an attempt of the given name.
func TestBackfill(t *testing.T) {
	h := newHarness(t)
	h.push("hourly", "r1", map[string]string{"tick.dig": "schedule:\n  hourly>: 00:00\n+show:\n  echo>: ${session_time}\n"})
	var sc struct{ Schedules []restSchedule }
	h.mustDo("GET", "/api/schedules", nil, "", &sc)
	if len(sc.Schedules) != 1 {
		t.Fatalf("schedules: %+v", sc)
	}
	next, err := time.Parse(time.RFC3339, sc.Schedules[0].NextScheduleTime)
	if err != nil {
		t.Fatal(err)
	}
	id := sc.Schedules[0].ID
	from := next.Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	type collection struct {
		ID       string
		Attempts []restSessionAttempt
	}
	var dry collection
	h.mustDo("POST", "/api/schedules/"+id+"/backfill", strings.NewReader(`{"fromTime":"`+from+`","attemptName":"bf","dryRun":true}`), "application/json", &dry)
	if len(dry.Attempts) != 3 || dry.Attempts[0].ID != "0" || dry.ID != id {
		t.Fatalf("dry run: %+v", dry)
	}
	var e map[string]any
	if st := h.do("POST", "/api/schedules/"+id+"/backfill", strings.NewReader(`{"fromTime":"`+from+`","attemptName":"bf","count":4}`), "application/json", &e); st != 400 {
		t.Errorf("count beyond the next session: %d %v", st, e)
	}
	var got collection
	h.mustDo("POST", "/api/schedules/"+id+"/backfill", strings.NewReader(`{"fromTime":"`+from+`","attemptName":"bf","count":2}`), "application/json", &got)
	if len(got.Attempts) != 2 {
		t.Fatalf("backfill: %+v", got)
	}
	for i, a := range got.Attempts {
		want := next.Add(time.Duration(i-3) * time.Hour).UTC().Format("2006-01-02T15:04:05+00:00")
		if a.SessionTime != want || *a.RetryAttemptName != "bf" {
			t.Errorf("attempt %d: %+v, want session %s", i, a, want)
		}
		if a = h.wait(a.ID); !a.Success {
			t.Errorf("attempt %d: %+v", i, a)
		}
	}
	if st := h.do("POST", "/api/schedules/"+id+"/backfill", strings.NewReader(`{"fromTime":"`+from+`","attemptName":"bf"}`), "application/json", &e); st != 409 {
		t.Errorf("same name again: %d %v", st, e)
	}
}

package workflowui_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd"
	"github.com/tdctl/tdctl/internal/workflowui"
	"github.com/tdctl/tdctl/workflow"
)

func ioCopy(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

var taskIDs = regexp.MustCompile(`task-\d{3}`)

// The pages as HTML, without a browser: the same checks as the browser
// test where no browser is needed, so they run everywhere.
func TestRunPages(t *testing.T) {
	runs := t.TempDir()
	sum := fixtureRun(t, runs)
	base := serve(t, runs)

	code, body := get(t, base+"/")
	require.Equal(t, 200, code)
	assert.Contains(t, body, `href="/runs/`+sum.RunID+`"`)
	assert.Contains(t, body, `<td>150</td><td><a href="/runs/`+sum.RunID+`?failed=1">2</a></td>`)

	code, body = get(t, base+"/runs/"+sum.RunID)
	require.Equal(t, 200, code)
	assert.Equal(t, 150, strings.Count(body, `class="task"`), "one row per task, attempts merged")
	assert.Contains(t, body, `Failed (2)`)
	assert.Regexp(t, `(?s)_075</a>.*?<td>2: <a href="/runs/[^"]+/tasks/\d+" title="error">#1</a> <a href="/runs/[^"]+/tasks/\d+" title="error">#2</a>`, body, "the retried task: 2 attempts, each linked")
	assert.Regexp(t, `<td>\d+</td><td>1</td>`, body, "td> tasks show their job id and num_records")

	code, body = get(t, base+"/runs/"+sum.RunID+"?failed=1")
	require.Equal(t, 200, code)
	assert.Equal(t, 2, strings.Count(body, `class="task"`))
	assert.Len(t, regexp.MustCompile(`</span></td><td>\d\d:\d\d:\d\d</td><td>[0-9.]+(ms|s|µs)</td>`).FindAllString(body, -1), 2, "the failed rows show their start and duration")
	var names []string
	for _, m := range regexp.MustCompile(`class="task-link" href="[^"]+">([^<]+)<`).FindAllStringSubmatch(body, -1) {
		names = append(names, taskOf(html.UnescapeString(m[1])))
	}
	assert.ElementsMatch(t, failingTasks, names, "the failed rows are the failures")

	// each task's page holds its own log only
	for i, rec := range sum.Tasks {
		if rec.Operator == "td" {
			continue
		}
		code, body = get(t, base+"/runs/"+sum.RunID+"/tasks/"+itoa(i))
		require.Equal(t, 200, code)
		log := body[strings.Index(body, `<pre id="log">`):]
		require.Equal(t, []string{taskOf(rec.Path)}, uniq(taskIDs.FindAllString(log, -1)), "task %d (%s) shows its own lines only", i, rec.Path)
	}

	// the whole run's log: one section per task record, each with its own lines
	code, body = get(t, base+"/runs/"+sum.RunID+"/log")
	require.Equal(t, 200, code)
	sections := regexp.MustCompile(`(?s)<section id="log-(\d+)">(.*?)</section>`).FindAllStringSubmatch(body, -1)
	require.Len(t, sections, len(sum.Tasks))
	for _, s := range sections {
		rec := sum.Tasks[atoi(s[1])]
		if rec.Operator == "td" {
			continue
		}
		pre := s[2][strings.Index(s[2], "<pre>"):]
		assert.Equal(t, []string{taskOf(rec.Path)}, uniq(taskIDs.FindAllString(pre, -1)), "section %s", s[1])
	}
	assert.Contains(t, body, `<a href="#log-0">`, "a table of contents links every section")

	// the JSON is the record `workflow logs` reads
	code, body = get(t, base+"/runs/"+sum.RunID+"/summary.json")
	require.Equal(t, 200, code)
	var back workflow.Summary
	require.NoError(t, json.Unmarshal([]byte(body), &back))
	assert.Equal(t, sum.RunID, back.RunID)
	assert.Len(t, back.Tasks, 151)

	code, body = get(t, base+"/runs/nope")
	assert.Equal(t, 404, code)
	assert.Contains(t, body, "run nope not found")
	code, _ = get(t, base+"/runs/"+sum.RunID+"/tasks/151")
	assert.Equal(t, 404, code)
}

// Only loopback host names are answered unless remote access was allowed:
// a web page cannot read the UI through a DNS name that points at 127.0.0.1.
func TestHostHeaderCheck(t *testing.T) {
	runs := t.TempDir()
	for _, allow := range []bool{false, true} {
		h := workflowui.New(workflowui.Options{Source: workflowcmd.LocalRuns{Dir: runs}, AllowRemote: allow})
		for host, local := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true, "evil.example:8080": false, "10.0.0.1": false} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			req.Host = host
			h.ServeHTTP(rec, req)
			if local || allow {
				assert.Equal(t, 200, rec.Code, host)
			} else {
				assert.Equal(t, 403, rec.Code, host)
				assert.Contains(t, rec.Body.String(), "--allow-remote")
			}
		}
	}
}

// What the UI shows is masked with the process's known secrets, on top of
// the runner's masking when it wrote the logs: a secret the process knows
// (the API key, a --secrets value) never reaches a page, even from a log
// or record that holds it.
func TestMasksKnownSecrets(t *testing.T) {
	const secret = "s3cr3t-ui-value-4711"
	runs := t.TempDir()
	dir := filepath.Join(runs, "20261125T210000Z-abcdef")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	log := filepath.Join(dir, "a.log")
	require.NoError(t, os.WriteFile(log, []byte("connecting with "+secret+"\npostgres://u:pw-in-url@db/x\n"), 0o600))
	rec := workflow.Summary{RunID: "20261125T210000Z-abcdef", Workflow: "wf", State: workflow.StateError, Error: "failed: " + secret,
		StartedAt: time.Now(), Dir: dir, Tasks: []*workflow.TaskRecord{{Path: "+wf+a", Operator: "sh", State: workflow.StateError, Log: log, Error: "boom " + secret}}}
	data, err := json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "summary.json"), data, 0o600))
	cmdutil.AddSecrets(secret)
	base := serve(t, runs)
	for _, p := range []string{"/", "/runs/" + rec.RunID, "/runs/" + rec.RunID + "/tasks/0", "/runs/" + rec.RunID + "/tasks/0/log.txt",
		"/runs/" + rec.RunID + "/log", "/runs/" + rec.RunID + "/summary.json"} {
		code, body := get(t, base+p)
		require.Equal(t, 200, code, p)
		assert.NotContains(t, body, secret, p)
		assert.NotContains(t, body, "pw-in-url", p)
	}
	_, body := get(t, base+"/runs/"+rec.RunID+"/tasks/0")
	assert.Contains(t, body, "connecting with ***")
}

// A running run's page streams updates until the run ends.
func TestEventsStreamUntilTheRunEnds(t *testing.T) {
	runs := t.TempDir()
	id, flag, done := startLive(t, runs)
	base := serve(t, runs)
	resp, err := http.Get(base + "/runs/" + id + "/events?view=run")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	taskResp, err := http.Get(base + "/runs/" + id + "/events?view=task&n=1") // the waiting task's log page
	require.NoError(t, err)
	defer taskResp.Body.Close()
	require.NoError(t, os.WriteFile(flag, nil, 0o600))
	require.NoError(t, <-done)
	done <- nil // for the cleanup
	all, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the stream ends by itself once the run has ended")
	s := string(all)
	assert.Contains(t, s, "event: update\ndata: ")
	assert.Contains(t, s, `st-running`)
	assert.True(t, strings.HasSuffix(s, "event: done\ndata: {}\n\n"), s[max(0, len(s)-300):])
	last := s[strings.LastIndex(s, "event: update"):]
	assert.Contains(t, last, `id=\"run-state\"`)
	assert.Contains(t, last, `st-success\" id=\"run-state\"\u003esuccess`)
	all, err = io.ReadAll(taskResp.Body)
	require.NoError(t, err)
	s = string(all)
	assert.True(t, strings.HasSuffix(s, "event: done\ndata: {}\n\n"))
	last = s[strings.LastIndex(s, "event: update"):]
	assert.Contains(t, last, "the file is here", "the task's log as it ends")
	assert.Contains(t, last, `id=\"task-state\"\u003esuccess`)
}

// taskOf is the task-NNN a fixture task's lines name: +wf+...+load_140#2 is task-140.
func taskOf(path string) string {
	m := regexp.MustCompile(`_(\d{3})(#\d+)?$`).FindStringSubmatch(path)
	if m == nil {
		return "?" + path
	}
	return "task-" + m[1]
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func itoa(i int) string { return strconvItoa(i) }

package wfserver

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/workflow"
)

// Tasks of an attempt, as digdag lists them: every task of the workflow
// (the root +wf, groups, operator tasks, then the dynamic ones a run
// adds: for_each> iterations, _error tasks) with its parent, its
// upstream (the sibling before it, unless the parent is _parallel) and
// its state, read from the runner's run record:
//
//	operator task   running, success, error; canceled when killed
//	group           planned while its children run, success, group_error
//	not started     blocked (canceled once a killed attempt is done)
//
// Task ids are the attempt id × 100000 + the task's position.

type taskNode struct {
	name     string // +wf+group+task
	parent   int    // index, -1 for the root
	upstream int    // index, -1 for none
	group    bool
	config   map[string]any
	state    string
	started  *time.Time
	updated  time.Time
	err      string
	children []int
	// store is what the task stored, as digdag's td> does:
	// td.last_job_id and td.last_job.{id, num_records}.
	store map[string]any
}

// attemptRun reads an attempt's run record: nil before the runner wrote one.
func (s *Server) attemptRun(a *attemptRow) (*workflow.Summary, string) {
	dir := s.runsDir(a.ID)
	if b, err := os.ReadFile(filepath.Join(dir, runErrorFile)); err == nil {
		return nil, string(b)
	}
	ids, err := workflow.RunIDs(dir)
	if err != nil || len(ids) == 0 {
		return nil, ""
	}
	sum, err := workflow.LoadSummary(dir, ids[0])
	if err != nil {
		return nil, ""
	}
	return sum, ""
}

var retryMark = regexp.MustCompile(`#[0-9]+($|[+^])`)

// taskName is digdag's name of a run's task path (the runner marks the
// attempts of a _retry task with #N; digdag keeps one name).
func taskName(path string) string { return retryMark.ReplaceAllString(path, "$1") }

func nodeConfig(t *workflow.Task) map[string]any {
	cfg := map[string]any{}
	dec := func(n *yaml.Node) any {
		if n == nil {
			return nil
		}
		var v any
		if n.Decode(&v) != nil {
			return nil
		}
		return jsonSafe(v)
	}
	if t.Operator != "" {
		cfg[t.Operator+">"] = dec(t.Command)
	}
	for _, p := range t.Params {
		cfg[p.Key] = dec(p.Node)
	}
	return cfg
}

func (s *Server) taskTree(a *attemptRow) ([]*taskNode, error) {
	def, err := s.workflowByID(a.WorkflowID)
	if err != nil {
		return nil, err
	}
	wf, perr := s.parseWorkflow(def)
	sum, runErr := s.attemptRun(a)
	var nodes []*taskNode
	index := map[string]int{}
	var add func(t *workflow.Task, name string, parent, upstream int)
	add = func(t *workflow.Task, name string, parent, upstream int) {
		i := len(nodes)
		n := &taskNode{name: name, parent: parent, upstream: upstream, group: t.Operator == "" && len(t.Children) > 0, config: nodeConfig(t)}
		nodes = append(nodes, n)
		index[name] = i
		if parent >= 0 {
			nodes[parent].children = append(nodes[parent].children, i)
		}
		prev := -1
		for _, c := range t.Children {
			up := prev
			if t.Parallel {
				up = -1
			}
			add(c, name+c.Name, i, up)
			prev = index[name+c.Name]
		}
	}
	if perr == nil {
		add(wf.Root, wf.Root.Path, -1, -1)
	} else {
		nodes = append(nodes, &taskNode{name: "+" + a.WorkflowName, parent: -1, upstream: -1, config: map[string]any{}})
		index[nodes[0].name] = 0
		if runErr == "" {
			runErr = perr.Error()
		}
	}
	for _, n := range nodes {
		n.updated = a.CreatedAt
	}
	if sum != nil {
		for _, rec := range sum.Tasks {
			name := taskName(rec.Path)
			i, ok := index[name]
			if !ok { // a dynamic task: under the longest known prefix
				parent := 0
				for cut := len(name) - 1; cut > 0; cut-- {
					if name[cut] != '+' && name[cut] != '^' {
						continue
					}
					if p, ok := index[name[:cut]]; ok {
						parent = p
						break
					}
				}
				i = len(nodes)
				nodes = append(nodes, &taskNode{name: name, parent: parent, upstream: -1, config: map[string]any{}, updated: a.CreatedAt})
				index[name] = i
				nodes[parent].children = append(nodes[parent].children, i)
				nodes[parent].group = true
			}
			n := nodes[i]
			started := rec.StartedAt
			if n.started == nil {
				n.started = &started
			}
			n.updated = rec.StartedAt.Add(rec.Duration)
			n.err = rec.Error
			if rec.JobID != "" {
				last := map[string]any{"id": rec.JobID}
				if rec.NumRecords != nil {
					last["num_records"] = *rec.NumRecords
				}
				n.store = map[string]any{"td": map[string]any{"last_job_id": rec.JobID, "last_job": last}}
			}
			switch rec.State {
			case workflow.StateSuccess, workflow.StateSkipped:
				n.state = "success"
			case workflow.StateError:
				n.state = "error"
			case workflow.StateInterrupted:
				n.state = "canceled"
			default:
				n.state = "running"
			}
		}
	}
	// groups from their children, leaves never reached stay blocked
	var settle func(i int) string
	settle = func(i int) string {
		n := nodes[i]
		if len(n.children) == 0 {
			if n.state == "" {
				n.state = "blocked"
				if a.Done && a.CancelRequested {
					n.state = "canceled"
				}
			}
			return n.state
		}
		own := n.state // a group's own operator (for_each>...)
		var failed, running, started, all = false, false, false, true
		for _, c := range n.children {
			st := settle(c)
			switch st {
			case "error", "group_error", "canceled":
				failed, started = true, true
			case "running", "planned":
				running, started = true, true
			case "success":
				started = true
			}
			if st != "success" {
				all = false
			}
			if cn := nodes[c]; cn.started != nil && (n.started == nil || cn.started.Before(*n.started)) {
				t := *cn.started
				n.started = &t
			}
			if nodes[c].updated.After(n.updated) {
				n.updated = nodes[c].updated
			}
		}
		switch {
		case own == "error":
			n.state = "error"
		case failed && !running:
			n.state = "group_error"
		case running || (own == "running"):
			n.state = "planned"
		case all:
			n.state = "success"
		case started:
			n.state = "planned"
		case own == "success":
			n.state = "planned"
		default:
			n.state = "blocked"
			if a.Done && a.CancelRequested {
				n.state = "canceled"
			}
		}
		if a.Done && n.state == "planned" {
			// the run ended while this group was under way (killed)
			n.state = "group_error"
		}
		return n.state
	}
	settle(0)
	if runErr != "" {
		nodes[0].state, nodes[0].err = "error", runErr
	}
	return nodes, nil
}

func (s *Server) listTasks(id int64) (any, error) {
	a, err := s.findAttempt(id)
	if err != nil {
		return nil, err
	}
	nodes, err := s.taskTree(a)
	if err != nil {
		return nil, err
	}
	tid := func(i int) string { return idString(a.ID*100000 + int64(i) + 1) }
	out := []*restTask{}
	for i, n := range nodes {
		t := &restTask{ID: tid(i), FullName: n.name, Config: n.config, Upstreams: []string{}, IsGroup: n.group, State: n.state,
			CancelRequested: a.CancelRequested, ExportParams: map[string]any{}, StoreParams: map[string]any{}, StateParams: map[string]any{},
			UpdatedAt: instant(n.updated), StartedAt: instantPtr(n.started), Error: map[string]any{}}
		if n.store != nil {
			t.StoreParams = n.store
		}
		if n.parent >= 0 {
			p := tid(n.parent)
			t.ParentID = &p
		}
		if n.upstream >= 0 {
			t.Upstreams = append(t.Upstreams, tid(n.upstream))
		}
		if n.err != "" {
			t.Error = map[string]any{"message": n.err}
		}
		out = append(out, t)
	}
	return map[string]any{"tasks": out}, nil
}

// --- logs -----------------------------------------------------------

// agentID names the process that wrote the logs, as digdag's pid@host.
func agentID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%d@%s", os.Getpid(), strings.ReplaceAll(host, "@", "_"))
}

type logFile struct {
	handle restLogFileHandle
	path   string
}

// logFiles are the attempt's task logs, one per task attempt, named as
// digdag names them: TASK@SSSSSSSSNNNNNNNN.AGENT.log.gz (the first log
// time in hex seconds and nanoseconds).
func (s *Server) logFiles(a *attemptRow) []logFile {
	sum, _ := s.attemptRun(a)
	if sum == nil {
		return nil
	}
	agent := agentID()
	var out []logFile
	for _, rec := range sum.Tasks {
		if rec.Log == "" {
			continue
		}
		data, err := os.ReadFile(rec.Log)
		if err != nil {
			continue
		}
		name := taskName(rec.Path)
		t := rec.StartedAt
		file := fmt.Sprintf("%s@%08x%08x.%s.log.gz", name, t.Unix(), t.Nanosecond(), agent)
		out = append(out, logFile{path: rec.Log, handle: restLogFileHandle{FileName: file, FileSize: int64(len(gz(data))), TaskName: name, FileTime: instant(t), AgentID: agent}})
	}
	return out
}

// listLogFiles is GET /api/logs/{attempt}/files; task= keeps the tasks
// whose name starts with it.
func (s *Server) listLogFiles(id int64, task string) (any, error) {
	a, err := s.findAttempt(id)
	if err != nil {
		return nil, err
	}
	out := []restLogFileHandle{}
	for _, f := range s.logFiles(a) {
		if task == "" || strings.HasPrefix(f.handle.TaskName, task) {
			out = append(out, f.handle)
		}
	}
	return map[string]any{"files": out}, nil
}

// getLogFile is GET /api/logs/{attempt}/files/{name}: the log gzipped, as
// digdag serves it (application/gzip). The runner masked secrets when it
// wrote the log.
func (s *Server) getLogFile(w http.ResponseWriter, idSeg, name string) error {
	id, err := strconv.ParseInt(idSeg, 10, 64)
	if err != nil {
		return errorf(http.StatusNotFound, "HTTP 404 Not Found")
	}
	a, err := s.findAttempt(id)
	if err != nil {
		return err
	}
	for _, f := range s.logFiles(a) {
		if f.handle.FileName != name {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		body := gz(data)
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return nil
	}
	return errorf(http.StatusNotFound, "log file %s of attempt id=%d does not exist", name, id)
}

// gz compresses a log as it is served (the listed fileSize is this size,
// as digdag lists its .log.gz files).
func gz(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return buf.Bytes()
}

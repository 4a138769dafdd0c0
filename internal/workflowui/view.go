package workflowui

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/workflow"
)

// row is one line of a run page's task tree: a task (every attempt of it
// merged: a _retry, or a retry of a group around it) or a group of tasks.
type row struct {
	ID         string // the row's anchor, stable while the run goes on
	Name       string
	Depth      int
	Group      bool // has tasks below it
	State      string
	Start      string
	Duration   string
	Attempts   []attempt
	JobID      string
	NumRecords string
	Error      string
	Log        int // the record index of the last attempt; -1 for a group
	Tasks      int // group: tasks below
}

// attempt is one try of a task: its record in Summary.Tasks.
type attempt struct {
	N     int
	Rec   int
	State string
}

// runView is what the run page shows.
type runView struct {
	Sum          *workflow.Summary
	Rows         []*row
	Tasks        int // tasks (attempts merged)
	Failed       int
	FirstFailure string // the anchor of the task that failed first
	// FailedTasks are the failed tasks, full paths, in tree order (the
	// summary lists the first MaxListed).
	FailedTasks []*row
	FailedOnly  bool
	Started     string
	Duration    string
}

// MaxListed is how many failed tasks a run's summary lists by name.
const MaxListed = 5

// Listed is the failed tasks the summary names.
func (v *runView) Listed() []*row { return v.FailedTasks[:min(len(v.FailedTasks), MaxListed)] }

// failed reports whether a task's final state is a failure.
func failed(state string) bool {
	return state == workflow.StateError || state == workflow.StateInterrupted
}

type node struct {
	id       string
	name     string
	depth    int
	children []*node
	byName   map[string]*node
	recs     []int
}

var attemptSuffix = regexp.MustCompile(`#\d+(\[|\^|$)`)

// segments splits a task path (+wf+group+task, for_each iterations as
// +loop[k=v]) into its names, attempt numbers (#2) removed: every attempt
// of a task is one row.
func segments(path string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '[':
			depth++
		case ']':
			if depth > 0 {
				depth--
			}
		case '+':
			if depth == 0 {
				if i > start {
					out = append(out, path[start:i])
				}
				start = i + 1
			}
		}
	}
	if start < len(path) {
		out = append(out, path[start:])
	}
	for i, s := range out {
		out[i] = attemptSuffix.ReplaceAllString(s, "$1")
	}
	return out
}

func buildRunView(sum *workflow.Summary, failedOnly bool, now time.Time) *runView {
	v := &runView{Sum: sum, FailedOnly: failedOnly, Started: clock(sum.StartedAt), Duration: dur(sum.Duration)}
	root := &node{byName: map[string]*node{}}
	seq := 0
	for i, rec := range sum.Tasks {
		n := root
		for _, s := range segments(rec.Path) {
			c := n.byName[s]
			if c == nil {
				seq++
				c = &node{id: "t" + strconv.Itoa(seq), name: "+" + s, depth: n.depth + 1, byName: map[string]*node{}}
				if n == root {
					c.depth = 0
				}
				n.byName[s] = c
				n.children = append(n.children, c)
			}
			n = c
		}
		n.recs = append(n.recs, i)
	}
	var firstEnd time.Time
	var walk func(n *node) (state string, start, end time.Time, tasks int)
	walk = func(n *node) (string, time.Time, time.Time, int) {
		r := &row{ID: n.id, Name: n.name, Depth: n.depth, Group: len(n.children) > 0, Log: -1}
		if !failedOnly {
			v.Rows = append(v.Rows, r)
		}
		var start, end time.Time
		var states []string
		tasks := 0
		if len(n.recs) > 0 {
			tasks = 1
			v.Tasks++
			first, last := sum.Tasks[n.recs[0]], sum.Tasks[n.recs[len(n.recs)-1]]
			r.Log = n.recs[len(n.recs)-1]
			r.State, r.JobID, r.Error = last.State, last.JobID, firstLine(last.Error)
			if last.NumRecords != nil {
				r.NumRecords = strconv.FormatInt(*last.NumRecords, 10)
			}
			for k, ri := range n.recs {
				r.Attempts = append(r.Attempts, attempt{N: k + 1, Rec: ri, State: sum.Tasks[ri].State})
			}
			start = first.StartedAt
			end = taskEnd(last, now)
			states = append(states, last.State)
			if failed(last.State) {
				v.Failed++
				if e := last.StartedAt.Add(last.Duration); v.FirstFailure == "" || e.Before(firstEnd) {
					v.FirstFailure, firstEnd = n.id, e
				}
				v.FailedTasks = append(v.FailedTasks, r) // copied with its full path below
			}
		}
		for _, c := range n.children {
			s, cs, ce, ct := walk(c)
			tasks += ct
			states = append(states, s)
			if !cs.IsZero() && (start.IsZero() || cs.Before(start)) {
				start = cs
			}
			if ce.After(end) {
				end = ce
			}
		}
		if r.Group {
			r.Tasks = tasks
			if len(n.recs) == 0 {
				r.State = groupState(states)
			}
		}
		if !start.IsZero() {
			r.Start, r.Duration = start.Local().Format("15:04:05"), dur(end.Sub(start))
		}
		return r.State, start, end, tasks
	}
	for _, c := range root.children {
		walk(c)
	}
	for i, r := range v.FailedTasks { // rows complete now: copies named by their full path
		fr := *r
		fr.Name, fr.Depth = sum.Tasks[r.Log].Path, 0
		v.FailedTasks[i] = &fr
	}
	if failedOnly { // only the failed tasks, no groups
		v.Rows = v.FailedTasks
	}
	return v
}

// taskEnd is when a task ended, or now for one still running.
func taskEnd(t *workflow.TaskRecord, now time.Time) time.Time {
	if t.State == workflow.StateRunning {
		return now
	}
	return t.StartedAt.Add(t.Duration)
}

// groupState sums up the states below a group: a failure shows first.
func groupState(states []string) string {
	has := map[string]bool{}
	for _, s := range states {
		has[s] = true
	}
	for _, s := range []string{workflow.StateError, workflow.StateInterrupted, workflow.StateRunning} {
		if has[s] {
			return s
		}
	}
	if len(states) == 0 {
		return ""
	}
	return workflow.StateSuccess
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

package workflowcmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/workflow"
)

// LocalRuns reads the run records kept under Dir. It is the one reader of
// runs behind `workflow logs` (its table, -o json and --task) and `workflow
// ui` (it is the UI's workflowui.Source), so both show the same data, masked
// the same way.
type LocalRuns struct{ Dir string }

// Run reads one run's record (id "" or "latest": the newest) with
// workflow.LoadSummary, every text field masked again with the process's
// known secrets (the runner masked what it wrote with the run's own).
func (l LocalRuns) Run(id string) (*workflow.Summary, error) {
	sum, err := workflow.LoadSummary(l.Dir, id)
	if err != nil {
		return nil, err
	}
	m := cmdutil.Redact
	sum.Workflow, sum.File, sum.Dir, sum.Error, sum.Host = m(sum.Workflow), m(sum.File), m(sum.Dir), m(sum.Error), m(sum.Host)
	for _, t := range sum.Tasks {
		t.Path, t.Log, t.Error, t.JobID = m(t.Path), m(t.Log), m(t.Error), m(t.JobID)
		// a stored value holding a secret the process knows is dropped,
		// never masked: a retry would restore the mask (it runs the task
		// again instead)
		if t.Store != nil && !unchanged(t.Store) {
			t.Store, t.Reset, t.StoreWithheld = nil, nil, true
		}
	}
	for k, v := range sum.Params {
		if !unchanged(map[string]any{k: v}) {
			delete(sum.Params, k)
			sum.ParamsWithheld = append(sum.ParamsWithheld, k)
		}
	}
	return sum, nil
}

// unchanged tells whether masking leaves v's JSON as it is.
func unchanged(v map[string]any) bool {
	data, err := json.Marshal(v)
	return err == nil && cmdutil.Redact(string(data)) == string(data)
}

// Runs reads every run's record, newest first. A record that cannot be read
// is listed with state "unreadable" and the reason as its error.
func (l LocalRuns) Runs() ([]*workflow.Summary, error) {
	ids, err := workflow.RunIDs(l.Dir)
	if err != nil {
		return nil, err
	}
	out := make([]*workflow.Summary, 0, len(ids))
	for _, id := range ids {
		sum, err := l.Run(id)
		if err != nil {
			sum = &workflow.Summary{RunID: id, State: "unreadable", Error: cmdutil.Redact(err.Error())}
		}
		out = append(out, sum)
	}
	return out, nil
}

// Log opens a task's log and returns it with its size in bytes; every line
// read from it is masked with the process's known secrets (the runner
// masked the file as it wrote it). With tail > 0 only the lines that start
// in its last tail bytes are read.
func (l LocalRuns) Log(rec *workflow.TaskRecord, tail int64) (io.ReadCloser, int64, error) {
	f, err := os.Open(rec.Log)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	if tail > 0 && st.Size() > tail {
		if _, err := f.Seek(st.Size()-tail-1, io.SeekStart); err != nil {
			f.Close()
			return nil, 0, err
		}
		// the byte before the window: a newline there means the window
		// starts a line, else the partial line is skipped
		if _, err := r.ReadString('\n'); err != nil && err != io.EOF {
			f.Close()
			return nil, 0, err
		}
	}
	return &maskedLog{f: f, r: r}, st.Size(), nil
}

// maskedLog is a log read line by line, each line masked.
type maskedLog struct {
	f   *os.File
	r   *bufio.Reader
	buf []byte
	err error
}

func (m *maskedLog) Read(p []byte) (int, error) {
	for len(m.buf) == 0 {
		if m.err != nil {
			return 0, m.err
		}
		line, err := m.r.ReadString('\n')
		m.err = err
		m.buf = []byte(cmdutil.Redact(line))
	}
	n := copy(p, m.buf)
	m.buf = m.buf[n:]
	return n, nil
}

func (m *maskedLog) Close() error { return m.f.Close() }

// Stamp changes when a run's record, or the log of its task n (n >= 0),
// changes on disk: a live page re-reads the run only then.
func (l LocalRuns) Stamp(id string, n int) string {
	stamp := ""
	if st, err := os.Stat(filepath.Join(l.Dir, id, "summary.json")); err == nil {
		stamp = fmt.Sprint(st.ModTime().UnixNano(), st.Size())
	}
	if n >= 0 {
		if sum, err := workflow.LoadSummary(l.Dir, id); err == nil && n < len(sum.Tasks) {
			if st, err := os.Stat(sum.Tasks[n].Log); err == nil {
				stamp += fmt.Sprint(" ", st.ModTime().UnixNano(), st.Size())
			}
		}
	}
	return stamp
}

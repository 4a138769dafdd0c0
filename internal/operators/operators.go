// Package operators implements every workflow operator once, for the
// workflow runner and the CLI: td>, td_result_export>, td_run>, td_wait>,
// td_ddl>, td_wait_table>, td_partial_delete>, td_table_export>,
// td_for_each>, param_get>, param_set>, sh> and py> (locally, or in a
// Kubernetes pod for a task with _k8s or docker: settings), echo>, pg>,
// redshift>, http>, and the control-flow operators if>, fail>, loop>,
// for_range>, wait>, call> and require>. Operators returns the whole set
// over an Env;
// the CLI only builds the Env.
package operators

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// Env supplies what operators need. Every constructor is called lazily, on
// the first task that needs it: a workflow without td> needs no API key,
// one without param_get>/param_set> opens no param store, one without
// _k8s needs no cluster. A nil *Env is valid: td>, param_*> and _k8s tasks
// then fail with a message saying what to configure.
type Env struct {
	// TD returns the TD client.
	TD func() (*td.Client, error)
	// Wait tunes job waits (nil = 1 s doubling to 30 s).
	Wait *td.WaitOptions
	// ParamStore returns the param store of param_get> and param_set>. It
	// is called by every such task, so it should open the store once and
	// hand out the same one (parallel tasks share it).
	ParamStore func() (ParamStore, error)
	// PodRunner connects to the cluster of a task's _k8s kubeconfig and
	// context ("" for the defaults). Nil means
	// k8sexec.NewRunnerFromKubeconfig.
	PodRunner func(kubeconfig, context string) (*k8sexec.Runner, error)
	// WaitMinInterval is the smallest interval td_wait> accepts (digdag's
	// config.td_wait.min_poll_interval; 0 = MinWaitInterval, 30 s).
	WaitMinInterval time.Duration
	// ShellGrace is how long a local sh> script (its whole process group)
	// has between SIGTERM and SIGKILL when its task is cancelled or its
	// shell has exited (0 = DefaultShellGrace).
	ShellGrace time.Duration
	// TempFile registers a temporary file an operator writes before
	// renaming it into place (td>'s download_file), so that a process
	// ended at once by a second signal still removes it (the CLI passes
	// cmdutil.RemoveOnForcedExit); it returns the function that
	// unregisters it. Nil registers nothing.
	TempFile func(path string) (unregister func())
}

// DefaultShellGrace is Env.ShellGrace's default.
const DefaultShellGrace = 5 * time.Second

func (e *Env) td() (*td.Client, error) {
	if e == nil || e.TD == nil {
		return nil, fmt.Errorf("no TD client configured: set TD_API_KEY (and TD_API_SERVER for the dev-server)")
	}
	return e.TD()
}

func (e *Env) wait() *td.WaitOptions {
	if e == nil {
		return nil
	}
	return e.Wait
}

func (e *Env) paramStore(op string) (ParamStore, error) {
	if e == nil || e.ParamStore == nil {
		return nil, fmt.Errorf("%s>: no param store configured (--param-store URL)", op)
	}
	store, err := e.ParamStore()
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("no param store available")
	}
	return store, nil
}

func (e *Env) podRunner(kubeconfig, kubeContext string) (*k8sexec.Runner, error) {
	if e == nil || e.PodRunner == nil {
		return k8sexec.NewRunnerFromKubeconfig(kubeconfig, kubeContext)
	}
	return e.PodRunner(kubeconfig, kubeContext)
}

func (e *Env) tempFile(path string) func() {
	if e == nil || e.TempFile == nil {
		return func() {}
	}
	return e.TempFile(path)
}

func (e *Env) shellGrace() time.Duration {
	if e == nil || e.ShellGrace <= 0 {
		return DefaultShellGrace
	}
	return e.ShellGrace
}

// Operators returns every operator keyed by name, for a workflow.Runner.
func Operators(env *Env) map[string]workflow.Operator {
	return map[string]workflow.Operator{
		"echo":              Echo{},
		"sh":                &Shell{Env: env},
		"td":                &Query{Env: env},
		"td_result_export":  &ResultExport{Env: env},
		"td_run":            &Run{Env: env},
		"td_wait":           &TDWait{Env: env},
		"param_get":         &ParamGet{Env: env},
		"param_set":         &ParamSet{Env: env},
		"pg":                &SQL{Env: env, Kind: "pg"},
		"redshift":          &SQL{Env: env, Kind: "redshift"},
		"http":              &HTTP{Env: env},
		"td_ddl":            &DDL{Env: env},
		"td_wait_table":     &WaitTable{Env: env},
		"td_partial_delete": &PartialDelete{Env: env},
		"td_table_export":   &TableExport{Env: env},
		"if":                If{},
		"fail":              Fail{},
		"loop":              Loop{},
		"for_range":         ForRange{},
		"wait":              Wait{},
		"call":              Call{},
		"td_for_each":       &TdForEach{Env: env},
		"require":           Require{},
		"py":                &Py{Env: env},
	}
}

// storeValues turns ::set-param values (JSON, from k8sexec.ParseSetParam)
// into params; numbers keep their digits (json.Number).
func storeValues(raw map[string]json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]any, len(raw))
	for _, k := range keys {
		dec := json.NewDecoder(bytes.NewReader(raw[k]))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("::set-param %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// setParamScanner copies a local script's output to its log and collects
// its ::set-param lines, with the parser a pod's log goes through
// (k8sexec.ParseSetParam).
type setParamScanner struct {
	params map[string]json.RawMessage
	err    error // the first malformed line
}

func (s *setParamScanner) scan(r io.Reader, log io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	cont := false // the head of an over-long line was logged already
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			if len(line) >= k8sexec.MaxSetParamLine {
				// log it in pieces; it is output only (as in a pod)
				log.Write(line)
				line, cont = line[:0], true
			}
			continue
		}
		if len(line) == 0 && cont {
			log.Write([]byte{'\n'}) // the over-long last line had none
		}
		if len(line) > 0 {
			text := strings.TrimRight(string(line), "\r\n")
			if cont {
				log.Write(line)
				if line[len(line)-1] != '\n' {
					log.Write([]byte{'\n'})
				}
			} else {
				fmt.Fprintln(log, text)
				s.parse(text)
			}
		}
		line, cont = line[:0], false
		if err != nil {
			return
		}
	}
}

func (s *setParamScanner) parse(line string) {
	p, ok, err := k8sexec.ParseSetParam(line)
	if !ok {
		return
	}
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	if s.params == nil {
		s.params = map[string]json.RawMessage{}
	}
	for k, v := range p {
		s.params[k] = v
	}
}

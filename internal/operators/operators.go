// Package operators implements the workflow operators — td>,
// td_result_export>, param_get>, param_set>, sh> (local or in a Kubernetes
// pod) and echo> — once, over the td, paramstore and k8sexec packages. The
// workflow runner and the CLI both use them.
package operators

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/tdctl/tdctl/td"
	"github.com/tdctl/tdctl/workflow"
)

// Env supplies the clients operators need. Constructors are lazy so that a
// workflow without td> never needs an API key.
type Env struct {
	// TD returns the TD client.
	TD func() (*td.Client, error)
	// Wait tunes job waits (nil = 1 s doubling to 30 s).
	Wait *td.WaitOptions
}

func (e *Env) td() (*td.Client, error) {
	if e == nil || e.TD == nil {
		return nil, fmt.Errorf("no TD client configured: set TD_API_KEY (and TD_API_SERVER for the dev-server)")
	}
	return e.TD()
}

// SetParamPrefix starts a script output line that sets a param:
// "::set-param key=value" or "::set-param {"key": value, ...}".
const SetParamPrefix = "::set-param "

// ParseSetParam reads one output line; ok is false when it is not a
// set-param line. Values given as key=value are strings; the JSON form keeps
// types.
func ParseSetParam(line string) (params map[string]any, ok bool, err error) {
	line = strings.TrimRight(line, "\r\n")
	rest, found := strings.CutPrefix(strings.TrimSpace(line), strings.TrimSpace(SetParamPrefix))
	if !found {
		return nil, false, nil
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "{") {
		var m map[string]any
		if err := json.Unmarshal([]byte(rest), &m); err != nil {
			return nil, true, fmt.Errorf("bad ::set-param JSON %q: %v", rest, err)
		}
		return m, true, nil
	}
	k, v, found := strings.Cut(rest, "=")
	k = strings.TrimSpace(k)
	if !found || k == "" {
		return nil, true, fmt.Errorf("bad ::set-param line %q: expected ::set-param key=value", rest)
	}
	return map[string]any{k: v}, true, nil
}

// setParamScanner copies output to a log and collects ::set-param lines.
type setParamScanner struct {
	params map[string]any
	err    error
}

func (s *setParamScanner) scan(r io.Reader, log io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// an over-long line: log it in pieces; it cannot be a set-param
			log.Write(line)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				log.Write(line)
			}
			if len(line) == 0 || line[len(line)-1] != '\n' {
				log.Write([]byte{'\n'})
			}
			if err != nil {
				return
			}
			continue
		}
		if len(line) > 0 {
			text := strings.TrimRight(string(line), "\r\n")
			fmt.Fprintln(log, text)
			s.parse(text)
		}
		if err != nil {
			return
		}
	}
}

func (s *setParamScanner) parse(line string) {
	p, ok, err := ParseSetParam(line)
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
		s.params = map[string]any{}
	}
	for k, v := range p {
		s.params[k] = v
	}
}

// Operators returns every operator keyed by name, for a workflow.Runner.
func Operators(env *Env) map[string]workflow.Operator {
	return map[string]workflow.Operator{
		"echo":             Echo{},
		"sh":               &Shell{},
		"td":               &Query{Env: env},
		"td_result_export": &ResultExport{Env: env},
	}
}

// Package iostreams gives commands their stdin, stdout and stderr together
// with what the CLI needs to know about them: whether each is a terminal,
// whether colour is wanted, and how wide the terminal is. Commands never
// touch os.Stdout directly, so tests can swap in buffers and flip the TTY
// switches.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the standard streams of one command run.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	color     bool
	width     int
	// noProgress turns progress bars off even on a terminal (CI is set).
	noProgress bool
}

// System returns the process's real streams, detecting terminals. Colour is
// on only when stdout is a terminal and NO_COLOR is unset (https://no-color.org).
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
	}
	s.noProgress = os.Getenv("CI") != "" || os.Getenv("TDCTL_NO_PROGRESS") != ""
	_, noColor := os.LookupEnv("NO_COLOR")
	s.color = s.stdoutTTY && !noColor && os.Getenv("TERM") != "dumb"
	if s.stdoutTTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			s.width = w
		}
	}
	return s
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Test returns streams backed by buffers: stdin, stdout and stderr. No stream
// is a terminal until the Set*TTY switches say so.
func Test() (s *IOStreams, in *bytes.Buffer, out *bytes.Buffer, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether stdout is a terminal (human output: tables,
// local times) rather than a pipe or file (tab-separated, RFC 3339).
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal; progress bars are drawn
// only then.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ProgressEnabled reports whether progress bars may be drawn on stderr:
// only when stderr is a terminal and neither CI nor TDCTL_NO_PROGRESS is set.
func (s *IOStreams) ProgressEnabled() bool { return s.stderrTTY && !s.noProgress }

// SetStdinTTY overrides terminal detection of stdin (tests).
func (s *IOStreams) SetStdinTTY(v bool) { s.stdinTTY = v }

// SetStdoutTTY overrides terminal detection of stdout (tests).
func (s *IOStreams) SetStdoutTTY(v bool) { s.stdoutTTY = v }

// SetStderrTTY overrides terminal detection of stderr (tests).
func (s *IOStreams) SetStderrTTY(v bool) { s.stderrTTY = v }

// ColorEnabled reports whether output may use colour.
func (s *IOStreams) ColorEnabled() bool { return s.color }

// SetColorEnabled overrides colour (tests).
func (s *IOStreams) SetColorEnabled(v bool) { s.color = v }

// TerminalWidth is the width of the terminal stdout writes to, or 0 when
// stdout is not a terminal or the width is unknown.
func (s *IOStreams) TerminalWidth() int { return s.width }

// SetTerminalWidth overrides the terminal width (tests).
func (s *IOStreams) SetTerminalWidth(w int) { s.width = w }

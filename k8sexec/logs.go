package k8sexec

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tdctl/tdctl/internal/backoff"
)

// logStreamer copies the container's log to out line by line, collecting
// ::set-param lines.
//
// Logs are requested with timestamps (which are stripped before writing).
// When a stream breaks, the next one starts at the last line's second
// (sinceTime has one-second resolution) and skips what was already
// written: lines before the last timestamp, and as many lines at that
// timestamp as were written. A line without its newline is written only
// from the final stream, so a broken stream never leaves half a line.
//
// The streamer ends after a stream that was opened once the container had
// finished ran to its end: a follow stream that ends while the container
// runs, or whose end races the container's, is followed by one more.
type logStreamer struct {
	client    Client
	namespace string
	pod       string
	out       io.Writer
	minDelay  time.Duration
	maxDelay  time.Duration

	lastTS time.Time // timestamp of the last line written
	atLast int       // lines written with timestamp lastTS
	outErr error     // first error writing to out (lines are then dropped)

	params   map[string]json.RawMessage
	paramErr error
	err      error // set by the goroutine running run
}

// maxFinalLogFailures bounds the attempts to read the logs of a container
// that has finished (its logs may be gone with an evicted pod).
const maxFinalLogFailures = 3

func (l *logStreamer) run(ctx context.Context, finished <-chan struct{}) error {
	failures := 0
	for {
		final := isClosed(finished)
		opts := &corev1.PodLogOptions{Container: ContainerName, Follow: !final, Timestamps: true}
		if !l.lastTS.IsZero() {
			opts.SinceTime = ptr(metav1.NewTime(l.lastTS.Truncate(time.Second)))
		}
		rc, err := l.client.PodLogs(ctx, l.namespace, l.pod, opts)
		progressed := false
		if err == nil {
			progressed, err = l.consume(rc, final)
			rc.Close()
			if err == nil && final {
				return l.outErr
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if progressed {
			failures = 0
		}
		if err != nil {
			failures++
			if final && failures >= maxFinalLogFailures {
				return fmt.Errorf("read logs: %w", err)
			}
		}
		if err == nil && isClosed(finished) {
			continue // the follow stream ended with the container: one last read
		}
		delay := backoff.Exp(l.minDelay, l.maxDelay, max(failures, 1)-1)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-finished:
			if !final && err == nil {
				// The stream ended as the container did; read the rest now.
				t.Stop()
				continue
			}
			<-t.C
		case <-t.C:
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// maxLine is the longest line kept whole (and read for ::set-param); a
// longer one is written in pieces as it arrives.
const maxLine = MaxSetParamLine

// consume reads one stream; err is nil at a clean end of stream.
func (l *logStreamer) consume(r io.Reader, final bool) (progressed bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	skip := l.atLast // lines at lastTS this stream repeats
	var (
		line []byte
		cont bool // the head of an over-long line was written already
	)
	for {
		chunk, rerr := br.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case rerr == nil:
			if cont {
				l.write(line)
			} else if l.emit(line[:len(line)-1], &skip, true) {
				progressed = true
			}
			line, cont = line[:0], false
		case errors.Is(rerr, bufio.ErrBufferFull):
			if len(line) >= maxLine {
				if cont {
					l.write(line)
				} else if l.emit(line, &skip, false) {
					progressed, cont = true, true
				}
				line = line[:0]
			}
		default:
			if errors.Is(rerr, io.EOF) {
				if len(line) > 0 && final {
					// The final stream's last line has no newline.
					if cont {
						l.write(line)
					} else if l.emit(line, &skip, false) {
						progressed = true
					}
				}
				return progressed, nil
			}
			return progressed, rerr
		}
	}
}

// emit writes one line unless a resumed stream repeats it; it reports
// whether the line was new.
func (l *logStreamer) emit(raw []byte, skip *int, newline bool) bool {
	content := raw
	if i := bytes.IndexByte(raw, ' '); i > 0 {
		if ts, err := time.Parse(time.RFC3339Nano, string(raw[:i])); err == nil {
			content = raw[i+1:]
			switch {
			case ts.Before(l.lastTS):
				return false
			case ts.Equal(l.lastTS):
				if *skip > 0 {
					*skip--
					return false
				}
				l.atLast++
			default:
				l.lastTS, l.atLast, *skip = ts, 1, 0
			}
		}
	}
	buf := make([]byte, 0, len(content)+1)
	buf = append(buf, content...)
	if newline {
		buf = append(buf, '\n')
	}
	l.write(buf)
	params, ok, err := ParseSetParam(string(content))
	if ok {
		if err != nil {
			if l.paramErr == nil {
				l.paramErr = err
			}
		} else {
			if l.params == nil {
				l.params = map[string]json.RawMessage{}
			}
			for k, v := range params {
				l.params[k] = v
			}
		}
	}
	return true
}

func (l *logStreamer) write(b []byte) {
	if l.outErr != nil {
		return
	}
	if _, err := l.out.Write(b); err != nil {
		l.outErr = fmt.Errorf("write log: %w", err)
	}
}

package cmdutil

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// Limits of what tdctl reads from the user in one piece.
const (
	// MaxInputBytes bounds stdin and @FILE inputs: a query, a param value,
	// --settings.
	MaxInputBytes = 64 << 20
	// MaxConfigBytes bounds a configuration file (td.conf, config.yaml, a
	// secrets file).
	MaxConfigBytes = 1 << 20
)

// InputError is an input that cannot be read whole: larger than its limit,
// or unreadable. Exit code 1; the message names the input and the limit.
type InputError struct {
	What  string // "the query on stdin", "--settings @x.json"
	Limit int64  // bytes; 0 when the input was not too large
	Err   error  // the read error, when there was one
}

func (e *InputError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("reading %s: %v", e.What, e.Err)
	}
	return fmt.Sprintf("%s is larger than %s: give a smaller input", e.What, sizeText(e.Limit))
}

// Unwrap returns the read error.
func (e *InputError) Unwrap() error { return e.Err }

// ExitCode is 1.
func (e *InputError) ExitCode() int { return ExitUsage }

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadAll reads r to its end, at most limit bytes (a larger input is an
// *InputError naming what and the limit), and gives up as soon as ctx ends
// (Ctrl-C, SIGTERM), returning ctx's error: a pipe or terminal that never
// ends, or /dev/zero, cannot hold tdctl. The read runs on a goroutine; when
// ctx ends first, a read of an *os.File that supports deadlines (a pipe or
// FIFO in non-blocking mode) is interrupted, any other is left to end with
// the process.
func ReadAll(ctx context.Context, r io.Reader, limit int64, what string) ([]byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		return checkRead(res.b, res.err, limit, what)
	case <-ctx.Done():
		if f, ok := r.(*os.File); ok {
			f.SetReadDeadline(time.Now()) // unblocks the read where the file supports it
		}
		return nil, ctx.Err()
	}
}

// ReadFile reads the file at path like ReadAll: at most limit bytes, and
// cancellable by ctx, the open included (opening a FIFO waits for a
// writer). A missing or unreadable file (a directory...) is an
// *fs.PathError for the caller to word.
func ReadFile(ctx context.Context, path string, limit int64, what string) ([]byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.Open(path)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		if _, isPath := PathCause(res.err); isPath {
			return nil, res.err
		}
		return checkRead(res.b, res.err, limit, what)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func checkRead(b []byte, err error, limit int64, what string) ([]byte, error) {
	if err != nil {
		return nil, &InputError{What: what, Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &InputError{What: what, Limit: limit}
	}
	return b, nil
}

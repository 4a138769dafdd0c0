package digdag

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
)

// LogsService lists and downloads the log files of an attempt's tasks.
type LogsService service

// Files lists the log files of an attempt (GET
// /api/logs/ID/files?direct_download=false), of the task named task
// (+wf+step, "" = all) when given, in the order the server lists them.
// Direct download URLs are not asked for: files are read through the API.
func (s *LogsService) Files(ctx context.Context, attemptID, task string) ([]*LogFile, error) {
	if err := requireID("attempt", attemptID); err != nil {
		return nil, err
	}
	q := url.Values{"direct_download": {"false"}}
	if task != "" {
		q.Set("task", task)
	}
	var fc logFileCollection
	if err := s.client.getJSON(ctx, path("/api/logs", attemptID, "files"), q, &fc); err != nil {
		return nil, err
	}
	return fc.Files, nil
}

// maxLogFile bounds one log file, compressed and not.
const maxLogFile = 256 << 20

// Download reads one log file (GET /api/logs/ID/files/NAME) and returns
// its text, gunzipped.
func (s *LogsService) Download(ctx context.Context, attemptID, fileName string) ([]byte, error) {
	if err := requireID("attempt", attemptID); err != nil {
		return nil, err
	}
	if fileName == "" {
		return nil, invalidArg("empty log file name")
	}
	rq := &request{method: http.MethodGet, path: path("/api/logs", attemptID, "files", fileName), retry: true}
	var text []byte
	err := s.client.call(ctx, rq, func(resp *http.Response) error {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxLogFile))
		if err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		if text, err = gunzip(data); err != nil {
			return &ProtocolError{Method: rq.method, Path: rq.path, Msg: "log file is not gzip: " + err.Error()}
		}
		return nil
	}, nil)
	return text, err
}

// gunzip undoes the gzip of a log file; a file that is not gzip (a
// server that sends the text as it is) is returned as it came.
func gunzip(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(io.LimitReader(zr, maxLogFile))
}

// FollowOptions tune Follow.
type FollowOptions struct {
	Task string // only this task's files ("" = all)
	// Poll is the wait between listings while the attempt runs (default
	// 2 s).
	Poll time.Duration
	// Each sees every file before its text is written (to print a
	// header); nil writes the text alone.
	Each func(f *LogFile, w io.Writer)
}

// Follow writes the attempt's log files to w as they appear, oldest first,
// until the attempt is done and its last files are written; it returns
// the attempt as last read.
func (s *LogsService) Follow(ctx context.Context, attemptID string, w io.Writer, o *FollowOptions) (*Attempt, error) {
	if o == nil {
		o = &FollowOptions{}
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	seen := map[string]bool{}
	for {
		a, err := s.client.Attempts.Get(ctx, attemptID)
		if err != nil {
			return nil, err
		}
		// list after reading the state: a done attempt's files are all
		// listed by now
		if err := s.writeNew(ctx, attemptID, w, o, seen); err != nil {
			return a, err
		}
		if a.Done {
			return a, nil
		}
		if err := backoff.Sleep(ctx, poll); err != nil {
			return a, err
		}
	}
}

// Write writes every log file of the attempt (of o.Task) to w, oldest
// first.
func (s *LogsService) Write(ctx context.Context, attemptID string, w io.Writer, o *FollowOptions) error {
	if o == nil {
		o = &FollowOptions{}
	}
	return s.writeNew(ctx, attemptID, w, o, map[string]bool{})
}

func (s *LogsService) writeNew(ctx context.Context, attemptID string, w io.Writer, o *FollowOptions, seen map[string]bool) error {
	files, err := s.Files(ctx, attemptID, o.Task)
	if err != nil {
		return err
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].FileTime.Before(files[j].FileTime) })
	for _, f := range files {
		if seen[f.FileName] {
			continue
		}
		text, err := s.Download(ctx, attemptID, f.FileName)
		if err != nil {
			return err
		}
		seen[f.FileName] = true
		if o.Each != nil {
			o.Each(f, w)
		}
		if _, err := w.Write([]byte(s.client.red.Redact(string(text)))); err != nil {
			return err
		}
	}
	return nil
}

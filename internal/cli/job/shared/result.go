package shared

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// ResultFormats are the -f/--format values of `query` and `job result`
// (the Ruby td CLI's names, plus jsonl).
var ResultFormats = []string{"table", "tsv", "csv", "json", "jsonl", "msgpack.gz"}

// ResultFlags choose how a job's result is written. They follow the Ruby
// td CLI: -f/--format picks the format, -o/--output names a FILE (so on
// these commands -o is not the output-format flag), -c adds a header line.
type ResultFlags struct {
	Format       string
	File         string
	ColumnHeader bool
	// Parallel is --parallel: concurrent range requests (0: td's automatic
	// choice, from the result's size and the first stream's pace).
	Parallel int
	// NoVerify is --no-verify: a msgpack.gz body is written without
	// inflating it on the side (its length is still checked against the
	// job's result_size).
	NoVerify bool
}

// AddResultFlags registers -f, -o and -c.
func AddResultFlags(cmd *cobra.Command, r *ResultFlags) {
	cmd.Flags().StringVarP(&r.Format, "format", "f", "", "result format: table|tsv|csv|json|jsonl|msgpack.gz (default: table on a terminal, tsv otherwise)")
	cmd.Flags().StringVarP(&r.File, "output", "o", "", "write the result to `FILE` instead of stdout (written whole or not at all; - is stdout)")
	cmd.Flags().BoolVarP(&r.ColumnHeader, "column-header", "c", false, "print the column names first (tsv and csv)")
	cmd.Flags().IntVar(&r.Parallel, "parallel", 0, fmt.Sprintf("download over `N` concurrent range requests, 1 to %d (default: one stream; above 64 MiB up to %d once that stream proves slow)", td.MaxParallel, 4))
	_ = cmd.RegisterFlagCompletionFunc("format", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return ResultFormats, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.Flags().BoolVar(&r.NoVerify, "no-verify", false, "with -f msgpack.gz: skip inflating the body to check its gzip CRC (faster than one core inflates; the length is still checked)")
}

// Validate checks the flags.
func (r *ResultFlags) Validate() error {
	if r.Parallel < 0 || r.Parallel > td.MaxParallel {
		return cmdutil.FlagErrorf("invalid --parallel %d: use 1 to %d connections (or leave it out to choose from the result's size and pace)", r.Parallel, td.MaxParallel)
	}
	r.Format = strings.ToLower(strings.TrimSpace(r.Format))
	if r.NoVerify && r.Format != "msgpack.gz" {
		return cmdutil.FlagErrorf("--no-verify applies to -f msgpack.gz only (the other formats are decoded, which checks the stream anyway)")
	}
	if r.Format == "" {
		return nil
	}
	for _, f := range ResultFormats {
		if r.Format == f {
			return nil
		}
	}
	if r.Format == "msgpack" {
		return cmdutil.FlagErrorf("--format msgpack is not offered: use msgpack.gz (the API's efficient format)")
	}
	return cmdutil.FlagErrorf("invalid --format %q: use one of %s", r.Format, strings.Join(ResultFormats, ", "))
}

// WriteResult writes a finished job's result as the flags say: to -o FILE
// (whole or not at all: see cmdutil.OutputFile) or to stdout (also -o -). A
// msgpack.gz body is inflated on the side as it is written, so a corrupt
// gzip stream fails the command (exit 2) instead of being committed
// (unless --no-verify: then only its length is checked). A
// byte progress bar is drawn on a terminal stderr.
func WriteResult(ctx context.Context, ios *iostreams.IOStreams, c *td.Client, job *td.Job, r *ResultFlags) error {
	file := r.File
	if file == "-" {
		file = ""
	}
	format := r.Format
	if format == "" {
		format = "tsv"
		if file == "" && ios.IsStdoutTTY() {
			format = "table"
		}
	}
	if format == "msgpack.gz" && file == "" && ios.IsStdoutTTY() {
		return cmdutil.FlagErrorf("refusing to write binary msgpack.gz to the terminal: add -o FILE or pipe the output")
	}
	var w io.Writer = ios.Out
	width := ios.TerminalWidth() // the table fits the terminal, not a file
	var out *cmdutil.OutputFile
	if file != "" {
		var err error
		if out, err = cmdutil.CreateOutput(ctx, file); err != nil {
			return err
		}
		defer out.Abort() // a no-op after Commit
		w, width = out, 0
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	bar := output.NewBytes(ios, -1, "job "+job.ID+" result")
	dl := &td.DownloadOptions{Progress: func(done, total int64) { bar.Set(done, total) }, Parallel: r.Parallel}
	var err error
	if format == "msgpack.gz" && r.NoVerify {
		// the body as it comes: its length is checked against result_size
		if out != nil && out.Seekable() {
			_, err = c.Results.DownloadAt(ctx, job.ID, td.FormatMsgpackGz, out, dl)
		} else {
			_, err = c.Results.Download(ctx, job.ID, td.FormatMsgpackGz, bw, dl)
		}
	} else if format == "msgpack.gz" {
		check := newGzipCheck()
		if out != nil && out.Seekable() {
			// ranges are written at their offsets into the temporary
			// file; the check reads the file as its start fills in
			err = downloadAt(ctx, c, job.ID, out, check, dl)
		} else {
			_, err = c.Results.Download(ctx, job.ID, td.FormatMsgpackGz, io.MultiWriter(bw, check), dl)
		}
		if cerr := check.Close(); err == nil && cerr != nil {
			err = &td.ProtocolError{Method: "GET", Path: "/v3/job/result/" + job.ID, Msg: fmt.Sprintf("the msgpack.gz result is corrupt (%v)", cerr)}
			if file != "" {
				err = fmt.Errorf("%w; %s not written", err, file)
			}
		}
	} else {
		err = writeRows(ctx, c, job, bw, format, r.ColumnHeader, width, dl)
	}
	bar.Done()
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && out != nil {
		if err = out.Commit(); err != nil {
			err = fmt.Errorf("writing %s: %w", file, err)
		}
	}
	if err != nil && ctx.Err() != nil && file != "" {
		// interrupted: the temporary file is gone (removed on cancellation),
		// whichever of the download and the file noticed first
		return fmt.Errorf("%w: %s not written", cmdutil.ErrCancel, file)
	}
	return err
}

// gzipCheck inflates what is written to it, on its own goroutine and
// into io.Discard, to verify a gzip stream (every member's CRC-32 and
// length) while it is downloaded; Close reports what was found.
type gzipCheck struct {
	chunks chan []byte
	free   chan []byte // buffers read through, for reuse: no garbage per write
	done   chan error
}

// checkPiece is the most one queued chunk holds: the queue holds at most
// 16 of them whatever the writes (a parallel download writes whole ranges).
const checkPiece = 256 << 10

func newGzipCheck() *gzipCheck {
	g := &gzipCheck{chunks: make(chan []byte, 16), free: make(chan []byte, 18), done: make(chan error, 1)}
	go func() {
		cr := &chunkReader{chunks: g.chunks, free: g.free}
		err := func() error {
			zr, err := gzip.NewReader(cr)
			if err != nil {
				return err
			}
			zr.Multistream(true)
			_, err = io.Copy(io.Discard, zr)
			return err
		}()
		for range g.chunks { // keep the writer unblocked after an error
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("the gzip stream ended early")
		}
		g.done <- err
	}()
	return g
}

func (g *gzipCheck) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		n := min(len(rest), checkPiece)
		var b []byte
		select {
		case b = <-g.free:
		default:
			b = make([]byte, 0, checkPiece)
		}
		g.chunks <- append(b[:0], rest[:n]...)
		rest = rest[n:]
	}
	return len(p), nil
}

// Close ends the stream and waits for the verdict.
func (g *gzipCheck) Close() error {
	close(g.chunks)
	return <-g.done
}

// chunkReader reads the chunks sent to a channel until it is closed.
type chunkReader struct {
	chunks <-chan []byte
	free   chan<- []byte // where a chunk read through goes back (nil: dropped)
	buf    []byte        // the chunk cur is in
	cur    []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.buf != nil && c.free != nil {
			select {
			case c.free <- c.buf:
			default:
			}
			c.buf = nil
		}
		b, ok := <-c.chunks
		if !ok {
			return 0, io.EOF
		}
		c.buf, c.cur = b, b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// writeRows decodes the result and writes it to w in format; a table is
// cut to width cells (0: no limit). csv, tsv, json and jsonl are
// transcoded from msgpack without boxing a value (transcode); the inflater
// runs on its own goroutine (td.RowReader), so inflating and transcoding
// use two cores.
func writeRows(ctx context.Context, c *td.Client, job *td.Job, w io.Writer, format string, header bool, width int, dl *td.DownloadOptions) error {
	src, err := openResult(ctx, c, job, dl)
	if err != nil {
		return err
	}
	defer src.Close()
	rows, err := td.NewRowReader(src, job.Schema)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols := make([]string, len(job.Schema))
	for i, col := range job.Schema {
		cols[i] = col.Name
	}
	if format == "table" {
		return writeRowsBoxed(rows, w, format, cols, header, width)
	}
	return transcode(rows, w, format, cols, header)
}

// writeRowsBoxed writes rows from RowReader.Next (every cell boxed): the
// table, and the reference that transcode's output is held equal to.
func writeRowsBoxed(rows *td.RowReader, w io.Writer, format string, cols []string, header bool, width int) error {
	switch format {
	case "table":
		tio := &iostreams.IOStreams{Out: w}
		tio.SetTerminalWidth(width)
		t := output.New(tio, output.FormatTable).Table(cols...)
		for row, err := range rows.All() {
			if err != nil {
				return err
			}
			t.Row(stringRow(row)...)
		}
		return t.Render()
	case "csv":
		cw := csv.NewWriter(w)
		if header {
			if err := cw.Write(cols); err != nil {
				return err
			}
		}
		for row, err := range rows.All() {
			if err != nil {
				return err
			}
			if err := cw.Write(stringRow(row)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "tsv":
		if header {
			if _, err := io.WriteString(w, strings.Join(cols, "\t")+"\n"); err != nil {
				return err
			}
		}
		for row, err := range rows.All() {
			if err != nil {
				return err
			}
			fields := stringRow(row)
			for i := range fields {
				fields[i] = output.TSVField(fields[i])
			}
			if _, err := io.WriteString(w, strings.Join(fields, "\t")+"\n"); err != nil {
				return err
			}
		}
		return nil
	case "json", "jsonl":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		first := true
		if format == "json" {
			if _, err := io.WriteString(w, "["); err != nil {
				return err
			}
		}
		for row, err := range rows.All() {
			if err != nil {
				return err
			}
			if format == "json" {
				sep := ",\n"
				if first {
					sep = "\n"
				}
				if _, err := io.WriteString(w, sep); err != nil {
					return err
				}
			}
			first = false
			b, err := json.Marshal(rowObject(cols, row))
			if err != nil {
				return err
			}
			if format == "jsonl" {
				b = append(b, '\n')
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		if format == "json" {
			end := "\n]\n"
			if first {
				end = "]\n"
			}
			_, err := io.WriteString(w, end)
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown format %q", format)
}

// rowObject keys a row by column name; columns beyond the schema are named
// _col<N> (0-based) the way Presto names unnamed columns.
func rowObject(cols []string, row []any) json.Marshaler {
	return orderedRow{cols: cols, row: row}
}

// orderedRow marshals as a JSON object keeping the column order.
type orderedRow struct {
	cols []string
	row  []any
}

func (o orderedRow) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, v := range o.row {
		if i > 0 {
			b = append(b, ',')
		}
		name := "_col" + strconv.Itoa(i)
		if i < len(o.cols) && o.cols[i] != "" {
			name = o.cols[i]
		}
		k, _ := json.Marshal(name)
		b = append(b, k...)
		b = append(b, ':')
		val, err := json.Marshal(jsonSafe(v))
		if err != nil {
			return nil, err
		}
		b = append(b, val...)
	}
	return append(b, '}'), nil
}

// jsonSafe replaces values encoding/json rejects (NaN, ±Inf) with strings.
func jsonSafe(v any) any {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v
}

func stringRow(row []any) []string {
	out := make([]string, len(row))
	for i, v := range row {
		out[i] = FormatValue(v)
	}
	return out
}

// FormatValue renders one result value for csv, tsv and the table: NULL as
// an empty string, numbers without exponent where reasonable, arrays and
// maps as JSON.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		if math.Abs(x) < 1e21 && !math.IsNaN(x) && !math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return string(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

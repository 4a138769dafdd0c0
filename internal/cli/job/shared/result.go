package shared

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
}

// AddResultFlags registers -f, -o and -c.
func AddResultFlags(cmd *cobra.Command, r *ResultFlags) {
	cmd.Flags().StringVarP(&r.Format, "format", "f", "", "result format: table|tsv|csv|json|jsonl|msgpack.gz (default: table on a terminal, tsv otherwise)")
	cmd.Flags().StringVarP(&r.File, "output", "o", "", "write the result to `FILE` instead of stdout (written whole or not at all)")
	cmd.Flags().BoolVarP(&r.ColumnHeader, "column-header", "c", false, "print the column names first (tsv and csv)")
	_ = cmd.RegisterFlagCompletionFunc("format", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return ResultFormats, cobra.ShellCompDirectiveNoFileComp
	})
}

// Validate checks the flags.
func (r *ResultFlags) Validate() error {
	r.Format = strings.ToLower(strings.TrimSpace(r.Format))
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
// (through a temporary file renamed into place on success, so a failed
// download leaves nothing half-written) or to stdout. A byte progress bar is
// drawn on a terminal stderr.
func WriteResult(ctx context.Context, ios *iostreams.IOStreams, c *td.Client, job *td.Job, r *ResultFlags) (err error) {
	format := r.Format
	if format == "" {
		format = "tsv"
		if r.File == "" && ios.IsStdoutTTY() {
			format = "table"
		}
	}
	if format == "msgpack.gz" && r.File == "" && ios.IsStdoutTTY() {
		return cmdutil.FlagErrorf("refusing to write binary msgpack.gz to the terminal: add -o FILE or pipe the output")
	}
	var w io.Writer = ios.Out
	var commit func() error
	if st, serr := os.Stat(r.File); r.File != "" && serr == nil && !st.Mode().IsRegular() {
		// a device or pipe (-o /dev/null, a FIFO): write to it directly;
		// the write-then-rename below would replace it with a file
		f, err := os.OpenFile(r.File, os.O_WRONLY, 0)
		if err != nil {
			return cmdutil.NewFlagError(fmt.Errorf("cannot write -o %s: %w", r.File, err))
		}
		defer f.Close()
		w = f
		commit = f.Close
	} else if r.File != "" {
		f, err := os.CreateTemp(filepath.Dir(r.File), "."+filepath.Base(r.File)+".tdctl-*")
		if err != nil {
			if cause, ok := cmdutil.PathCause(err); ok { // name the user's file, not the temporary one
				err = fmt.Errorf("%s: %w", filepath.Dir(r.File), cause)
			}
			return cmdutil.NewFlagError(fmt.Errorf("cannot write -o %s: %w", r.File, err))
		}
		defer cmdutil.RemoveOnForcedExit(f.Name())() // a second Ctrl-C removes it too
		defer func() {
			if err != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}()
		w = f
		commit = func() error {
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), r.File)
		}
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	bar := output.NewBytes(ios, -1, "job "+job.ID+" result")
	dl := &td.DownloadOptions{Progress: func(done, total int64) { bar.Set(done, total) }}
	if format == "msgpack.gz" {
		_, err = c.Results.Download(ctx, job.ID, td.FormatMsgpackGz, bw, dl)
	} else {
		err = writeRows(ctx, ios, c, job, bw, format, r.ColumnHeader, dl)
	}
	bar.Done()
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if commit != nil {
		if err := commit(); err != nil {
			return fmt.Errorf("writing %s: %w", r.File, err)
		}
	}
	return nil
}

func writeRows(ctx context.Context, ios *iostreams.IOStreams, c *td.Client, job *td.Job, w io.Writer, format string, header bool, dl *td.DownloadOptions) error {
	src, err := c.Results.Open(ctx, job.ID, td.FormatMsgpackGz, dl)
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
	switch format {
	case "table":
		p := output.New(ios, output.FormatTable)
		t := p.Table(cols...)
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

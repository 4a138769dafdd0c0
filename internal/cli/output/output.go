// Package output prints command results the way scripts and people expect:
// a table on a terminal, tab-separated lines with RFC 3339 times when piped,
// and json, jsonl, csv or tsv on request (-o/--output). JSON field names come
// from the json tags of the printed types (td.Job's are the contract).
package output

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
)

// Format is an output format.
type Format string

// Output formats.
const (
	FormatAuto  Format = ""      // table on a terminal, tsv when piped
	FormatTable Format = "table" // aligned columns with a header
	FormatTSV   Format = "tsv"   // tab-separated, no header, RFC 3339 times
	FormatCSV   Format = "csv"   // RFC 4180 with a header, RFC 3339 times
	FormatJSON  Format = "json"  // one JSON document (an array for lists)
	FormatJSONL Format = "jsonl" // one JSON object per line
)

// Formats lists the accepted -o values.
var Formats = []string{"table", "tsv", "csv", "json", "jsonl"}

// AddFormatFlag registers -o/--output on cmd.
func AddFormatFlag(cmd *cobra.Command, f *Format) {
	cmd.Flags().VarP((*formatValue)(f), "output", "o", "output format: table|tsv|csv|json|jsonl (default: table on a terminal, tsv when piped)")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return Formats, cobra.ShellCompDirectiveNoFileComp
	})
}

type formatValue Format

func (v *formatValue) String() string { return string(*v) }
func (v *formatValue) Type() string   { return "format" }
func (v *formatValue) Set(s string) error {
	switch Format(strings.ToLower(s)) {
	case FormatTable, FormatTSV, FormatCSV, FormatJSON, FormatJSONL:
		*v = formatValue(strings.ToLower(s))
		return nil
	}
	return fmt.Errorf("unknown format %q: use one of %s", s, strings.Join(Formats, ", "))
}

// Printer writes one command's output.
type Printer struct {
	IO     *iostreams.IOStreams
	Format Format
	// Redact, when set, masks secrets in JSON output (values a server
	// returned as they were given, such as an attempt's params).
	Redact func(string) string
}

// New returns a printer resolving FormatAuto from the terminal state.
func New(ios *iostreams.IOStreams, f Format) *Printer {
	if f == FormatAuto {
		f = FormatTSV
		if ios.IsStdoutTTY() {
			f = FormatTable
		}
	}
	return &Printer{IO: ios, Format: f}
}

// Structured reports whether the format is JSON or JSON lines.
func (p *Printer) Structured() bool { return p.Format == FormatJSON || p.Format == FormatJSONL }

// Human reports whether output is the terminal table.
func (p *Printer) Human() bool { return p.Format == FormatTable }

// JSON writes v: indented for json, one compact line for jsonl.
func (p *Printer) JSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if p.Format == FormatJSON {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	return p.write(buf.Bytes())
}

// write writes encoded JSON, masked when p.Redact is set.
func (p *Printer) write(b []byte) error {
	if p.Redact != nil {
		b = []byte(p.Redact(string(b)))
	}
	_, err := p.IO.Out.Write(b)
	return err
}

// JSONList writes items as one JSON array (json) or one line each (jsonl).
func JSONList[T any](p *Printer, items []T) error {
	if items == nil {
		items = []T{}
	}
	if p.Format == FormatJSON {
		return p.JSON(items)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		buf.Reset()
		if err := enc.Encode(it); err != nil {
			return err
		}
		if err := p.write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// Time formats t for the current format: "2006-01-02 15:04:05 UTC"-style in
// the terminal table, RFC 3339 otherwise; "" for nil or zero.
func (p *Printer) Time(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	if p.Human() {
		return t.UTC().Format("2006-01-02 15:04:05 MST")
	}
	return t.UTC().Format(time.RFC3339)
}

// Int formats a nullable number ("" for nil).
func Int(n *int64) string {
	if n == nil {
		return ""
	}
	return fmt.Sprint(*n)
}

// Table collects rows and renders them in the printer's format.
type Table struct {
	p       *Printer
	headers []string
	rows    [][]string
}

// Table starts a table with the given column headers (upper case in the
// terminal, as given for csv).
func (p *Printer) Table(headers ...string) *Table {
	return &Table{p: p, headers: headers}
}

// Row adds a row.
func (t *Table) Row(fields ...string) { t.rows = append(t.rows, fields) }

// Render writes the table. Control characters and bytes that are not
// UTF-8 in a field are escaped (cmdutil.Escape): a value may hold anything
// its writer put there (JSON output keeps it exact).
func (t *Table) Render() error {
	w := t.p.IO.Out
	switch t.p.Format {
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(escapeAll(t.headers)); err != nil {
			return err
		}
		for _, r := range t.rows {
			if err := cw.Write(escapeAll(r)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case FormatTable:
		return t.renderTerminal(w)
	default: // tsv
		for _, r := range t.rows {
			clean := make([]string, len(r))
			for i, f := range r {
				clean[i] = cmdutil.Escape(TSVField(f))
			}
			if _, err := io.WriteString(w, strings.Join(clean, "\t")+"\n"); err != nil {
				return err
			}
		}
		return nil
	}
}

// renderTerminal aligns the columns, two spaces apart, with display widths
// from go-runewidth (CJK characters take two cells, combining marks none);
// not tablewriter, whose init cost every start (docs/design.md).
// When the terminal is narrower than the table, the widest columns are cut
// with "…" first, down to their header's width.
func (t *Table) renderTerminal(w io.Writer) error {
	const gap = 2
	n := len(t.headers)
	cells := make([][]string, 0, len(t.rows)+1)
	hdr := make([]string, n)
	for i, h := range t.headers {
		hdr[i] = strings.ToUpper(h)
	}
	cells = append(cells, hdr)
	for _, r := range t.rows {
		row := make([]string, n)
		for i := range row {
			if i < len(r) {
				row[i] = cmdutil.Escape(oneLine(r[i]))
			}
		}
		cells = append(cells, row)
	}
	widths := make([]int, n)
	for _, r := range cells {
		for i, c := range r {
			widths[i] = max(widths[i], runewidth.StringWidth(c))
		}
	}
	shrinkColumns(widths, hdr, gap, t.p.IO.TerminalWidth())
	var b strings.Builder
	for _, r := range cells {
		b.Reset()
		for i, c := range r {
			if runewidth.StringWidth(c) > widths[i] {
				c = runewidth.Truncate(c, widths[i], "…")
			}
			b.WriteString(c)
			if i < n-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-runewidth.StringWidth(c)+gap))
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// shrinkColumns narrows the widest columns, one cell at a time, until the
// table fits in total cells (0 = no limit) or every column is down to its
// header's width (at least 3 cells, room for "x…").
func shrinkColumns(widths []int, headers []string, gap, total int) {
	if total <= 0 || len(widths) == 0 {
		return
	}
	used := gap * (len(widths) - 1)
	for _, w := range widths {
		used += w
	}
	for used > total {
		widest := -1
		for i, w := range widths {
			if w > max(3, runewidth.StringWidth(headers[i])) && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			return
		}
		widths[widest]--
		used--
	}
}

// TSVField makes a value safe for one tab-separated field: tabs and line
// breaks become spaces.
func TSVField(s string) string {
	if !strings.ContainsAny(s, "\t\r\n") {
		return s
	}
	return strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func escapeAll(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = cmdutil.Escape(f)
	}
	return out
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return s
}

// Truncate shortens s to n runes with an ellipsis (terminal display only).
func Truncate(s string, n int) string {
	s = oneLine(s)
	r := []rune(s)
	if n <= 1 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// KeyValues prints "key: value" pairs for one object: aligned in the
// terminal, "key<TAB>value" lines when piped, a two-column csv otherwise.
func (p *Printer) KeyValues(pairs [][2]string) error {
	switch p.Format {
	case FormatTable:
		width := 0
		for _, kv := range pairs {
			width = max(width, len(kv[0]))
		}
		for _, kv := range pairs {
			if _, err := fmt.Fprintf(p.IO.Out, "%-*s  %s\n", width+1, kv[0]+":", cmdutil.Escape(kv[1])); err != nil {
				return err
			}
		}
		return nil
	default:
		t := p.Table("key", "value")
		for _, kv := range pairs {
			t.Row(kv[0], kv[1])
		}
		return t.Render()
	}
}

// CheckFormat rejects formats a command cannot print.
func CheckFormat(f Format, allowed ...Format) error {
	if f == FormatAuto {
		return nil
	}
	for _, a := range allowed {
		if f == a {
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return cmdutil.FlagErrorf("--output %s is not available here: use %s", f, strings.Join(names, ", "))
}

// Command decode measures msgpack.gz → CSV conversion of www_access-like
// rows with td.NewRowReader (the path of `tdctl job result -f csv`) beside
// the gzip floor measured in the same run (zcat of the same file to
// /dev/null), each the median of -runs runs, alternating (on these shared
// VMs a single run swings by a third).
//
//	go run ./bench/decode [-rows 1000000] [-runs 5]
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/td"
)

func main() {
	n := flag.Int("rows", 1_000_000, "rows in the result")
	runs := flag.Int("runs", 5, "runs of each (the median is reported)")
	summaryFile := flag.String("summary", "", "append the figures to this file (bench/run's combined table)")
	flag.Parse()
	if err := run(*n, *runs, *summaryFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/decode:", err)
		os.Exit(1)
	}
}

func run(n, runs int, summaryFile string) error {
	file, err := generate(n)
	if err != nil {
		return err
	}
	st, _ := os.Stat(file)
	_, haveZcat := exec.LookPath("zcat")
	var decodes, zcats []float64
	rows := 0
	for range max(runs, 1) {
		if haveZcat == nil {
			start := time.Now()
			if err := exec.Command("sh", "-c", "zcat < "+file+" > /dev/null").Run(); err != nil {
				return fmt.Errorf("zcat: %w", err)
			}
			zcats = append(zcats, time.Since(start).Seconds())
		}
		el, r, err := decodeToCSV(file)
		if err != nil {
			return err
		}
		decodes, rows = append(decodes, el), r
	}
	el := median(decodes)
	fmt.Printf("msgpack.gz → CSV: %d rows (%.1f MB gz) in %.2f s = %.2f M rows/s (median of %d; %.2f–%.2f)",
		rows, float64(st.Size())/1e6, el, float64(rows)/el/1e6, len(decodes),
		float64(rows)/slices.Max(decodes)/1e6, float64(rows)/slices.Min(decodes)/1e6)
	f1 := summary.Figure{
		Name: "msgpack.gz -> CSV decode", Value: float64(rows) / el, Unit: "rows/s",
		Reference: "zcat of the same file (the gzip floor)", Target: ">= 1M rows/s", OK: float64(rows)/el >= 1e6,
		Note: fmt.Sprintf("%d www_access-like rows, median of %d", rows, len(decodes)),
	}
	if len(zcats) > 0 {
		zcat := median(zcats)
		fmt.Printf("; zcat alone %.2f s (%.2f M rows/s floor), ratio to floor %.2f", zcat, float64(rows)/zcat/1e6, zcat/el)
		f1.RefValue, f1.Ratio = float64(rows)/zcat, zcat/el
	}
	fmt.Println()
	return summary.Append(summaryFile, f1)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// decodeToCSV converts file as `tdctl job result -f csv` does, to nowhere,
// and returns the seconds it took and the rows.
func decodeToCSV(file string) (float64, int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	start := time.Now()
	rr, err := td.NewRowReader(bufio.NewReaderSize(f, 1<<20), nil)
	if err != nil {
		return 0, 0, err
	}
	defer rr.Close()
	w := csv.NewWriter(bufio.NewWriterSize(io.Discard, 1<<20))
	rec := make([]string, 0, 16)
	rows := 0
	for {
		row, err := rr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		rec = rec[:0]
		for _, v := range row {
			rec = append(rec, format(v))
		}
		if err := w.Write(rec); err != nil {
			return 0, 0, err
		}
		rows++
	}
	w.Flush()
	return time.Since(start).Seconds(), rows, nil
}

func format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// generate writes (once, cached) n www_access-like rows as msgpack.gz.
func generate(n int) (string, error) {
	dir := filepath.Join(os.TempDir(), "tdctl-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("www_access-%d.msgpack.gz", n))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := gzip.NewWriter(bw)
	enc := msgpack.NewEncoder(zw)
	r := rand.New(rand.NewPCG(3, 4))
	paths := []string{"/category/electronics", "/item/books/2811", "/search/?c=Games+Software", "/category/software", "/item/garden/1473"}
	agents := []string{"Mozilla/5.0 (Windows NT 6.1; WOW64; rv:10.0.1) Gecko/20100101 Firefox/10.0.1", "Mozilla/5.0 (compatible; Googlebot/2.1)", "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.0)"}
	for i := 0; i < n; i++ {
		row := []any{
			nil,
			fmt.Sprintf("%d.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256)),
			paths[r.IntN(len(paths))],
			"-",
			int64(200 + 100*r.IntN(3)),
			agents[r.IntN(len(agents))],
			int64(r.IntN(200)),
			"GET",
			int64(1412000000 + i),
		}
		if err := enc.Encode(row); err != nil {
			return "", err
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

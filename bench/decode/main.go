// Command decode measures msgpack.gz → CSV conversion of www_access-like
// rows with td.NewRowReader (the path of `tdctl job result -f csv`) beside
// the gzip floor measured in the same run (zcat of the same file to
// /dev/null).
//
//	go run ./bench/decode [-rows 1000000]
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
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/td"
)

func main() {
	n := flag.Int("rows", 1_000_000, "rows in the result")
	summaryFile := flag.String("summary", "", "append the figures to this file (bench/run's combined table)")
	flag.Parse()
	if err := run(*n, *summaryFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/decode:", err)
		os.Exit(1)
	}
}

func run(n int, summaryFile string) error {
	file, err := generate(n)
	if err != nil {
		return err
	}
	st, _ := os.Stat(file)

	zcat := -1.0
	if _, err := exec.LookPath("zcat"); err == nil {
		start := time.Now()
		cmd := exec.Command("sh", "-c", "zcat < "+file+" > /dev/null")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("zcat: %w", err)
		}
		zcat = time.Since(start).Seconds()
	}

	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	rr, err := td.NewRowReader(bufio.NewReaderSize(f, 1<<20), nil)
	if err != nil {
		return err
	}
	w := csv.NewWriter(bufio.NewWriterSize(io.Discard, 1<<20))
	rec := make([]string, 0, 16)
	rows := 0
	for {
		row, err := rr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rec = rec[:0]
		for _, v := range row {
			rec = append(rec, format(v))
		}
		if err := w.Write(rec); err != nil {
			return err
		}
		rows++
	}
	w.Flush()
	rr.Close()
	el := time.Since(start).Seconds()
	fmt.Printf("msgpack.gz → CSV: %d rows (%.1f MB gz) in %.2f s = %.2f M rows/s", rows, float64(st.Size())/1e6, el, float64(rows)/el/1e6)
	if zcat > 0 {
		fmt.Printf("; zcat alone %.2f s (%.2f M rows/s floor), ratio to floor %.2f", zcat, float64(rows)/zcat/1e6, zcat/el)
	}
	fmt.Println()
	f1 := summary.Figure{
		Name: "msgpack.gz -> CSV decode", Value: float64(rows) / el, Unit: "rows/s",
		Reference: "zcat of the same file (the gzip floor)", Target: ">= 1M rows/s", OK: float64(rows)/el >= 1e6,
		Note: fmt.Sprintf("%d www_access-like rows", rows),
	}
	if zcat > 0 {
		f1.RefValue, f1.Ratio = float64(rows)/zcat, zcat/el
	}
	return summary.Append(summaryFile, f1)
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

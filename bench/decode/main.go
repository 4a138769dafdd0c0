//go:build linux

// Command decode measures `tdctl job result ID -f csv` and `-f jsonl` of
// 1M www_access-like rows beside the floor measured in the same run:
// `curl URL | zcat > /dev/null` of the same emulator URL (fetching and
// merely decompressing the result). Runs alternate in rounds (curl|zcat,
// csv, jsonl) and each figure is the median of -runs rounds: on these
// shared VMs a single run swings by a third. The ratio reported is the
// median of each round's ratio (runs seconds apart); the ratio of the
// median times is printed beside it.
//
//	go run ./bench/decode [-rows 1000000] [-runs 7] [-tdctl PATH]
//
// It starts the TD API emulator in this process, registers a finished job
// whose msgpack.gz result is a generated file (cached under
// $TMPDIR/tdctl-bench) and runs curl, zcat and tdctl as child processes.
// Targets: csv <= 1.0x and jsonl <= 1.2x the time of curl|zcat.
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/internal/emulator"
)

const apiKey = "bench/0123456789abcdef"

func main() {
	n := flag.Int("rows", 1_000_000, "rows in the result")
	runs := flag.Int("runs", 7, "runs of each (the median is reported)")
	tdctl := flag.String("tdctl", "", "tdctl binary (default: build ./cmd/tdctl into a temp dir)")
	summaryFile := flag.String("summary", "", "append the figures to this file (bench/run's combined table)")
	flag.Parse()
	if err := run(*n, *runs, *tdctl, *summaryFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/decode:", err)
		os.Exit(1)
	}
}

func run(n, runs int, tdctl, summaryFile string) error {
	for _, tool := range []string{"curl", "zcat"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed for the reference (curl URL | zcat)", tool)
		}
	}
	file, err := generate(n)
	if err != nil {
		return err
	}
	st, _ := os.Stat(file)
	tmp, err := os.MkdirTemp("", "tdctl-bench-decode")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if tdctl == "" {
		tdctl = filepath.Join(tmp, "tdctl")
		build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tdctl, "./cmd/tdctl")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building tdctl: %w", err)
		}
	}
	srv, err := emulator.New(emulator.Options{APIKeys: []string{apiKey}})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	id, err := srv.AddFinishedJob(emulator.FinishedJob{
		Database: "bench", Query: "SELECT * FROM www_access", Schema: schema, ResultFile: file, NumRecords: int64(n),
	})
	if err != nil {
		return err
	}
	url := base + "/v3/job/result/" + id + "?format=msgpack.gz"
	env := append(os.Environ(), "TD_API_KEY="+apiKey, "TD_API_SERVER="+base)
	floor := []string{"sh", "-c", `curl -sS -f -H "Authorization: TD1 $TD_API_KEY" "$0" | zcat > /dev/null`, url}
	csv := []string{tdctl, "job", "result", id, "-f", "csv", "-o", "/dev/null"}
	jsonl := []string{tdctl, "job", "result", id, "-f", "jsonl", "-o", "/dev/null"}
	var tf, tc, tj, cf, cc, cj []float64 // wall and CPU seconds
	for range max(runs, 1) {
		for _, m := range []struct {
			argv      []string
			into, cpu *[]float64
		}{{floor, &tf, &cf}, {csv, &tc, &cc}, {jsonl, &tj, &cj}} {
			el, cpu, err := timed(m.argv, env)
			if err != nil {
				return err
			}
			*m.into, *m.cpu = append(*m.into, el), append(*m.cpu, cpu)
		}
	}
	mf, mc, mj := summary.Median(tf), summary.Median(tc), summary.Median(tj)
	// each round's ratio pairs runs made seconds apart, so it holds better
	// than the ratio of medians when the machine's load drifts
	rc, rj := summary.Ratios(tc, tf), summary.Ratios(tj, tf)
	fmt.Printf("%d www_access-like rows, %.1f MB msgpack.gz, %d alternating rounds; median (min–max):\n", n, float64(st.Size())/1e6, len(tf))
	fmt.Printf("  curl URL | zcat   %.3f s (%.3f–%.3f)\n", mf, slices.Min(tf), slices.Max(tf))
	fmt.Printf("  tdctl -f csv      %.3f s (%.3f–%.3f); ratio to the floor per round %.2f (%.2f–%.2f), of medians %.2f\n",
		mc, slices.Min(tc), slices.Max(tc), summary.Median(rc), slices.Min(rc), slices.Max(rc), mc/mf)
	fmt.Printf("  tdctl -f jsonl    %.3f s (%.3f–%.3f); ratio to the floor per round %.2f (%.2f–%.2f), of medians %.2f\n",
		mj, slices.Min(tj), slices.Max(tj), summary.Median(rj), slices.Min(rj), slices.Max(rj), mj/mf)
	fmt.Printf("  CPU seconds (user+sys, median): curl|zcat %.3f, csv %.3f, jsonl %.3f\n", summary.Median(cf), summary.Median(cc), summary.Median(cj))
	ref := "curl URL | zcat > /dev/null, same emulator URL"
	note := func(t, r []float64) string {
		return fmt.Sprintf("%d www_access rows, median of %d alternating rounds; time %.2f–%.2f s, ratio per round %.2f–%.2f",
			n, len(tf), slices.Min(t), slices.Max(t), slices.Min(r), slices.Max(r))
	}
	return summary.Append(summaryFile, summary.Figure{
		Name: "job result -f csv (" + note(tc, rc) + ")", Value: mc, Unit: "s",
		Reference: ref, RefValue: mf, Ratio: summary.Median(rc), Target: "<= 1.0x", OK: summary.Median(rc) <= 1.0,
	}, summary.Figure{
		Name: "job result -f jsonl (" + note(tj, rj) + ")", Value: mj, Unit: "s",
		Reference: ref, RefValue: mf, Ratio: summary.Median(rj), Target: "<= 1.2x", OK: summary.Median(rj) <= 1.2,
	})
}

var schema = []emulator.Column{
	{Name: "user", Type: "varchar"}, {Name: "host", Type: "varchar"}, {Name: "path", Type: "varchar"},
	{Name: "referer", Type: "varchar"}, {Name: "code", Type: "bigint"}, {Name: "agent", Type: "varchar"},
	{Name: "size", Type: "bigint"}, {Name: "method", Type: "varchar"}, {Name: "time", Type: "bigint"},
}

// timed runs argv to completion and returns the seconds it took and the
// CPU seconds it and its children used.
func timed(argv, env []string) (float64, float64, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s: %v: %s", strings.Join(argv[:min(len(argv), 4)], " "), err, strings.TrimSpace(stderr.String()))
	}
	el := time.Since(start).Seconds()
	if stderr.Len() > 0 {
		return 0, 0, errors.New(strings.TrimSpace(stderr.String()))
	}
	return el, (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds(), nil
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

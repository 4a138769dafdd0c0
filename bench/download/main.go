//go:build linux

// Command download measures result-download throughput and peak memory of
// tdctl against curl fetching the same emulator URL in the same run.
//
//	go run ./bench/download [-sizes 256,1024] [-runs 3] [-tdctl PATH]
//
// It starts the TD API emulator in this process, registers a finished job
// whose msgpack.gz result is a file of the requested size (generated once
// and cached under $TMPDIR/tdctl-bench), then runs, as child processes,
// `curl -o /dev/null URL` and `tdctl job result ID -f msgpack.gz -o
// /dev/null`, and reports MB/s and peak RSS of each. Targets: tdctl ≥ 0.9× curl, RSS
// ≤ 64 MiB whatever the size.
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/internal/emulator"
)

const apiKey = "bench/0123456789abcdef"

func main() {
	sizes := flag.String("sizes", "256", "result sizes in MiB, comma separated")
	runs := flag.Int("runs", 3, "runs per tool and size (the median is reported)")
	tdctl := flag.String("tdctl", "", "tdctl binary (default: build ./cmd/tdctl into a temp dir)")
	summaryFile := flag.String("summary", "", "append the figures to this file (bench/run's combined table)")
	flag.Parse()
	if err := run(*sizes, *runs, *tdctl, *summaryFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/download:", err)
		os.Exit(1)
	}
}

func run(sizes string, runs int, tdctl, summaryFile string) error {
	if _, err := exec.LookPath("curl"); err != nil {
		return errors.New("curl is needed as the reference: apt-get install curl")
	}
	tmp, err := os.MkdirTemp("", "tdctl-bench-dl")
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

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "size\ttool\tMB/s (median of %d)\tpeak RSS\tvs curl\t\n", runs)
	for _, s := range strings.Split(sizes, ",") {
		mib, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || mib <= 0 {
			return fmt.Errorf("bad size %q", s)
		}
		file, err := resultFile(mib)
		if err != nil {
			return err
		}
		st, _ := os.Stat(file)
		id, err := srv.AddFinishedJob(emulator.FinishedJob{
			Database: "bench", Query: "SELECT * FROM www_access",
			Schema:     []emulator.Column{{Name: "user", Type: "varchar"}, {Name: "host", Type: "varchar"}, {Name: "path", Type: "varchar"}, {Name: "code", Type: "bigint"}, {Name: "size", Type: "bigint"}, {Name: "time", Type: "bigint"}},
			ResultFile: file,
		})
		if err != nil {
			return err
		}
		url := base + "/v3/job/result/" + id + "?format=msgpack.gz"
		curl := []string{"curl", "-sS", "-f", "-o", "/dev/null", "-H", "Authorization: TD1 " + apiKey, url}
		ours := []string{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null"}
		env := append(os.Environ(), "TD_API_KEY="+apiKey, "TD_API_SERVER="+base)
		cs, err := measure(curl, env, runs, st.Size())
		if err != nil {
			return fmt.Errorf("curl: %w", err)
		}
		ts, err := measure(ours, env, runs, st.Size())
		if err != nil {
			return fmt.Errorf("tdctl: %w", err)
		}
		fmt.Fprintf(tw, "%d MiB\tcurl\t%.0f\t%.1f MiB\t1.00\t\n", mib, cs.mbps, cs.rssMiB)
		fmt.Fprintf(tw, "%d MiB\ttdctl\t%.0f\t%.1f MiB\t%.2f\t\n", mib, ts.mbps, ts.rssMiB, ts.mbps/cs.mbps)
		if err := summary.Append(summaryFile, summary.Figure{
			Name: fmt.Sprintf("result download %d MiB", mib), Value: ts.mbps, Unit: "MB/s",
			Reference: "curl, same emulator URL", RefValue: cs.mbps, Ratio: ts.mbps / cs.mbps,
			Target: ">= 0.9x", OK: ts.mbps/cs.mbps >= 0.9, Note: fmt.Sprintf("median of %d", runs),
		}, summary.Figure{
			Name: fmt.Sprintf("result download %d MiB: peak RSS", mib), Value: ts.rssMiB, Unit: "MiB",
			Reference: "curl", RefValue: cs.rssMiB, Ratio: ts.rssMiB / cs.rssMiB,
			Target: "<= 64 MiB", OK: ts.rssMiB <= 64,
		}); err != nil {
			return err
		}
	}
	return tw.Flush()
}

type stats struct{ mbps, rssMiB float64 }

func measure(argv, env []string, runs int, size int64) (stats, error) {
	var speeds, rss []float64
	for i := 0; i < runs; i++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return stats{}, err
		}
		hwm := watchHWM(cmd.Process.Pid)
		if err := cmd.Wait(); err != nil {
			return stats{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		}
		el := time.Since(start).Seconds()
		speeds = append(speeds, float64(size)/1e6/el)
		rss = append(rss, float64(<-hwm)/1024) // KiB → MiB
	}
	return stats{median(speeds), maxOf(rss)}, nil
}

// watchHWM samples the peak RSS (VmHWM in /proc/PID/status) of a running
// process every 2 ms and sends the last value read once it is gone.
// getrusage's ru_maxrss cannot serve: Go starts children with
// CLONE_VM|CLONE_VFORK, and Linux carries the parent's (this benchmark's)
// peak across exec into the child's ru_maxrss, so every child reported
// the benchmark's own RSS. VmHWM is the peak of the process's own memory
// since exec. Both curl and tdctl are measured the same way.
func watchHWM(pid int) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		path := fmt.Sprintf("/proc/%d/status", pid)
		for {
			b, err := os.ReadFile(path)
			if err != nil {
				break
			}
			kb, ok := int64(-1), false
			for _, l := range strings.Split(string(b), "\n") {
				if v, found := strings.CutPrefix(l, "VmHWM:"); found {
					_, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
					ok = err == nil
				}
			}
			if !ok { // a zombie has no VmHWM line: the process is done
				break
			}
			peak = max(peak, kb)
			time.Sleep(2 * time.Millisecond)
		}
		out <- peak
	}()
	return out
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// resultFile returns a cached msgpack.gz file of about mib MiB holding
// www_access-like rows.
func resultFile(mib int) (string, error) {
	dir := filepath.Join(os.TempDir(), "tdctl-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("result-%dMiB.msgpack.gz", mib))
	if st, err := os.Stat(path); err == nil && st.Size() >= int64(mib)<<20 {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "generating a %d MiB msgpack.gz result (cached in %s)...\n", mib, dir)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	cw := &countWriter{w: bufio.NewWriterSize(f, 1<<20)}
	zw, _ := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	enc := msgpack.NewEncoder(zw)
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/category/electronics", "/item/books/2811", "/search/?c=Games", "/category/software", "/item/garden/1473"}
	row := make([]any, 6)
	for cw.n < int64(mib)<<20 {
		for i := 0; i < 1000; i++ {
			row[0] = strconv.FormatUint(r.Uint64(), 36)
			row[1] = fmt.Sprintf("%d.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256))
			row[2] = paths[r.IntN(len(paths))]
			row[3] = int64(200 + 100*r.IntN(4))
			row[4] = int64(r.IntN(200000))
			row[5] = int64(1412000000 + r.IntN(1000000))
			if err := enc.Encode(row); err != nil {
				return "", err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

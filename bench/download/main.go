//go:build linux

// Command download measures result-download throughput and peak memory of
// tdctl against curl fetching the same emulator URL in the same run.
//
//	go run ./bench/download [-sizes 256,1024] [-runs 3] [-cap 50MB] [-cap-size 1024] [-tdctl PATH]
//
// It starts the TD API emulator in this process, registers a finished job
// whose msgpack.gz result is a file of the requested size (generated once
// and cached under $TMPDIR/tdctl-bench), then runs, as child processes,
// `curl -o /dev/null URL` and `tdctl job result ID -f msgpack.gz -o
// /dev/null` (the default: one stream above 64 MiB that adds up to 3
// more range requests once it proves slow), `... --no-verify` and `...
// --no-verify --parallel 1`, alternating the tools run after run (after a
// round that warms up and is not counted), and reports
// the median MB/s with its spread (min–max) and the peak RSS of each.
// Target: tdctl --no-verify ≥ 1.2× curl (both write the bytes unchecked;
// the median of each round's ratio),
// RSS ≤ 64 MiB whatever the size. By default tdctl also inflates a
// msgpack.gz body on the side to check its gzip CRC before committing it,
// which bounds it by one core's inflate speed: that figure is reported
// beside, without a target.
//
// Then a second emulator paces each connection to -cap bytes per second
// (emulator.Options.ConnBandwidth, as `tdctl dev-server --conn-bandwidth`)
// and the -cap-size result is fetched with --parallel 1, --parallel 4 to
// /dev/null (the in-order reorder buffer) and --parallel 4 -o FILE (ranges
// written at their offsets), each checked and --no-verify, alternating.
// Target: --parallel 4 --no-verify ≥ 3.5× the throughput of --parallel 1
// --no-verify, and so for the default (no --parallel: the automatic
// choice), peak RSS ≤ 64 MiB. The same run also measures the SDK alone
// (td.ResultsService.Download into /dev/null, Parallel 1 and 4, in a
// child process: this program run with -sdk-get).
//
// Every size's bytes are checked once: curl's file, tdctl's -o FILE (checked
// and --no-verify) and
// tdctl's stdout (both with --parallel 4) must have the source's SHA-256.
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

const apiKey = "bench/0123456789abcdef"

func main() {
	sizes := flag.String("sizes", "256", "result sizes in MiB, comma separated")
	runs := flag.Int("runs", 3, "runs per tool and size (the median is reported)")
	capRate := flag.String("cap", "50MB", "per-connection bandwidth of the capped run (\"\" or 0: skip it)")
	capSize := flag.Int("cap-size", 1024, "result size in MiB of the capped run")
	capRuns := flag.Int("cap-runs", 3, "runs per tool of the capped run")
	tdctl := flag.String("tdctl", "", "tdctl binary (default: build ./cmd/tdctl into a temp dir)")
	baseline := flag.String("baseline", "", "also run this tdctl binary (e.g. one built from main) in the uncapped runs, as the \"today\" reference")
	summaryFile := flag.String("summary", "", "append the figures to this file (bench/run's combined table)")
	sdkJob := flag.String("sdk-get", "", "internal: download this job's result with td.ResultsService.Download to /dev/null and exit (the SDK figure's child process)")
	sdkParallel := flag.Int("sdk-parallel", 1, "internal: DownloadOptions.Parallel of -sdk-get")
	flag.Parse()
	if *sdkJob != "" {
		if err := sdkGet(*sdkJob, *sdkParallel); err != nil {
			fmt.Fprintln(os.Stderr, "bench/download -sdk-get:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*sizes, *runs, *capRate, *capSize, *capRuns, *tdctl, *baseline, *summaryFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/download:", err)
		os.Exit(1)
	}
}

// serve starts an emulator on a loopback port.
func serve(opts emulator.Options) (*emulator.Server, string, func(), error) {
	opts.APIKeys = []string{apiKey}
	srv, err := emulator.New(opts)
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, "", nil, err
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	return srv, "http://" + ln.Addr().String(), func() { hs.Close(); srv.Close() }, nil
}

func addJob(srv *emulator.Server, file string) (string, error) {
	return srv.AddFinishedJob(emulator.FinishedJob{
		Database: "bench", Query: "SELECT * FROM www_access",
		Schema:     []emulator.Column{{Name: "user", Type: "varchar"}, {Name: "host", Type: "varchar"}, {Name: "path", Type: "varchar"}, {Name: "code", Type: "bigint"}, {Name: "size", Type: "bigint"}, {Name: "time", Type: "bigint"}},
		ResultFile: file,
	})
}

func run(sizes string, runs int, capRate string, capSize, capRuns int, tdctl, baseline, summaryFile string) error {
	if _, err := exec.LookPath("curl"); err != nil {
		return errors.New("curl is needed as the reference: apt-get install curl")
	}
	var capBps uint64
	if capRate != "" && capRate != "0" {
		var err error
		if capBps, err = humanize.ParseBytes(capRate); err != nil {
			return fmt.Errorf("bad -cap %q: %v", capRate, err)
		}
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
	srv, base, stop, err := serve(emulator.Options{})
	if err != nil {
		return err
	}
	defer stop()
	env := append(os.Environ(), "TD_API_KEY="+apiKey, "TD_API_SERVER="+base)

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "size\ttool\tMB/s (median of %d)\tmin–max\tpeak RSS\tvs curl\t\n", runs)
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
		id, err := addJob(srv, file)
		if err != nil {
			return err
		}
		url := base + "/v3/job/result/" + id + "?format=msgpack.gz"
		if err := sameBytes(file, tmp, url, tdctl, id, env); err != nil {
			return err
		}
		tools := [][]string{
			{"curl", "-sS", "-f", "-o", "/dev/null", "-H", "Authorization: TD1 " + apiKey, url},
			{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null"},
			{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null", "--no-verify"},
			{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null", "--no-verify", "--parallel", "1"},
		}
		if baseline != "" {
			tools = append(tools, []string{baseline, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null"})
		}
		res, err := measureAlternating(tools, env, runs, st.Size())
		if err != nil {
			return err
		}
		cs, ts, nv, nv1 := res[0], res[1], res[2], res[3]
		fmt.Fprintf(tw, "%d MiB\tcurl\t%.0f\t%s\t%.1f MiB\t1.00\t\n", mib, cs.mbps, cs.spread(), cs.rssMiB)
		fmt.Fprintf(tw, "%d MiB\ttdctl (default)\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", mib, ts.mbps, ts.spread(), ts.rssMiB, ts.mbps/cs.mbps)
		fmt.Fprintf(tw, "%d MiB\ttdctl --no-verify (automatic)\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", mib, nv.mbps, nv.spread(), nv.rssMiB, nv.mbps/cs.mbps)
		fmt.Fprintf(tw, "%d MiB\ttdctl --no-verify --parallel 1\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", mib, nv1.mbps, nv1.spread(), nv1.rssMiB, nv1.mbps/cs.mbps)
		if baseline != "" {
			b := res[4]
			fmt.Fprintf(tw, "%d MiB\tbaseline tdctl\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", mib, b.mbps, b.spread(), b.rssMiB, b.mbps/cs.mbps)
		}
		baseNote := ""
		if baseline != "" {
			baseNote = fmt.Sprintf("; -baseline tdctl: %.0f MB/s", res[4].mbps)
		}
		// the target compares like with like: curl writes the bytes
		// unchecked, and so does --no-verify; the default's gzip check
		// (inflating on the side) is reported beside it. A run lasts a
		// third of a second here, so the ratio is the median of each
		// round's ratio (the two tools seconds apart), which a drifting
		// neighbour moves less than the ratio of the two medians.
		ratio := roundRatio(nv, cs)
		fmt.Fprintf(tw, "%d MiB\t--no-verify vs curl, median of the rounds' ratios\t\t\t\t%.2f\t\n", mib, ratio)
		if err := summary.Append(summaryFile, summary.Figure{
			Name: fmt.Sprintf("result download %d MiB, --no-verify", mib), Value: nv.mbps, Unit: "MB/s",
			Reference: "curl, same emulator URL", RefValue: cs.mbps, Ratio: ratio,
			Target: ">= 1.2x", OK: ratio >= 1.2,
			Note: fmt.Sprintf("median of %d; tdctl %s, curl %s; ratio: median of the rounds' ratios (of the medians: %.2f); --parallel 1: %.0f MB/s", runs, nv.spread(), cs.spread(), nv.mbps/cs.mbps, nv1.mbps),
		}, summary.Figure{
			Name: fmt.Sprintf("result download %d MiB, default (gzip CRC checked: one core's inflate)", mib), Value: ts.mbps, Unit: "MB/s",
			Reference: "curl, same emulator URL", RefValue: cs.mbps, Ratio: ts.mbps / cs.mbps,
			Note: fmt.Sprintf("median of %d; %s%s", runs, ts.spread(), baseNote),
		}, summary.Figure{
			Name: fmt.Sprintf("result download %d MiB: peak RSS", mib), Value: max(ts.rssMiB, nv.rssMiB), Unit: "MiB",
			Reference: "curl", RefValue: cs.rssMiB, Ratio: max(ts.rssMiB, nv.rssMiB) / cs.rssMiB,
			Target: "<= 64 MiB", OK: max(ts.rssMiB, nv.rssMiB) <= 64,
			Note: "worst of default and --no-verify",
		}); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if capBps == 0 {
		return nil
	}
	return capped(capBps, capSize, capRuns, tmp, tdctl, summaryFile)
}

// capped measures --parallel 1 against --parallel 4 under a per-connection
// bandwidth cap.
func capped(bps uint64, mib, runs int, tmp, tdctl, summaryFile string) error {
	srv, base, stop, err := serve(emulator.Options{ConnBandwidth: int64(bps)})
	if err != nil {
		return err
	}
	defer stop()
	env := append(os.Environ(), "TD_API_KEY="+apiKey, "TD_API_SERVER="+base)
	file, err := resultFile(mib)
	if err != nil {
		return err
	}
	st, _ := os.Stat(file)
	id, err := addJob(srv, file)
	if err != nil {
		return err
	}
	out := filepath.Join(tmp, "capped.msgpack.gz")
	outNV := filepath.Join(tmp, "capped-no-verify.msgpack.gz")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tools := [][]string{
		{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null", "--parallel", "1"},
		{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null", "--parallel", "4"},
		{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", out, "--parallel", "4"},
		{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null", "--parallel", "1", "--no-verify"},
		{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null", "--parallel", "4", "--no-verify"},
		{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", outNV, "--parallel", "4", "--no-verify"},
		{self, "-sdk-get", id, "-sdk-parallel", "1"},
		{self, "-sdk-get", id, "-sdk-parallel", "4"},
		{tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", "/dev/null", "--no-verify"},
	}
	res, err := measureAlternating(tools, env, runs, st.Size())
	if err != nil {
		return err
	}
	if err := sameFile(file, out); err != nil {
		return fmt.Errorf("capped --parallel 4 -o FILE: %w", err)
	}
	if err := sameFile(file, outNV); err != nil {
		return fmt.Errorf("capped --parallel 4 --no-verify -o FILE: %w", err)
	}
	p1, p4, p4f, n1, n4, n4f, s1, s4, na := res[0], res[1], res[2], res[3], res[4], res[5], res[6], res[7], res[8]
	rate := humanize.Bytes(bps)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\n%d MiB at %s/s per connection\ttool\tMB/s (median of %d)\tmin–max\tpeak RSS\tvs --parallel 1\t\n", mib, rate, runs)
	fmt.Fprintf(tw, "\ttdctl --parallel 1\t%.0f\t%s\t%.1f MiB\t1.00\t\n", p1.mbps, p1.spread(), p1.rssMiB)
	fmt.Fprintf(tw, "\ttdctl --parallel 4 -o /dev/null\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", p4.mbps, p4.spread(), p4.rssMiB, p4.mbps/p1.mbps)
	fmt.Fprintf(tw, "\ttdctl --parallel 4 -o FILE\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", p4f.mbps, p4f.spread(), p4f.rssMiB, p4f.mbps/p1.mbps)
	fmt.Fprintf(tw, "\ttdctl --no-verify --parallel 1\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", n1.mbps, n1.spread(), n1.rssMiB, n1.mbps/p1.mbps)
	fmt.Fprintf(tw, "\ttdctl --no-verify --parallel 4 -o /dev/null\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", n4.mbps, n4.spread(), n4.rssMiB, n4.mbps/p1.mbps)
	fmt.Fprintf(tw, "\ttdctl --no-verify --parallel 4 -o FILE\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", n4f.mbps, n4f.spread(), n4f.rssMiB, n4f.mbps/p1.mbps)
	fmt.Fprintf(tw, "\tSDK Download, Parallel 1\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", s1.mbps, s1.spread(), s1.rssMiB, s1.mbps/p1.mbps)
	fmt.Fprintf(tw, "\tSDK Download, Parallel 4\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", s4.mbps, s4.spread(), s4.rssMiB, s4.mbps/p1.mbps)
	fmt.Fprintf(tw, "\ttdctl --no-verify (no --parallel: automatic)\t%.0f\t%s\t%.1f MiB\t%.2f\t\n", na.mbps, na.spread(), na.rssMiB, na.mbps/n1.mbps)
	if err := tw.Flush(); err != nil {
		return err
	}
	name := fmt.Sprintf("download %d MiB at %s/s per connection", mib, rate)
	worst := max(p4.rssMiB, p4f.rssMiB, n4.rssMiB, n4f.rssMiB, na.rssMiB)
	return summary.Append(summaryFile, summary.Figure{
		Name: name + ", --parallel 4 --no-verify", Value: n4.mbps, Unit: "MB/s",
		Reference: "--parallel 1 --no-verify, same run", RefValue: n1.mbps, Ratio: n4.mbps / n1.mbps,
		Target: ">= 3.5x", OK: n4.mbps/n1.mbps >= 3.5,
		Note: fmt.Sprintf("median of %d; %s vs %s; -o FILE (pwrite) %.0f MB/s", runs, n4.spread(), n1.spread(), n4f.mbps),
	}, summary.Figure{
		Name: name + ", no --parallel (automatic: adds connections once one proves slow), --no-verify", Value: na.mbps, Unit: "MB/s",
		Reference: "--parallel 1 --no-verify, same run", RefValue: n1.mbps, Ratio: na.mbps / n1.mbps,
		Target: ">= 3.5x", OK: na.mbps/n1.mbps >= 3.5,
		Note: fmt.Sprintf("median of %d; %s vs %s", runs, na.spread(), n1.spread()),
	}, summary.Figure{
		Name: name + ", --parallel 4, default (gzip CRC checked: one core's inflate)", Value: p4.mbps, Unit: "MB/s",
		Reference: "--parallel 1, same run", RefValue: p1.mbps, Ratio: p4.mbps / p1.mbps,
		Note: fmt.Sprintf("median of %d; %s vs %s; -o FILE (pwrite) %.0f MB/s", runs, p4.spread(), p1.spread(), p4f.mbps),
	}, summary.Figure{
		Name: name + ", --parallel 4: peak RSS", Value: worst, Unit: "MiB",
		Reference: "--parallel 1", RefValue: p1.rssMiB, Ratio: worst / p1.rssMiB,
		Target: "<= 64 MiB", OK: worst <= 64,
		Note: "worst of -o /dev/null and -o FILE, checked and --no-verify",
	}, summary.Figure{
		Name: name + ", SDK Download Parallel 4 (no gzip check)", Value: s4.mbps, Unit: "MB/s",
		Reference: "Parallel 1, same run", RefValue: s1.mbps, Ratio: s4.mbps / s1.mbps,
		Target: ">= 3.5x", OK: s4.mbps/s1.mbps >= 3.5,
		Note: fmt.Sprintf("median of %d; %s vs %s; peak RSS %.1f MiB", runs, s4.spread(), s1.spread(), s4.rssMiB),
	})
}

// sdkGet is the child process of the SDK figure: td.ResultsService.Download
// of a job's result into /dev/null, with the endpoint and key from the
// environment, as tdctl would get them, but without tdctl's gzip check.
func sdkGet(id string, parallel int) error {
	c, err := td.NewClient(os.Getenv("TD_API_KEY"), td.WithEndpoint(os.Getenv("TD_API_SERVER")))
	if err != nil {
		return err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devNull.Close()
	_, err = c.Results.Download(context.Background(), id, td.FormatMsgpackGz, devNull, &td.DownloadOptions{Parallel: parallel})
	return err
}

// sameBytes checks that curl's file, tdctl's -o FILE and tdctl's stdout
// (with --parallel 4) all hold the source file's bytes.
func sameBytes(src, tmp, url, tdctl, id string, env []string) error {
	curlOut, ourOut, nvOut := filepath.Join(tmp, "curl.out"), filepath.Join(tmp, "tdctl.out"), filepath.Join(tmp, "tdctl-no-verify.out")
	defer os.Remove(curlOut)
	defer os.Remove(ourOut)
	defer os.Remove(nvOut)
	cmds := []*exec.Cmd{
		exec.Command("curl", "-sS", "-f", "-o", curlOut, "-H", "Authorization: TD1 "+apiKey, url),
		exec.Command(tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", ourOut, "--parallel", "4"),
		exec.Command(tdctl, "job", "result", id, "-f", "msgpack.gz", "-o", nvOut, "--parallel", "4", "--no-verify"),
	}
	for _, c := range cmds {
		c.Env, c.Stderr = env, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s: %w", c.Path, err)
		}
	}
	for _, f := range []string{curlOut, ourOut, nvOut} {
		if err := sameFile(src, f); err != nil {
			return err
		}
	}
	c := exec.Command(tdctl, "job", "result", id, "-f", "msgpack.gz", "--parallel", "4")
	c.Env, c.Stderr = env, os.Stderr
	h := sha256.New()
	c.Stdout = h
	if err := c.Run(); err != nil {
		return fmt.Errorf("tdctl to stdout: %w", err)
	}
	want, err := fileSum(src)
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("tdctl --parallel 4 to stdout: sha256 %s, want %s", got, want)
	}
	return nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sameFile(want, got string) error {
	a, err := fileSum(want)
	if err != nil {
		return err
	}
	b, err := fileSum(got)
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("%s: sha256 %s, want %s (the source)", got, b, a)
	}
	return nil
}

type stats struct {
	mbps, lo, hi, rssMiB float64
	rounds               []float64 // MB/s of each round, in order
}

// roundRatio is the median over the rounds of a's speed over b's.
func roundRatio(a, b stats) float64 {
	return summary.Median(summary.Ratios(a.rounds, b.rounds))
}

func (s stats) spread() string { return fmt.Sprintf("%.0f–%.0f", s.lo, s.hi) }

// measureAlternating runs each tool once per round, runs rounds, so that
// a noisy neighbour hits them all alike, and returns each tool's median.
// A first round, not counted, warms the page cache and the binaries.
func measureAlternating(tools [][]string, env []string, runs int, size int64) ([]stats, error) {
	for _, argv := range tools {
		if _, _, err := once(argv, env, size); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	speeds := make([][]float64, len(tools))
	rss := make([][]float64, len(tools))
	for range runs {
		for i, argv := range tools {
			mbps, r, err := once(argv, env, size)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
			}
			speeds[i] = append(speeds[i], mbps)
			rss[i] = append(rss[i], r)
		}
	}
	out := make([]stats, len(tools))
	for i := range tools {
		rounds := slices.Clone(speeds[i])
		sort.Float64s(speeds[i])
		out[i] = stats{mbps: summary.Median(speeds[i]), lo: speeds[i][0], hi: speeds[i][len(speeds[i])-1], rssMiB: maxOf(rss[i]), rounds: rounds}
	}
	return out, nil
}

func once(argv, env []string, size int64) (mbps, rssMiB float64, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	hwm := watchHWM(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	el := time.Since(start).Seconds()
	return float64(size) / 1e6 / el, float64(<-hwm) / 1024, nil // KiB → MiB
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

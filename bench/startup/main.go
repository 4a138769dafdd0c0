// Command startup measures how long `tdctl version` takes to start, beside a
// bare cobra + viper program (bench/startup/bare) built in the same run, and
// lists tdctl's most expensive package initialisers (GODEBUG=inittrace=1).
//
//	go run ./bench/startup            # 50 runs each, fails when tdctl > 1.3× bare
//	go run ./bench/startup -n 200 -max-ratio 0
//
// Both binaries are built the way releases are (-trimpath, -ldflags "-s -w",
// CGO_ENABLED=0) and run alternately so drift on a shared machine hits both.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 50, "runs per binary")
	maxRatio := flag.Float64("max-ratio", 1.3, "fail when tdctl's median exceeds bare's by more than this factor (0 = never fail)")
	top := flag.Int("top", 10, "how many of tdctl's package inits to list")
	flag.Parse()

	dir, err := os.MkdirTemp("", "tdctl-startup-*")
	check(err)
	defer os.RemoveAll(dir)
	tdctl := filepath.Join(dir, "tdctl")
	bare := filepath.Join(dir, "bare")
	build(tdctl, "./cmd/tdctl")
	build(bare, "./bench/startup/bare")

	for i := 0; i < 3; i++ { // warm the page cache
		run(tdctl)
		run(bare)
	}
	var tt, bt []time.Duration
	for i := 0; i < *n; i++ {
		tt = append(tt, run(tdctl))
		bt = append(bt, run(bare))
	}
	tm, bm := median(tt), median(bt)
	ratio := float64(tm) / float64(bm)
	fmt.Printf("runs: %d each (alternating)\n", *n)
	fmt.Printf("bare cobra+viper version: median %6.2f ms  (min %.2f)\n", ms(bm), ms(slices.Min(bt)))
	fmt.Printf("tdctl version:            median %6.2f ms  (min %.2f)\n", ms(tm), ms(slices.Min(tt)))
	fmt.Printf("ratio tdctl/bare: %.2f (target <= %.2f)\n", ratio, *maxRatio)
	printInits(tdctl, *top)
	if *maxRatio > 0 && ratio > *maxRatio {
		fmt.Fprintf(os.Stderr, "FAIL: tdctl starts %.2fx slower than the bare program (limit %.2fx)\n", ratio, *maxRatio)
		os.Exit(1)
	}
}

func build(out, pkg string) {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	check(cmd.Run())
}

func run(bin string) time.Duration {
	start := time.Now()
	cmd := exec.Command(bin, "version")
	if err := cmd.Run(); err != nil {
		check(fmt.Errorf("%s version: %w", bin, err))
	}
	return time.Since(start)
}

// printInits lists the slowest package initialisers of `bin version`.
func printInits(bin string, top int) {
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	check(cmd.Run())
	type initCost struct {
		pkg   string
		ms    float64
		bytes int
	}
	var inits []initCost
	var total float64
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// init github.com/x/y @1.2 ms, 0.011 ms clock, 1234 bytes, 12 allocs
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] != "init" {
			continue
		}
		c, _ := strconv.ParseFloat(f[4], 64)
		b, _ := strconv.Atoi(f[6])
		inits = append(inits, initCost{f[1], c, b})
		total += c
	}
	slices.SortFunc(inits, func(a, b initCost) int {
		switch {
		case a.ms > b.ms:
			return -1
		case a.ms < b.ms:
			return 1
		}
		return 0
	})
	fmt.Printf("package inits: %d, %.2f ms clock in total; slowest:\n", len(inits), total)
	for i, in := range inits {
		if i >= top {
			break
		}
		fmt.Printf("  %7.3f ms %9d B  %s\n", in.ms, in.bytes, in.pkg)
	}
	for _, in := range inits {
		if strings.HasPrefix(in.pkg, "k8s.io/client-go/kubernetes") {
			fmt.Printf("WARNING: %s is linked (the typed clientset must never be)\n", in.pkg)
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(2)
	}
}

// Command table prints the figures the benchmarks appended to a summary
// file (their -summary flag, bench/internal/summary) as one Markdown table,
// with the machine it ran on; bench/run calls it last.
//
//	go run ./bench/table figures.jsonl
//
// It exits 1 when a figure misses its target, after printing the table.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/tdctl/tdctl/bench/internal/summary"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/table FILE")
		os.Exit(2)
	}
	figs, err := read(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/table:", err)
		os.Exit(2)
	}
	fmt.Printf("Machine: %s; %d cores, %s, Go %s %s/%s, %s.\n\n", host(), runtime.NumCPU(), memory(),
		strings.TrimPrefix(runtime.Version(), "go"), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
	fmt.Println("| figure | tdctl | reference | ratio | target | met |")
	fmt.Println("|---|---|---|---|---|---|")
	missed := 0
	for _, f := range figs {
		ok := "yes"
		if f.Target == "" { // informational: no target of its own
			ok = "—"
		} else if !f.OK {
			ok, missed = "**no**", missed+1
		}
		ref, ratio := "—", "—"
		if f.Reference != "" && f.RefValue != 0 {
			ref = fmt.Sprintf("%s: %s", f.Reference, num(f.RefValue, f.Unit))
			ratio = fmt.Sprintf("%.2f×", f.Ratio)
		} else if f.Reference != "" {
			ref = f.Reference + ": not measured"
		}
		name := f.Name
		if f.Note != "" {
			name += " (" + f.Note + ")"
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", cell(name), num(f.Value, f.Unit), cell(ref), ratio, cell(cmp.Or(f.Target, "—")), ok)
	}
	if missed > 0 {
		fmt.Fprintf(os.Stderr, "bench/table: %d figure(s) miss their target\n", missed)
		os.Exit(1)
	}
}

func read(path string) ([]summary.Figure, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var figs []summary.Figure
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var f summary.Figure
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		figs = append(figs, f)
	}
	return figs, sc.Err()
}

// num prints a value with its unit, rounded to what the figure needs.
func num(v float64, unit string) string {
	switch {
	case unit == "rows/s" && v >= 1e5:
		return fmt.Sprintf("%.2f M rows/s", v/1e6)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func host() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memory() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "memory unknown"
	}
	var kb int64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			fmt.Sscanf(strings.TrimPrefix(l, "MemTotal:"), "%d", &kb)
		}
	}
	return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
}

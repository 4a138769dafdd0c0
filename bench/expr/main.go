// Command expr measures the workflow runner's throughput when tasks use
// ${...} JavaScript expressions, beside the same workflow with plain dotted
// names, in the same run:
//
//	go run ./bench/expr [-tasks 1000] [-runs 9]
//
// Each workflow is a for_each> of -tasks echo> tasks. The reference's
// command holds three dotted names (${i} ${session_date} ${cfg.name}); the
// measured one three expressions (${i * 2}, a moment() date computation
// and a string method call). Runs alternate so both see the same load; the
// figure is the median wall time of a run. Target: JavaScript ≤ 1.5× the
// dotted names (one engine per run, compiled expressions reused).
//
// The runs' directories (a task log per task) go to /dev/shm when it is
// there: on these VMs creating a file on disk costs from 0.1 to 1 ms and
// moves from one run to the next, which hid the expressions' cost (runs
// of both workflows took the same second) or doubled a ratio by chance.
// What is measured is the runner's work for the expressions, not the disk.
package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/internal/operators"
	"github.com/tdctl/tdctl/workflow"
)

func main() {
	tasks := flag.Int("tasks", 1000, "echo> tasks in the for_each>")
	runs := flag.Int("runs", 9, "measured runs of each workflow")
	maxRatio := flag.Float64("max-ratio", 1.5, "target: JavaScript run time / dotted-name run time")
	summaryFile := flag.String("summary", "", "append the figures to this file (bench/run's combined table)")
	flag.Parse()
	if err := run(*tasks, *runs, *maxRatio, *summaryFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/expr:", err)
		os.Exit(1)
	}
}

func source(tasks int, command string) string {
	items := make([]string, tasks)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	return fmt.Sprintf(`timezone: Asia/Tokyo
_export:
  cfg:
    name: bench
+loop:
  for_each>:
    i: [%s]
  _do:
    echo>: "%s"
`, strings.Join(items, ", "), command)
}

const (
	plainCmd = "${i} ${session_date} ${cfg.name}"
	jsCmd    = "${i * 2} ${moment(session_time).add(i, 'days').format('YYYY-MM-DD')} ${cfg.name.toUpperCase()}"
)

// once runs src and returns its wall time and output.
func once(src string) (time.Duration, string, error) {
	wf, err := workflow.Parse("bench.dig", []byte(src))
	if err != nil {
		return 0, "", err
	}
	dir, err := os.MkdirTemp(runsBase, "bench-expr-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: operators.Operators(nil), RunsDir: dir, Output: &out,
		SessionTime: time.Date(2016, 3, 13, 10, 0, 0, 0, time.UTC)}
	if err := r.Check(wf); err != nil {
		return 0, "", err
	}
	start := time.Now()
	if _, err := r.Run(context.Background(), wf); err != nil {
		return 0, "", err
	}
	return time.Since(start), out.String(), nil
}

// runsBase is where the runs' directories go: /dev/shm when writable,
// else the default temporary directory.
var runsBase = func() string {
	if d, err := os.MkdirTemp("/dev/shm", "bench-expr-probe-"); err == nil {
		os.Remove(d)
		return "/dev/shm"
	}
	return ""
}()

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func run(tasks, runs int, maxRatio float64, summaryFile string) error {
	plainSrc, jsSrc := source(tasks, plainCmd), source(tasks, jsCmd)
	// warm-up, and proof that both workflows compute what they claim
	if _, out, err := once(plainSrc); err != nil {
		return err
	} else if want := fmt.Sprintf("%d 2016-03-13 bench", tasks-1); !strings.Contains(out, want) {
		return fmt.Errorf("dotted-name run: output lacks %q", want)
	}
	if _, out, err := once(jsSrc); err != nil {
		return err
	} else if want := "2 2016-03-14 BENCH"; !strings.Contains(out, want) {
		return fmt.Errorf("JavaScript run: output lacks %q", want)
	}
	var plain, js []time.Duration
	for i := 0; i < runs; i++ {
		d, _, err := once(plainSrc)
		if err != nil {
			return err
		}
		plain = append(plain, d)
		if d, _, err = once(jsSrc); err != nil {
			return err
		}
		js = append(js, d)
	}
	p, j := median(plain), median(js)
	ratio := float64(j) / float64(p)
	fmt.Printf("| workflow (%d echo> tasks) | median run | tasks/s |\n|---|---|---|\n", tasks)
	fmt.Printf("| dotted names: %s | %s | %.0f |\n", plainCmd, p.Round(time.Millisecond), float64(tasks)/p.Seconds())
	fmt.Printf("| JavaScript: %s | %s | %.0f |\n", jsCmd, j.Round(time.Millisecond), float64(tasks)/j.Seconds())
	fmt.Printf("ratio %.2f× (target ≤ %.1f×); run directories in %s\n", ratio, maxRatio, cmp.Or(runsBase, os.TempDir()))
	return summary.Append(summaryFile, summary.Figure{
		Name:      fmt.Sprintf("workflow run, for_each> of %d echo> with 3 JavaScript ${...} (median of %d; run directories in %s)", tasks, runs, cmp.Or(runsBase, os.TempDir())),
		Value:     float64(tasks) / j.Seconds(),
		Unit:      "tasks/s",
		Reference: "same with 3 dotted names",
		RefValue:  float64(tasks) / p.Seconds(),
		Ratio:     ratio,
		Target:    fmt.Sprintf("<= %.1fx time", maxRatio),
		OK:        ratio <= maxRatio,
	})
}

package workflowui_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/workflowcmd"
	"github.com/tdctl/tdctl/internal/workflowui"
)

// BenchmarkPages1000 renders the pages of a 1,000-task run (10 groups of
// 100 echo> tasks, run through the runner): the issue asks for under a
// second each. Reading and parsing summary.json is included.
//
//	go test -run '^$' -bench Pages1000 ./internal/workflowui
func BenchmarkPages1000(b *testing.B) {
	var dig strings.Builder
	for g := 0; g < 10; g++ {
		fmt.Fprintf(&dig, "+group_%02d:\n  _parallel: true\n", g)
		for i := 0; i < 100; i++ {
			fmt.Fprintf(&dig, "  +task_%04d:\n    echo>: line of task %04d\n", g*100+i, g*100+i)
		}
	}
	runs := b.TempDir()
	sum, err := runner(b, runs).Run(context.Background(), parse(b, "big.dig", dig.String()))
	if err != nil || len(sum.Tasks) != 1000 {
		b.Fatalf("fixture: %v, %d tasks", err, len(sum.Tasks))
	}
	h := workflowui.New(workflowui.Options{Source: workflowcmd.LocalRuns{Dir: runs}, Mask: cmdutil.Redact})
	for _, page := range []string{"/runs/" + sum.RunID, "/runs/" + sum.RunID + "?failed=1", "/runs/" + sum.RunID + "/log", "/runs/" + sum.RunID + "/tasks/999", "/?"} {
		b.Run(strings.TrimPrefix(strings.ReplaceAll(page, sum.RunID, "RUN"), "/"), func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", page, nil)
				req.Host = "127.0.0.1"
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%s: %d", page, rec.Code)
				}
			}
		})
	}
}

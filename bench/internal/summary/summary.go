// Package summary lets every benchmark under bench/ add its figures to one
// combined table: each program appends JSON lines to the file named by its
// -summary flag, and `go run ./bench/table FILE` prints them as a Markdown
// table (bench/run does both).
package summary

import (
	"encoding/json"
	"fmt"
	"os"
)

// Figure is one measured value beside the reference measured in the same run.
type Figure struct {
	Name      string  `json:"name"`      // what was measured, e.g. "result download 256 MiB"
	Value     float64 `json:"value"`     // tdctl's figure
	Unit      string  `json:"unit"`      // "MB/s", "ms", "rows/s", "calls", ...
	Reference string  `json:"reference"` // what it is compared with, e.g. "curl"
	RefValue  float64 `json:"ref_value"` // the reference's figure, same unit
	// Ratio is Value/RefValue, or RefValue/Value when lower is better, so
	// that the target reads the same way for every row; see Target.
	Ratio  float64 `json:"ratio"`
	Target string  `json:"target"` // e.g. ">= 0.9x", "<= 1.3x", "<= 40 calls"; "" = informational
	OK     bool    `json:"ok"`     // whether the target is met
	Note   string  `json:"note,omitempty"`
}

// Append adds f to the summary file path; an empty path does nothing, so a
// benchmark run on its own needs no -summary flag.
func Append(path string, figs ...Figure) error {
	if path == "" {
		return nil
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	enc := json.NewEncoder(fh)
	for _, f := range figs {
		if err := enc.Encode(f); err != nil {
			fh.Close()
			return fmt.Errorf("summary: %w", err)
		}
	}
	return fh.Close()
}

package output

import (
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/tdctl/tdctl/internal/cli/iostreams"
)

// Progress is a progress bar on stderr, drawn only when stderr is a terminal
// and not in CI (iostreams.ProgressEnabled); otherwise every method is a
// no-op. It is safe for concurrent use.
type Progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// NewSpinner starts an indeterminate progress display (for job waits).
func NewSpinner(ios *iostreams.IOStreams, desc string) *Progress {
	if !ios.ProgressEnabled() {
		return &Progress{}
	}
	return &Progress{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(ios.ErrOut),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)}
}

// NewBytes starts a byte-count progress bar (for downloads); total < 0 means
// unknown.
func NewBytes(ios *iostreams.IOStreams, total int64, desc string) *Progress {
	if !ios.ProgressEnabled() {
		return &Progress{}
	}
	return &Progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(ios.ErrOut),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)}
}

// Describe changes the text beside the bar.
func (p *Progress) Describe(s string) {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Describe(s)
	_ = p.bar.Add(0)
}

// Set moves a byte bar to n (and fixes its total once known).
func (p *Progress) Set(n, total int64) {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if total > 0 && p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(n)
}

// Done clears the bar.
func (p *Progress) Done() {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Finish()
	_ = p.bar.Exit()
}

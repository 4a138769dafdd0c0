package emulator

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the emulator what time it is. Jobs change state when the clock
// passes their queued and running durations.
type Clock interface {
	Now() time.Time
}

// timerClock is implemented by the clocks of this package: it lets the server
// finish jobs in the background when nobody polls them. Other Clock
// implementations work too; their jobs then advance when they are read.
type timerClock interface {
	afterFunc(d time.Duration, f func()) (stop func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) afterFunc(d time.Duration, f func()) func() {
	t := time.AfterFunc(d, f)
	return func() { t.Stop() }
}

// ManualClock is a Clock that moves only when Advance is called. It is safe
// for concurrent use.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers map[int]manualTimer
}

type manualTimer struct {
	at time.Time
	f  func()
}

// NewManualClock returns a ManualClock showing t.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t, timers: map[int]manualTimer{}}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (a negative d is ignored) and starts,
// each in its own goroutine, the callbacks that became due.
func (c *ManualClock) Advance(d time.Duration) {
	if d < 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []manualTimer
	for id, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
			delete(c.timers, id)
		}
	}
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		go t.f()
	}
}

func (c *ManualClock) afterFunc(d time.Duration, f func()) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timers == nil {
		c.timers = map[int]manualTimer{}
	}
	if d <= 0 {
		go f()
		return func() {}
	}
	c.seq++
	id := c.seq
	c.timers[id] = manualTimer{at: c.now.Add(d), f: f}
	return func() {
		c.mu.Lock()
		delete(c.timers, id)
		c.mu.Unlock()
	}
}

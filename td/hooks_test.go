package td

import "time"

// SetTestChunkSize makes parallel downloads use ranges of n bytes until
// the returned function is called (tests: many ranges from a small result).
func SetTestChunkSize(n int64) (restore func()) {
	old := testChunkSize
	testChunkSize = n
	return func() { testChunkSize = old }
}

// TestSplit sets the automatic choice of connections (DownloadOptions.Parallel 0).
type TestSplit struct {
	Above int64         // a result above this size may add connections
	Every time.Duration // how often the one stream's rate is looked at
	Below float64       // bytes/s under which the stream is slow
	Worth time.Duration // add connections only when the rest would take longer
}

// SetTestSplit uses s for the automatic choice until the returned
// function is called.
func SetTestSplit(s TestSplit) (restore func()) {
	a, e, b, w := autoParallelAbove, splitEvery, splitBelow, splitWorth
	autoParallelAbove, splitEvery, splitBelow, splitWorth = s.Above, s.Every, s.Below, s.Worth
	return func() { autoParallelAbove, splitEvery, splitBelow, splitWorth = a, e, b, w }
}

// AlwaysSplit splits at the first look at the stream's rate.
var AlwaysSplit = TestSplit{Above: 1, Every: time.Nanosecond, Below: 1e18, Worth: 0}

// NeverSplit keeps one stream however slow.
var NeverSplit = TestSplit{Above: 1, Every: time.Nanosecond, Below: 0, Worth: 0}

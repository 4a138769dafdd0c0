package td_test

// The fault matrix of parallel ranged downloads: seeded random schedules
// of range cuts, 5xx and 429 (with Retry-After) on chosen ranges, and the
// emulator's own connection resets, around Download (in order, through the
// reorder buffer) and DownloadAt (at offsets). After each: the result is
// byte-identical or the error is a typed one (isClear), every call is
// bounded, and no goroutine is left behind.
//
// It runs the seeds TestFaultMatrix runs (-seeds N; 40 by default, within
// a time budget unless more are asked for). Replay one schedule with
// TDCTL_FAULT_SEED=<seed> go test -run TestFaultMatrixParallel ./td/

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

const (
	fmpBudget = 20 * time.Second // the default run stops starting seeds after this
	fmpChunk  = 64 << 10
)

func TestFaultMatrixParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix skipped in -short mode")
	}
	ignore := goleak.IgnoreCurrent()
	defer td.SetTestChunkSize(fmpChunk)()
	seeds := fmSeedList(t)
	nightly := len(seeds) > fmSeeds
	start := time.Now()
	ran, failed := 0, 0
	for _, seed := range seeds {
		if !nightly && time.Since(start) > fmpBudget {
			t.Logf("time budget spent after %d of %d seeds", ran, len(seeds))
			break
		}
		ran++
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if !runParallelFaultSeed(t, seed) {
				failed++
			}
			if t.Failed() {
				t.Logf("replay with TDCTL_FAULT_SEED=%d", seed)
			}
		})
	}
	t.Logf("%d seeds in %s, %d gave up with a typed error", ran, time.Since(start).Round(time.Millisecond), failed)
	assert.GreaterOrEqual(t, ran, min(len(seeds), 10), "too few seeds ran in the time budget")
	goleak.VerifyNone(t, ignore)
}

// runParallelFaultSeed runs one schedule; it reports whether both
// downloads succeeded.
func runParallelFaultSeed(t *testing.T, seed uint64) bool {
	r := mrand.New(mrand.NewPCG(seed, seed^0x51ab))
	size := 300<<10 + r.IntN(900<<10)
	chunks := (size + fmpChunk - 1) / fmpChunk
	var faults []*rangeFault
	var desc []string
	heals := true // every fault within the retry budget: must succeed
	for range 1 + r.IntN(3) {
		k := r.IntN(chunks)
		f := &rangeFault{offset: int64(k) * fmpChunk, times: 1 + r.IntN(3)}
		switch r.IntN(3) {
		case 0: // a range cut mid-way
			f.cut = 1 + int64(r.IntN(min(fmpChunk, size-k*fmpChunk)-1))
		case 1: // a 5xx on one range
			f.status = []int{500, 502, 503, 504}[r.IntN(4)]
			if r.IntN(4) == 0 {
				f.times = 1 << 20 // never heals: a typed error
				heals = false
			}
		case 2: // a 429 with Retry-After
			f.status, f.retryAfter = 429, strconv.Itoa(r.IntN(2))
		}
		faults = append(faults, f)
		desc = append(desc, fmt.Sprintf("{range %d times %d cut %d status %d ra %q}", k, f.times, f.cut, f.status, f.retryAfter))
	}
	c, id, data, srv := parallelSetup(t, size, faults...)
	if r.IntN(2) == 0 { // and the emulator's own resets, on any request
		n := 1 + r.IntN(3)
		srv.Faults().Add(emulator.Fault{Path: "/v3/job/result/", Times: n, ResetAfterBytes: 1 + int64(r.IntN(fmpChunk))})
		desc = append(desc, fmt.Sprintf("{emulator resets x%d}", n))
	}
	parallel := 2 + r.IntN(5)
	if r.IntN(3) == 0 {
		// the automatic choice: one stream, split at its first look
		// (the first range is then the open-ended first request)
		parallel = 0
		defer td.SetTestSplit(td.AlwaysSplit)()
	}
	t.Logf("seed %d: %d bytes, --parallel %d (0: automatic), faults %v", seed, size, parallel, desc)

	ok := true
	check := func(what string, got []byte, info *td.DownloadInfo, err error) {
		if err != nil {
			ok = false
			t.Logf("seed %d: %s gave up: %v", seed, what, err)
			assert.False(t, heals, "seed %d: %s: every fault was within the budget, yet: %v", seed, what, err)
			assert.True(t, isClear(err), "seed %d: %s: an unclassified error: %v", seed, what, err)
			return
		}
		assert.Equal(t, fmHash(data), fmHash(got), "seed %d: %s: bytes differ", seed, what)
		assert.EqualValues(t, len(data), info.Bytes, "seed %d: %s", seed, what)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	opts := &td.DownloadOptions{Parallel: parallel}
	var buf bytes.Buffer
	var info *td.DownloadInfo
	var err error
	timed(t, "Download", func() { info, err = c.Results.Download(ctx, id, td.FormatMsgpackGz, &buf, opts) })
	check("Download (in order)", buf.Bytes(), info, err)
	m := &memAt{}
	timed(t, "DownloadAt", func() { info, err = c.Results.DownloadAt(ctx, id, td.FormatMsgpackGz, m, opts) })
	check("DownloadAt (at offsets)", m.b, info, err)
	return ok
}

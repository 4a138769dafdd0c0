package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConnBandwidthPacesEachConnection: with Options.ConnBandwidth a
// result comes at that rate on one connection, and four connections at
// once each get it too (the cap is per connection, not shared), so
// parallel range requests are measurably faster on loopback.
func TestConnBandwidthPacesEachConnection(t *testing.T) {
	const rate, size = 4 << 20, 1 << 20 // 1 MiB at 4 MiB/s: 250 ms less the first burst
	file := filepath.Join(t.TempDir(), "r.msgpack.gz")
	require.NoError(t, os.WriteFile(file, make([]byte, size), 0o600))
	s, c := newEmu(t, Options{ConnBandwidth: rate})
	id, err := s.AddFinishedJob(FinishedJob{Schema: []Column{{Name: "a", Type: "varchar"}}, ResultFile: file})
	require.NoError(t, err)

	start := time.Now()
	whole := c.get("/v3/job/result/" + id + "?format=msgpack.gz")
	one := time.Since(start)
	require.Equal(t, 200, whole.status)
	require.Len(t, whole.body, size)
	assert.GreaterOrEqual(t, one, 200*time.Millisecond, "1 MiB at 4 MiB/s")

	start = time.Now()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			q := c.do("GET", "/v3/job/result/"+id+"?format=msgpack.gz", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", i*size/4, (i+1)*size/4-1)})
			assert.Equal(t, 206, q.status)
			assert.Len(t, q.body, size/4)
		})
	}
	wg.Wait()
	four := time.Since(start)
	assert.Less(t, four, one/2, "four connections at once, each at the full rate (one: %s, four: %s)", one, four)

	_, err = New(Options{ConnBandwidth: -1})
	assert.ErrorContains(t, err, "ConnBandwidth must not be negative")
}

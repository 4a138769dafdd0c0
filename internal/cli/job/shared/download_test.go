package shared

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// prefixWriter hands on the file's contiguous start, in order and whole,
// whatever the order of the pieces written at their offsets.
func TestPrefixWriterFeedsTheContiguousStart(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		data := make([]byte, 200_000+r.IntN(100_000))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		require.NoError(t, err)
		// pieces of random sizes, written in a random order
		type piece struct{ off, end int }
		var pieces []piece
		for off := 0; off < len(data); {
			end := min(off+1+r.IntN(30_000), len(data))
			pieces = append(pieces, piece{off, end})
			off = end
		}
		r.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })

		p := newPrefixWriter(f)
		var got bytes.Buffer
		fed := make(chan error, 1)
		go func() { fed <- p.feed(&got) }()
		for _, pc := range pieces {
			_, err := p.WriteAt(data[pc.off:pc.end], int64(pc.off))
			require.NoError(t, err)
		}
		p.end(false)
		require.NoError(t, <-fed)
		assert.Equal(t, data, got.Bytes(), "seed %d", seed)
		assert.Empty(t, p.starts, "seed %d: every part joined the start", seed)
		f.Close()
	}
}

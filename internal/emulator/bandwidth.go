package emulator

import (
	"context"
	"net/http"

	"golang.org/x/time/rate"
)

// pacedWriter paces a response body to a bandwidth (Options.ConnBandwidth).
// It has no ReadFrom, so a file is copied through Write (no sendfile) and
// every byte is paced.
type pacedWriter struct {
	http.ResponseWriter
	ctx context.Context
	lim *rate.Limiter
}

// pacedBurst is the most a paced response sends at once: small enough that
// the rate holds over a few milliseconds.
const pacedBurst = 64 << 10

func newPacedWriter(w http.ResponseWriter, ctx context.Context, bytesPerSec int64) *pacedWriter {
	return &pacedWriter{ResponseWriter: w, ctx: ctx, lim: rate.NewLimiter(rate.Limit(bytesPerSec), pacedBurst)}
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), pacedBurst)
		if err := p.lim.WaitN(p.ctx, n); err != nil {
			return written, err
		}
		m, err := p.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

func (p *pacedWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

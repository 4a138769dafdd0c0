package td

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultReadIdleTimeout is how long a request may wait for the answer's
// headers, or for the next bytes of its body, before it is treated as a lost
// connection (retried or resumed within the call's budget).
const DefaultReadIdleTimeout = 60 * time.Second

// idleError is the read idle timeout firing. It is a network timeout,
// never context.DeadlineExceeded.
type idleError struct {
	d       time.Duration
	headers bool // still waiting for the answer's headers
}

func (e *idleError) Error() string {
	if e.headers {
		return fmt.Sprintf("no answer from the server for %s (read idle timeout)", e.d)
	}
	return fmt.Sprintf("the answer stalled: nothing received for %s (read idle timeout)", e.d)
}

// Timeout makes the error a network timeout (net.Error's method).
func (e *idleError) Timeout() bool { return true }

// idleKey carries a per-request idle timeout (DownloadOptions.IdleTimeout)
// in the request's context.
type idleKey struct{}

// idleTransport bounds every silence of a request: the wait for the
// answer's headers, and each wait for more of its body, by a read idle
// timeout. It cancels the request (its own context, not the caller's) when
// the timeout fires, which works for any RoundTripper, HTTP/2 included. A
// body the caller is not reading is not timed: only a Read in progress is.
type idleTransport struct {
	base http.RoundTripper
	idle time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d := t.idle
	if v, ok := req.Context().Value(idleKey{}).(time.Duration); ok && v > 0 {
		d = v
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(d, func() { cancel(&idleError{d: d, headers: true}) })
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if err != nil {
		cause := context.Cause(ctx)
		cancel(nil)
		if ie, ok := cause.(*idleError); ok {
			return nil, ie
		}
		return nil, err
	}
	var ie *idleError
	if errors.As(context.Cause(ctx), &ie) {
		// the timer fired as the headers arrived: the body is gone
		resp.Body.Close()
		return nil, ie
	}
	body := &idleBody{rc: resp.Body, ctx: ctx, cancel: cancel, d: d}
	body.timer = time.AfterFunc(d, func() { cancel(&idleError{d: d}) })
	body.timer.Stop() // armed by each Read
	resp.Body = body
	return resp, nil
}

// idleBody is a response body whose every Read is bounded by the idle
// timeout.
type idleBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	d      time.Duration
	timer  *time.Timer
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.d)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF {
		var ie *idleError
		if errors.As(context.Cause(b.ctx), &ie) {
			return n, ie
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

package td

import (
	"errors"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/tdctl/tdctl/internal/backoff"
)

// RetryPolicy bounds the attempts of one call. Only calls that are safe to
// repeat are retried (GETs, Kill, Issue and the other job-starting calls
// with a domain_key, creates, deletes and renames whose repeat is
// recognised, schema and expiry updates); other POSTs are sent once.
//
// The budget is per call and shared: a request the transport retries, an
// answer cut after its headers and re-read, and a download resumed after a
// cut all draw from the same MaxRetries+1 attempts. A resumed download that
// received bytes since its last request starts a fresh budget (it made
// progress); DownloadOptions.MaxResumes bounds the resumes overall.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first try (0 = none).
	MaxRetries int
	// MinWait and MaxWait bound the exponential back-off: before retry n
	// (from 0) the wait is drawn from [d/2, d] with d = MinWait·2ⁿ capped at
	// MaxWait ("equal jitter"). MaxWait also caps a server's Retry-After.
	MinWait, MaxWait time.Duration
}

// DefaultRetryPolicy retries 5 times, waiting 500 ms doubling to 30 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 5, MinWait: 500 * time.Millisecond, MaxWait: 30 * time.Second}
}

// budget is one call's attempts (see backoff.Budget), shared by the
// transport's retries, the re-reads of cut answers and download resumes.
type budget = backoff.Budget

func (c *Client) newBudget(retry bool) *budget {
	return &budget{Retry: retry, Transient: isTransientNetErr,
		Policy: backoff.Policy{MaxRetries: c.retry.MaxRetries, MinWait: c.retry.MinWait, MaxWait: c.retry.MaxWait}}
}

// retryClient returns go-retryablehttp's client for one call: it sends the
// requests and sleeps between them, b decides whether and how long.
func (c *Client) retryClient(b *budget) *retryablehttp.Client {
	return b.Client(c.transport, c.logRequest, c.logResponse)
}

// isTransientNetErr is false for errors a retry cannot fix: an answer that
// cannot be decoded (*ProtocolError), and those backoff.Transient refuses
// (a host name that does not exist, TLS that cannot work, a cancelled call).
func isTransientNetErr(err error) bool {
	var protoErr *ProtocolError
	if errors.As(err, &protoErr) {
		return false
	}
	return backoff.Transient(err)
}

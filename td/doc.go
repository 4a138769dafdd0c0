// Package td is a typed client for the Treasure Data REST API v3: query jobs
// (issue, show, status, list, kill, wait), streaming result downloads and row
// decoding, result export (by URL, by connection id + settings, by connection
// name), connections (list, show, lookup) and saved queries (Schedules:
// list, create, update, delete, run for a time, history). Client.NewRequest
// and Client.Do reach any other endpoint with the same retries, redaction
// and typed errors.
//
// A Client is safe for concurrent use. Services hang off it:
//
//	c, err := td.NewClient(os.Getenv("TD_API_KEY"), td.WithEndpoint("eu01"))
//	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Type: "presto", Database: "sample_datasets", Query: "SELECT 1 AS a, 2 AS b"})
//	job, err := c.Jobs.Wait(ctx, issued.JobID, nil)
//	fmt.Println(*job.NumRecords) // 1
//
// Every call takes a context.Context. Failed calls return *APIError, which
// works with errors.Is and the sentinels ErrNotFound, ErrUnauthorized,
// ErrConflict, ErrRateLimited, ErrInvalidRequest and ErrServer; a request
// that got no usable answer is a *NetError (ErrNetwork); an answer that
// cannot be used (not JSON, bad gzip) is a *ProtocolError (ErrProtocol); a
// value the caller gave that is refused before sending (API key, endpoint,
// format, empty id) is an *ArgumentError (ErrInvalidArgument). A job that
// ends in error or killed makes Wait return *JobFailedError (ErrJobFailed);
// a result that cannot be downloaded whole is ErrTruncated, never a silent
// short read.
//
// Retries: GET requests, Kill, Schedules.Update, a Schedules.Run of one job
// (which carries a domain_key like Issue), and Issue (which always carries a domain_key —
// one is generated when the caller gives none) are retried on network errors,
// 429 (honouring Retry-After) and 5xx. Other POSTs are never retried, so a
// retry can never start a second job. A 409 on Issue resolves to the job that
// was created first. Each call has one budget of RetryPolicy.MaxRetries+1
// attempts, shared by lost requests, answers cut mid-way and download
// resumes, with equal-jitter exponential back-off between them. A refused
// connection is tried at most 3 times, a network timeout twice; what cannot
// heal (an unknown host, TLS to a non-TLS port, a certificate that does not
// verify) is tried once.
//
// Time: the context bounds a call, requests in flight and back-off sleeps
// included; a Retry-After or back-off that would end past its deadline is
// not waited for. A server that sends nothing for the read idle timeout
// (WithReadIdleTimeout, default 60 s) — no headers, or a body that stalls —
// counts as a lost connection and is retried or resumed within the budget.
// context.DeadlineExceeded is returned only for the caller's deadline: a
// network timeout is a *NetError whose Timeout method reports true.
//
// No API key or URL password appears in errors or log output: every string
// the package prints goes through Redact and the client's Secrets (its API
// key, and what WithSecrets and AddSecrets add: a program gives its other
// secrets, such as a workflow's, so that they are masked by value).
//
// The package does no printing of its own; pass WithLogger to trace HTTP
// traffic (secrets redacted).
//
// Answers that cannot be trusted are never acted on. Wait reports a job's end
// only when its status and the full job read after it agree: an answer of {}
// or a lagging replica's "running" is read again, and one that stays unusable
// is a *ProtocolError, never a failed job. Export, whose POST is not
// idempotent, looks for the export job of a lost answer (by domain_key, and by
// the job's newest export) and sends again only when none was started;
// when it cannot tell, it returns *ExportUncertainError (ErrExportUncertain).
package td

// Package td is a typed client for the Treasure Data REST API v3: query jobs
// (issue, show, status, list, kill, wait), streaming result downloads and row
// decoding, result export (by URL, by connection id + settings, by connection
// name) and connection lookup.
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
// that got no answer is a *NetError (ErrNetwork). A job that ends in error or
// killed makes Wait return *JobFailedError (ErrJobFailed); a result that
// cannot be downloaded whole is ErrTruncated, never a silent short read.
//
// Retries: GET requests, Kill, and Issue (which always carries a domain_key —
// one is generated when the caller gives none) are retried on network errors,
// 429 (honouring Retry-After) and 5xx. Other POSTs are never retried, so a
// retry can never start a second job. A 409 on Issue resolves to the job that
// was created first.
//
// No API key or URL password appears in errors or log output: every string
// the package prints goes through Redact and the client's Secrets (its API
// key, and what WithSecrets and AddSecrets add: a program gives its other
// secrets, such as a workflow's, so that they are masked by value).
//
// The package does no printing of its own; pass WithLogger to trace HTTP
// traffic (secrets redacted).
package td

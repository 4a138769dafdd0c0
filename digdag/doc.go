// Package digdag is a typed client for digdag's REST API, which TD Workflow
// (Treasure Workflow) serves too: push a project archive, find workflows,
// start, follow, kill and retry session attempts, read their tasks and
// logs, list sessions and schedules (and backfill them), and keep project
// secrets.
//
//	c, err := digdag.NewClient("us01", digdag.WithAPIKey(os.Getenv("TD_API_KEY")))
//	arc, _, err := digdag.Archive("examples/workflows")
//	proj, err := c.Projects.Push(ctx, "examples", "", arc, nil)
//	wf, err := c.Projects.Workflow(ctx, proj.ID, "num_records")
//	a, err := c.Attempts.Start(ctx, &digdag.StartRequest{WorkflowID: wf.ID, SessionTime: time.Now()})
//	a, err = c.Attempts.Wait(ctx, a.ID, nil)
//
// The JSON shapes are digdag-client's Rest* models (io.digdag.client.api):
// camelCase names, ids as strings, instants in UTC and session times with
// their offset. The test file restmodel_test.go lists every model's fields
// as digdag writes them and checks the Go types against it.
//
// Errors, retries and redaction follow package td: failed calls return an
// *APIError that matches td's sentinels (errors.Is(err, td.ErrNotFound),
// td.ErrUnauthorized, td.ErrConflict...); no usable answer is a *NetError
// (td.ErrNetwork), an unusable one a *ProtocolError (td.ErrProtocol), a
// refused argument an *ArgumentError (td.ErrInvalidArgument). An attempt
// that ends in error or killed makes Wait return *AttemptFailedError
// (td.ErrJobFailed), and Wait's Timeout gives an error matching
// td.ErrWaitTimeout. GETs, attempt starts, kills and secret changes are
// retried with td's rules (internal/backoff's Budget: network errors, 429
// with Retry-After, 5xx); a push is sent once. The API key, values given
// to WithHeader and those of a shared td.Secrets set are masked in every
// error and log line.
//
// Authentication: TD Workflow takes "Authorization: TD1 <apikey>"
// (WithAPIKey); a plain digdag server takes none, or what its
// authenticator wants (WithHeader).
package digdag

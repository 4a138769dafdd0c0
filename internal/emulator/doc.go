// Package emulator is an in-process emulator of the Treasure Data REST API v3
// (the subset tdctl and the official clients use), for tests and for
// `tdctl dev-server`.
//
//	import "github.com/tdctl/tdctl/internal/emulator"
//
//	srv, baseURL := emulator.NewTestServer(t, emulator.Options{APIKeys: []string{"k"}})
//
// What it does:
//   - Jobs really run: the SQL is executed on an embedded SQLite database
//     (modernc.org/sqlite). Every TD database is one SQLite file; other
//     databases named in a query as `db.table` are attached on demand.
//     `sample_datasets` holds deterministic `www_access` and `nasdaq` tables.
//     TD_TIME_RANGE, TD_TIME_FORMAT and TD_TIME_PARSE are available.
//   - Jobs move queued → running → success/error on a Clock (Options.QueuedFor,
//     Options.RunningFor). Pass a *ManualClock to drive time from a test; reads
//     of a job whose time is up wait until its work is done, so they are
//     deterministic.
//   - Results are written once, as msgpack.gz, when the query finishes; the
//     msgpack, json (one JSON array per line), csv and tsv forms (no header
//     line) are derived once into files on first request. Every result is
//     served from a file with an ETag, `Range: bytes=...` (206 +
//     Content-Range) and `If-Range`, through the sendfile path of net/http.
//   - Exports really write: td://@/db/table into the emulator's own tables,
//     postgresql:// into a real PostgreSQL table (pgx), s3://bucket/path into a
//     CSV file under the data directory (s3/<bucket>/<path>/<job_id>.csv).
//     Other schemes end the export job in error.
//   - Saved queries (/v3/schedule/*, and /v4/queries/ID/jobs to run one by
//     id) are kept in the state database; a run issues real jobs with the
//     saved query for the given time, in which TD_SCHEDULED_TIME() is that
//     time, and history lists them. /v3/result/list lists the connections
//     added with AddConnection.
//   - Faults (status codes, Retry-After, malformed answers such as {}, lost
//     responses and gateway errors after the work was done, connection resets
//     after N bytes, truncated gzip bodies, bodies that stall, requests never
//     answered, a lagging replica's stale status, latency) are scripted per
//     route through Server.Faults (see Fault).
//
// Choices where TD's behaviour is not pinned down (why: docs/design.md, "The
// TD API emulator"):
//   - Killing a finished job answers 200 with former_status set to the job's
//     final status and leaves the job unchanged. A job's work runs in the
//     background from the moment it starts running, so a job killed while
//     running may already have written its export; its result is never served.
//   - Fetching the result of a job that is not (yet) a success answers 422.
//   - A result request without format= gets tsv.
//   - num_records and result_size stay null for jobs that end in error or are
//     killed (they have no result); duration and end_at are set for every
//     finished job.
//   - Export jobs have type "result_export", the source job's database and
//     query, num_records = rows exported, hive_result_schema null, and the
//     result_export call answers {"job_id": "..."} only.
//   - /v3/job/list answers count = number of jobs matching the status filter,
//     and from/to as used (to defaults to from+19).
//   - td://KEY@/db/table is split at its last "@", since TD keys contain "/".
//
// The emulator never prints the API key; passwords in result URLs are
// redacted in its logs and in job error messages (the job's `result` field
// echoes the URL as given, like TD). With Options.DataDir, state survives a
// restart, but credentials are not written there: result URLs and
// connection settings are kept masked on disk, so a job still waiting to
// export to a target that needed them ends in error after a restart, and a
// connection with a password must be added again. One Server at a time may
// use a DataDir (an exclusive lock on DataDir/.lock; see DataDirInUseError).
package emulator

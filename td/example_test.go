package td_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

// startEmulator runs the in-process TD API emulator behind a local HTTP
// server, so the examples run without network or account. Real code passes
// td.WithEndpoint("us01") (or nothing) instead of the emulator's URL.
func startEmulator() (endpoint string, srv *emulator.Server, stop func()) {
	srv, err := emulator.New(emulator.Options{})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	return hs.URL, srv, func() {
		hs.CloseClientConnections()
		hs.Close()
		_ = srv.Close()
	}
}

// exampleClient returns a client pointed at the emulator.
func exampleClient(endpoint string) *td.Client {
	c, err := td.NewClient("1/example-api-key", td.WithEndpoint(endpoint))
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// runQuery issues a presto query and waits for it.
func runQuery(ctx context.Context, c *td.Client, db, query string) *td.Job {
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Type: "presto", Database: db, Query: query})
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Jobs.Wait(ctx, issued.JobID, nil)
	if err != nil {
		log.Fatal(err)
	}
	return job
}

// Issue a query, wait for it and read its record count.
func Example() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()

	c, err := td.NewClient("1/example-api-key", td.WithEndpoint(endpoint))
	if err != nil {
		log.Fatal(err)
	}
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{
		Type:     "presto",
		Database: "sample_datasets",
		Query:    "SELECT 1 AS a, 2 AS b",
	})
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Jobs.Wait(ctx, issued.JobID, nil)
	if err != nil {
		log.Fatal(err) // a failed job is a *td.JobFailedError carrying its stderr
	}
	fmt.Println(job.Status, *job.NumRecords)
	// Output: success 1
}

// Export a finished job's result into a TD table, then read the table back
// with another query.
func ExampleResultsService_Export() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	job := runQuery(ctx, c, "sample_datasets", "SELECT 1 AS id, 'apple' AS name UNION ALL SELECT 2, 'banana'")

	exportID, err := c.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: "td://@/sample_datasets/copy"})
	if err != nil {
		log.Fatal(err)
	}
	export, err := c.Jobs.Wait(ctx, exportID, nil) // the export is a job of its own
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("export:", export.Status, *export.NumRecords, "rows")

	back := runQuery(ctx, c, "sample_datasets", "SELECT id, name FROM copy ORDER BY id")
	rows, err := c.Results.Rows(ctx, back.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for row, err := range rows.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(row...)
	}
	// Output:
	// export: success 2 rows
	// 1 apple
	// 2 banana
}

// Export one result to several targets at once; each target has its own
// outcome. The emulator refuses mysql:// targets, so the second export job
// ends in error while the first succeeds. Passwords never show.
func ExampleResultsService_ExportAll() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	job := runQuery(ctx, c, "sample_datasets", "SELECT 1 AS a, 2 AS b")
	outcomes, err := c.Results.ExportAll(ctx, job.ID, []td.ExportTarget{
		{ResultURL: "td://@/sample_datasets/copy_a"},
		{ResultURL: "mysql://app:s3cret@db.example.com/app/copy_a"},
	}, nil)
	for _, o := range outcomes {
		switch {
		case o.Err == nil:
			fmt.Printf("%s: %s, %d rows\n", o.Target, o.Job.Status, *o.Job.NumRecords)
		case errors.Is(o.Err, td.ErrJobFailed):
			fmt.Printf("%s: export job %s\n", o.Target, o.Job.Status)
		case errors.Is(o.Err, td.ErrExportUncertain):
			fmt.Printf("%s: may have started, check before exporting again: %v\n", o.Target, o.Err)
		default:
			fmt.Printf("%s: not started: %v\n", o.Target, o.Err)
		}
	}
	fmt.Println("any failed:", err != nil)
	// Output:
	// td://@/sample_datasets/copy_a: success, 1 rows
	// mysql://app:***@db.example.com/app/copy_a: export job error
	// any failed: true
}

// Decode a result row by row; column names come from the job's schema.
func ExampleResultsService_Rows() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	job := runQuery(ctx, c, "sample_datasets", "SELECT 1 AS id, 'apple' AS fruit, 0.5 AS price UNION ALL SELECT 2, 'banana', 0.25")
	rows, err := c.Results.Rows(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	var header []string
	for _, col := range rows.Columns() {
		header = append(header, col.Name+"("+col.Type+")")
	}
	fmt.Println(strings.Join(header, " "))
	for row, err := range rows.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%v %v %v\n", row[0], row[1], row[2])
	}
	fmt.Println(rows.Count(), "rows")
	// Output:
	// id(bigint) fruit(varchar) price(double)
	// 1 apple 0.5
	// 2 banana 0.25
	// 2 rows
}

// List every job, newest first; All walks the pages for you.
func ExampleJobsService_All() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	for _, q := range []string{"SELECT 1", "SELECT 2", "SELECT 3"} {
		runQuery(ctx, c, "sample_datasets", q)
	}
	for job, err := range c.Jobs.All(ctx, &td.ListOptions{PageSize: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(job.ID, job.Type, job.Status, job.Query)
	}
	// Output:
	// 3 presto success SELECT 3
	// 2 presto success SELECT 2
	// 1 presto success SELECT 1
}

// Stream a large result without an allocation per row: NextRow returns a
// view whose cells are read in place (valid until the next row).
func ExampleRowReader_NextRow() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	job := runQuery(ctx, c, "sample_datasets", "SELECT 1 AS id, 'apple' AS fruit, 0.5 AS price UNION ALL SELECT 2, 'banana', NULL")
	rows, err := c.Results.Rows(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	var total float64
	for {
		row, err := rows.NextRow()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		id, _ := row.Int(0)
		fruit, _ := row.Bytes(1) // in place: copy it to keep it
		if price, ok := row.Float(2); ok {
			total += price
		}
		fmt.Printf("%d %s price %s\n", id, fruit, row.Kind(2))
	}
	fmt.Println("total", total)
	// Output:
	// 1 apple price float
	// 2 banana price null
	// total 0.5
}

// Save a query and run it for a time: TD_SCHEDULED_TIME() in it is that
// time.
func ExampleSchedulesService_Run() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	_, err := c.Schedules.Create(ctx, "daily_total", &td.ScheduleOptions{
		Database: "sample_datasets", Cron: "0 1 * * *", Timezone: "UTC",
		Query: "SELECT TD_SCHEDULED_TIME() AS t, count(1) AS n FROM nasdaq",
	})
	if err != nil {
		log.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 1, 0, 0, 0, time.UTC)
	jobs, err := c.Schedules.Run(ctx, "daily_total", at, nil)
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Jobs.Wait(ctx, jobs[0].ID, nil)
	if err != nil {
		log.Fatal(err)
	}
	hist, err := c.Schedules.History(ctx, "daily_total", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Status, len(hist), hist[0].ScheduledAt.Format(time.RFC3339))
	// Output: success 1 2024-05-01T01:00:00Z
}

// Reach an endpoint the SDK has no method for, with its retries, typed
// errors and redaction.
func ExampleClient_Do() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	req, err := c.NewRequest(ctx, "GET", "/v3/database/list", nil)
	if err != nil {
		log.Fatal(err)
	}
	var out struct {
		Databases []struct {
			Name string `json:"name"`
		} `json:"databases"`
	}
	if _, err := c.Do(ctx, req, &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Databases[0].Name)

	req, _ = c.NewRequest(ctx, "GET", "/v3/job/show/424242", nil)
	_, err = c.Do(ctx, req, nil)
	fmt.Println(errors.Is(err, td.ErrNotFound))
	// Output:
	// sample_datasets
	// true
}

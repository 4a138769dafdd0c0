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

// Create a database and a table, give the table columns, fill it with a
// query and read its newest rows back without one.
func ExampleTablesService() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	if err := c.Databases.Create(ctx, "shop"); err != nil {
		log.Fatal(err)
	}
	if err := c.Tables.Create(ctx, "shop", "orders"); err != nil {
		log.Fatal(err)
	}
	cols, err := td.ParseColumns([]string{"item:string", "qty:long"}) // the CLI's NAME:TYPE form
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Tables.SetSchema(ctx, "shop", "orders", cols); err != nil {
		log.Fatal(err)
	}
	runQuery(ctx, c, "shop", "INSERT INTO orders (time, item, qty) VALUES (1700000000, 'apple', 3), (1700003600, 'pear', 1)")

	t, err := c.Tables.Show(ctx, "shop", "orders")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, t.Count, t.Schema)
	rows, err := c.Tables.Tail(ctx, "shop", "orders", 1) // newest first
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rows[0]["item"], rows[0]["qty"], rows[0]["time"])
	err = c.Tables.Create(ctx, "shop", "orders")
	fmt.Println(errors.Is(err, td.ErrConflict))
	// Output:
	// orders 2 [{item string } {qty long }]
	// pear 1 1700003600
	// true
}

// Build the next version of a table beside the live one, then swap it in:
// readers see the old rows or the new ones, never a table half-built.
func ExampleTablesService_Swap() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	for _, name := range []string{"codes", "codes_next"} {
		if err := c.Tables.Create(ctx, "sample_datasets", name); err != nil {
			log.Fatal(err)
		}
	}
	runQuery(ctx, c, "sample_datasets", "INSERT INTO codes_next SELECT time FROM www_access WHERE code = 500")
	if err := c.Tables.Swap(ctx, "sample_datasets", "codes", "codes_next"); err != nil {
		log.Fatal(err)
	}
	live, _ := c.Tables.Show(ctx, "sample_datasets", "codes")
	old, _ := c.Tables.Show(ctx, "sample_datasets", "codes_next")
	fmt.Println(live.Count > 0, old.Count)
	if err := c.Tables.Delete(ctx, "sample_datasets", "codes_next"); err != nil {
		log.Fatal(err)
	}
	// Output: true 0
}

// Delete the rows of a time range: a job, waited for like a query.
func ExampleTablesService_PartialDelete() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	if err := c.Tables.Create(ctx, "sample_datasets", "events"); err != nil {
		log.Fatal(err)
	}
	runQuery(ctx, c, "sample_datasets", "INSERT INTO events (time) VALUES (0), (3600), (7200)")
	issued, err := c.Tables.PartialDelete(ctx, "sample_datasets", "events", td.PartialDeleteRequest{
		From: time.Unix(0, 0), To: time.Unix(7200, 0), // [from, to), whole hours
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Jobs.Wait(ctx, issued.JobID, nil); err != nil {
		log.Fatal(err)
	}
	t, _ := c.Tables.Show(ctx, "sample_datasets", "events")
	fmt.Println(t.Count)
	// Output: 1
}

// Export a table's rows of one day to S3 (the emulator writes the file
// under its data directory).
func ExampleExportsService_Run() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	from := time.Date(2014, 1, 2, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 1)
	issued, err := c.Exports.Run(ctx, "sample_datasets", "nasdaq", &td.TableExportRequest{
		Bucket: "my-bucket", FilePrefix: "nasdaq/", FileFormat: "jsonl.gz",
		AccessKeyID: "AKIA...", SecretAccessKey: "never printed",
		From: &from, To: &to,
	})
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Jobs.Wait(ctx, issued.JobID, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Type, job.Status, *job.NumRecords)
	// Output: export success 20
}

// List the databases, and look one up by name.
func ExampleDatabasesService() {
	endpoint, _, stop := startEmulator()
	defer stop()
	ctx := context.Background()
	c := exampleClient(endpoint)

	dbs, err := c.Databases.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range dbs {
		fmt.Println(d.Name, d.Count)
	}
	_, err = c.Databases.Show(ctx, "nope")
	fmt.Println(errors.Is(err, td.ErrNotFound))
	// Output:
	// sample_datasets 10000
	// true
}

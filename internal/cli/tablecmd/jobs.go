package tablecmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/internal/cli/output"
	"github.com/tdctl/tdctl/td"
)

// ParseTimeFlag reads a time given on the command line: unix seconds,
// RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC) or "YYYY-MM-DD" (UTC midnight).
func ParseTimeFlag(flag, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, l := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := td.ParseTime(s); err == nil && !t.IsZero() {
		return t, nil
	}
	return time.Time{}, cmdutil.FlagErrorf("invalid %s %q: give unix seconds, YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' (UTC) or RFC 3339", flag, s)
}

// Issued is what the job-starting table commands print.
type Issued struct {
	JobID    string `json:"job_id"`
	Database string `json:"database"`
	Table    string `json:"table"`
	Status   string `json:"status,omitempty"` // the final status with --wait
}

// finish prints the job started on opts' table, waiting for it with --wait
// (a job that failed exits 3).
func finish(opts *Options, c *td.Client, id string, doWait bool, w *shared.WaitFlags) error {
	out := Issued{JobID: id, Database: opts.Database, Table: opts.Table}
	var werr error
	if doWait {
		werr = w.Bound(opts.Ctx, "job "+id, func(ctx context.Context) error {
			job, err := shared.Wait(ctx, opts.IO, c, id, w)
			if job != nil {
				out.Status = job.Status
			}
			return err
		})
	}
	p := output.New(opts.IO, opts.Format)
	var perr error
	switch {
	case p.Structured():
		perr = p.JSON(out)
	default:
		perr = func() error { _, err := fmt.Fprintln(opts.IO.Out, id); return err }()
	}
	if werr != nil {
		return werr
	}
	return perr
}

// PartialDeleteOptions are the inputs of `table partial-delete`.
type PartialDeleteOptions struct {
	Options
	From, To time.Time
	DoWait   bool
	Wait     shared.WaitFlags
}

// NewCmdPartialDelete returns `table partial-delete`.
func NewCmdPartialDelete(f *factory.Factory, runF func(*PartialDeleteOptions) error) *cobra.Command {
	opts := &PartialDeleteOptions{Options: base(f)}
	var from, to string
	cmd := &cobra.Command{
		Use:   "partial-delete DATABASE TABLE --from TIME --to TIME",
		Short: "Delete the rows of a time range",
		Long: "Start a job deleting the rows whose time is in [--from, --to); both must be on whole\n" +
			"hours. Prints the job id; with --wait, waits for it (exit 3 if it fails).",
		Example: "  tdctl table partial-delete analytics events --from 2024-01-01 --to 2024-01-02 --wait",
		Args:    cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args); err != nil {
				return err
			}
			if from == "" || to == "" {
				return cmdutil.FlagErrorf("--from and --to are required")
			}
			var err error
			if opts.From, err = ParseTimeFlag("--from", from); err != nil {
				return err
			}
			if opts.To, err = ParseTimeFlag("--to", to); err != nil {
				return err
			}
			if opts.From.Unix()%3600 != 0 || opts.To.Unix()%3600 != 0 {
				return cmdutil.FlagErrorf("--from and --to must be on whole hours (got %s and %s)", td.FormatTime(opts.From), td.FormatTime(opts.To))
			}
			if !opts.From.Before(opts.To) {
				return cmdutil.FlagErrorf("--from (%s) must be before --to (%s)", td.FormatTime(opts.From), td.FormatTime(opts.To))
			}
			if err := opts.Wait.Validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return partialDeleteRun(opts)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first time deleted (inclusive), on a whole hour")
	cmd.Flags().StringVar(&to, "to", "", "end of the range (exclusive), on a whole hour")
	cmd.Flags().BoolVarP(&opts.DoWait, "wait", "w", false, "wait for the job to finish")
	shared.AddWaitFlags(cmd, &opts.Wait)
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func partialDeleteRun(opts *PartialDeleteOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	j, err := c.Tables.PartialDelete(opts.Ctx, opts.Database, opts.Table, td.PartialDeleteRequest{From: opts.From, To: opts.To})
	if err != nil {
		return err
	}
	return finish(&opts.Options, c, j.JobID, opts.DoWait, &opts.Wait)
}

// ExportOptions are the inputs of `table export`.
type ExportOptions struct {
	Options
	Request td.TableExportRequest
	DoWait  bool
	Wait    shared.WaitFlags
}

// NewCmdExport returns `table export`.
func NewCmdExport(f *factory.Factory, runF func(*ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{Options: base(f)}
	var from, to string
	r := &opts.Request
	cmd := &cobra.Command{
		Use:   "export DATABASE TABLE --s3-bucket BUCKET [flags]",
		Short: "Export a table's rows to S3",
		Long: `Start a table export job (POST /v3/export/run): the table's rows, optionally limited
to [--from, --to), written as files to an S3 bucket. Prints the job id; with --wait,
waits for it (exit 3 if it fails).

The AWS credentials come from --aws-key-id/--aws-secret-key or, when those are not
given, from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. The secret is never printed.`,
		Example: `  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
    tdctl table export analytics events --s3-bucket my-bucket --prefix events/ --wait`,
		Args: cmdutil.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.dbTable(cmd, args); err != nil {
				return err
			}
			if r.AccessKeyID == "" {
				r.AccessKeyID = f.Getenv("AWS_ACCESS_KEY_ID")
			}
			if r.SecretAccessKey == "" {
				r.SecretAccessKey = f.Getenv("AWS_SECRET_ACCESS_KEY")
			}
			cmdutil.AddSecrets(r.SecretAccessKey)
			if r.Bucket == "" {
				return cmdutil.FlagErrorf("--s3-bucket is required")
			}
			if r.AccessKeyID == "" || r.SecretAccessKey == "" {
				return cmdutil.FlagErrorf("AWS credentials are required: --aws-key-id and --aws-secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
			}
			if from != "" {
				t, err := ParseTimeFlag("--from", from)
				if err != nil {
					return err
				}
				r.From = &t
			}
			if to != "" {
				t, err := ParseTimeFlag("--to", to)
				if err != nil {
					return err
				}
				r.To = &t
			}
			if ae, ok := errors.AsType[*td.ArgumentError](r.Validate()); ok {
				return cmdutil.FlagErrorf("%s", ae.Msg)
			}
			if err := opts.Wait.Validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return exportRun(opts)
		},
	}
	cmd.Flags().StringVarP(&r.Bucket, "s3-bucket", "b", "", "S3 bucket to write to")
	cmd.Flags().StringVarP(&r.FilePrefix, "prefix", "p", "", "path prefix of the files in the bucket")
	cmd.Flags().StringVarP(&r.AccessKeyID, "aws-key-id", "k", "", "AWS access key id (default $AWS_ACCESS_KEY_ID)")
	cmd.Flags().StringVarP(&r.SecretAccessKey, "aws-secret-key", "s", "", "AWS secret access key (default $AWS_SECRET_ACCESS_KEY)")
	cmd.Flags().StringVarP(&r.FileFormat, "file-format", "F", "jsonl.gz", "file format: jsonl.gz, json.gz, tsv.gz or json-line.gz")
	cmd.Flags().StringVar(&from, "from", "", "export rows from this time on (inclusive)")
	cmd.Flags().StringVar(&to, "to", "", "export rows before this time (exclusive)")
	cmd.Flags().StringVar(&r.PoolName, "pool-name", "", "resource pool to run in")
	cmd.Flags().BoolVarP(&opts.DoWait, "wait", "w", false, "wait for the job to finish")
	shared.AddWaitFlags(cmd, &opts.Wait)
	output.AddFormatFlag(cmd, &opts.Format)
	return cmd
}

func exportRun(opts *ExportOptions) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	j, err := c.Exports.Run(opts.Ctx, opts.Database, opts.Table, &opts.Request)
	if err != nil {
		return err
	}
	return finish(&opts.Options, c, j.JobID, opts.DoWait, &opts.Wait)
}

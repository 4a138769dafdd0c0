// Package query implements `tdctl query`, with the Ruby td CLI's flags.
package query

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/config"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/job/shared"
	"github.com/tdctl/tdctl/td"
)

// QueryOptions are the inputs of `query`.
type QueryOptions struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Config   func() (*config.Config, error)
	Ctx      context.Context

	SQL           string
	Database      string
	Type          string
	Priority      *int
	RetryLimit    *int
	ResultURL     string
	DomainKey     string
	EngineVersion string
	Pool          string
	DoWait        bool
	Exclude       bool
	Wait          shared.WaitFlags
	Result        shared.ResultFlags
}

// NewCmdQuery returns `query`.
func NewCmdQuery(f *factory.Factory, runF func(*QueryOptions) error) *cobra.Command {
	opts := &QueryOptions{IO: f.IOStreams, TDClient: f.TDClient, Config: f.Config}
	var priority, retry string
	cmd := &cobra.Command{
		Use:   "query [flags] SQL|-",
		Short: "Issue a query job (and with -w wait for it and print its result)",
		Long: "Issue a query job. The flags are those of the Ruby `td query`.\n\n" +
			"Without -w, prints the new job's id on stdout (job=$(tdctl query ...)).\n" +
			"With -w, waits for the job, then prints its result on stdout or writes it to -o FILE\n" +
			"(-x skips the result; -o, -f and -x imply -w). Give the SQL as one argument, or - to read it from stdin.\n\n" +
			"Note: on this command -o is the output FILE and -f the format (as in the Ruby td CLI),\n" +
			"not the -o/--output format flag of the other commands.\n\n" +
			"The engine defaults to presto (-T hive|presto|trino). Every issue carries a domain key\n" +
			"(--domain-key, or a generated one) so a retried request never starts a second job.",
		Example: "  tdctl query -d sample_datasets -w 'SELECT COUNT(1) FROM www_access'\n" +
			"  tdctl query -d sample_datasets -w -f csv -c -o out.csv - < report.sql\n" +
			"  job=$(tdctl query -d db -r 'td://@/db/summary?mode=replace' 'SELECT ...') && tdctl job wait \"$job\"",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.FlagErrorf("give the SQL as one argument (quote it), or - to read it from stdin")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if args[0] == "-" {
				b, err := cmdutil.ReadAll(opts.Ctx, opts.IO.In, cmdutil.MaxInputBytes, "the query on stdin")
				if err != nil {
					return err
				}
				opts.SQL = string(b)
			} else {
				opts.SQL = args[0]
			}
			if strings.TrimSpace(opts.SQL) == "" {
				return cmdutil.FlagErrorf("the query is empty")
			}
			switch opts.Type = strings.ToLower(opts.Type); opts.Type {
			case "presto", "trino", "hive":
			default:
				return cmdutil.FlagErrorf("invalid -T/--type %q: use presto, trino or hive", opts.Type)
			}
			if cmd.Flags().Changed("priority") {
				p, err := cmdutil.ParsePriority(priority)
				if err != nil {
					return err
				}
				opts.Priority = &p
			}
			if cmd.Flags().Changed("retry") {
				n, err := strconv.Atoi(retry)
				if err != nil || n < 0 {
					return cmdutil.FlagErrorf("invalid -R/--retry %q: give a whole number >= 0", retry)
				}
				opts.RetryLimit = &n
			}
			if opts.ResultURL != "" {
				cmdutil.AddURLSecrets(opts.ResultURL) // masked in every output, whatever it holds
				if err := td.CheckResultURL(opts.ResultURL); err != nil {
					return cmdutil.FlagErrorf("-r/--result: %v", err) // the URL may hold a password: not echoed
				}
			}
			if err := opts.Result.Validate(); err != nil {
				return err
			}
			if err := opts.Wait.Validate(); err != nil {
				return err
			}
			if opts.Result.File != "" || opts.Result.Format != "" || opts.Result.Parallel != 0 || opts.Result.NoVerify || opts.Exclude {
				opts.DoWait = true // they are about the result, which needs the job finished
			}
			if runF != nil {
				return runF(opts)
			}
			return opts.Wait.Bound(opts.Ctx, "the query", func(ctx context.Context) error {
				opts.Ctx = ctx
				return queryRun(opts)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Database, "database", "d", "", "database to query (default: the profile's database)")
	fl.StringVarP(&opts.Type, "type", "T", "presto", "engine: presto, trino or hive")
	fl.BoolVarP(&opts.DoWait, "wait", "w", false, "wait for the job to finish and print its result")
	fl.StringVarP(&priority, "priority", "P", "", "priority -2..2 or VERY_LOW, LOW, NORMAL, HIGH, VERY_HIGH")
	fl.StringVarP(&retry, "retry", "R", "", "how often the server retries the job")
	fl.StringVarP(&opts.ResultURL, "result", "r", "", "also write the result to this result `URL` (td://@/db/table, postgresql://..., s3://...)")
	fl.StringVar(&opts.DomainKey, "domain-key", "", "idempotency key: issuing twice with the same key returns the first job")
	fl.StringVar(&opts.EngineVersion, "engine-version", "", "engine version, e.g. stable or experimental")
	fl.StringVar(&opts.Pool, "pool", "", "resource pool name")
	fl.BoolVarP(&opts.Exclude, "exclude", "x", false, "with -w: do not fetch the result, only wait")
	shared.AddResultFlags(cmd, &opts.Result)
	shared.AddWaitFlags(cmd, &opts.Wait)
	_ = cmd.RegisterFlagCompletionFunc("type", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"presto", "trino", "hive"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func queryRun(opts *QueryOptions) error {
	if opts.Database == "" {
		cfg, err := opts.Config()
		if err != nil {
			return err
		}
		opts.Database = cfg.Database.Value
	}
	if opts.Database == "" {
		return cmdutil.FlagErrorf("no database: pass -d DATABASE (or set database: in a tdctl profile)")
	}
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	issued, err := c.Jobs.Issue(opts.Ctx, &td.IssueRequest{
		Type: opts.Type, Database: opts.Database, Query: opts.SQL, Result: opts.ResultURL,
		Priority: opts.Priority, RetryLimit: opts.RetryLimit, EngineVersion: opts.EngineVersion,
		PoolName: opts.Pool, DomainKey: opts.DomainKey,
	})
	if err != nil {
		return err
	}
	again := ""
	if issued.Existing {
		again = " (already issued with this domain key)"
	}
	if !opts.DoWait {
		if opts.IO.IsStdoutTTY() {
			_, err = fmt.Fprintf(opts.IO.Out, "Job %s issued%s. Wait for it with: tdctl job wait %s\n", issued.JobID, again, issued.JobID)
			return err
		}
		_, err = fmt.Fprintln(opts.IO.Out, issued.JobID)
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "job %s issued on %s (%s)%s\n", issued.JobID, opts.Database, opts.Type, again)
	job, err := shared.Wait(opts.Ctx, opts.IO, c, issued.JobID, &opts.Wait)
	if err != nil {
		return err
	}
	n := "unknown"
	if job.NumRecords != nil {
		n = strconv.FormatInt(*job.NumRecords, 10)
	}
	fmt.Fprintf(opts.IO.ErrOut, "job %s %s: %s records\n", job.ID, job.Status, n)
	if opts.Exclude {
		return nil
	}
	return shared.WriteResult(opts.Ctx, opts.IO, c, job, &opts.Result)
}

package td

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ExportsService starts table export jobs: a table's rows, written as
// files to a storage (S3).
type ExportsService service

// Table export file formats TD accepts.
var tableExportFormats = []string{"jsonl.gz", "json.gz", "tsv.gz", "json-line.gz"}

// TableExportRequest describes POST /v3/export/run/:db/:table. The secret
// access key is sent in the form and never logged.
type TableExportRequest struct {
	// StorageType is "s3" (the default and only one).
	StorageType     string
	Bucket          string
	AccessKeyID     string
	SecretAccessKey string
	// FilePrefix is the path prefix of the files in the bucket.
	FilePrefix string
	// FileFormat is jsonl.gz, json.gz, tsv.gz or json-line.gz (the
	// default is jsonl.gz).
	FileFormat string
	// From and To bound the rows exported by time ([From, To)); nil is
	// open.
	From, To *time.Time
	// PoolName is the resource pool to run in; "" is the default.
	PoolName string
	// DomainKey makes the call idempotent; one is generated when empty.
	DomainKey string
}

// Validate reports what Run would refuse before sending anything.
func (r *TableExportRequest) Validate() error {
	st := strings.ToLower(strings.TrimSpace(r.StorageType))
	if st != "" && st != "s3" {
		return invalidArg("unknown storage type %q: use s3", r.StorageType)
	}
	if strings.TrimSpace(r.Bucket) == "" {
		return invalidArg("table export needs a bucket")
	}
	if r.AccessKeyID == "" || r.SecretAccessKey == "" {
		return invalidArg("table export needs an access key id and a secret access key")
	}
	if r.FileFormat != "" && !slices.Contains(tableExportFormats, r.FileFormat) {
		return invalidArg("unknown file format %q: use %s", r.FileFormat, strings.Join(tableExportFormats, ", "))
	}
	if r.From != nil && r.To != nil && !r.From.Before(*r.To) {
		return invalidArg("table export from (%s) must be before to (%s)", FormatTime(*r.From), FormatTime(*r.To))
	}
	return nil
}

// Run starts a table export job (POST /v3/export/run/:db/:table) and
// returns it; follow it with Jobs.Wait. The call is retried on transient
// failures under its domain_key; a 409 resolves to the job started first.
func (s *ExportsService) Run(ctx context.Context, db, table string, req *TableExportRequest) (*IssuedJob, error) {
	if err := checkDBTable(db, table); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, invalidArg("Exports.Run: nil request")
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("storage_type", "s3")
	form.Set("bucket", req.Bucket)
	form.Set("access_key_id", req.AccessKeyID)
	form.Set("secret_access_key", req.SecretAccessKey)
	format := req.FileFormat
	if format == "" {
		format = "jsonl.gz"
	}
	form.Set("file_format", format)
	if req.FilePrefix != "" {
		form.Set("file_prefix", req.FilePrefix)
	}
	if req.From != nil {
		form.Set("from", strconv.FormatInt(req.From.Unix(), 10))
	}
	if req.To != nil {
		form.Set("to", strconv.FormatInt(req.To.Unix(), 10))
	}
	if req.PoolName != "" {
		form.Set("pool_name", req.PoolName)
	}
	j, err := s.client.issueKeyed(ctx, path("/v3/export/run", db, table), form, req.DomainKey)
	if err != nil {
		return nil, notFound(err, "table %s.%s does not exist", db, table)
	}
	if j.Database == "" {
		j.Database = db
	}
	return j, nil
}

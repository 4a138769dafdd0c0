// Package apicmd implements `tdctl api`: any TD API call, printed raw, with
// the client's auth, retries and redaction (like `gh api`).
package apicmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/td"
)

// Short is the command's one-line help.
const Short = "Make an authenticated TD API request and print the answer"

// Options are the inputs of `api`.
type Options struct {
	IO       *iostreams.IOStreams
	TDClient func() (*td.Client, error)
	Ctx      context.Context

	Method string
	Path   string
	Fields url.Values
	Input  string // a file for the body; "-" is stdin
	body   []byte
}

// NewCmdAPI returns `api`.
func NewCmdAPI(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, TDClient: f.TDClient}
	var fields []string
	cmd := &cobra.Command{
		Use:   "api [-X METHOD] PATH [-f key=value]... [--input FILE]",
		Short: Short,
		Long: "Call any TD API endpoint: PATH such as /v3/job/list or v3/schedule/list (with an optional\n" +
			"?query), relative to the configured endpoint; the API key is sent as tdctl sends it and never\n" +
			"printed. The answer's body is printed as it came (JSON is indented on a terminal), with\n" +
			"passwords in URLs masked.\n\n" +
			"-f key=value adds a form field; with fields the method is POST unless -X says otherwise\n" +
			"(with -X GET they go in the query string). --input FILE (- for stdin) sends the file as the\n" +
			"body (as JSON when it is JSON, else as a form); -f fields then go in the query string.\n\n" +
			"GET and HEAD are retried like tdctl's own calls (network errors, 429, 5xx); other methods\n" +
			"are sent once. An API error exits 2 (see tdctl --help), with the server's message on stderr.",
		Example: "  tdctl api /v3/job/list?from=0\\&to=4\n" +
			"  tdctl api /v3/schedule/list | jq -r '.schedules[].name'\n" +
			"  tdctl api -X POST /v3/schedule/update/daily_pv -f priority=1\n" +
			"  tdctl api v3/job/kill/12345 -X POST",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.FlagErrorf("give one PATH, such as /v3/job/list")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx, opts.Path = cmd.Context(), strings.TrimSpace(args[0])
			if opts.Path == "" {
				return cmdutil.FlagErrorf("the PATH is empty: give one such as /v3/job/list")
			}
			if strings.Contains(opts.Path, "://") {
				return cmdutil.FlagErrorf("give a path such as /v3/job/list, not a URL: requests go to the configured endpoint (--endpoint, TD_API_SERVER)")
			}
			opts.Fields = url.Values{}
			for i, f := range fields {
				k, v, ok := strings.Cut(f, "=")
				if !ok || strings.TrimSpace(k) == "" {
					// the value may be a secret: never echoed
					return cmdutil.FlagErrorf("invalid -f/--field (number %d): use key=value", i+1)
				}
				cmdutil.AddURLSecrets(v)
				opts.Fields.Add(k, v)
			}
			opts.Method = strings.ToUpper(strings.TrimSpace(opts.Method))
			if opts.Method == "" {
				opts.Method = http.MethodGet
				if len(fields) > 0 || opts.Input != "" {
					opts.Method = http.MethodPost
				}
			}
			switch opts.Method {
			case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				return cmdutil.FlagErrorf("invalid -X/--method %q: use GET, POST, PUT, PATCH, DELETE or HEAD", opts.Method)
			}
			if opts.Input != "" {
				var err error
				if opts.Input == "-" {
					opts.body, err = cmdutil.ReadAll(opts.Ctx, opts.IO.In, cmdutil.MaxInputBytes, "the body on stdin")
				} else {
					opts.body, err = cmdutil.ReadFile(opts.Ctx, opts.Input, cmdutil.MaxInputBytes, "the --input file")
				}
				if cause, ok := cmdutil.PathCause(err); ok {
					return cmdutil.FlagErrorf("--input %s: %v", opts.Input, cause)
				}
				if err != nil {
					return err
				}
				if opts.Method == http.MethodGet || opts.Method == http.MethodHead {
					return cmdutil.FlagErrorf("--input sends a body, which %s has none of: add -X POST", opts.Method)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return apiRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Method, "method", "X", "", "HTTP method (default GET, or POST with -f or --input)")
	cmd.Flags().StringArrayVarP(&fields, "field", "f", nil, "add a form field `key=value` (repeatable)")
	cmd.Flags().StringVar(&opts.Input, "input", "", "send this `FILE` as the body (- for stdin)")
	return cmd
}

func apiRun(opts *Options) error {
	c, err := opts.TDClient()
	if err != nil {
		return err
	}
	path := opts.Path
	var body any
	inQuery := opts.Method == http.MethodGet || opts.Method == http.MethodHead || opts.body != nil
	if len(opts.Fields) > 0 {
		if inQuery {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			path += sep + opts.Fields.Encode()
		} else {
			body = opts.Fields
		}
	}
	if opts.body != nil {
		body = opts.body
	}
	req, err := c.NewRequest(opts.Ctx, opts.Method, path, body)
	if err != nil {
		return err
	}
	if len(opts.Fields) > 0 {
		req.MaskValuesInLog() // any -f value may be a secret: --debug shows the names only
	}
	if opts.body != nil && json.Valid(opts.body) {
		req.Header().Set("Content-Type", "application/json")
	}
	var out bytes.Buffer
	if _, err := c.Do(opts.Ctx, req, &out); err != nil {
		return err
	}
	data := []byte(cmdutil.Redact(c.Redact(out.String())))
	if opts.IO.IsStdoutTTY() && json.Valid(data) {
		var ind bytes.Buffer
		if json.Indent(&ind, data, "", "  ") == nil {
			data = ind.Bytes()
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	if _, err := opts.IO.Out.Write(data); err != nil {
		return fmt.Errorf("writing the answer: %w", err)
	}
	return nil
}

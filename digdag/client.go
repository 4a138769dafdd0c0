package digdag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/td"
)

// Client talks to a digdag server or TD Workflow. Create it with NewClient;
// it is safe for concurrent use.
type Client struct {
	baseURL   string
	apiKey    string
	header    http.Header
	userAgent string
	hc        *http.Client
	retry     td.RetryPolicy
	logger    *slog.Logger
	red       *td.Secrets

	common service

	// Projects pushes projects and reads their workflows, sessions,
	// schedules and secrets.
	Projects *ProjectsService
	// Workflows reads workflow definitions across projects.
	Workflows *WorkflowsService
	// Attempts starts, lists, kills, retries and waits for attempts.
	Attempts *AttemptsService
	// Sessions lists sessions and their attempts.
	Sessions *SessionsService
	// Logs lists and downloads task logs.
	Logs *LogsService
	// Schedules lists, skips, enables, disables and backfills schedules.
	Schedules *SchedulesService
}

type service struct{ client *Client }

// Option configures a Client.
type Option func(*Client) error

// WithAPIKey authenticates as TD Workflow wants: "Authorization: TD1
// <key>". A plain digdag server needs none.
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		key = strings.TrimSpace(key)
		if strings.ContainsAny(key, " \t\r\n") || strings.IndexFunc(key, isControl) >= 0 {
			return invalidArg("the API key holds white space or a control character; check how it was copied")
		}
		c.apiKey = key
		c.red.Add(key)
		return nil
	}
}

// WithHeader adds a header to every request, for a digdag server behind an
// authenticator ("Authorization: Bearer ...", a proxy's key). Its value
// is masked like the API key.
func WithHeader(name, value string) Option {
	return func(c *Client) error {
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, " \t\r\n:") || strings.IndexFunc(value, isControl) >= 0 {
			return invalidArg("invalid header %q: give NAME and a value without control characters", name)
		}
		c.header.Add(textproto.CanonicalMIMEHeaderKey(name), value)
		c.red.Add(value)
		if _, v, ok := strings.Cut(value, " "); ok {
			c.red.Add(v) // "Bearer TOKEN": the token alone too
		}
		return nil
	}
}

// WithHTTPClient sets the underlying HTTP client (proxies, TLS, tests).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return invalidArg("WithHTTPClient: nil client")
		}
		c.hc = hc
		return nil
	}
}

// WithRetryPolicy replaces the retry policy (td's, the same default).
func WithRetryPolicy(p td.RetryPolicy) Option {
	return func(c *Client) error {
		if p.MaxRetries < 0 || p.MinWait < 0 || p.MaxWait < p.MinWait {
			return invalidArg("invalid retry policy: need MaxRetries >= 0 and 0 <= MinWait <= MaxWait")
		}
		c.retry = p
		return nil
	}
}

// WithUserAgent sets the User-Agent (default "tdctl/<td.Version>").
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if strings.IndexFunc(ua, isControl) >= 0 {
			return invalidArg("the User-Agent holds a control character")
		}
		c.userAgent = ua
		return nil
	}
}

// WithLogger traces every request and response at debug level, retries
// at info level; secrets are masked.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		c.logger = l
		return nil
	}
}

// WithSecrets makes the client mask the values of s (those added later
// too) wherever it masks its API key; it adds its own secrets to s. Share
// one set with a td.Client and the program's output.
func WithSecrets(s *td.Secrets) Option {
	return func(c *Client) error {
		if s != nil {
			s.Add(c.apiKey)
			for _, vs := range c.header {
				s.Add(vs...)
			}
			c.red = s
		}
		return nil
	}
}

// NewClient returns a client of the workflow API at endpoint: a site name
// (us01, jp01, eu01, ap02, ap03), a host or a URL (see ResolveEndpoint).
func NewClient(endpoint string, opts ...Option) (*Client, error) {
	if strings.TrimSpace(endpoint) == "" {
		return nil, invalidArg("no workflow endpoint: give a site (us01, jp01, eu01, ap02, ap03), a host or a URL")
	}
	base, err := ResolveEndpoint(endpoint, "")
	if err != nil {
		return nil, err
	}
	c := &Client{baseURL: base, header: http.Header{}, userAgent: "tdctl/" + td.Version,
		retry: td.DefaultRetryPolicy(), red: &td.Secrets{}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c.common.client = c
	c.Projects = (*ProjectsService)(&c.common)
	c.Workflows = (*WorkflowsService)(&c.common)
	c.Attempts = (*AttemptsService)(&c.common)
	c.Sessions = (*SessionsService)(&c.common)
	c.Logs = (*LogsService)(&c.common)
	c.Schedules = (*SchedulesService)(&c.common)
	return c, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Endpoint returns the base URL in use.
func (c *Client) Endpoint() string { return c.baseURL }

// Redact masks the client's secrets in s.
func (c *Client) Redact(s string) string { return c.red.Redact(s) }

// request is one API call.
type request struct {
	method      string
	path        string // escaped
	query       url.Values
	body        []byte
	contentType string
	retry       bool // safe to repeat
}

// call sends r within one retry budget and hands a 2xx answer to handle
// (inside the retry loop: a body cut mid-way is retried like a lost
// request). retried tells handle (and the caller, for a 409) whether more
// than one request went out. Any other status is an *APIError, returned
// with the status so a caller can read a 409's body (conflict).
func (c *Client) call(ctx context.Context, r *request, handle func(resp *http.Response) error, conflict func(resp *http.Response, retried bool) error) error {
	u := c.baseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body any
	if r.body != nil {
		body = r.body
	} else if r.method != http.MethodGet && r.method != http.MethodDelete {
		body = []byte{}
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return invalidArg("%s %s: %s", r.method, r.path, c.red.Redact(err.Error()))
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "TD1 "+c.apiKey)
	}
	for k, vs := range c.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	b := &backoff.Budget{Retry: r.retry, Transient: transient,
		Policy: backoff.Policy{MaxRetries: c.retry.MaxRetries, MinWait: c.retry.MinWait, MaxWait: c.retry.MaxWait}}
	req.SetResponseHandler(func(resp *http.Response) error {
		if resp.StatusCode/100 != 2 {
			return nil
		}
		defer resp.Body.Close()
		if handle == nil {
			_, err := io.Copy(io.Discard, resp.Body)
			return err
		}
		return handle(resp)
	})
	resp, err := b.Client(c.hc, c.logRequest, c.logResponse).Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		var pe *ProtocolError
		if ctx.Err() == nil && errors.As(err, &pe) {
			return pe
		}
		return newNetError(ctx, r.method, r.path, err, c.red)
	}
	if resp.StatusCode/100 == 2 {
		return nil // handled
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict && conflict != nil {
		return conflict(resp, b.Used > 1)
	}
	return newAPIError(resp, r.method, r.path, c.red)
}

// transient is backoff.Transient, but an answer that cannot be decoded
// is not sent again.
func transient(err error) bool {
	var pe *ProtocolError
	return !errors.As(err, &pe) && backoff.Transient(err)
}

// getJSON reads a JSON answer of a GET into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	return c.doJSON(ctx, &request{method: http.MethodGet, path: path, query: q, retry: true}, v)
}

// doJSON sends r and decodes its JSON answer into v (nil: discard).
func (c *Client) doJSON(ctx context.Context, r *request, v any) error {
	return c.call(ctx, r, c.decoder(r, v), nil)
}

// decoder returns a handler decoding a JSON answer into v.
func (c *Client) decoder(r *request, v any) func(*http.Response) error {
	return func(resp *http.Response) error {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err != nil {
			return fmt.Errorf("reading the answer: %w", err) // a cut answer: retried
		}
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(data, v); err != nil {
			return &ProtocolError{Method: r.method, Path: r.path,
				Msg: c.red.Redact(fmt.Sprintf("cannot decode answer (%s): %s", err, truncate(string(bytes.TrimSpace(data)), 200)))}
		}
		return nil
	}
}

// jsonBody marshals v as a request body.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, invalidArg("cannot encode the request: %v", err)
	}
	return b, nil
}

// maxAnswer bounds a JSON answer.
const maxAnswer = 256 << 20

func (c *Client) logRequest(req *http.Request, n int) {
	if c.logger == nil {
		return
	}
	if n > 1 {
		c.logger.Info("digdag retry", "method", req.Method, "url", c.red.Redact(req.URL.String()), "attempt", n)
		return
	}
	c.logger.Debug("digdag request", "method", req.Method, "url", c.red.Redact(req.URL.String()))
}

func (c *Client) logResponse(resp *http.Response) {
	if c.logger == nil {
		return
	}
	c.logger.Debug("digdag response", "method", resp.Request.Method, "url", c.red.Redact(resp.Request.URL.String()), "status", resp.StatusCode)
}

// path joins escaped segments: path("/api/projects", id, "workflows").
func path(prefix string, segs ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// requireID refuses an empty or non-numeric id before sending: digdag's
// ids are numbers written as strings.
func requireID(what, id string) error {
	if id == "" {
		return invalidArg("empty %s id", what)
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return invalidArg("%s id %q: digdag ids are numbers", what, id)
		}
	}
	return nil
}

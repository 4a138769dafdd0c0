package td

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"
)

// Version is the SDK version reported in the default User-Agent. The CLI
// overrides it at link time.
var Version = "dev"

// DefaultEndpoint is the US API endpoint.
const DefaultEndpoint = "https://api.treasuredata.com"

// siteEndpoints maps the site names users know (tdx's us01/jp01/..., the
// older us/tokyo/jp) to endpoint URLs.
var siteEndpoints = map[string]string{
	"us": DefaultEndpoint, "us01": DefaultEndpoint,
	"jp": "https://api.treasuredata.co.jp", "jp01": "https://api.treasuredata.co.jp", "tokyo": "https://api.treasuredata.co.jp",
	"eu": "https://api.eu01.treasuredata.com", "eu01": "https://api.eu01.treasuredata.com",
	"ap02": "https://api.ap02.treasuredata.com", "kr": "https://api.ap02.treasuredata.com",
	"ap03": "https://api.ap03.treasuredata.com",
}

// ResolveEndpoint turns what a user configured — a site name (us01, jp01,
// tokyo, eu01, ap02, ap03...), a bare host (https is assumed) or a full URL —
// into a base URL without trailing slash.
func ResolveEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultEndpoint, nil
	}
	if u, ok := siteEndpoints[strings.ToLower(s)]; ok {
		return u, nil
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("td: invalid endpoint %q: give a site (us01, jp01, eu01, ap02, ap03), a host such as api.treasuredata.com, or a URL", Redact(s))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("td: invalid endpoint %q: scheme must be http or https", Redact(s))
	}
	if u.User != nil {
		return "", fmt.Errorf("td: invalid endpoint %q: credentials do not belong in the endpoint; pass the API key separately", Redact(s))
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// Client talks to the TD API. Create it with NewClient.
type Client struct {
	apiKey    string
	baseURL   string
	userAgent string
	http      *retryablehttp.Client
	plain     *http.Client // the underlying client, for streamed downloads
	retry     RetryPolicy
	logger    *slog.Logger
	red       redactor

	common service

	// Jobs issues, inspects, lists, kills and waits for query jobs.
	Jobs *JobsService
	// Results downloads, decodes and exports job results.
	Results *ResultsService
	// Connections looks up saved result-output connections.
	Connections *ConnectionsService
}

type service struct{ client *Client }

// Option configures a Client.
type Option func(*Client) error

// WithEndpoint sets the API endpoint: a site name (us01, jp01, eu01, ap02,
// ap03, or us/tokyo/jp), a host, or a URL. The default is DefaultEndpoint.
func WithEndpoint(endpoint string) Option {
	return func(c *Client) error {
		u, err := ResolveEndpoint(endpoint)
		if err != nil {
			return err
		}
		c.baseURL = u
		return nil
	}
}

// WithHTTPClient sets the underlying HTTP client (for proxies, TLS, tests).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("td: WithHTTPClient: nil client")
		}
		c.plain = hc
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "tdctl/<Version>").
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// WithRetryPolicy replaces the retry policy.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) error {
		if p.MaxRetries < 0 || p.MinWait < 0 || p.MaxWait < p.MinWait {
			return fmt.Errorf("td: invalid retry policy: need MaxRetries >= 0 and 0 <= MinWait <= MaxWait")
		}
		c.retry = p
		return nil
	}
}

// WithLogger traces every HTTP request and response at debug level, and
// retries at info level. Secrets are redacted.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		c.logger = l
		return nil
	}
}

// NewClient returns a client authenticating with apiKey.
func NewClient(apiKey string, opts ...Option) (*Client, error) {
	apiKey = strings.TrimSpace(apiKey)
	if apiKey == "" {
		return nil, errors.New("td: no API key: set TD_API_KEY or pass one to NewClient")
	}
	if strings.ContainsAny(apiKey, " \t\r\n") {
		return nil, errors.New("td: the API key contains white space; check how it was copied")
	}
	c := &Client{
		apiKey:    apiKey,
		baseURL:   DefaultEndpoint,
		userAgent: "tdctl/" + Version,
		retry:     DefaultRetryPolicy(),
		red:       newRedactor(apiKey),
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.plain == nil {
		c.plain = &http.Client{Transport: defaultTransport()}
	}
	c.http = c.newRetryClient()
	c.common.client = c
	c.Jobs = (*JobsService)(&c.common)
	c.Results = (*ResultsService)(&c.common)
	c.Connections = (*ConnectionsService)(&c.common)
	return c, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	// a server that accepts and then says nothing must not hang a call
	t.ResponseHeaderTimeout = 5 * time.Minute
	t.ReadBufferSize = 256 << 10
	// We ask for gzip ourselves on JSON calls and must see msgpack.gz
	// results as they were sent.
	t.DisableCompression = true
	return t
}

// Endpoint returns the base URL in use.
func (c *Client) Endpoint() string { return c.baseURL }

// Redact masks the client's API key and any URL password in s.
func (c *Client) Redact(s string) string { return c.red.redact(s) }

// request describes one API call.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	form   url.Values
	// retry marks a call safe to retry (GETs, kill, issue with domain_key).
	retry bool
	// header is added to the request.
	header http.Header
}

type retryKey struct{}

// do sends r and returns the response for a 200; any other status becomes an
// *APIError. The caller closes the body.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	u := c.baseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body any
	if r.form != nil {
		body = []byte(r.form.Encode())
	} else if r.method == http.MethodPost {
		body = []byte{}
	}
	ctx = context.WithValue(ctx, retryKey{}, &retryState{retry: r.retry, maxWait: c.retry.MaxWait})
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("td: %s %s: %s", r.method, r.path, c.red.redact(err.Error()))
	}
	req.Header.Set("Authorization", "TD1 "+c.apiKey)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.logger != nil && r.form != nil {
		c.logger.Debug("td request form", "method", r.method, "path", r.path, "form", c.formForLog(r.form))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &NetError{Method: r.method, Path: r.path, Err: unwrapURLError(err), red: c.red}
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, newAPIError(resp, r.method, r.path, c.red)
	}
	return resp, nil
}

// unwrapURLError drops *url.Error's "Get <url>:" prefix; we print the path
// ourselves.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// doJSON sends r and decodes a JSON answer into v (unknown fields ignored).
func (c *Client) doJSON(ctx context.Context, r *request, v any) error {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("Accept-Encoding", "gzip")
	for attempt := 0; ; attempt++ {
		err := c.doJSONOnce(ctx, r, v)
		var ne *NetError
		// An answer cut after its headers is retried like a lost one when
		// the call is safe to retry (the transport layer only retries
		// failures before the headers).
		if err == nil || !r.retry || !errors.As(err, &ne) || attempt >= c.retry.MaxRetries || ctx.Err() != nil {
			return err
		}
		if c.logger != nil {
			c.logger.Info("td answer cut; retrying", "method", r.method, "path", r.path, "attempt", attempt+2)
		}
		if serr := sleepCtx(ctx, expBackoff(c.retry.MinWait, c.retry.MaxWait, attempt)); serr != nil {
			return serr
		}
	}
}

func (c *Client) doJSONOnce(ctx context.Context, r *request, v any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			if errors.Is(err, gzip.ErrHeader) {
				return fmt.Errorf("td: %s %s: bad gzip answer: %w", r.method, r.path, err)
			}
			// cut inside the gzip header: a network failure like any other
			return &NetError{Method: r.method, Path: r.path, Err: fmt.Errorf("reading the answer: %w", err), red: c.red}
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 256<<20))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return &NetError{Method: r.method, Path: r.path, Err: fmt.Errorf("reading the answer: %w", err), red: c.red}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("td: %s %s: cannot decode answer (%s): %s", r.method, r.path, err, c.red.redact(truncate(string(bytes.TrimSpace(data)), 200)))
	}
	return nil
}

// formForLog renders form values unescaped (so redaction sees URLs as they
// are) and redacted.
func (c *Client) formForLog(form url.Values) string {
	var b strings.Builder
	for k, vs := range form {
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(strconv.Quote(c.red.redact(v)))
		}
	}
	return b.String()
}

func (c *Client) logRequest(_ retryablehttp.Logger, req *http.Request, attempt int) {
	if c.logger == nil {
		return
	}
	if attempt > 0 {
		c.logger.Info("td retry", "method", req.Method, "url", c.red.redact(req.URL.String()), "attempt", attempt+1)
		return
	}
	c.logger.Debug("td request", "method", req.Method, "url", c.red.redact(req.URL.String()), "user_agent", req.Header.Get("User-Agent"))
}

func (c *Client) logResponse(_ retryablehttp.Logger, resp *http.Response) {
	if c.logger == nil {
		return
	}
	attrs := []any{"method", resp.Request.Method, "url", c.red.redact(resp.Request.URL.String()), "status", resp.StatusCode}
	for _, h := range []string{"Content-Length", "Content-Range", "Retry-After", "ETag"} {
		if v := resp.Header.Get(h); v != "" {
			attrs = append(attrs, strings.ToLower(h), v)
		}
	}
	c.logger.Debug("td response", attrs...)
}

// path joins escaped segments: path("/v3/job/show", id).
func path(prefix string, segs ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// timeout-free sleep that honours ctx.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

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

	"github.com/tdctl/tdctl/internal/backoff"
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

// siteNames lists the site names for messages.
const siteNames = "us01, jp01, eu01, ap02, ap03; also us, jp, tokyo, eu, kr"

// ResolveEndpoint turns what a user configured — a site name (us01, jp01,
// tokyo, eu01, ap02, ap03...), a host (https is assumed) or a full URL —
// into a base URL without trailing slash. A bare word that is no known site
// (ap01, a typo) is refused rather than looked up as a host name; localhost
// and any host with a dot or a port are hosts. Errors are *ArgumentError.
func ResolveEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultEndpoint, nil
	}
	if u, ok := siteEndpoints[strings.ToLower(s)]; ok {
		return u, nil
	}
	if !strings.ContainsAny(s, ".:/[") && !strings.EqualFold(s, "localhost") {
		return "", invalidArg("invalid endpoint %q: not a known site; use a site (%s), a host such as api.treasuredata.com, or a URL", Redact(s), siteNames)
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", invalidArg("invalid endpoint %q: give a site (%s), a host such as api.treasuredata.com, or a URL", Redact(s), siteNames)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", invalidArg("invalid endpoint %q: scheme must be http or https", Redact(s))
	}
	if u.User != nil {
		return "", invalidArg("invalid endpoint %q: credentials do not belong in the endpoint; pass the API key separately", Redact(s))
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// Client talks to the TD API. Create it with NewClient.
type Client struct {
	apiKey    string
	baseURL   string
	userAgent string
	plain     *http.Client // the client given to WithHTTPClient, or the default one
	transport *http.Client // plain with the read idle timeout around its transport
	retry     RetryPolicy
	idle      time.Duration
	logger    *slog.Logger
	red       redactor

	common service

	// Jobs issues, inspects, lists, kills and waits for query jobs.
	Jobs *JobsService
	// Results downloads, decodes and exports job results.
	Results *ResultsService
	// Connections lists and looks up saved result-output connections.
	Connections *ConnectionsService
	// Schedules manages saved queries: list, create, update, delete, run
	// and their job history.
	Schedules *SchedulesService
	// Databases lists, creates and deletes databases.
	Databases *DatabasesService
	// Tables manages tables: list, show, create, delete, rename, swap,
	// schema, expiry, tail and partial delete.
	Tables *TablesService
	// Exports starts table export jobs.
	Exports *ExportsService
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
			return invalidArg("WithHTTPClient: nil client")
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
			return invalidArg("invalid retry policy: need MaxRetries >= 0 and 0 <= MinWait <= MaxWait")
		}
		c.retry = p
		return nil
	}
}

// WithReadIdleTimeout sets how long a request may go without receiving
// anything — waiting for the answer's headers, or for more of its body —
// before the connection counts as lost: the request is retried, or a
// download resumed, within the call's retry budget. The default is
// DefaultReadIdleTimeout. Bound a whole call with its context.
func WithReadIdleTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return invalidArg("WithReadIdleTimeout: the timeout must be positive")
		}
		c.idle = d
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

// NewClient returns a client authenticating with apiKey. A key that is
// empty, or holds white space or a control character, is refused with an
// *ArgumentError that does not quote it.
func NewClient(apiKey string, opts ...Option) (*Client, error) {
	apiKey = strings.TrimSpace(apiKey)
	if apiKey == "" {
		return nil, invalidArg("no API key: set TD_API_KEY or pass one to NewClient")
	}
	if strings.ContainsAny(apiKey, " \t\r\n") {
		return nil, invalidArg("the API key contains white space; check how it was copied")
	}
	if i := strings.IndexFunc(apiKey, isControl); i >= 0 {
		return nil, invalidArg("the API key holds a control character (%U); check how it was copied", []rune(apiKey[i:])[0])
	}
	c := &Client{
		apiKey:    apiKey,
		baseURL:   DefaultEndpoint,
		userAgent: "tdctl/" + Version,
		retry:     DefaultRetryPolicy(),
		idle:      DefaultReadIdleTimeout,
		red:       newRedactor(apiKey),
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if strings.IndexFunc(c.userAgent, isControl) >= 0 {
		return nil, invalidArg("the User-Agent holds a control character")
	}
	if c.plain == nil {
		c.plain = &http.Client{Transport: defaultTransport()}
	}
	base := c.plain.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	t := *c.plain
	t.Transport = &idleTransport{base: base, idle: c.idle}
	c.transport = &t
	c.common.client = c
	c.Jobs = (*JobsService)(&c.common)
	c.Results = (*ResultsService)(&c.common)
	c.Connections = (*ConnectionsService)(&c.common)
	c.Schedules = (*SchedulesService)(&c.common)
	c.Databases = (*DatabasesService)(&c.common)
	c.Tables = (*TablesService)(&c.common)
	c.Exports = (*ExportsService)(&c.common)
	return c, nil
}

// isControl reports a character no HTTP header may hold (Go's client
// would refuse the request on every attempt).
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	// A server that accepts and then says nothing is the read idle
	// timeout's (idleTransport), for headers and body alike.
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
	// body is sent as it is when form is nil (NewRequest's raw bodies).
	body []byte
	// maskValues hides every form and query value in the debug log
	// (Request.MaskValuesInLog), not only those that look secret.
	maskValues bool
}

// maskValuesKey marks an *http.Request whose query values the debug log
// hides (request.maskValues).
type maskValuesKey struct{}

// do sends r, retrying within b, and returns the response for a 200 or
// 206; any other status becomes an *APIError. handle, when set, reads a 200
// answer inside the retry loop — an answer cut mid-way is then retried like
// a lost one — and closes its body; otherwise the caller closes it.
func (c *Client) do(ctx context.Context, r *request, b *budget, handle func(*http.Response) error) (*http.Response, error) {
	u := c.baseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body any
	if r.form != nil {
		body = []byte(r.form.Encode())
	} else if r.body != nil {
		body = r.body
	} else if r.method == http.MethodPost {
		body = []byte{}
	}
	if r.maskValues {
		ctx = context.WithValue(ctx, maskValuesKey{}, true)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, invalidArg("%s %s: %s", r.method, r.path, c.red.redact(err.Error()))
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
	if handle != nil {
		req.SetResponseHandler(func(resp *http.Response) error {
			if resp.StatusCode != http.StatusOK {
				return nil // an *APIError below
			}
			return handle(resp)
		})
	}
	if r.form == nil && r.body != nil && r.header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.logger != nil && r.form != nil {
		c.logger.Debug("td request form", "method", r.method, "path", r.path, "form", c.formForLog(r.form, r.maskValues))
	}
	if c.logger != nil && r.form == nil && r.body != nil {
		c.logger.Debug("td request body", "method", r.method, "path", r.path, "bytes", len(r.body),
			"body", c.red.redact(truncate(string(r.body), 200)))
	}
	resp, err := c.retryClient(b).Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		var ne *NetError
		var pe *ProtocolError
		if errors.As(err, &ne) || errors.As(err, &pe) {
			return nil, err
		}
		return nil, newNetError(r.method, r.path, err, c.red)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, newAPIError(resp, r.method, r.path, c.red)
	}
	return resp, nil
}

// doJSON is Do for the package's own calls: it sends r and decodes a JSON
// answer into v (unknown fields ignored). One retry budget covers lost
// requests and answers cut mid-way.
func (c *Client) doJSON(ctx context.Context, r *request, v any) error {
	_, err := c.send(ctx, r, v)
	return err
}

// send is the one way a JSON call is made (Do and every service): it asks
// for gzip, reads the whole 200 answer inside the retry loop (a cut answer
// is retried like a lost one) and then decodes it into v: nothing for nil,
// the bytes for an io.Writer, JSON otherwise.
func (c *Client) send(ctx context.Context, r *request, v any) (*http.Response, error) {
	return c.sendWith(ctx, r, c.newBudget(r.retry), v)
}

// sendWith is send with the caller's attempt budget (which then can tell
// whether the answer came after a retry).
func (c *Client) sendWith(ctx context.Context, r *request, b *budget, v any) (*http.Response, error) {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("Accept-Encoding", "gzip")
	var data []byte
	resp, err := c.do(ctx, r, b, func(resp *http.Response) error {
		defer resp.Body.Close()
		var err error
		data, err = c.readAnswer(ctx, r, resp)
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK { // a 206 nobody asked for
		resp.Body.Close()
		return resp, &ProtocolError{Method: r.method, Path: r.path, Msg: fmt.Sprintf("unexpected status %d", resp.StatusCode)}
	}
	switch v := v.(type) {
	case nil:
	case io.Writer:
		if _, err := v.Write(data); err != nil {
			return resp, err
		}
	default:
		if err := json.Unmarshal(data, v); err != nil {
			return resp, &ProtocolError{Method: r.method, Path: r.path,
				Msg: fmt.Sprintf("cannot decode answer (%s): %s", err, c.red.redact(truncate(string(bytes.TrimSpace(data)), 200)))}
		}
	}
	return resp, nil
}

// readAnswer reads a 200 answer (un-gzipping it when it says so). A body
// cut short is a *NetError (retried), one that is no gzip a *ProtocolError
// (not).
func (c *Client) readAnswer(ctx context.Context, r *request, resp *http.Response) ([]byte, error) {
	readErr := func(err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return newNetError(r.method, r.path, fmt.Errorf("reading the answer: %w", err), c.red)
	}
	var body io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			if errors.Is(err, gzip.ErrHeader) {
				return nil, &ProtocolError{Method: r.method, Path: r.path, Msg: "bad gzip answer", Err: err}
			}
			// cut inside the gzip header: a network failure like any other
			return nil, readErr(err)
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, maxAnswer))
	if err != nil {
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
			return nil, &ProtocolError{Method: r.method, Path: r.path, Msg: "bad gzip answer", Err: err}
		}
		return nil, readErr(err)
	}
	return data, nil
}

// maxAnswer bounds a JSON answer.
const maxAnswer = 256 << 20

// formForLog renders form values unescaped (so redaction sees URLs as they
// are) and redacted.
func (c *Client) formForLog(form url.Values, all bool) string {
	var b strings.Builder
	for k, vs := range form {
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(k)
			b.WriteByte('=')
			// a value is a secret by its own look (a URL password) or by
			// its field's name (secret_access_key=...)
			if kv := k + "=" + v; all || c.red.redact(kv) != kv && !strings.Contains(v, "://") {
				v = Mask
			}
			b.WriteString(strconv.Quote(c.red.redact(v)))
		}
	}
	return b.String()
}

// logRequest traces attempt n (from 1) of a request.
func (c *Client) logRequest(req *http.Request, n int) {
	if c.logger == nil {
		return
	}
	if n > 1 {
		c.logger.Info("td retry", "method", req.Method, "url", c.urlForLog(req), "attempt", n)
		return
	}
	c.logger.Debug("td request", "method", req.Method, "url", c.urlForLog(req), "user_agent", req.Header.Get("User-Agent"))
}

// urlForLog is req's URL, redacted, every query value hidden when the
// request asks for it (Request.MaskValuesInLog).
func (c *Client) urlForLog(req *http.Request) string {
	u := *req.URL
	if req.Context().Value(maskValuesKey{}) != nil && u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{Mask}
		}
		u.RawQuery = q.Encode()
	}
	return c.red.redact(u.String())
}

func (c *Client) logResponse(resp *http.Response) {
	if c.logger == nil {
		return
	}
	attrs := []any{"method", resp.Request.Method, "url", c.urlForLog(resp.Request), "status", resp.StatusCode}
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

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, d) }

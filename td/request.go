package td

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Request is one API call made with NewRequest and sent with Do: the raw
// way to reach an endpoint the SDK has no method for, with the same retry
// policy, redaction, typed errors and logging as the SDK's own calls.
type Request struct {
	r request
}

// MaskValuesInLog hides every form and query value of the request in the
// client's debug log (WithLogger), not only those that look secret: for
// values a caller cannot classify, such as `tdctl api -f` fields.
func (r *Request) MaskValuesInLog() { r.r.maskValues = true }

// Method returns the HTTP method.
func (r *Request) Method() string { return r.r.method }

// Path returns the escaped path, without the query string.
func (r *Request) Path() string { return r.r.path }

// Query returns the query string values (changes are sent).
func (r *Request) Query() url.Values {
	if r.r.query == nil {
		r.r.query = url.Values{}
	}
	return r.r.query
}

// Header returns the headers sent besides Authorization, User-Agent and
// Accept, which Do sets (changes are sent). A raw body is sent as
// application/x-www-form-urlencoded unless Content-Type is set here.
func (r *Request) Header() http.Header {
	if r.r.header == nil {
		r.r.header = http.Header{}
	}
	return r.r.header
}

// Retry reports whether Do may repeat the request after a lost answer, a
// 429 or a 5xx. NewRequest sets it for GET and HEAD.
func (r *Request) Retry() bool { return r.r.retry }

// SetRetry marks the request as safe (or not) to repeat. Mark a POST only
// when sending it twice does no harm (a kill, an issue with a domain_key).
func (r *Request) SetRetry(retry bool) { r.r.retry = retry }

// NewRequest builds a call to path (such as "/v3/job/list?from=0&to=9" or
// "v3/schedule/list"; escaped, relative to the client's endpoint) with
// body: nil, url.Values or map[string]string (sent as a form, as the TD
// API takes parameters), or []byte, string or io.Reader (sent as they are).
// A full URL is refused: the API key goes to the client's endpoint only.
// Errors are *ArgumentError; a ctx that is already done gives its error.
func (c *Client) NewRequest(ctx context.Context, method, path string, body any) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	method = strings.ToUpper(strings.TrimSpace(method))
	if method == "" || strings.IndexFunc(method, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return nil, invalidArg("invalid HTTP method %q: use GET, POST, PUT, PATCH, DELETE or HEAD", method)
	}
	path = strings.TrimSpace(path)
	if strings.Contains(path, "://") {
		return nil, invalidArg("give a path such as /v3/job/list, not a URL: requests go to the configured endpoint (%s)", c.baseURL)
	}
	if path == "" || path == "/" {
		return nil, invalidArg("a path is required, such as /v3/job/list")
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(path)
	if err != nil || u.Host != "" || u.Fragment != "" {
		return nil, invalidArg("invalid path %q: give an escaped path such as /v3/job/show/123 with an optional ?query", c.red.redact(path))
	}
	r := &Request{r: request{method: method, path: u.EscapedPath(), retry: method == http.MethodGet || method == http.MethodHead}}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return nil, invalidArg("invalid query string in %q: %s", c.red.redact(path), c.red.redact(err.Error()))
		}
		r.r.query = q
	}
	switch b := body.(type) {
	case nil:
	case url.Values:
		r.r.form = b
	case map[string]string:
		r.r.form = url.Values{}
		for k, v := range b {
			r.r.form.Set(k, v)
		}
	case []byte:
		r.r.body = b
	case string:
		r.r.body = []byte(b)
	case io.Reader:
		data, err := io.ReadAll(io.LimitReader(b, maxAnswer+1))
		if err != nil {
			return nil, invalidArg("reading the request body: %s", c.red.redact(err.Error()))
		}
		if len(data) > maxAnswer {
			return nil, invalidArg("the request body is over %d MiB", maxAnswer>>20)
		}
		r.r.body = data
	default:
		return nil, invalidArg("unsupported request body %T: use url.Values, map[string]string, []byte, string or an io.Reader", body)
	}
	return r, nil
}

// Do sends req and reads the whole answer: into v's JSON when v is a
// pointer (json.RawMessage keeps it as it is), as bytes when v is an
// io.Writer (written once the answer is complete), or not at all when v is
// nil. A request marked Retry is repeated within the client's RetryPolicy,
// an answer cut mid-way included; a status other than 200 is an *APIError
// (errors.Is with ErrNotFound etc.), a lost answer a *NetError. The
// returned response's body is already read and closed; it is nil when no
// answer arrived.
func (c *Client) Do(ctx context.Context, req *Request, v any) (*http.Response, error) {
	if req == nil {
		return nil, invalidArg("Do: nil request (make one with NewRequest)")
	}
	r := req.r // the retry loop adds headers; the caller's Request stays as built
	r.header = req.Header().Clone()
	return c.send(ctx, &r, v)
}

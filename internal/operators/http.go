package operators

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tdctl/tdctl/internal/backoff"
	"github.com/tdctl/tdctl/workflow"
)

// HTTP is http>: one HTTP request, as digdag's HttpOperatorFactory makes
// it. Settings are the task's own keys, else the http.* params of the same
// name: method (GET), headers (a list of one-key mappings, sent in order),
// query (a mapping, or a query string), content with content_format (text,
// json or form; by default json for a mapping or list, text for a scalar)
// and content_type, timeout (seconds, 30), retry, store_content
// (http.last_content; digdag's limit of MaxHTTPStoredContent bytes),
// insecure (no certificate check) and follow_redirects (true, at most 8).
//
// Secrets come from digdag's http scope: http.authorization (the
// Authorization header), http.user and http.password (basic
// authentication), http.uri (the URL instead of the command). A URL
// holding a secret is logged as scheme://***; every secret's value is
// masked in the task's log and error.
//
// A 2xx or 3xx answer succeeds and stores http.last_status. A 4xx fails
// at once, except 408 and 429; those, 5xx, any other status and network
// errors are retried when retry is on (the default for GET, HEAD, OPTIONS
// and TRACE), waiting 1 s doubling to 30 s, at most HTTPRetries times:
// digdag retries without end, tdctl gives up with the last error.
type HTTP struct {
	Env *Env
	// MinWait and MaxWait bound the waits between retries (0 = 1 s and
	// 30 s); Retries is how many (0 = HTTPRetries). Tests shorten them.
	MinWait, MaxWait time.Duration
	Retries          int
}

// Limits of http>.
const (
	// HTTPRetries is how many times a retried request is sent again.
	HTTPRetries = 7
	// MaxHTTPStoredContent is the largest body store_content keeps
	// (digdag's max_stored_response_content_size).
	MaxHTTPStoredContent = 64 << 10
	maxHTTPRedirects     = 8
)

var httpSpec = keySpec{op: "http",
	known: []string{"method", "headers", "query", "content", "content_format", "content_type", "store_content",
		"timeout", "retry", "insecure", "follow_redirects"},
	digdag: map[string]string{
		"proxy": "set HTTPS_PROXY / HTTP_PROXY in tdctl's environment (http> uses them)",
	}}

// Defines implements workflow.Definer.
func (h *HTTP) Defines(t *workflow.Task) []string {
	out := []string{"http.last_status"}
	if n := t.Param("store_content"); n != nil && n.Value != "false" {
		out = append(out, "http.last_content")
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// httpRequest is an http> task's request, read and checked.
type httpRequest struct {
	method      string
	url         string
	safeURL     string // what logs and errors show
	headers     [][2]string
	body        []byte
	contentType string
	timeout     time.Duration
	retry       bool
	store       bool
	insecure    bool
	redirects   bool
}

func (h *HTTP) setting(tc *workflow.TaskContext, key string) (any, bool) {
	if v, ok := tc.Config[key]; ok && v != nil {
		return v, true
	}
	if tc.Dynamic[key] {
		return nil, true
	}
	if v, ok := tc.Scope.Get("http." + key); ok && v != nil {
		return v, true
	}
	return nil, false
}

func (h *HTTP) boolSetting(tc *workflow.TaskContext, key string, def bool) (bool, error) {
	v, ok := h.setting(tc, key)
	if !ok || v == nil {
		return def, nil
	}
	if b, ok := v.(bool); ok {
		return b, nil
	}
	b, err := boolText(workflow.Format(v))
	if err != nil {
		return false, fmt.Errorf("http> %s %v", key, err)
	}
	return b, nil
}

// request reads a task's settings; in Validate what is known at run time
// only passes and secrets are not read.
func (h *HTTP) request(tc *workflow.TaskContext) (*httpRequest, error) {
	validating := tc.Dynamic != nil
	r := &httpRequest{method: "GET", timeout: 30 * time.Second}
	if v, ok := h.setting(tc, "method"); ok && v != nil {
		r.method = strings.ToUpper(strings.TrimSpace(workflow.Format(v)))
		if r.method == "" || strings.ContainsAny(r.method, " \t\r\n") {
			return nil, fmt.Errorf("http> method must be an HTTP method such as GET or POST (got %q)", workflow.Format(v))
		}
	}
	dyn := func(key string) bool { return validating && tc.Dynamic[key] }
	var err error
	if !dyn("retry") {
		def := map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true}[r.method]
		if r.retry, err = h.boolSetting(tc, "retry", def); err != nil {
			return nil, err
		}
	}
	if !dyn("store_content") {
		if r.store, err = h.boolSetting(tc, "store_content", false); err != nil {
			return nil, err
		}
	}
	if !dyn("insecure") {
		if r.insecure, err = h.boolSetting(tc, "insecure", false); err != nil {
			return nil, err
		}
	}
	if !dyn("follow_redirects") {
		if r.redirects, err = h.boolSetting(tc, "follow_redirects", true); err != nil {
			return nil, err
		}
	}
	if v, ok := h.setting(tc, "timeout"); ok && v != nil && !dyn("timeout") {
		n, err := strconv.ParseInt(strings.TrimSpace(workflow.Format(v)), 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("http> timeout must be a whole number of seconds (got %q)", workflow.Format(v))
		}
		r.timeout = time.Duration(n) * time.Second
	}
	// the URL: the secret http.uri, else the command
	secretURI := false
	if !validating && tc.Secret != nil {
		if u, ok := tc.Secret("http.uri"); ok {
			r.url, secretURI = u, true
		}
	}
	if r.url == "" {
		r.url = strings.TrimSpace(workflow.Format(tc.Command))
		if tc.Task.Command != nil && strings.Contains(tc.Task.Command.Value, "${secret:") {
			secretURI = true
		}
	}
	// in Validate an empty command passes: the secret http.uri may give it
	if r.url == "" && !validating {
		return nil, errors.New("http> needs a URL: http>: https://host/path (or the secret http.uri)")
	}
	if err := h.headers(tc, r); err != nil {
		return nil, err
	}
	if !tc.Dynamic[""] && !dyn("query") && r.url != "" {
		u, err := url.Parse(r.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			if secretURI {
				return nil, errors.New("http> the URL (a secret) is not an http:// or https:// URL")
			}
			return nil, fmt.Errorf("http> %q is not an http:// or https:// URL", r.url)
		}
		if err := h.query(tc, u); err != nil {
			return nil, err
		}
		r.url = u.String()
		safe := *u
		safe.User = nil
		r.safeURL = safe.String()
		if secretURI {
			r.safeURL = u.Scheme + "://***"
		}
	}
	if err := h.content(tc, r); err != nil {
		return nil, err
	}
	return r, nil
}

// headers reads headers: a list of one-key mappings.
func (h *HTTP) headers(tc *workflow.TaskContext, r *httpRequest) error {
	v, ok := h.setting(tc, "headers")
	if !ok || v == nil || tc.Dynamic["headers"] {
		return nil // in Validate: known at run time
	}
	list, isList := v.([]any)
	if !isList {
		return fmt.Errorf("http> headers must be a list of NAME: VALUE entries, e.g. headers: [{Accept: application/json}] (got %s)", workflow.Format(v))
	}
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok || len(m) != 1 {
			return fmt.Errorf("http> headers: each entry is one NAME: VALUE mapping (got %s)", workflow.Format(e))
		}
		for k, val := range m {
			if _, isMap := val.(map[string]any); isMap {
				return fmt.Errorf("http> headers: the value of %s must be a string", k)
			}
			r.headers = append(r.headers, [2]string{k, workflow.Format(val)})
		}
	}
	return nil
}

// query adds query: (a mapping in written order, or a query string) to u.
func (h *HTTP) query(tc *workflow.TaskContext, u *url.URL) error {
	v, ok := h.setting(tc, "query")
	if !ok || v == nil {
		return nil
	}
	var pairs []string
	switch q := v.(type) {
	case map[string]any:
		keys := tc.KeyOrder("query")
		if _, own := tc.Config["query"]; !own {
			keys = sortedKeys(q) // an http.query default
		}
		for _, k := range keys {
			if _, isMap := q[k].(map[string]any); isMap {
				return fmt.Errorf("http> query: the value of %s must be a scalar", k)
			}
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(workflow.Format(q[k])))
		}
	case []any:
		return errors.New("http> query must be a mapping or a query string (a=1&b=2)")
	default:
		s := workflow.Format(q)
		if _, err := url.ParseQuery(s); err != nil {
			return fmt.Errorf("http> query is not a query string: %v", err)
		}
		// re-encode each pair as digdag does (its parser decodes, the
		// request encodes again)
		for _, part := range strings.Split(s, "&") {
			if part == "" {
				continue
			}
			k, val, _ := strings.Cut(part, "=")
			k, _ = url.QueryUnescape(k)
			val, _ = url.QueryUnescape(val)
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(val))
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += strings.Join(pairs, "&")
	return nil
}

// content encodes content: per content_format, as digdag's
// contentProvider does (a scalar sent as text is labelled plain/text,
// digdag's header, which HttpIT checks).
func (h *HTTP) content(tc *workflow.TaskContext, r *httpRequest) error {
	v, ok := h.setting(tc, "content")
	if !ok || tc.Dynamic["content"] || tc.Dynamic["content_format"] {
		return nil // in Validate: known at run time
	}
	format := ""
	if f, ok := h.setting(tc, "content_format"); ok && f != nil {
		format = strings.ToLower(workflow.Format(f))
	}
	if ct, ok := h.setting(tc, "content_type"); ok && ct != nil {
		r.contentType = workflow.Format(ct)
	}
	kind := "scalar"
	switch v.(type) {
	case map[string]any:
		kind = "object"
	case []any:
		kind = "array"
	}
	if format == "" {
		format = map[bool]string{true: "text", false: "json"}[kind == "scalar"]
	}
	setType := func(def string) {
		if r.contentType == "" {
			r.contentType = def
		}
	}
	switch {
	case format == "json":
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("http> content: %v", err)
		}
		r.body = b
		setType("application/json")
	case format == "text" && kind == "scalar":
		r.body = []byte(workflow.Format(v))
		setType("plain/text")
	case format == "form" && kind == "object":
		m := v.(map[string]any)
		var pairs []string
		keys := tc.KeyOrder("content")
		if _, own := tc.Config["content"]; !own {
			keys = sortedKeys(m) // an http.content default
		}
		for _, k := range keys {
			val := m[k]
			switch val.(type) {
			case map[string]any, []any:
				return fmt.Errorf("http> content: with content_format: form each value must be a scalar (%s is not)", k)
			}
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(workflow.Format(val)))
		}
		r.body = []byte(strings.Join(pairs, "&"))
		setType("application/x-www-form-urlencoded")
	case format == "text" || format == "form" || format == "json":
		return fmt.Errorf("http> content_format %s cannot send a%s %s content: use json", format, map[bool]string{true: "n"}[kind == "object" || kind == "array"], kind)
	default:
		return fmt.Errorf("http> content_format must be text, json or form (got %q)", format)
	}
	return nil
}

// Validate implements workflow.Validator.
func (h *HTTP) Validate(tc *workflow.TaskContext) error {
	if err := httpSpec.check(tc.Task, ""); err != nil {
		return err
	}
	_, err := h.request(tc)
	return err
}

// httpError is a failed request; retry says whether sending it again may
// help.
type httpError struct {
	msg   string
	retry bool
}

func (e *httpError) Error() string { return e.msg }

// Run implements workflow.Operator.
func (h *HTTP) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	r, err := h.request(tc)
	if err != nil {
		return nil, err
	}
	if tc.Secret != nil {
		if a, ok := tc.Secret("http.authorization"); ok {
			r.headers = append([][2]string{{"Authorization", a}}, r.headers...)
		} else if u, ok := tc.Secret("http.user"); ok {
			p, _ := tc.Secret("http.password")
			req, _ := http.NewRequest("GET", "http://x/", nil)
			req.SetBasicAuth(u, p)
			r.headers = append([][2]string{{"Authorization", req.Header.Get("Authorization")}}, r.headers...)
		}
	}
	client := &http.Client{Timeout: r.timeout}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the task asked for insecure: true
	}
	defer tr.CloseIdleConnections()
	client.Transport = tr
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !r.redirects {
			return http.ErrUseLastResponse
		}
		if len(via) >= maxHTTPRedirects {
			return fmt.Errorf("more than %d redirects", maxHTTPRedirects)
		}
		return nil
	}
	retries := h.Retries
	if retries <= 0 {
		retries = HTTPRetries
	}
	minWait, maxWait := h.MinWait, h.MaxWait
	if minWait <= 0 {
		minWait = time.Second
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	for attempt := 0; ; attempt++ {
		status, body, err := h.send(ctx, tc, client, r)
		if err == nil {
			return h.result(r, status, body)
		}
		var he *httpError
		if !r.retry || !errors.As(err, &he) || !he.retry || ctx.Err() != nil {
			return nil, err
		}
		if attempt >= retries {
			return nil, fmt.Errorf("%w (gave up after %d retries)", err, retries)
		}
		wait := backoff.Exp(minWait, maxWait, attempt)
		fmt.Fprintf(tc.Log, "%s: retrying in %s\n", err, wait)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// send makes one request and reads the answer.
func (h *HTTP) send(ctx context.Context, tc *workflow.TaskContext, client *http.Client, r *httpRequest) (int, []byte, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return 0, nil, fmt.Errorf("http> %s %s: %v", r.method, r.safeURL, scrubURLError(err, r))
	}
	req.Header.Set("User-Agent", "tdctl")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for _, kv := range r.headers {
		switch {
		case strings.EqualFold(kv[0], "Content-Type"):
			req.Header.Set(kv[0], kv[1]) // replaces the one content implies
		case strings.EqualFold(kv[0], "Host"):
			req.Host = kv[1] // net/http sends Host from req.Host only
		default:
			req.Header.Add(kv[0], kv[1])
		}
	}
	fmt.Fprintf(tc.Log, "sending HTTP request: %s %s\n", r.method, r.safeURL)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, &httpError{msg: fmt.Sprintf("http> %s %s failed: %v", r.method, r.safeURL, scrubURLError(err, r)), retry: true}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxHTTPStoredContent+1))
	if err != nil {
		return 0, nil, &httpError{msg: fmt.Sprintf("http> %s %s: reading the answer: %v", r.method, r.safeURL, scrubURLError(err, r)), retry: true}
	}
	fmt.Fprintf(tc.Log, "received HTTP response: %s %s: %s\n", r.method, r.safeURL, resp.Status)
	st := resp.StatusCode
	if st >= 200 && st < 400 {
		return st, data, nil
	}
	summary := string(data)
	if len(data) > MaxHTTPStoredContent {
		summary = "(too long response body)"
	} else if len([]rune(summary)) > 200 {
		summary = string([]rune(summary)[:197]) + "..."
	}
	what := fmt.Sprintf("%s %s - %s: %s", r.method, r.safeURL, resp.Status, summary)
	switch {
	case st == http.StatusRequestTimeout || st == http.StatusTooManyRequests:
		return 0, nil, &httpError{msg: "http> failed HTTP request: " + what, retry: true}
	case st >= 400 && st < 500:
		return 0, nil, &httpError{msg: "http> HTTP 4XX client error: " + what}
	case st >= 500 && st < 600:
		return 0, nil, &httpError{msg: "http> HTTP 5XX server error: " + what, retry: true}
	}
	return 0, nil, &httpError{msg: "http> unexpected HTTP status: " + what, retry: true}
}

// scrubURLError keeps the request's URL out of a Go error (*url.Error
// quotes it, user info and all).
func scrubURLError(err error, r *httpRequest) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	if r.url != "" && strings.Contains(err.Error(), r.url) {
		return errors.New(strings.ReplaceAll(err.Error(), r.url, r.safeURL))
	}
	return err
}

func (h *HTTP) result(r *httpRequest, status int, body []byte) (*workflow.Result, error) {
	res := &workflow.Result{Store: map[string]any{"http.last_status": int64(status)}, Reset: []string{"http.last_status"}}
	if r.store {
		if len(body) > MaxHTTPStoredContent {
			return nil, fmt.Errorf("http> store_content: the answer is more than %d bytes (digdag's limit)", MaxHTTPStoredContent)
		}
		res.Store["http.last_content"] = string(body)
		res.Reset = append(res.Reset, "http.last_content")
	}
	return res, nil
}

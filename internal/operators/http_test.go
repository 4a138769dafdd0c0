package operators

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/workflow"
)

// recorded is one request the loopback server got.
type recorded struct {
	method, path, body string
	header             http.Header
}

// loopback is an httptest server that records requests and answers with
// the statuses of answers in turn (then 200), and body.
type loopback struct {
	*httptest.Server
	mu      sync.Mutex
	got     []recorded
	answers []int
	body    string
}

func newLoopback(t *testing.T, body string, answers ...int) *loopback {
	l := &loopback{answers: answers, body: body}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.got = append(l.got, recorded{method: r.Method, path: r.URL.RequestURI(), body: string(b), header: r.Header.Clone()})
		status := 200
		if len(l.answers) > 0 {
			status, l.answers = l.answers[0], l.answers[1:]
		}
		l.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, l.body)
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *loopback) requests() []recorded {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]recorded(nil), l.got...)
}

// httpOps are the operators with http>'s retries waiting a millisecond.
func httpOps() map[string]workflow.Operator {
	ops := Operators(nil)
	ops["http"] = &HTTP{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond, Retries: 3}
	return ops
}

func runHTTP(t *testing.T, dig string, secrets workflow.Secrets) (string, error) {
	t.Helper()
	_, out, err := runWorkflow(t, dig, httpOps(), secrets)
	return out, err
}

// HttpIT testHttp and http_for_each.dig: a GET, its content stored and
// used by the next task.
func TestHTTPGetStoreContent(t *testing.T) {
	l := newLoopback(t, `["a","b"]`)
	out, err := runHTTP(t, `
+http:
  http>: `+l.URL+`/list
  store_content: true
+for_each:
  for_each>:
    name: ${http.last_content}
  _do:
    echo>: Hello ${name}! status ${http.last_status}
`, nil)
	require.NoError(t, err)
	assert.Contains(t, out, "Hello a! status 200")
	assert.Contains(t, out, "Hello b! status 200")
	reqs := l.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "GET", reqs[0].method)
	assert.Equal(t, "/list", reqs[0].path)
}

// HttpIT testContentJsonObject / testContentFormObject / testContentScalar
// and testPost: the content per content_format, secrets resolved in keys
// and values, form fields in written order.
func TestHTTPContentFormats(t *testing.T) {
	secrets := workflow.SecretMap{"content_value_1": "secret_content_value_1", "content_name_2": "secret_content_name_2", "content_value_2": "secret_content_value_2"}
	l := newLoopback(t, "")
	_, err := runHTTP(t, `
+form:
  http>: `+l.URL+`/
  method: POST
  content:
    a: foo
    b&foo: 4711
    c?bar: qu=ux
    plain_content_name_1: ${secret:content_value_1}
    ${secret:content_name_2}: ${secret:content_value_2}
    foo_${secret:content_name_2}_bar: foo_${secret:content_value_2}_bar
  content_format: form
+json:
  http>: `+l.URL+`/
  method: POST
  content:
    n: 1
    list: [x, "${secret:content_value_1}"]
+scalar:
  http>: `+l.URL+`/
  method: POST
  content: hello foo_${secret:content_value_1}_bar
+typed:
  http>: `+l.URL+`/
  method: PUT
  content: test-content
  content_type: text/plain
`, secrets)
	require.NoError(t, err)
	reqs := l.requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, "a=foo&b%26foo=4711&c%3Fbar=qu%3Dux&plain_content_name_1=secret_content_value_1&secret_content_name_2=secret_content_value_2&foo_secret_content_name_2_bar=foo_secret_content_value_2_bar", reqs[0].body)
	assert.Equal(t, "application/x-www-form-urlencoded", reqs[0].header.Get("Content-Type"))
	assert.JSONEq(t, `{"n":1,"list":["x","secret_content_value_1"]}`, reqs[1].body)
	assert.Equal(t, "application/json", reqs[1].header.Get("Content-Type"))
	assert.Equal(t, "hello foo_secret_content_value_1_bar", reqs[2].body)
	assert.Equal(t, "plain/text", reqs[2].header.Get("Content-Type")) // digdag's label, as HttpIT checks
	assert.Equal(t, "PUT", reqs[3].method)
	assert.Equal(t, "text/plain", reqs[3].header.Get("Content-Type"))
}

// HttpIT testCustomHeaders: headers in order, repeated names kept,
// secrets in names and values.
func TestHTTPHeaders(t *testing.T) {
	var raw []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"Foo", "Bar", "Plain_header_name_1", "Secret_header_name_2"} {
			for _, v := range r.Header.Values(name) {
				raw = append(raw, name+"="+v)
			}
		}
	}))
	defer srv.Close()
	_, err := runHTTP(t, `
+http:
  http>: `+srv.URL+`
  headers:
    - foo: foo-value-1
    - bar: bar-value
    - foo: foo-value-2
    - plain_header_name_1: ${secret:header_value_1}
    - ${secret:header_name_2}: ${secret:header_value_2}
`, workflow.SecretMap{"header_value_1": "secret_header_value_1", "header_name_2": "secret_header_name_2", "header_value_2": "secret_header_value_2"})
	require.NoError(t, err)
	assert.Equal(t, []string{"Foo=foo-value-1", "Foo=foo-value-2", "Bar=bar-value", "Plain_header_name_1=secret_header_value_1", "Secret_header_name_2=secret_header_value_2"}, raw)
}

// HttpIT testQueryParameters / testQueryString and http_query.dig.
func TestHTTPQuery(t *testing.T) {
	l := newLoopback(t, "")
	secrets := workflow.SecretMap{"arg_value_1": "secret_arg_value_1", "arg_name_2": "secret_arg_name_2", "arg_value_2": "secret_arg_value_2"}
	_, err := runHTTP(t, `
+structured:
  http>: `+l.URL+`/test
  query: {n1: v1, n2: "v &?2"}
+string:
  http>: `+l.URL+`/test
  query: n1=v1&n2=v+%26%3F2
+embedded:
  http>: `+l.URL+`/test?foo=bar&plain_arg_name_1=${secret:arg_value_1}&${secret:arg_name_2}=${secret:arg_value_2}
+separate:
  http>: `+l.URL+`/test
  query: foo=bar&plain_arg_name_1=${secret:arg_value_1}&${secret:arg_name_2}=${secret:arg_value_2}
+mapping:
  http>: `+l.URL+`/test
  query:
    foo: bar
    plain_arg_name_1: ${secret:arg_value_1}
    ${secret:arg_name_2}: ${secret:arg_value_2}
`, secrets)
	require.NoError(t, err)
	reqs := l.requests()
	require.Len(t, reqs, 5)
	assert.Equal(t, "/test?n1=v1&n2=v+%26%3F2", reqs[0].path)
	assert.Equal(t, "/test?n1=v1&n2=v+%26%3F2", reqs[1].path)
	want := "/test?foo=bar&plain_arg_name_1=secret_arg_value_1&secret_arg_name_2=secret_arg_value_2"
	for _, r := range reqs[2:] {
		assert.Equal(t, want, r.path)
	}
}

// HttpIT testBasicAuth / testCustomAuth: the http.* secrets.
func TestHTTPAuthSecrets(t *testing.T) {
	l := newLoopback(t, "")
	_, err := runHTTP(t, "+a:\n  http>: "+l.URL+"\n", workflow.SecretMap{"http.user": "test-user", "http.password": "test-pass"})
	require.NoError(t, err)
	_, err = runHTTP(t, "+a:\n  http>: "+l.URL+"\n", workflow.SecretMap{"http.authorization": "Bearer badf00d"})
	require.NoError(t, err)
	reqs := l.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("test-user:test-pass")), reqs[0].header.Get("Authorization"))
	assert.Equal(t, "Bearer badf00d", reqs[1].header.Get("Authorization"))
}

// HttpIT's ephemeral-error cases: 5xx (and 408, 429) are retried for safe
// methods by default, not for POST unless retry: true; a 4xx is never
// retried.
func TestHTTPRetries(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		answers     []int
		wantCalls   int
		wantErr     string
	}{
		{"GET retried", "", []int{500, 503, 429}, 4, ""},
		{"POST not retried", "  method: POST\n", []int{500}, 1, "HTTP 5XX server error: POST"},
		{"POST with retry", "  method: POST\n  retry: true\n", []int{502, 408}, 3, ""},
		{"GET retry off", "  retry: false\n", []int{500}, 1, "HTTP 5XX server error"},
		{"4xx fails at once", "", []int{404}, 1, "HTTP 4XX client error: GET"},
		{"gives up", "", []int{500, 500, 500, 500, 500}, 4, "gave up after 3 retries"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLoopback(t, "oops", c.answers...)
			_, err := runHTTP(t, "+a:\n  http>: "+l.URL+"/x\n"+c.extra, nil)
			if c.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				assert.Contains(t, err.Error(), ": oops") // the answer's body, as digdag shows it
			}
			assert.Len(t, l.requests(), c.wantCalls)
		})
	}
	// a network error is retried too: nothing listens, 1 + 3 tries fail
	l := newLoopback(t, "")
	u := l.URL
	l.Close()
	out, err := runHTTP(t, "+a:\n  http>: "+u+"\n", nil)
	require.Error(t, err)
	assert.Equal(t, 3, strings.Count(out, "retrying in"))
}

// A Content-Type in headers replaces the one the content implies.
func TestHTTPContentTypeHeaderReplaces(t *testing.T) {
	l := newLoopback(t, "")
	_, err := runHTTP(t, "+a:\n  http>: "+l.URL+"\n  method: POST\n  content: {a: 1}\n  headers:\n    - Content-Type: application/vnd.x+json\n", nil)
	require.NoError(t, err)
	reqs := l.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, []string{"application/vnd.x+json"}, reqs[0].header.Values("Content-Type"))
}

// timeout: a server slower than it fails the request.
func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	_, err := runHTTP(t, "+a:\n  http>: "+srv.URL+"\n  timeout: 1\n  retry: false\n", nil)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
}

// Secrets never show: a URL holding one is logged as scheme://***, and
// neither the log nor the error of a failing request holds a secret.
func TestHTTPSecretsNeverShown(t *testing.T) {
	l := newLoopback(t, "denied", 403)
	secrets := workflow.SecretMap{"token": "tok-SECRET-123", "http.authorization": "Bearer auth-SECRET-456", "hdr": "hdr-SECRET-789"}
	out, err := runHTTP(t, `
+a:
  http>: `+l.URL+`/x?token=${secret:token}
  headers:
    - X-Key: ${secret:hdr}
`, secrets)
	require.Error(t, err)
	all := out + err.Error()
	for _, s := range []string{"tok-SECRET-123", "auth-SECRET-456", "hdr-SECRET-789"} {
		assert.NotContains(t, all, s)
	}
	assert.Contains(t, all, "http://***")
	reqs := l.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/x?token=tok-SECRET-123", reqs[0].path)
	assert.Equal(t, "hdr-SECRET-789", reqs[0].header.Get("X-Key"))

	// the secret http.uri replaces the command, and is never shown
	l2 := newLoopback(t, "", 500)
	out, err = runHTTP(t, "+a:\n  http>: http://unused.invalid/\n  method: POST\n", workflow.SecretMap{"http.uri": l2.URL + "/hidden-path"})
	require.Error(t, err)
	assert.NotContains(t, out+err.Error(), "hidden-path")
	require.Len(t, l2.requests(), 1)
	assert.Equal(t, "/hidden-path", l2.requests()[0].path)
}

// store_content keeps at most MaxHTTPStoredContent bytes (digdag's limit).
func TestHTTPStoreContentLimit(t *testing.T) {
	l := newLoopback(t, strings.Repeat("x", MaxHTTPStoredContent+1))
	_, err := runHTTP(t, "+a:\n  http>: "+l.URL+"\n  store_content: true\n", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "store_content: the answer is more than 65536 bytes")
}

// Mistakes are found by check with the task's line.
func TestHTTPCheckedBeforeRunning(t *testing.T) {
	for _, c := range []struct{ dig, want string }{
		{"+a:\n  http>: http://x/\n  methd: POST\n", "unknown http> key methd (did you mean method?)"},
		{"+a:\n  http>: http://x/\n  headers: {a: b}\n", "headers must be a list"},
		{"+a:\n  http>: http://x/\n  headers: [{a: b, c: d}]\n", "each entry is one NAME: VALUE mapping"},
		{"+a:\n  http>: http://x/\n  content: [1]\n  content_format: form\n", "content_format form cannot send an array content"},
		{"+a:\n  http>: http://x/\n  content: {a: 1}\n  content_format: text\n", "content_format text cannot send an object content"},
		{"+a:\n  http>: http://x/\n  content: a\n  content_format: xml\n", "content_format must be text, json or form"},
		{"+a:\n  http>: http://x/\n  timeout: 5s\n", "timeout must be a whole number of seconds"},
		{"+a:\n  http>: http://x/\n  retry: sometimes\n", "retry must be true or false"},
		{"+a:\n  http>: ftp://x/\n", "is not an http:// or https:// URL"},
		{"+a:\n  http>: http://x/\n  proxy: {enabled: true}\n", "proxy is a digdag http> setting tdctl does not support"},
	} {
		err := checkWorkflow(t, c.dig, nil, Operators(nil))
		require.Error(t, err, c.dig)
		assert.Contains(t, err.Error(), c.want, c.dig)
		assert.Contains(t, err.Error(), "wf.dig:", c.dig)
	}
	require.NoError(t, checkWorkflow(t, "+a:\n  http>: http://x/${session_date}\n  store_content: true\n+b:\n  echo>: ${http.last_content}\n", nil, Operators(nil)))
}

// Settings known at run time only pass check and are checked when the
// task runs.
func TestHTTPDynamicSettingsPassCheck(t *testing.T) {
	require.NoError(t, checkWorkflow(t, `
_export:
  hdrs: [{a: b}]
  fmt: json
  r: true
+a:
  http>: http://x/
  headers: ${hdrs}
  content: {a: 1}
  content_format: ${fmt}
  retry: ${r}
  timeout: ${r}
`, nil, Operators(nil)))
	l := newLoopback(t, "")
	_, err := runHTTP(t, "_export:\n  f: xml\n+a:\n  http>: "+l.URL+"\n  content: a\n  content_format: ${f}\n", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "content_format must be text, json or form")
	assert.Empty(t, l.requests())
}

// HttpIT testHttps: insecure: true talks to a server whose certificate
// is not trusted; without it the request fails.
func TestHTTPInsecure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls") }))
	defer srv.Close()
	out, err := runHTTP(t, "+a:\n  http>: "+srv.URL+"\n  insecure: true\n  store_content: true\n+b:\n  echo>: got ${http.last_content}\n", nil)
	require.NoError(t, err)
	assert.Contains(t, out, "got tls")
	_, err = runHTTP(t, "+a:\n  http>: "+srv.URL+"\n  retry: false\n", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
}

// Redirects are followed (at most 8); follow_redirects: false stops at
// the 3xx, which succeeds with its status.
func TestHTTPRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/end", http.StatusFound) })
	mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "end") })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	out, err := runHTTP(t, "+a:\n  http>: "+srv.URL+"/start\n  store_content: true\n+b:\n  echo>: ${http.last_status} ${http.last_content}\n"+
		"+c:\n  http>: "+srv.URL+"/start\n  follow_redirects: false\n+d:\n  echo>: then ${http.last_status}\n", nil)
	require.NoError(t, err)
	assert.Contains(t, out, "+wf+b: 200 end\n")
	assert.Contains(t, out, "+wf+d: then 302\n")
	_, err = runHTTP(t, "+a:\n  http>: "+srv.URL+"/loop\n  retry: false\n", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than 8 redirects")
}

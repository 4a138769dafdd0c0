package digdag

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/td"
)

// Fixtures in digdag's shapes (written from digdag-client's models: see
// restmodel_test.go), as a digdag server answers.
const (
	fxProject = `{"id":"7","name":"examples","revision":"rev1","createdAt":"2026-12-01T00:00:00Z",
		"updatedAt":"2026-12-01T00:00:00Z","deletedAt":null,"archiveType":"db","archiveMd5":"AAECAw=="}`
	fxWorkflow = `{"id":"42","name":"num_records","project":{"id":"7","name":"examples"},"revision":"rev1",
		"timezone":"UTC","config":{"+q":{"td>":"q.sql"}}}`
	fxRunning = `{"id":"100","index":1,"project":{"id":"7","name":"examples"},"workflow":{"name":"num_records","id":"42"},
		"sessionId":"55","sessionUuid":"3f1c1d9e-6b1b-4a54-9b55-3c9e8b6b6d10","sessionTime":"2026-12-06T00:00:00+00:00",
		"retryAttemptName":null,"done":false,"success":false,"cancelRequested":false,"params":{},
		"createdAt":"2026-12-06T01:00:00Z","finishedAt":null,"status":"running"}`
	fxFailed = `{"id":"100","index":1,"project":{"id":"7","name":"examples"},"workflow":{"name":"num_records","id":"42"},
		"sessionId":"55","sessionUuid":"3f1c1d9e-6b1b-4a54-9b55-3c9e8b6b6d10","sessionTime":"2026-12-06T00:00:00+00:00",
		"retryAttemptName":null,"done":true,"success":false,"cancelRequested":false,"params":{"k":"v"},
		"createdAt":"2026-12-06T01:00:00Z","finishedAt":"2026-12-06T01:00:09Z","status":"error"}`
	fxTasks = `{"tasks":[
		{"id":"1","fullName":"+num_records","parentId":null,"config":{},"upstreams":[],"isGroup":true,"state":"group_error",
		 "cancelRequested":false,"exportParams":{},"storeParams":{},"stateParams":{},"updatedAt":"2026-12-06T01:00:09Z",
		 "retryAt":null,"startedAt":null,"error":{}},
		{"id":"2","fullName":"+num_records+q","parentId":"1","config":{"td>":"q.sql"},"upstreams":[],"isGroup":false,
		 "state":"success","cancelRequested":false,"exportParams":{},"storeParams":{"td":{"last_job_id":"901","last_job":{"id":"901","num_records":1}}},
		 "stateParams":{"job":{"jobId":"901"}},"updatedAt":"2026-12-06T01:00:05Z","retryAt":null,"startedAt":"2026-12-06T01:00:01Z","error":{}},
		{"id":"3","fullName":"+num_records+check","parentId":"1","config":{"sh>":"exit 1"},"upstreams":["2"],"isGroup":false,
		 "state":"error","cancelRequested":false,"exportParams":{},"storeParams":{},"stateParams":{},"updatedAt":"2026-12-06T01:00:09Z",
		 "retryAt":null,"startedAt":"2026-12-06T01:00:06Z","error":{"message":"exit 1"}}]}`
	fxLogFiles = `{"files":[
		{"fileName":"+num_records+check@b.log.gz","fileSize":20,"taskName":"+num_records+check","fileTime":"2026-12-06T01:00:08Z","agentId":"a1","direct":null},
		{"fileName":"+num_records+q@a.log.gz","fileSize":20,"taskName":"+num_records+q","fileTime":"2026-12-06T01:00:02Z","agentId":"a1"}]}`
	fxSession = `{"id":"55","project":{"id":"7","name":"examples"},"workflow":{"name":"num_records","id":"42"},
		"sessionUuid":"3f1c1d9e-6b1b-4a54-9b55-3c9e8b6b6d10","sessionTime":"2026-12-06T00:00:00+00:00",
		"lastAttempt":{"id":"100","retryAttemptName":null,"done":true,"success":false,"cancelRequested":false,"params":{},
		"createdAt":"2026-12-06T01:00:00Z","finishedAt":"2026-12-06T01:00:09Z"}}`
	fxSchedule = `{"id":"3","project":{"id":"7","name":"examples"},"workflow":{"id":"42","name":"num_records"},
		"nextRunTime":"2026-12-07T00:00:00Z","nextScheduleTime":"2026-12-07T00:00:00+00:00","disabledAt":null}`
)

// fake is a digdag server of fixtures; handlers record what they got.
type fake struct {
	*httptest.Server
	mux *http.ServeMux

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path, Query, Auth, ContentType string
	Body                                   []byte
}

func newFake(t *testing.T) *fake {
	f := &fake{mux: http.NewServeMux()}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// json answers a fixed JSON body.
func (f *fake) json(pattern string, status int, body string) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fake) last() recorded {
	r := f.requests()
	return r[len(r)-1]
}

func (f *fake) client(t *testing.T, opts ...Option) *Client {
	opts = append([]Option{WithAPIKey("1/abcdef0123456789"), WithRetryPolicy(td.RetryPolicy{MaxRetries: 2, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond})}, opts...)
	c, err := NewClient(f.URL, opts...)
	require.NoError(t, err)
	return c
}

func gz(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func decodeBody(t *testing.T, b []byte) map[string]any {
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

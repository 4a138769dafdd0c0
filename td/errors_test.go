package td

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestErrorBodies(t *testing.T) {
	cases := []struct {
		body, want string
	}{
		{`{"error":"Not Found","message":"Job 99 not found","severity":"error"}`, "Job 99 not found"},
		{`{"error":"Resource not found"}`, "Resource not found"},
		{`{"errorMessage":"database x does not exist"}`, "database x does not exist"},
		{`{"text":"Query is invalid: line 1:1"}`, "Query is invalid: line 1:1"},
		{`plain text failure`, "plain text failure"},
	}
	for _, tc := range cases {
		msg, _ := parseErrorBody([]byte(tc.body))
		assert.Contains(t, msg, tc.want, tc.body)
	}
	_, cw := parseErrorBody([]byte(`{"error":"conflict","details":{"conflicts_with":12345}}`))
	assert.Equal(t, "12345", cw)
}

func TestAPIErrorSentinelsAndNoSecrets(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/show/1", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		io.WriteString(w, `{"error":"Unauthorized","message":"bad key `+testKey+`"}`)
	})
	mux.HandleFunc("/v3/job/show/2", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		io.WriteString(w, `{"error":"Not Found","message":"Job 2 not found"}`)
	})
	mux.HandleFunc("/v3/job/issue/presto/db", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(422)
		io.WriteString(w, `{"error":"Unprocessable","message":"Query is empty","severity":"error"}`)
	})
	ctx := context.Background()
	_, err := c.Jobs.Show(ctx, "1")
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), testKey)
	assert.Contains(t, err.Error(), "TD_API_KEY", "401 says how to fix it")

	_, err = c.Jobs.Show(ctx, "2")
	require.ErrorIs(t, err, ErrNotFound)
	var apiErr *APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, 404, apiErr.StatusCode)
	assert.Equal(t, "GET", apiErr.Method)
	assert.Equal(t, "/v3/job/show/2", apiErr.Path)
	assert.Contains(t, err.Error(), "Job 2 not found")

	_, err = c.Jobs.Issue(ctx, &IssueRequest{Database: "db", Query: "x"})
	require.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), "Query is empty")
}

func TestNon200SuccessIsError(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/kill/1", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	})
	_, err := c.Jobs.Kill(context.Background(), "1")
	require.Error(t, err)
}

func TestDoneContextWins(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("/v3/job/status/1", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Jobs.Status(ctx, "1")
	require.ErrorIs(t, err, context.Canceled)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, ok := parseRetryAfter("2", now)
	assert.True(t, ok)
	assert.Equal(t, 2*time.Second, d)
	d, ok = parseRetryAfter(now.Add(3*time.Second).Format(http.TimeFormat), now)
	assert.True(t, ok)
	assert.Equal(t, 3*time.Second, d)
	_, ok = parseRetryAfter("soon", now)
	assert.False(t, ok)
}

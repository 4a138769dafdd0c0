package td

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A job id with white space or a control character around it (a CRLF file
// read in CI) is refused before any request is sent.
func TestJobIDRefusedBeforeSending(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c, err := NewClient("1/key", WithEndpoint(srv.URL), WithRetryPolicy(RetryPolicy{}))
	require.NoError(t, err)
	ctx := context.Background()
	for _, id := range []string{"123\r", " 123", "123\n", "12 3", "abc", "１２３"} {
		_, err := c.Jobs.Show(ctx, id)
		assert.ErrorContains(t, err, "invalid job id", "%q", id)
		_, err = c.Jobs.Status(ctx, id)
		assert.ErrorContains(t, err, "invalid job id", "%q", id)
		_, err = c.Jobs.Kill(ctx, id)
		assert.ErrorContains(t, err, "invalid job id", "%q", id)
		_, err = c.Results.Open(ctx, id, FormatMsgpackGz, nil)
		assert.ErrorContains(t, err, "invalid job id", "%q", id)
		_, err = c.Results.Export(ctx, id, ExportTarget{ResultURL: "td://@/db/t"})
		assert.ErrorContains(t, err, "invalid job id", "%q", id)
	}
	assert.Zero(t, hits.Load(), "no request was sent")
	_, err = c.Jobs.Show(ctx, "123\r")
	assert.EqualError(t, err, `td: invalid job id "123\r": job ids are numbers`)
}

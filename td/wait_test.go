package td

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answers serves a route from a list of bodies, the last one repeated, and
// counts the requests.
func answers(mux *http.ServeMux, route string, bodies ...string) *atomic.Int32 {
	var n atomic.Int32
	mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		io.WriteString(w, bodies[min(i, len(bodies)-1)])
	})
	return &n
}

var fastWaitOpts = &WaitOptions{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

func TestWaitReadsAgainBeforeAVerdict(t *testing.T) {
	const (
		running = `{"job_id":"8","status":"running"}`
		success = `{"job_id":"8","status":"success","num_records":1}`
		failed  = `{"job_id":"8","status":"error","debug":{"cmdout":"","stderr":"boom"}}`
	)
	cases := []struct {
		name         string
		status, show []string
		want         string // final status, "" for a protocol error
		shows        int32
	}{
		{"show answers {}", []string{success}, []string{`{}`, success}, StatusSuccess, 2},
		{"status answers {}", []string{`{}`, `{}`, success}, []string{success}, StatusSuccess, 1},
		{"status answers about another job", []string{`{"job_id":"9","status":"error"}`, success}, []string{success}, StatusSuccess, 1},
		{"show lags behind status", []string{success}, []string{running, `{"job_id":"8","status":"queued"}`, success}, StatusSuccess, 3},
		{"show without job_id", []string{success}, []string{`{"status":"error"}`, success}, StatusSuccess, 2},
		{"a failure is confirmed", []string{running, failed}, []string{running, failed}, StatusError, 2},
		{"status and show disagree on the final state", []string{failed, success}, []string{success}, StatusSuccess, 2},
		{"show keeps lagging", []string{success}, []string{running}, "", 4},
		{"status keeps answering {}", []string{`{}`}, []string{success}, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, mux := setup(t)
			answers(mux, "/v3/job/status/8", c.status...)
			shows := answers(mux, "/v3/job/show/8", c.show...)
			job, err := cl.Jobs.Wait(context.Background(), "8", fastWaitOpts)
			assert.Equal(t, c.shows, shows.Load(), "show requests")
			switch c.want {
			case StatusSuccess:
				require.NoError(t, err)
				assert.Equal(t, StatusSuccess, job.Status)
			case StatusError:
				var fe *JobFailedError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, "boom", fe.Stderr)
			default:
				require.ErrorIs(t, err, ErrProtocol)
				assert.NotErrorIs(t, err, ErrJobFailed)
				assert.Nil(t, job)
			}
		})
	}
}

func TestWaitTimeoutWhileAnswersDisagree(t *testing.T) {
	cl, mux := setup(t)
	answers(mux, "/v3/job/status/8", `{"job_id":"8","status":"success"}`)
	answers(mux, "/v3/job/show/8", `{"job_id":"8","status":"running"}`)
	_, err := cl.Jobs.Wait(context.Background(), "8", &WaitOptions{MinDelay: 50 * time.Millisecond, Timeout: 60 * time.Millisecond})
	require.ErrorIs(t, err, ErrWaitTimeout)
	assert.Contains(t, err.Error(), "status says success but show says running")
}

func TestShowAndStatusRefuseUnusableAnswers(t *testing.T) {
	cl, mux := setup(t)
	answers(mux, "/v3/job/status/3", `{}`)
	answers(mux, "/v3/job/show/3", `{"job_id":"4","status":"success"}`)
	answers(mux, "/v3/job/show/03", `{"job_id":3,"status":"success"}`)
	ctx := context.Background()
	_, err := cl.Jobs.Status(ctx, "3")
	var pe *ProtocolError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, "td: GET /v3/job/status/3: unusable answer: no job_id and no status", err.Error())
	_, err = cl.Jobs.Show(ctx, "3")
	require.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), `it is about job "4"`)
	j, err := cl.Jobs.Show(ctx, "03")
	require.NoError(t, err, "leading zeros name the same job")
	assert.Equal(t, "3", j.ID)
}

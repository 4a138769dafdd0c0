package td

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// finishedJob serves show for a finished job with no export yet (Export
// notes the job's newest export before sending).
func finishedJob(mux *http.ServeMux, id string) {
	mux.HandleFunc("/v3/job/show/"+id, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"job_id":"%s","status":"success","linked_result_export_job_id":null}`, id)
	})
}

func TestExportByURL(t *testing.T) {
	c, mux := setup(t)
	finishedJob(mux, "100")
	mux.HandleFunc("/v3/job/result_export/100", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "POST")
		testForm(t, r, url.Values{"result": {"mysql://u:pw@h/db/t"}})
		io.WriteString(w, `{"job_id":"101"}`)
	})
	id, err := c.Results.Export(context.Background(), "100", ExportTarget{ResultURL: "mysql://u:pw@h/db/t"})
	require.NoError(t, err)
	assert.Equal(t, "101", id)
}

func TestExportByConnectionIDAndName(t *testing.T) {
	c, mux := setup(t)
	finishedJob(mux, "100")
	mux.HandleFunc("/v3/connections/lookup", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("name") != "my_s3_connection" {
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"Not Found"}`)
			return
		}
		io.WriteString(w, `{"id":"77","name":"my_s3_connection"}`)
	})
	var got []url.Values
	mux.HandleFunc("/v3/job/result_export/100", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		got = append(got, r.PostForm)
		io.WriteString(w, `{"job_id":"102"}`)
	})
	ctx := context.Background()
	_, err := c.Results.Export(ctx, "100", ExportTarget{Connection: &ConnectionTarget{ID: 5, Settings: map[string]any{"bucket": "b"}}})
	require.NoError(t, err)
	_, err = c.Results.Export(ctx, "100", ExportTarget{Connection: &ConnectionTarget{Name: "my_s3_connection", Settings: map[string]any{"path": "/logs/"}}})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "5", got[0].Get("result_connection_id"))
	assert.JSONEq(t, `{"bucket":"b"}`, got[0].Get("result_connection_settings"))
	assert.Equal(t, "77", got[1].Get("result_connection_id"))
	assert.JSONEq(t, `{"path":"/logs/"}`, got[1].Get("result_connection_settings"))

	_, err = c.Results.Export(ctx, "100", ExportTarget{Connection: &ConnectionTarget{Name: "nope"}})
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), `no connection named "nope"`)
}

func TestExportValidation(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	_, err := c.Results.Export(ctx, "1", ExportTarget{})
	require.ErrorContains(t, err, "result URL or a connection is required")
	_, err = c.Results.Export(ctx, "1", ExportTarget{ResultURL: "td://@/a/b", Connection: &ConnectionTarget{ID: 1}})
	require.ErrorContains(t, err, "not both")
	_, err = c.Results.Export(ctx, "1", ExportTarget{ResultURL: "no-scheme:pw@x"})
	require.Error(t, err)
	_, err = c.Results.Export(ctx, "", ExportTarget{ResultURL: "td://@/a/b"})
	require.ErrorContains(t, err, "job id is required")
}

func TestExportAllReportsEachTarget(t *testing.T) {
	c, mux := setup(t)
	finishedJob(mux, "100")
	var n atomic.Int32
	mux.HandleFunc("/v3/job/result_export/100", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.PostForm.Get("result") == "bad://x" {
			w.WriteHeader(422)
			io.WriteString(w, `{"error":"Unprocessable","message":"unsupported result scheme bad"}`)
			return
		}
		fmt.Fprintf(w, `{"job_id":"%d"}`, 200+n.Add(1))
	})
	for _, id := range []string{"201", "202"} {
		mux.HandleFunc("/v3/job/status/"+id, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"job_id":"%s","status":"success"}`, id)
		})
		mux.HandleFunc("/v3/job/show/"+id, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"job_id":"%s","status":"success","result_export_target_job_id":100}`, id)
		})
	}
	targets := []ExportTarget{{ResultURL: "td://@/db/a"}, {ResultURL: "bad://x"}, {ResultURL: "td://@/db/b"}}
	out, err := c.Results.ExportAll(context.Background(), "100", targets, &WaitOptions{MinDelay: time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unsupported result scheme bad")
	require.Len(t, out, 3)
	assert.NoError(t, out[0].Err)
	assert.Error(t, out[1].Err)
	assert.NoError(t, out[2].Err)
	assert.Empty(t, out[1].ExportJobID)
	assert.Equal(t, "100", out[0].Job.ResultExportTargetJobID)
	assert.ElementsMatch(t, []string{"201", "202"}, []string{out[0].ExportJobID, out[2].ExportJobID})
}

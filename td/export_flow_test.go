package td_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	nethttptest "net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

// exportJobs lists the emulator's export jobs of job id.
func exportJobs(t *testing.T, srv *emulator.Server, id string) []string {
	t.Helper()
	var out []string
	for i := 1; i <= srv.JobCount()+1; i++ {
		j, ok := srv.Job(strconv.Itoa(i))
		if ok && j.ResultExportTargetJobID == id {
			out = append(out, j.ID)
		}
	}
	return out
}

// TestFlowExportLostAnswer: whatever happens to the answer of an export
// (lost, a gateway's 5xx after the export job was created, a 429 or 503
// before anything was done), the call ends with exactly one export job and
// returns its id.
func TestFlowExportLostAnswer(t *testing.T) {
	const route = "/v3/job/result_export/"
	cases := []struct {
		name   string
		faults []emulator.Fault
		posts  int
	}{
		{"answer lost after creation", []emulator.Fault{{AfterHandler: true, Times: 1}}, 1},
		{"502 after creation", []emulator.Fault{{AfterHandler: true, Status: 502, Times: 1}}, 1},
		{"504 after creation", []emulator.Fault{{AfterHandler: true, Status: 504, Times: 1}}, 1},
		{"never answered after creation", []emulator.Fault{{AfterHandler: true, Hang: true, Times: 1}}, 1},
		{"answer cut after creation", []emulator.Fault{{ResetAfterBytes: 5, Times: 1}}, 1},
		{"answer without a job id", []emulator.Fault{{AfterHandler: true, Status: 200, Body: `{}`, Times: 1}}, 1},
		{"429 twice: not processed", []emulator.Fault{{Status: 429, RetryAfter: "0", Times: 2}}, 3},
		{"503 before creation", []emulator.Fault{{Status: 503, Times: 1}}, 2},
		{"502 before creation, then lost after", []emulator.Fault{{Status: 502, Times: 1}, {AfterHandler: true, Times: 1}}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, cl, _ := newFlow(t, emulator.Options{})
			ctx := flowCtx(t)
			require.NoError(t, srv.CreateDatabase("flowdb"))
			job := issueWait(t, cl, "SELECT 1 AS a")
			for _, f := range c.faults {
				f.Method, f.Path = "POST", route
				srv.Faults().Add(f)
			}
			from := len(srv.Requests())
			if c.faults[0].Hang {
				// no answer at all: the call's own deadline ends the wait
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			id, err := cl.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: "td://@/flowdb/once"})
			require.NoError(t, err)
			assert.Equal(t, []string{id}, exportJobs(t, srv, job.ID), "exactly one export job, and the caller has its id")
			assert.Len(t, requestsSince(srv, from, "POST", route), c.posts)
			exp, err := cl.Jobs.Wait(flowCtx(t), id, fastWait())
			require.NoError(t, err)
			assert.Equal(t, job.ID, exp.ResultExportTargetJobID)
			rows, _, err := srv.TableRows("flowdb", "once")
			require.NoError(t, err)
			assert.Equal(t, [][]any{{int64(1)}}, rows, "appended once")
		})
	}
}

// TestFlowExportDomainKey: an export sent again with the domain key of one
// already started returns that one.
func TestFlowExportDomainKey(t *testing.T) {
	srv, cl, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	require.NoError(t, srv.CreateDatabase("flowdb"))
	job := issueWait(t, cl, "SELECT 1 AS a")
	target := td.ExportTarget{ResultURL: "td://@/flowdb/keyed", DomainKey: "nightly-export-" + randHex(t, 4)}
	first, err := cl.Results.Export(ctx, job.ID, target)
	require.NoError(t, err)
	again, err := cl.Results.Export(ctx, job.ID, target)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Len(t, exportJobs(t, srv, job.ID), 1)
	info, _ := srv.Job(first)
	assert.Equal(t, target.DomainKey, info.DomainKey)
	// without a key, every export is its own
	other, err := cl.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: "td://@/flowdb/keyed"})
	require.NoError(t, err)
	assert.NotEqual(t, first, other)
}

// noExportKeys is an API that ignores domain_key on exports.
type noExportKeys struct{ next http.Handler }

func (x noExportKeys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v3/job/result_export/") {
		if err := r.ParseForm(); err == nil {
			r.PostForm.Del("domain_key")
			r.Form.Del("domain_key")
			body := r.PostForm.Encode()
			r.Body = io.NopCloser(strings.NewReader(body))
			r.ContentLength = int64(len(body))
		}
	}
	x.next.ServeHTTP(w, r)
}

// TestFlowExportWithoutDomainKeys: against an API that ignores domain_key on
// exports, an export whose answer was lost cannot be found by its key; the
// job's newest export tells whether one was started meanwhile. If none was,
// the export is sent again; if one was, the caller is told it may exist
// (never "not started") and which job it may be.
func TestFlowExportWithoutDomainKeys(t *testing.T) {
	srv, err := emulator.New(emulator.Options{APIKeys: []string{flowKey}})
	require.NoError(t, err)
	hs := nethttptest.NewServer(noExportKeys{srv})
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		assert.NoError(t, srv.Close())
	})
	cl, err := td.NewClient(flowKey, td.WithEndpoint(hs.URL), td.WithRetryPolicy(flowRetry))
	require.NoError(t, err)
	ctx := flowCtx(t)
	require.NoError(t, srv.CreateDatabase("flowdb"))
	job := issueWait(t, cl, "SELECT 1 AS a")
	const route = "/v3/job/result_export/"

	// not created: sent again
	srv.Faults().Add(emulator.Fault{Method: "POST", Path: route, Status: 502, Times: 1})
	id, err := cl.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: "td://@/flowdb/nokey"})
	require.NoError(t, err)
	assert.Equal(t, []string{id}, exportJobs(t, srv, job.ID))

	// created, answer lost: may exist, and this is the job
	srv.Faults().Add(emulator.Fault{Method: "POST", Path: route, AfterHandler: true, Times: 1})
	_, err = cl.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: "td://@/flowdb/nokey"})
	require.ErrorIs(t, err, td.ErrExportUncertain)
	require.ErrorIs(t, err, td.ErrNetwork, "it unwraps to the lost answer")
	var ue *td.ExportUncertainError
	require.True(t, errors.As(err, &ue))
	all := exportJobs(t, srv, job.ID)
	require.Len(t, all, 2, "not sent again")
	assert.Equal(t, all[1], ue.Candidate)
	assert.Contains(t, err.Error(), "may have started")
	assert.Contains(t, err.Error(), "export job "+all[1])
	assert.NotContains(t, err.Error(), "not started")
}

// TestFlowExportLookupFails: when the answer is lost and the export cannot be
// looked up either, the caller is told it may have started.
func TestFlowExportLookupFails(t *testing.T) {
	srv, cl, _ := newFlow(t, emulator.Options{})
	ctx := flowCtx(t)
	require.NoError(t, srv.CreateDatabase("flowdb"))
	job := issueWait(t, cl, "SELECT 1 AS a")
	srv.Faults().Add(emulator.Fault{Method: "POST", Path: "/v3/job/result_export/", AfterHandler: true, Times: 1})
	srv.Faults().Add(emulator.Fault{Method: "GET", Path: "/v3/job/status_by_domain_key/", Status: 500})
	_, err := cl.Results.Export(ctx, job.ID, td.ExportTarget{ResultURL: "td://@/flowdb/x"})
	require.ErrorIs(t, err, td.ErrExportUncertain)
	assert.ErrorIs(t, err, td.ErrServer)
	assert.Contains(t, err.Error(), "look for an export job of job "+job.ID)
	assert.Len(t, exportJobs(t, srv, job.ID), 1)
}

package k8sexec_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/setparamtest"
	"github.com/tdctl/tdctl/k8sexec"
)

func rawParams(m map[string]string) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for k, v := range m {
		out[k] = json.RawMessage(v)
	}
	return out
}

func TestParseSetParam(t *testing.T) {
	for _, tc := range setparamtest.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			got, ok, err := k8sexec.ParseSetParam(tc.Line)
			assert.Equal(t, tc.Ours, ok)
			if tc.Err != "" {
				var pe *k8sexec.ParamError
				require.ErrorAs(t, err, &pe)
				assert.ErrorContains(t, err, tc.Err)
				assert.LessOrEqual(t, len(pe.Line), 203, "the line is cut")
				assert.True(t, utf8.ValidString(pe.Line), "cut at a character boundary")
				return
			}
			require.NoError(t, err)
			if tc.Params == nil {
				assert.Empty(t, got)
				return
			}
			assert.Equal(t, rawParams(tc.Params), got)
			for _, v := range got {
				assert.True(t, json.Valid(v), "%s is JSON, ready for paramstore", v)
			}
		})
	}
}

// TestSetParamThroughPodLog runs each line of the table as a pod's log:
// what Run returns in Result.Params and as its error.
func TestSetParamThroughPodLog(t *testing.T) {
	for _, tc := range setparamtest.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			e := setup(t)
			e.serveLogs(lines(t0, time.Second, "before", tc.Line, "after"))
			kubelet := e.kubelet(running, exited(0, "Completed"))
			var out syncBuffer
			res, err := e.runner.Run(ctxT(t), k8sexec.Spec{Image: "busybox", Script: "true", Log: &out})
			<-kubelet
			assert.Contains(t, out.String(), strings.TrimRight(tc.Line, "\r"), "the line is in the log")
			if tc.Err != "" {
				var pe *k8sexec.ParamError
				require.ErrorAs(t, err, &pe)
				assert.ErrorContains(t, err, tc.Err)
				assert.Empty(t, res.Params)
				return
			}
			require.NoError(t, err)
			if tc.Params == nil {
				assert.Empty(t, res.Params)
				return
			}
			assert.Equal(t, rawParams(tc.Params), res.Params)
		})
	}
}

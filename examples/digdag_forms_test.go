package examples

import (
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/workflow"
)

// digdagKeys are, for operators whose settings digdag reads from a fixed
// set, the keys digdag's own operator reads (digdag's docs for
// td_result_export>: job_id, result_connection, result_settings). A key
// outside the set would be a tdctl extension: the file would not run
// unchanged on digdag.
var digdagKeys = map[string][]string{
	"td_result_export": {"job_id", "result_connection", "result_settings"},
}

// TestExamplesUseDigdagForms: every .dig under examples/ parses, and is
// written in digdag's forms, so it runs unchanged on digdag / TD Workflow
// and on tdctl (issue: digdag fidelity). param_get> and param_set> take
// their keys beside the operator, as digdag's docs write them (digdag
// reads the task's own config; a mapping nested under the operator is a
// tdctl extension); td_result_export> names a connection.
func TestExamplesUseDigdagForms(t *testing.T) {
	var files []string
	require.NoError(t, fs.WalkDir(Workflows, "workflows", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path.Ext(p) == ".dig" {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files)
	for _, f := range files {
		data, err := fs.ReadFile(Workflows, f)
		require.NoError(t, err)
		wf, err := workflow.Parse(f, data)
		require.NoError(t, err, f)
		var walk func(*workflow.Task)
		walk = func(task *workflow.Task) {
			if task == nil {
				return
			}
			where := f + ": " + task.Path
			switch task.Operator {
			case "param_get", "param_set":
				assert.True(t, task.Command == nil || task.Command.Kind == yaml.ScalarNode && task.Command.Value == "",
					"%s: %s>: keys belong beside the operator (digdag's form), not nested under it", where, task.Operator)
			}
			if known, ok := digdagKeys[task.Operator]; ok {
				for _, p := range task.Params {
					assert.True(t, slices.Contains(known, p.Key) || strings.HasPrefix(p.Key, "_"),
						"%s: %s> key %q is not one digdag reads (%s)", where, task.Operator, p.Key, strings.Join(known, ", "))
				}
			}
			for _, c := range task.Children {
				walk(c)
			}
			walk(task.Error)
			walk(task.Do)
		}
		walk(wf.Root)
	}
}

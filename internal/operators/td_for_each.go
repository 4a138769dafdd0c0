package operators

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tdctl/tdctl/workflow"
)

// TdForEach is td_for_each>: it runs a query as td> does (the same
// settings, retries re-attaching to the job) and then its _do once per
// result row, +td-for-each-0, +td-for-each-1..., each with the row's
// columns as ${td.each.COLUMN}; _parallel runs them side by side. It
// stores td.last_job_id and td.last_job as td> does.
type TdForEach struct{ Env *Env }

// Defines implements workflow.Definer.
func (*TdForEach) Defines(*workflow.Task) []string { return []string{"td.last_job_id", "td.last_job"} }

// SubtaskDefines implements workflow.SubtaskDefiner.
func (*TdForEach) SubtaskDefines(*workflow.Task) []string { return []string{"td.each"} }

// tdForEachSpec: digdag's td_for_each> reads td>'s query settings, not its
// result ones.
var tdForEachSpec = keySpec{
	op: "td_for_each",
	known: []string{"database", "engine", "priority", "job_retry", "engine_version", "hive_engine_version",
		"pool_name", "hive_pool_name", "presto_pool_name", "domain_key", "query", "data"},
	digdag: tdSpec.digdag,
}

// Validate implements workflow.Validator.
func (e *TdForEach) Validate(tc *workflow.TaskContext) error {
	if err := tdForEachSpec.check(tc.Task, ""); err != nil {
		return err
	}
	_, err := (&Query{Env: e.Env}).request(tc)
	return err
}

// Run implements workflow.Operator.
func (e *TdForEach) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	res, err := (&Query{Env: e.Env}).Run(ctx, tc)
	if err != nil {
		return res, err
	}
	c, err := e.Env.td()
	if err != nil {
		return res, err
	}
	rr, err := c.Results.Rows(ctx, res.JobID)
	if err != nil {
		return res, fmt.Errorf("td_for_each>: reading the result of job %s: %w", res.JobID, err)
	}
	defer rr.Close()
	gen := generated(tc.Task)
	for i := 0; ; i++ {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("td_for_each>: reading the result of job %s: %w", res.JobID, err)
		}
		if i >= MaxGeneratedTasks {
			return res, fmt.Errorf("td_for_each>: job %s returned more than %d rows: too many subtasks (digdag's task limit)", res.JobID, MaxGeneratedTasks)
		}
		each := map[string]any{}
		for j, col := range rr.Columns() {
			if j < len(row) {
				each[col.Name] = row[j]
			}
		}
		workflow.SetKey(gen, fmt.Sprintf("+td-for-each-%d", i), workflow.WithExport(tc.Task.DoNode, map[string]any{"td": map[string]any{"each": each}}, []string{"td"}))
	}
	res.Subtasks = gen
	return res, nil
}

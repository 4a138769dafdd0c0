package wfserver

import (
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Schedules: a workflow with `schedule:` gets one when its project is
// pushed (its first session is the next one after the push, or after
// schedule_from=); a later push keeps its next time, a push without the
// workflow or its schedule: ends it. The scheduler starts each due
// session as digdag's does (at the session time plus delay:), with the
// project's secret td.apikey or Options.APIKey. Backfill starts past
// sessions; skip is not served.

type scheduleRow struct {
	ID, ProjectID, WorkflowID int64
	WorkflowName              string
	NextRun, NextSession      time.Time
	CreatedAt, UpdatedAt      time.Time
	DisabledAt                *time.Time
}

const scheduleCols = `id, project_id, workflow_id, workflow_name, next_run_time, next_schedule_time, created_at, updated_at, disabled_at`

func scanSchedules(rows *sql.Rows, err error) ([]*scheduleRow, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*scheduleRow
	for rows.Next() {
		var r scheduleRow
		var run, ses, created, updated int64
		var disabled sql.NullInt64
		if err := rows.Scan(&r.ID, &r.ProjectID, &r.WorkflowID, &r.WorkflowName, &run, &ses, &created, &updated, &disabled); err != nil {
			return nil, err
		}
		r.NextRun, r.NextSession, r.CreatedAt, r.UpdatedAt, r.DisabledAt = unixTime(run), unixTime(ses), unixTime(created), unixTime(updated), nullTime(disabled)
		out = append(out, &r)
	}
	return out, rows.Err()
}

func (s *Server) restSchedule(r *scheduleRow) (*restSchedule, *restScheduleSummary, error) {
	p, err := s.project(r.ProjectID)
	if err != nil {
		return nil, nil, err
	}
	def, err := s.workflowByID(r.WorkflowID)
	if err != nil {
		return nil, nil, err
	}
	loc := s.location(def.Timezone)
	pj, wf := idAndName{idString(p.ID), p.Name}, idAndName{idString(def.ID), def.Name}
	rs := &restSchedule{ID: idString(r.ID), Project: pj, Workflow: wf, NextRunTime: instant(r.NextRun),
		NextScheduleTime: offsetTime(r.NextSession, loc), DisabledAt: instantPtr(r.DisabledAt)}
	sum := &restScheduleSummary{ID: rs.ID, Project: pj, Workflow: wf, NextRunTime: rs.NextRunTime, NextScheduleTime: rs.NextScheduleTime,
		CreatedAt: instant(r.CreatedAt), UpdatedAt: instant(r.UpdatedAt), DisabledAt: rs.DisabledAt}
	return rs, sum, nil
}

func (s *Server) listSchedules(projectID int64, wfName string, q url.Values) (any, error) {
	last, err := lastID(q)
	if err != nil {
		return nil, err
	}
	where, args := []string{"id > ?"}, []any{last}
	if projectID > 0 {
		if _, err := s.liveProject(projectID); err != nil {
			return nil, err
		}
		where, args = append(where, "project_id = ?"), append(args, projectID)
		if wfName != "" {
			where, args = append(where, "workflow_name = ?"), append(args, wfName)
		}
	}
	rows, err := scanSchedules(s.db.Query(`SELECT `+scheduleCols+` FROM schedules WHERE `+strings.Join(where, " AND ")+` ORDER BY id LIMIT 100`, args...))
	if err != nil {
		return nil, err
	}
	out, err := each(rows, func(r *scheduleRow) (*restSchedule, error) {
		rs, _, err := s.restSchedule(r)
		return rs, err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"schedules": out}, nil
}

func (s *Server) schedule(id int64) (*scheduleRow, error) {
	rows, err := scanSchedules(s.db.Query(`SELECT `+scheduleCols+` FROM schedules WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errorf(http.StatusNotFound, "schedule id=%d does not exist", id)
	}
	return rows[0], nil
}

func (s *Server) getSchedule(id int64) (any, error) {
	r, err := s.schedule(id)
	if err != nil {
		return nil, err
	}
	rs, _, err := s.restSchedule(r)
	return rs, err
}

// setScheduleDisabled is POST /api/schedules/{id}/disable and /enable
// (digdag answers a RestScheduleSummary).
func (s *Server) setScheduleDisabled(id int64, disable bool) (any, error) {
	if _, err := s.schedule(id); err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	var err error
	if disable {
		_, err = s.db.Exec(`UPDATE schedules SET disabled_at = COALESCE(disabled_at, ?), updated_at = ? WHERE id = ?`, now, now, id)
	} else {
		_, err = s.db.Exec(`UPDATE schedules SET disabled_at = NULL, updated_at = ? WHERE id = ?`, now, id)
	}
	if err != nil {
		return nil, err
	}
	r, err := s.schedule(id)
	if err != nil {
		return nil, err
	}
	_, sum, err := s.restSchedule(r)
	return sum, err
}

// scheduler starts due sessions until Close.
func (s *Server) scheduler(tick time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.runDue(time.Now()); err != nil && s.ctx.Err() == nil {
				s.logf("wfserver: scheduler: %v", err)
			}
		}
	}
}

func (s *Server) runDue(now time.Time) error {
	if s.opts.Endpoint == "" {
		return nil // nowhere to send the runs' TD calls (see Options.Endpoint)
	}
	due, err := scanSchedules(s.db.Query(`SELECT `+scheduleCols+` FROM schedules WHERE disabled_at IS NULL AND next_run_time <= ? ORDER BY id`, now.Unix()))
	if err != nil {
		return err
	}
	for _, r := range due {
		def, err := s.workflowByID(r.WorkflowID)
		if err != nil {
			return err
		}
		wf, err := s.parseWorkflow(def)
		if err != nil || wf.Schedule == nil {
			s.logf("wfserver: schedule %d: %v", r.ID, err)
			continue
		}
		if _, _, err := s.newAttempt(def, r.NextSession, nil, "{}", s.opts.APIKey, s.opts.Endpoint, nil); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				return err
			}
		}
		next := wf.Schedule.Next(r.NextSession)
		if _, err := s.db.Exec(`UPDATE schedules SET next_schedule_time = ?, next_run_time = ? WHERE id = ?`,
			next.Unix(), next.Add(wf.Schedule.Delay()).Unix(), r.ID); err != nil {
			return err
		}
	}
	return nil
}

// backfill is POST /api/schedules/{id}/backfill: it starts the sessions
// from fromTime up to the schedule's next one (or count of them), each
// as an attempt named attemptName; a session that already has an attempt
// of that name is a 409 before anything starts. With dryRun nothing
// starts and the attempts have id 0.
func (s *Server) backfill(id int64, r *http.Request) (any, error) {
	var req struct {
		FromTime    string `json:"fromTime"`
		AttemptName string `json:"attemptName"`
		DryRun      bool   `json:"dryRun"`
		Count       *int   `json:"count"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errorf(http.StatusBadRequest, "the body is not a backfill request: %v", err)
	}
	if req.AttemptName == "" {
		return nil, errorf(http.StatusBadRequest, "attemptName is required")
	}
	from, err := time.Parse(time.RFC3339, req.FromTime)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "fromTime %q: expected an instant like 2016-01-02T03:04:05Z", req.FromTime)
	}
	sched, err := s.schedule(id)
	if err != nil {
		return nil, err
	}
	def, err := s.workflowByID(sched.WorkflowID)
	if err != nil {
		return nil, err
	}
	wf, err := s.parseWorkflow(def)
	if err != nil || wf.Schedule == nil {
		return nil, errorf(http.StatusConflict, "workflow %s has no schedule any more", def.Name)
	}
	var times []time.Time
	remaining := 0
	if req.Count != nil {
		remaining = *req.Count
	}
	for t := wf.Schedule.Next(from.Add(-time.Second)); t.Before(sched.NextSession); t = wf.Schedule.Next(t) {
		if req.Count != nil {
			if remaining <= 0 {
				break
			}
			remaining--
		}
		times = append(times, t)
	}
	if req.Count != nil && remaining > 0 {
		return nil, errorf(http.StatusBadRequest, "count is set to %d but there are only %d attempts until the next schedule time", *req.Count, *req.Count-remaining)
	}
	for _, t := range times {
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM attempts a JOIN sessions s ON s.id = a.session_id
			WHERE s.project_id = ? AND s.workflow_name = ? AND s.session_time = ? AND a.retry_attempt_name = ?`,
			def.ProjectID, def.Name, t.Unix(), req.AttemptName).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, errorf(http.StatusConflict, "Attempt of project id=%d workflow=%s instant=%s attempt name=%s already exists",
				def.ProjectID, def.Name, instant(t), req.AttemptName)
		}
	}
	rs, _, err := s.restSchedule(sched)
	if err != nil {
		return nil, err
	}
	out := []*restSessionAttempt{}
	for _, t := range times {
		name := req.AttemptName
		if req.DryRun {
			wid := idString(def.ID)
			out = append(out, &restSessionAttempt{ID: "0", Project: rs.Project, Workflow: nameOptionalID{Name: def.Name, ID: &wid},
				SessionID: "0", SessionUUID: "00000000-0000-0000-0000-000000000000", SessionTime: offsetTime(t, s.location(def.Timezone)),
				RetryAttemptName: &name, Params: json.RawMessage("{}"), CreatedAt: instant(time.Now()), Status: "running"})
			continue
		}
		a, _, err := s.newAttempt(def, t, &name, "{}", apiKeyOf(r), s.endpoint(r), nil)
		if err != nil {
			return nil, err
		}
		ra, err := s.restAttempt(a)
		if err != nil {
			return nil, err
		}
		out = append(out, ra)
	}
	return map[string]any{"id": rs.ID, "project": rs.Project, "workflow": rs.Workflow, "attempts": out}, nil
}

package wfserver

import (
	"database/sql"
	"errors"
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
// project's secret td.apikey or Options.APIKey.

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
	out := []*restSchedule{}
	for _, r := range rows {
		rs, _, err := s.restSchedule(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rs)
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

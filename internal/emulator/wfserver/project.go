package wfserver

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/workflow"
)

// Limits of a pushed archive (digdag's server has configurable limits too;
// the dev-server allows 32 MiB in all and per file).
const (
	maxArchiveBytes = 32 << 20
	maxFileBytes    = 32 << 20
)

// projectDir is where a revision's files are unpacked.
func (s *Server) projectDir(projectID, revisionID int64) string {
	return filepath.Join(s.dir, "projects", strconv.FormatInt(projectID, 10), strconv.FormatInt(revisionID, 10))
}

// validName is digdag's rule for project and revision names: not empty,
// at most 255 characters, no control characters and no '/'.
func validName(n string) bool {
	if n == "" || len(n) > 255 {
		return false
	}
	for _, c := range n {
		if c < 0x20 || c == 0x7f || c == '/' {
			return false
		}
	}
	return true
}

// putProject stores a new revision of a project (created on first push):
// the body is the project's tar.gz; its top-level .dig files are its
// workflows, each parsed and checked before anything is kept.
func (s *Server) putProject(r *http.Request, q url.Values) (any, error) {
	name, revName := q.Get("project"), q.Get("revision")
	if name == "" {
		return nil, errorf(http.StatusBadRequest, "project= is required")
	}
	if revName == "" {
		return nil, errorf(http.StatusBadRequest, "revision= is required")
	}
	if !validName(name) {
		return nil, errorf(http.StatusBadRequest, "project name %q is invalid: give 1 to 255 characters without '/' or control characters", name)
	}
	if !validName(revName) {
		return nil, errorf(http.StatusBadRequest, "revision %q is invalid: give 1 to 255 characters without '/' or control characters", revName)
	}
	if v := q.Get("schedule_from"); v != "" {
		if _, err := time.Parse("2006-01-02T15:04:05Z", v); err != nil {
			return nil, errorf(http.StatusBadRequest, "Invalid schedule_from= parameter format. Expected yyyy-MM-dd'T'HH:mm:ss'Z' format")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxArchiveBytes+1))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading the archive: %v", err)
	}
	if len(body) > maxArchiveBytes {
		return nil, errorf(http.StatusBadRequest, "Size of the uploaded archive file exceeds limit (%d bytes)", maxArchiveBytes)
	}
	if r.ContentLength >= 0 && int64(len(body)) != r.ContentLength {
		return nil, errorf(http.StatusBadRequest, "Content-Length header doesn't match with uploaded data size")
	}
	files, err := readArchive(body)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	// unpack into a temporary directory, parse and check every workflow
	tmp, err := os.MkdirTemp(s.dir, ".push-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		p := filepath.Join(tmp, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	type parsed struct {
		wf     *workflow.Workflow
		config string
	}
	// Only the files are checked here: params, secrets and operators are
	// checked when an attempt starts (with its params and the project's
	// secrets), and a failed check fails that attempt.
	var wfs []parsed
	for _, f := range files {
		if strings.Contains(f.name, "/") || !strings.HasSuffix(f.name, ".dig") {
			continue // digdag's workflows are the top-level *.dig files
		}
		wf, err := workflow.Parse(filepath.Join(tmp, f.name), f.data)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "%s", strings.ReplaceAll(err.Error(), tmp+string(filepath.Separator), ""))
		}
		wfs = append(wfs, parsed{wf, yamlToJSON(f.data)})
	}
	sort.Slice(wfs, func(i, j int) bool { return wfs[i].wf.Name < wfs[j].wf.Name })

	sum := md5.Sum(body)
	now := time.Now().Unix()
	tx, err := s.db.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var projectID int64
	var deleted *int64
	err = tx.QueryRow(`SELECT id, deleted_at FROM projects WHERE name = ?`, name).Scan(&projectID, &deleted)
	switch {
	case err == nil && deleted != nil:
		// a deleted project's name is free again: it comes back with its id
		if _, err := tx.Exec(`UPDATE projects SET deleted_at = NULL WHERE id = ?`, projectID); err != nil {
			return nil, err
		}
	case err != nil:
		res, err := tx.Exec(`INSERT INTO projects (name, created_at) VALUES (?, ?)`, name, now)
		if err != nil {
			return nil, err
		}
		projectID, _ = res.LastInsertId()
	}
	var exists int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM revisions WHERE project_id = ? AND name = ?`, projectID, revName).Scan(&exists); err != nil {
		return nil, err
	}
	if exists > 0 {
		return nil, errorf(http.StatusConflict, "Resource already exists: revision=%s in project id=%d", revName, projectID)
	}
	res, err := tx.Exec(`INSERT INTO revisions (project_id, name, created_at, md5, archive) VALUES (?, ?, ?, ?, ?)`, projectID, revName, now, sum[:], body)
	if err != nil {
		return nil, err
	}
	revID, _ := res.LastInsertId()
	var keep []string
	for _, p := range wfs {
		res, err := tx.Exec(`INSERT INTO workflows (revision_id, project_id, name, timezone, config) VALUES (?, ?, ?, ?, ?)`,
			revID, projectID, p.wf.Name, p.wf.ZoneName(), p.config)
		if err != nil {
			return nil, err
		}
		wfID, _ := res.LastInsertId()
		if p.wf.Schedule == nil {
			continue
		}
		keep = append(keep, p.wf.Name)
		from := time.Now()
		if v := q.Get("schedule_from"); v != "" {
			from, _ = time.Parse("2006-01-02T15:04:05Z", v)
		}
		next := p.wf.Schedule.Next(from.Add(-p.wf.Schedule.Delay()))
		// an existing schedule keeps its next time; a new one starts now
		if _, err := tx.Exec(`INSERT INTO schedules (project_id, workflow_name, workflow_id, next_run_time, next_schedule_time, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (project_id, workflow_name) DO UPDATE SET workflow_id = excluded.workflow_id, updated_at = excluded.updated_at`,
			projectID, p.wf.Name, wfID, next.Add(p.wf.Schedule.Delay()).Unix(), next.Unix(), now, now); err != nil {
			return nil, err
		}
	}
	// schedules of workflows gone (or without schedule:) in this revision end
	rows, err := tx.Query(`SELECT id, workflow_name FROM schedules WHERE project_id = ?`, projectID)
	if err != nil {
		return nil, err
	}
	var drop []int64
	for rows.Next() {
		var id int64
		var wn string
		if err := rows.Scan(&id, &wn); err != nil {
			rows.Close()
			return nil, err
		}
		found := false
		for _, k := range keep {
			found = found || k == wn
		}
		if !found {
			drop = append(drop, id)
		}
	}
	rows.Close()
	for _, id := range drop {
		if _, err := tx.Exec(`DELETE FROM schedules WHERE id = ?`, id); err != nil {
			return nil, err
		}
	}
	dir := s.projectDir(projectID, revID)
	_ = os.RemoveAll(dir) // a leftover of an earlier, failed push
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.logf("wfserver: project %s revision %s pushed (%d workflows)", name, revName, len(wfs))
	p, err := s.project(projectID)
	if err != nil {
		return nil, err
	}
	return s.restProject(p)
}

type archiveFile struct {
	name string
	mode os.FileMode
	data []byte
}

// readArchive reads a project tar.gz: regular files and directories only,
// relative paths that stay inside the project.
func readArchive(body []byte) ([]archiveFile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("the body is not a gzip-compressed tar archive: %v", err)
	}
	tr := tar.NewReader(zr)
	var files []archiveFile
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the tar archive: %v", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("archive entry %q is outside the project directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("archive entry %q is not a regular file or directory (links are not accepted)", h.Name)
		}
		if h.Size > maxFileBytes {
			return nil, fmt.Errorf("Size of a file in the archive exceeds limit (%d > %d bytes): %s", h.Size, maxFileBytes, name)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxFileBytes+1))
		if err != nil {
			return nil, fmt.Errorf("reading %s from the archive: %v", name, err)
		}
		mode := os.FileMode(0o600)
		if h.Mode&0o111 != 0 {
			mode = 0o700
		}
		files = append(files, archiveFile{name: name, mode: mode, data: data})
	}
	return files, nil
}

// yamlToJSON is a workflow's definition as the JSON of digdag's
// RestWorkflowDefinition.config ({} when it cannot be converted).
func yamlToJSON(data []byte) string {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil || v == nil {
		return "{}"
	}
	b, err := json.Marshal(jsonSafe(v))
	if err != nil {
		return "{}"
	}
	return string(b)
}

// jsonSafe turns YAML's map[any]any (non-string keys) into JSON objects.
func jsonSafe(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = jsonSafe(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = jsonSafe(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = jsonSafe(x)
		}
		return t
	case time.Time:
		return t.Format(time.RFC3339)
	}
	return v
}

func (s *Server) getArchive(w http.ResponseWriter, idSeg, revName string) error {
	id, err := strconv.ParseInt(idSeg, 10, 64)
	if err != nil {
		return errorf(http.StatusNotFound, "HTTP 404 Not Found")
	}
	if _, err := s.liveProject(id); err != nil {
		return err
	}
	rev, err := s.revisionOf(id, revName)
	if err != nil {
		return err
	}
	var data []byte
	if err := s.db.QueryRow(`SELECT archive FROM revisions WHERE id = ?`, rev.ID).Scan(&data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

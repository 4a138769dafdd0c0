package wfserver

import (
	"encoding/json"
	"strconv"
	"time"
)

// The JSON shapes of digdag's REST API (digdag-client's io.digdag.client.api
// Rest* models): camelCase field names, ids as strings, instants as
// "2006-01-02T15:04:05Z" and session times with their offset
// ("2006-01-02T15:04:05+09:00"). Optional values are null when absent, as
// Jackson writes them.

type idAndName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// nameOptionalID is digdag's NameOptionalId: the workflow of a session
// (its id is null when the definition is gone).
type nameOptionalID struct {
	Name string  `json:"name"`
	ID   *string `json:"id"`
}

type restProject struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Revision    string  `json:"revision"`
	CreatedAt   string  `json:"createdAt"`
	UpdatedAt   string  `json:"updatedAt"`
	DeletedAt   *string `json:"deletedAt"`
	ArchiveType string  `json:"archiveType"`
	ArchiveMd5  []byte  `json:"archiveMd5"` // base64, as Jackson writes byte[]
}

type restRevision struct {
	Revision    string         `json:"revision"`
	CreatedAt   string         `json:"createdAt"`
	ArchiveType string         `json:"archiveType"`
	ArchiveMd5  []byte         `json:"archiveMd5"`
	UserInfo    map[string]any `json:"userInfo"`
}

type restWorkflow struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Project  idAndName       `json:"project"`
	Revision string          `json:"revision"`
	Timezone string          `json:"timezone"`
	Config   json.RawMessage `json:"config"`
}

type restSessionAttempt struct {
	ID               string          `json:"id"`
	Index            int             `json:"index"`
	Project          idAndName       `json:"project"`
	Workflow         nameOptionalID  `json:"workflow"`
	SessionID        string          `json:"sessionId"`
	SessionUUID      string          `json:"sessionUuid"`
	SessionTime      string          `json:"sessionTime"`
	RetryAttemptName *string         `json:"retryAttemptName"`
	Done             bool            `json:"done"`
	Success          bool            `json:"success"`
	CancelRequested  bool            `json:"cancelRequested"`
	Params           json.RawMessage `json:"params"`
	CreatedAt        string          `json:"createdAt"`
	FinishedAt       *string         `json:"finishedAt"`
	// Status is digdag-client's derived getStatus(), which Jackson writes
	// too: success, killed, error or running.
	Status string `json:"status"`
}

type restSessionLastAttempt struct {
	ID               string          `json:"id"`
	RetryAttemptName *string         `json:"retryAttemptName"`
	Done             bool            `json:"done"`
	Success          bool            `json:"success"`
	CancelRequested  bool            `json:"cancelRequested"`
	Params           json.RawMessage `json:"params"`
	CreatedAt        string          `json:"createdAt"`
	FinishedAt       *string         `json:"finishedAt"`
}

type restSession struct {
	ID          string                  `json:"id"`
	Project     idAndName               `json:"project"`
	Workflow    nameOptionalID          `json:"workflow"`
	SessionUUID string                  `json:"sessionUuid"`
	SessionTime string                  `json:"sessionTime"`
	LastAttempt *restSessionLastAttempt `json:"lastAttempt"`
}

type restTask struct {
	ID              string         `json:"id"`
	FullName        string         `json:"fullName"`
	ParentID        *string        `json:"parentId"`
	Config          map[string]any `json:"config"`
	Upstreams       []string       `json:"upstreams"`
	IsGroup         bool           `json:"isGroup"`
	State           string         `json:"state"`
	CancelRequested bool           `json:"cancelRequested"`
	ExportParams    map[string]any `json:"exportParams"`
	StoreParams     map[string]any `json:"storeParams"`
	StateParams     map[string]any `json:"stateParams"`
	UpdatedAt       string         `json:"updatedAt"`
	RetryAt         *string        `json:"retryAt"`
	StartedAt       *string        `json:"startedAt"`
	Error           map[string]any `json:"error"`
}

type restLogFileHandle struct {
	FileName string  `json:"fileName"`
	FileSize int64   `json:"fileSize"`
	TaskName string  `json:"taskName"`
	FileTime string  `json:"fileTime"`
	AgentID  string  `json:"agentId"`
	Direct   *string `json:"direct"`
}

type restSchedule struct {
	ID               string    `json:"id"`
	Project          idAndName `json:"project"`
	Workflow         idAndName `json:"workflow"`
	NextRunTime      string    `json:"nextRunTime"`
	NextScheduleTime string    `json:"nextScheduleTime"`
	DisabledAt       *string   `json:"disabledAt"`
}

type restScheduleSummary struct {
	ID               string    `json:"id"`
	Project          idAndName `json:"project"`
	Workflow         idAndName `json:"workflow"`
	NextRunTime      string    `json:"nextRunTime"`
	NextScheduleTime string    `json:"nextScheduleTime"`
	CreatedAt        string    `json:"createdAt"`
	UpdatedAt        string    `json:"updatedAt"`
	DisabledAt       *string   `json:"disabledAt"`
}

type restSecret struct {
	Key     string    `json:"key"`
	Project idAndName `json:"project"`
}

type restSecretMetadata struct {
	Key string `json:"key"`
}

// restAttemptRequest is RestSessionAttemptRequest (PUT /api/attempts).
type restAttemptRequest struct {
	WorkflowID       json.RawMessage `json:"workflowId"`
	SessionTime      string          `json:"sessionTime"`
	RetryAttemptName *string         `json:"retryAttemptName"`
	Resume           *struct {
		Mode      string          `json:"mode"`
		AttemptID json.RawMessage `json:"attemptId"`
		From      string          `json:"from"`
	} `json:"resume"`
	Params map[string]any `json:"params"`
}

func idString(id int64) string { return strconv.FormatInt(id, 10) }

// instant formats t as digdag's JSON writes an Instant.
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func instantPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := instant(*t)
	return &s
}

// offsetTime formats t in loc as digdag's JSON writes an OffsetDateTime.
func offsetTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02T15:04:05-07:00")
}

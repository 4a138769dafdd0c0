package digdag

import (
	"encoding/json"
	"time"
)

// The types below are digdag-client's Rest* models (io.digdag.client.api)
// as digdag's server writes them. Optional values digdag writes as null
// decode to their zero value (nil pointers for times). Config-typed fields
// (a workflow's config, params, a task's state) are JSON objects.

// IDAndName is digdag's IdAndName: a project or workflow reference.
type IDAndName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// NameOptionalID is digdag's NameOptionalId: the workflow of a session or
// attempt (ID is empty when the definition is not stored).
type NameOptionalID struct {
	Name string `json:"name"`
	ID   string `json:"id,omitempty"`
}

// Project is RestProject: one pushed project and its latest revision.
type Project struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Revision    string     `json:"revision"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	DeletedAt   *time.Time `json:"deletedAt"`
	ArchiveType string     `json:"archiveType"`
	// ArchiveMD5 is the archive's MD5 (base64 in JSON, as Jackson writes
	// byte[]); empty when the server keeps none.
	ArchiveMD5 []byte `json:"archiveMd5"`
}

// Revision is RestRevision: one pushed revision of a project.
type Revision struct {
	Revision    string         `json:"revision"`
	CreatedAt   time.Time      `json:"createdAt"`
	ArchiveType string         `json:"archiveType"`
	ArchiveMD5  []byte         `json:"archiveMd5"`
	UserInfo    map[string]any `json:"userInfo"`
}

// Workflow is RestWorkflowDefinition: a workflow of a project revision.
type Workflow struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Project  IDAndName `json:"project"`
	Revision string    `json:"revision"`
	// Timezone is the workflow's zone id (digdag's "timezone": UTC,
	// Asia/Tokyo...).
	Timezone string         `json:"timezone"`
	Config   map[string]any `json:"config"`
}

// WorkflowSessionTime is RestWorkflowSessionTime: a session time truncated
// the way a workflow's schedule or an hourly/daily start wants it.
type WorkflowSessionTime struct {
	Project     IDAndName `json:"project"`
	Revision    string    `json:"revision"`
	SessionTime time.Time `json:"sessionTime"`
	Timezone    string    `json:"timezone"`
}

// Session is RestSession: one run of a workflow for one session time, with
// its last attempt.
type Session struct {
	ID          string          `json:"id"`
	Project     IDAndName       `json:"project"`
	Workflow    NameOptionalID  `json:"workflow"`
	SessionUUID string          `json:"sessionUuid"`
	SessionTime time.Time       `json:"sessionTime"`
	LastAttempt *SessionAttempt `json:"lastAttempt"`
}

// SessionAttempt is RestSession.Attempt: a session's last attempt.
type SessionAttempt struct {
	ID               string         `json:"id"`
	RetryAttemptName string         `json:"retryAttemptName,omitempty"`
	Done             bool           `json:"done"`
	Success          bool           `json:"success"`
	CancelRequested  bool           `json:"cancelRequested"`
	Params           map[string]any `json:"params"`
	CreatedAt        time.Time      `json:"createdAt"`
	FinishedAt       *time.Time     `json:"finishedAt"`
}

// Attempt is RestSessionAttempt: one attempt of a session.
type Attempt struct {
	ID               string         `json:"id"`
	Index            int            `json:"index"`
	Project          IDAndName      `json:"project"`
	Workflow         NameOptionalID `json:"workflow"`
	SessionID        string         `json:"sessionId"`
	SessionUUID      string         `json:"sessionUuid"`
	SessionTime      time.Time      `json:"sessionTime"`
	RetryAttemptName string         `json:"retryAttemptName,omitempty"`
	Done             bool           `json:"done"`
	Success          bool           `json:"success"`
	CancelRequested  bool           `json:"cancelRequested"`
	Params           map[string]any `json:"params"`
	CreatedAt        time.Time      `json:"createdAt"`
	FinishedAt       *time.Time     `json:"finishedAt"`
	// Status is digdag's derived status (success, error, killed,
	// running); filled in from State when a server (older digdag) leaves
	// it out.
	Status string `json:"status,omitempty"`
}

// UnmarshalJSON decodes an attempt and fills in Status when it is absent.
func (a *Attempt) UnmarshalJSON(b []byte) error {
	type plain Attempt
	if err := json.Unmarshal(b, (*plain)(a)); err != nil {
		return err
	}
	if a.Status == "" {
		a.Status = a.State()
	}
	return nil
}

// State is the attempt's status as digdag derives it: success; error or
// killed once done; running before.
func (a *Attempt) State() string {
	switch {
	case a.Success:
		return "success"
	case a.Done && a.CancelRequested:
		return "killed"
	case a.Done:
		return "error"
	}
	return "running"
}

// Task is RestTask: one task of an attempt.
type Task struct {
	ID              string         `json:"id"`
	FullName        string         `json:"fullName"`
	ParentID        string         `json:"parentId,omitempty"`
	Config          map[string]any `json:"config"`
	Upstreams       []string       `json:"upstreams"`
	IsGroup         bool           `json:"isGroup"`
	State           string         `json:"state"`
	CancelRequested bool           `json:"cancelRequested"`
	ExportParams    map[string]any `json:"exportParams"`
	StoreParams     map[string]any `json:"storeParams"`
	StateParams     map[string]any `json:"stateParams"`
	UpdatedAt       time.Time      `json:"updatedAt"`
	RetryAt         *time.Time     `json:"retryAt"`
	StartedAt       *time.Time     `json:"startedAt"`
	Error           map[string]any `json:"error"`
}

// LogFile is RestLogFileHandle: one log file of a task (digdag uploads a
// task's log in chunks, each a gzip file).
type LogFile struct {
	FileName string    `json:"fileName"`
	FileSize int64     `json:"fileSize"`
	TaskName string    `json:"taskName"`
	FileTime time.Time `json:"fileTime"`
	AgentID  string    `json:"agentId"`
	// Direct is a URL the file can be fetched from without the API (a
	// pre-signed storage URL); this client asks for none and reads every
	// file through the API.
	Direct DirectURL `json:"direct,omitempty"`
}

// DirectURL is RestDirectDownloadHandle: written as a URL string, read
// from a string or (older servers) an object {"url": ...}.
type DirectURL string

// UnmarshalJSON reads a string, null or {"url": "..."}.
func (d *DirectURL) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != nil {
			*d = DirectURL(*s)
		}
		return nil
	}
	var o struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*d = DirectURL(o.URL)
	return nil
}

// Schedule is RestSchedule: the schedule of a workflow of the latest
// revision of a project.
type Schedule struct {
	ID               string     `json:"id"`
	Project          IDAndName  `json:"project"`
	Workflow         IDAndName  `json:"workflow"`
	NextRunTime      time.Time  `json:"nextRunTime"`
	NextScheduleTime time.Time  `json:"nextScheduleTime"`
	DisabledAt       *time.Time `json:"disabledAt"`
}

// ScheduleSummary is RestScheduleSummary: what skip, enable and disable
// answer.
type ScheduleSummary struct {
	ID               string     `json:"id"`
	Project          IDAndName  `json:"project"`
	Workflow         IDAndName  `json:"workflow"`
	NextRunTime      time.Time  `json:"nextRunTime"`
	NextScheduleTime time.Time  `json:"nextScheduleTime"`
	CreatedAt        time.Time  `json:"createdAt"`
	UpdatedAt        time.Time  `json:"updatedAt"`
	DisabledAt       *time.Time `json:"disabledAt"`
}

// The collections digdag wraps lists in.
type (
	projectCollection struct {
		Projects []*Project `json:"projects"`
	}
	revisionCollection struct {
		Revisions []*Revision `json:"revisions"`
	}
	workflowCollection struct {
		Workflows []*Workflow `json:"workflows"`
	}
	sessionCollection struct {
		Sessions []*Session `json:"sessions"`
	}
	attemptCollection struct {
		Attempts []*Attempt `json:"attempts"`
	}
	taskCollection struct {
		Tasks []*Task `json:"tasks"`
	}
	logFileCollection struct {
		Files []*LogFile `json:"files"`
	}
	scheduleCollection struct {
		Schedules []*Schedule `json:"schedules"`
	}
	secretList struct {
		Secrets []struct {
			Key string `json:"key"`
		} `json:"secrets"`
	}
)

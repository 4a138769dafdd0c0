package digdag

// The field list of digdag's REST models, shared by the tests of both
// sides of the API in this repository: the client's Go types (below) and
// the JSON any server answers — the httptest fixtures of client_test.go
// and tdctl dev-server's digdag API (internal/emulator/wfserver), whose
// answers checkRESTFields reads in e2e_test.go.
//
// Taken from digdag-client's io.digdag.client.api models (RestProject,
// RestWorkflowDefinition, RestSession and RestSession.Attempt,
// RestSessionAttempt, RestTask, RestLogFileHandle, RestSchedule,
// RestScheduleSummary, RestRevision, RestWorkflowSessionTime): Jackson
// writes each getter as a camelCase name without its get/is prefix, except
// RestTask.isGroup (written "isGroup", as digdag's UI reads it) and the
// zone of RestWorkflowDefinition and RestWorkflowSessionTime (annotated
// "timezone"). A trailing "?" marks an Optional<...> field, which digdag
// writes as null or leaves out. RestSessionAttempt's "status" is derived
// from done/success/cancelRequested and absent from older servers.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var restModels = map[string][]string{
	"RestProject":             {"id", "name", "revision", "createdAt", "updatedAt", "deletedAt?", "archiveType", "archiveMd5?"},
	"RestRevision":            {"revision", "createdAt", "archiveType", "archiveMd5?", "userInfo?"},
	"RestWorkflowDefinition":  {"id", "name", "project", "revision", "timezone", "config"},
	"RestWorkflowSessionTime": {"project", "revision", "sessionTime", "timezone"},
	"RestSession":             {"id", "project", "workflow", "sessionUuid", "sessionTime", "lastAttempt?"},
	"RestSession.Attempt":     {"id", "retryAttemptName?", "done", "success", "cancelRequested", "params", "createdAt", "finishedAt?"},
	"RestSessionAttempt": {"id", "index", "project", "workflow", "sessionId", "sessionUuid", "sessionTime",
		"retryAttemptName?", "done", "success", "cancelRequested", "params", "createdAt", "finishedAt?", "status?"},
	"RestTask": {"id", "fullName", "parentId?", "config", "upstreams", "isGroup", "state", "cancelRequested",
		"exportParams", "storeParams", "stateParams", "updatedAt", "retryAt?", "startedAt?", "error"},
	"RestLogFileHandle":   {"fileName", "fileSize", "taskName", "fileTime", "agentId", "direct?"},
	"RestSchedule":        {"id", "project", "workflow", "nextRunTime", "nextScheduleTime", "disabledAt?"},
	"RestScheduleSummary": {"id", "project", "workflow", "nextRunTime", "nextScheduleTime", "createdAt", "updatedAt", "disabledAt?"},
	// the references inside them
	"IdAndName":      {"id", "name"},
	"NameOptionalId": {"name", "id?"},
}

// goModels are our types for each model.
var goModels = map[string]any{
	"RestProject":             Project{},
	"RestRevision":            Revision{},
	"RestWorkflowDefinition":  Workflow{},
	"RestWorkflowSessionTime": WorkflowSessionTime{},
	"RestSession":             Session{},
	"RestSession.Attempt":     SessionAttempt{},
	"RestSessionAttempt":      Attempt{},
	"RestTask":                Task{},
	"RestLogFileHandle":       LogFile{},
	"RestSchedule":            Schedule{},
	"RestScheduleSummary":     ScheduleSummary{},
	"IdAndName":               IDAndName{},
	"NameOptionalId":          NameOptionalID{},
}

// restFieldNames is a model's JSON names, without the "?" marks.
func restFieldNames(model string) []string {
	var out []string
	for _, f := range restModels[model] {
		out = append(out, strings.TrimSuffix(f, "?"))
	}
	sort.Strings(out)
	return out
}

func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TestGoTypesMatchDigdagModels: every Go type has exactly the JSON names
// of its digdag model, no field missing, none invented.
func TestGoTypesMatchDigdagModels(t *testing.T) {
	require.Len(t, goModels, len(restModels))
	for model, v := range goModels {
		assert.Equal(t, restFieldNames(model), jsonNames(reflect.TypeOf(v)), model)
	}
}

// nested says which model the objects under a field are, for
// checkRESTFields.
var nested = map[string]map[string]string{
	"RestWorkflowDefinition":  {"project": "IdAndName"},
	"RestWorkflowSessionTime": {"project": "IdAndName"},
	"RestSession":             {"project": "IdAndName", "workflow": "NameOptionalId", "lastAttempt": "RestSession.Attempt"},
	"RestSessionAttempt":      {"project": "IdAndName", "workflow": "NameOptionalId"},
	"RestSchedule":            {"project": "IdAndName", "workflow": "IdAndName"},
	"RestScheduleSummary":     {"project": "IdAndName", "workflow": "IdAndName"},
}

// checkRESTFields checks one JSON object a server sent as model (see
// restFieldProblems).
func checkRESTFields(t testing.TB, model string, raw json.RawMessage) {
	t.Helper()
	assert.Empty(t, restFieldProblems(model, raw), "%s: %s", model, raw)
}

// restFieldProblems lists what is wrong with one JSON object as model: a
// field digdag does not write, a field digdag always writes missing (or
// null), the same for the references inside it.
func restFieldProblems(model string, raw json.RawMessage) []string {
	fields, ok := restModels[model]
	if !ok {
		return []string{"unknown model " + model}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return []string{model + ": not a JSON object: " + err.Error()}
	}
	var out []string
	known := map[string]bool{}
	for _, f := range fields {
		name, optional := strings.CutSuffix(f, "?")
		known[name] = true
		v, present := obj[name]
		if !optional && (!present || string(v) == "null") {
			out = append(out, fmt.Sprintf("%s: field %q missing or null", model, name))
		}
		if sub, ok := nested[model][name]; ok && present && string(v) != "null" {
			out = append(out, restFieldProblems(sub, v)...)
		}
	}
	for k := range obj {
		if !known[k] {
			out = append(out, fmt.Sprintf("%s: field %q is not digdag's", model, k))
		}
	}
	sort.Strings(out)
	return out
}

// checkRESTCollection checks every element of a collection answer
// ({"attempts": [...]}) as model.
func checkRESTCollection(t testing.TB, model, key string, raw []byte) {
	t.Helper()
	var c map[string][]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &c), "%s", raw)
	list, ok := c[key]
	require.True(t, ok, "no %q in %s", key, raw)
	for _, v := range list {
		checkRESTFields(t, model, v)
	}
}

// TestCheckRESTFieldsCatchesDrift: the checker finds a renamed or a
// missing field (so that it can fail on a server's answer).
func TestCheckRESTFieldsCatchesDrift(t *testing.T) {
	ok := `{"fileName":"a.log.gz","fileSize":3,"taskName":"+wf+a","fileTime":"2026-01-01T00:00:00Z","agentId":"x","direct":null}`
	checkRESTFields(t, "RestLogFileHandle", json.RawMessage(ok))
	assert.Equal(t, []string{`RestLogFileHandle: field "fileName" missing or null`, `RestLogFileHandle: field "file_name" is not digdag's`},
		restFieldProblems("RestLogFileHandle", json.RawMessage(`{"file_name":"a","fileSize":3,"taskName":"+wf+a","fileTime":"2026-01-01T00:00:00Z","agentId":"x"}`)))
	assert.Equal(t, []string{`IdAndName: field "id" missing or null`},
		restFieldProblems("RestSchedule", json.RawMessage(strings.Replace(fxSchedule, `"id":"7",`, "", 1))), "inside a reference too")
}

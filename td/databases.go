package td

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DatabasesService lists, creates and deletes databases.
type DatabasesService service

// Database is one element of GET /v3/database/list. The JSON tags are the
// API's field names, which the CLI prints with -o json.
type Database struct {
	Name            string    `json:"name"`
	Count           int64     `json:"count"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	Permission      string    `json:"permission"`
	DeleteProtected bool      `json:"delete_protected"`
	Organization    string    `json:"organization,omitempty"`
}

type databaseWire struct {
	Name            string   `json:"name"`
	Count           flexInt  `json:"count"`
	CreatedAt       flexTime `json:"created_at"`
	UpdatedAt       flexTime `json:"updated_at"`
	Permission      string   `json:"permission"`
	DeleteProtected bool     `json:"delete_protected"`
	Organization    *string  `json:"organization"`
}

// List returns every database the API key can see (GET /v3/database/list).
func (s *DatabasesService) List(ctx context.Context) ([]Database, error) {
	var w struct {
		Databases *[]databaseWire `json:"databases"`
	}
	const p = "/v3/database/list"
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: p, retry: true}, &w); err != nil {
		return nil, err
	}
	if w.Databases == nil {
		return nil, &ProtocolError{Method: http.MethodGet, Path: p, Msg: `answer carried no "databases"`}
	}
	out := make([]Database, 0, len(*w.Databases))
	for _, d := range *w.Databases {
		db := Database{Name: d.Name, Count: d.Count.value(), CreatedAt: d.CreatedAt.t, UpdatedAt: d.UpdatedAt.t,
			Permission: d.Permission, DeleteProtected: d.DeleteProtected}
		if d.Organization != nil {
			db.Organization = *d.Organization
		}
		out = append(out, db)
	}
	return out, nil
}

// Show returns one database. The API has no show call: like the official
// clients, it looks the name up in List. An unknown name is an *APIError
// matching ErrNotFound.
func (s *DatabasesService) Show(ctx context.Context, name string) (*Database, error) {
	if err := checkName("database", name); err != nil {
		return nil, err
	}
	dbs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	for i := range dbs {
		if dbs[i].Name == name {
			return &dbs[i], nil
		}
	}
	return nil, &APIError{StatusCode: http.StatusNotFound, Method: http.MethodGet, Path: "/v3/database/list",
		Message: fmt.Sprintf("database %q does not exist", name)}
}

// Create creates a database (POST /v3/database/create/:db). One that exists
// already is an *APIError matching ErrConflict. The call is retried on
// transient failures; a 409 answering a retry (the first attempt went
// through) counts as success.
func (s *DatabasesService) Create(ctx context.Context, name string) error {
	if err := checkName("database", name); err != nil {
		return err
	}
	return s.client.doIdempotent(ctx, &request{method: http.MethodPost, path: path("/v3/database/create", name)}, http.StatusConflict,
		fmt.Sprintf("database %q already exists", name), nil)
}

// Delete deletes a database and its tables (POST /v3/database/delete/:db).
// An unknown database is an *APIError matching ErrNotFound; a 404 answering
// a retry counts as success.
func (s *DatabasesService) Delete(ctx context.Context, name string) error {
	if err := checkName("database", name); err != nil {
		return err
	}
	return s.client.doIdempotent(ctx, &request{method: http.MethodPost, path: path("/v3/database/delete", name)}, http.StatusNotFound,
		fmt.Sprintf("database %q does not exist", name), nil)
}

// checkName refuses an empty or blank database or table name before any
// request is sent (the API would answer with a routing 404).
func checkName(kind, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalidArg("%s name is required", kind)
	}
	if strings.ContainsAny(name, "/\x00") {
		return invalidArg("invalid %s name %q: use letters, digits and underscores", kind, name)
	}
	return nil
}

// doIdempotent sends r (retried on transient failures) and decodes a JSON
// answer into v when v is set. done is the status a repeated request gets
// once an earlier attempt took effect (409 for a create, 404 for a delete):
// after a retry it means success; on the first attempt it is an *APIError
// carrying msg.
func (c *Client) doIdempotent(ctx context.Context, r *request, done int, msg string, v any) error {
	b := c.newBudget(true)
	_, err := c.sendWith(ctx, r, b, v)
	if err == nil {
		return nil
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == done {
		if b.Used > 1 {
			return nil
		}
		if msg != "" {
			apiErr.Message = msg
		}
	}
	return err
}

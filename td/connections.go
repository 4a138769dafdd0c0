package td

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ConnectionsService lists and looks up saved result-output connections.
type ConnectionsService service

// Connection is a saved result-output connection. URL is redacted. ID is
// known from Lookup only (the list does not carry it).
type Connection struct {
	ID           int64  `json:"id,omitempty"`
	Name         string `json:"name"`
	URL          string `json:"url,omitempty"`
	Organization string `json:"organization,omitempty"`
}

// List returns every saved connection (GET /v3/result/list), URLs
// redacted.
func (s *ConnectionsService) List(ctx context.Context) ([]*Connection, error) {
	var w struct {
		Results []struct {
			Name         string  `json:"name"`
			URL          string  `json:"url"`
			Organization *string `json:"organization"`
		} `json:"results"`
	}
	if err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: "/v3/result/list", retry: true}, &w); err != nil {
		return nil, err
	}
	out := make([]*Connection, len(w.Results))
	for i, r := range w.Results {
		out[i] = &Connection{Name: r.Name, URL: s.client.red.redact(r.URL)}
		if r.Organization != nil {
			out[i].Organization = *r.Organization
		}
	}
	return out, nil
}

// Show returns the connection called name from the list, with its id from
// Lookup when the API knows it. The API has no show call; an unknown name
// is an *APIError matching ErrNotFound.
func (s *ConnectionsService) Show(ctx context.Context, name string) (*Connection, error) {
	if strings.TrimSpace(name) == "" {
		return nil, invalidArg("connection name is required")
	}
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.Name != name {
			continue
		}
		found, err := s.Lookup(ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if found != nil {
			c.ID = found.ID
		}
		return c, nil
	}
	return nil, &APIError{StatusCode: http.StatusNotFound, Method: http.MethodGet, Path: "/v3/result/list",
		Message: fmt.Sprintf("no connection named %q", name)}
}

// Lookup finds a connection by name (GET /v3/connections/lookup). An unknown
// name is an error matching ErrNotFound.
func (s *ConnectionsService) Lookup(ctx context.Context, name string) (*Connection, error) {
	if strings.TrimSpace(name) == "" {
		return nil, invalidArg("connection name is required")
	}
	var w struct {
		ID   flexInt `json:"id"`
		Name string  `json:"name"`
		URL  string  `json:"url"`
	}
	q := url.Values{"name": {name}}
	err := s.client.doJSON(ctx, &request{method: http.MethodGet, path: "/v3/connections/lookup", query: q, retry: true}, &w)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
		apiErr.Message = fmt.Sprintf("no connection named %q (check the name in the TD console under Integrations)", name)
		return nil, apiErr
	}
	if err != nil {
		return nil, err
	}
	if w.ID.v == nil {
		return nil, &ProtocolError{Method: http.MethodGet, Path: "/v3/connections/lookup", Msg: fmt.Sprintf("connection %q: answer carried no id", name)}
	}
	return &Connection{ID: *w.ID.v, Name: w.Name, URL: s.client.red.redact(w.URL)}, nil
}

// resolve returns the connection id (looking a name up) and the settings as
// the JSON string the API takes.
func (s *ConnectionsService) resolve(ctx context.Context, t *ConnectionTarget) (int64, string, error) {
	id := t.ID
	if id == 0 {
		if t.Name == "" {
			return 0, "", invalidArg("result connection needs an id or a name")
		}
		conn, err := s.Lookup(ctx, t.Name)
		if err != nil {
			return 0, "", err
		}
		id = conn.ID
	}
	settings := "{}"
	if len(t.Settings) > 0 {
		b, err := json.Marshal(t.Settings)
		if err != nil {
			return 0, "", &ArgumentError{Msg: "result connection settings: " + err.Error()}
		}
		settings = string(b)
	}
	return id, settings, nil
}

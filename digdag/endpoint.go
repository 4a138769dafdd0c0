package digdag

import (
	"net/url"
	"strings"

	"github.com/tdctl/tdctl/td"
)

// ResolveEndpoint turns what a user configured into the workflow API's
// base URL. workflow, when set, is a site name (us01, jp01, eu01, ap02,
// ap03 and td's aliases), a host (https is assumed) or a URL. When it is
// empty the endpoint is derived from the TD API endpoint tdAPI (as td's
// ResolveEndpoint reads it), the way the td CLI derives its workflow
// endpoint: a TD host api.X serves workflows at api-workflow.X (us01
// api-workflow.treasuredata.com, jp01 api-workflow.treasuredata.co.jp,
// eu01 api-workflow.eu01.treasuredata.com, ap02
// api-workflow.ap02.treasuredata.com, ap03
// api-workflow.ap03.treasuredata.com), api-NAME.X at api-NAME-workflow.X
// and api-NAME.connect.X at api-workflow-NAME.connect.X, always over https.
// Any other host (tdctl dev-server, a local or private digdag server) is
// taken to serve the workflow API itself, at the same URL. Errors are
// *ArgumentError.
func ResolveEndpoint(workflow, tdAPI string) (string, error) {
	workflow = strings.TrimSpace(workflow)
	if workflow != "" {
		u, err := td.ResolveEndpoint(workflow)
		if err != nil {
			return "", &ArgumentError{Msg: "invalid workflow endpoint: " + strings.TrimPrefix(err.Error(), "td: ")}
		}
		if isSiteName(workflow) {
			return fromTDEndpoint(u), nil
		}
		return u, nil
	}
	u, err := td.ResolveEndpoint(tdAPI)
	if err != nil {
		return "", &ArgumentError{Msg: strings.TrimPrefix(err.Error(), "td: ")}
	}
	return fromTDEndpoint(u), nil
}

// isSiteName reports a bare word td.ResolveEndpoint reads as a site.
func isSiteName(s string) bool {
	return !strings.ContainsAny(s, ".:/[") && !strings.EqualFold(s, "localhost")
}

// fromTDEndpoint maps a TD API base URL to its workflow API (see
// ResolveEndpoint).
func fromTDEndpoint(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil {
		return apiURL
	}
	host := strings.ToLower(u.Hostname())
	if !strings.HasSuffix(host, ".treasuredata.com") && !strings.HasSuffix(host, ".treasuredata.co.jp") {
		return apiURL
	}
	first, rest, _ := strings.Cut(host, ".")
	switch {
	case first == "api":
		first = "api-workflow"
	case strings.HasPrefix(first, "api-workflow"):
		return "https://" + host // already a workflow host
	case strings.HasPrefix(first, "api-") && strings.HasPrefix(rest, "connect."):
		first = "api-workflow-" + strings.TrimPrefix(first, "api-")
	case strings.HasPrefix(first, "api-"):
		first += "-workflow"
	default:
		return apiURL
	}
	return "https://" + first + "." + rest
}

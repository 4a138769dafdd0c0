package td

import (
	"fmt"
	"strings"
)

// checkJobAnswer reports a *ProtocolError when an answer about job id has no
// status or names no job or (id != "") another one.
func checkJobAnswer(method, p, id, gotID, status string) error {
	var missing []string
	if strings.TrimSpace(gotID) == "" {
		missing = append(missing, "job_id")
	}
	if strings.TrimSpace(status) == "" {
		missing = append(missing, "status")
	}
	if len(missing) > 0 {
		return &ProtocolError{Method: method, Path: p, Msg: "unusable answer: no " + strings.Join(missing, " and no ")}
	}
	if id != "" && !sameJobID(id, gotID) {
		return &ProtocolError{Method: method, Path: p, Msg: fmt.Sprintf("unusable answer: it is about job %q", truncate(gotID, 40))}
	}
	return nil
}

// sameJobID compares ids as the API does: numbers, leading zeros aside.
func sameJobID(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == b {
		return true
	}
	trim := func(s string) string {
		t := strings.TrimLeft(s, "0")
		if t == "" && s != "" {
			return "0"
		}
		return t
	}
	return trim(a) == trim(b)
}

package operators

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// durationSyntax is digdag's duration (DurationParam): "1d 2h 3m 4s", each
// part optional but one needed, units in either case. A bare number is no
// duration to digdag (a YAML 30 reads as the text "30", which it refuses).
var durationSyntax = regexp.MustCompile(`(?i)^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$`)

// parseDigdagDuration reads a duration setting (td_wait>'s interval,
// pg>'s connect_timeout...) as digdag does.
func parseDigdagDuration(s string) (time.Duration, error) {
	m := durationSyntax.FindStringSubmatch(s)
	if m == nil || strings.TrimSpace(s) == "" || (m[1] == "" && m[2] == "" && m[3] == "" && m[4] == "") {
		return 0, fmt.Errorf("%q is not a duration: write it as digdag does, e.g. 30s, 5m, 1h 30m or 1d", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration: %v", s, err)
			}
			d += time.Duration(n) * unit
		}
	}
	return d, nil
}

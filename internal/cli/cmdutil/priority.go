package cmdutil

import (
	"strconv"
	"strings"
)

// ParsePriority reads a -P/--priority value as the Ruby td CLI takes it:
// -2..2, or VERY_LOW, LOW, NORMAL, HIGH, VERY_HIGH.
func ParsePriority(s string) (int, error) {
	names := map[string]int{"very_low": -2, "verylow": -2, "low": -1, "normal": 0, "high": 1, "very_high": 2, "veryhigh": 2}
	k := strings.ToLower(strings.NewReplacer(" ", "_", "-", "_").Replace(strings.TrimSpace(s)))
	if p, ok := names[k]; ok {
		return p, nil
	}
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < -2 || p > 2 {
		return 0, FlagErrorf("invalid -P/--priority %q: use -2..2 or VERY_LOW, LOW, NORMAL, HIGH, VERY_HIGH", s)
	}
	return p, nil
}

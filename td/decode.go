package td

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flexString decodes a JSON string or number (ids arrive as both); null is "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("expected a string or number, got %s", truncate(string(b), 40))
	}
	*f = flexString(n.String())
	return nil
}

// flexInt decodes a JSON number or numeric string; null leaves it nil.
type flexInt struct{ v *int64 }

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		f.v = nil
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			f.v = nil
			return nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return fmt.Errorf("expected an integer, got %s", truncate(s, 40))
		}
		n = int64(fl)
	}
	f.v = &n
	return nil
}

func (f flexInt) value() int64 {
	if f.v == nil {
		return 0
	}
	return *f.v
}

// flexTime decodes the time formats TD uses; null or "" is the zero time.
type flexTime struct{ t time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05.999999999 -0700",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05",
}

func (f *flexTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		f.t = time.Time{}
		return nil
	}
	if b[0] != '"' {
		// unix seconds
		n, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("expected a time, got %s", truncate(string(b), 40))
		}
		f.t = time.Unix(int64(n), 0).UTC()
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	f.t = t
	return nil
}

// zoneOffsets are the abbreviations TD regions' times may carry.
var zoneOffsets = map[string]int{"JST": 9 * 3600, "KST": 9 * 3600, "CET": 3600, "CEST": 7200, "PST": -8 * 3600, "PDT": -7 * 3600}

// ParseTime parses the time formats TD answers with ("2016-07-26 08:14:46
// UTC", RFC 3339, "... -0700"). An empty string is the zero time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	var zoneErr error
	for _, l := range timeLayouts {
		t, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		// time.Parse gives an unknown abbreviation ("JST") offset 0 without
		// complaint: resolve the ones TD regions use, refuse the others.
		if name, off := t.Zone(); off == 0 && name != "UTC" && name != "GMT" && name != "" && name != "Z" {
			o, ok := zoneOffsets[name]
			if !ok {
				zoneErr = fmt.Errorf("td: time %q has an unknown zone %s", truncate(s, 40), name)
				continue // a later layout may read it (e.g. "+0000")
			}
			t = t.Add(-time.Duration(o) * time.Second)
		}
		return t.UTC(), nil
	}
	if zoneErr != nil {
		return time.Time{}, zoneErr
	}
	return time.Time{}, fmt.Errorf("td: cannot parse time %q", truncate(s, 40))
}

// FormatTime formats t the way TD does ("2016-07-26 08:14:46 UTC").
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

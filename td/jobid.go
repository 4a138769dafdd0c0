package td

import (
	"errors"
	"fmt"
)

// validID checks a job id before it goes into a request path: TD job ids
// are decimal numbers. One with white space around it (a line read from a
// file with CRLF ends keeps its \r) is refused here rather than sent and
// answered with a confusing 404.
func validID(id string) error {
	if id == "" {
		return errors.New("td: job id is required")
	}
	if len(id) > 20 {
		return fmt.Errorf("td: invalid job id %.24q...: job ids are numbers", id)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return fmt.Errorf("td: invalid job id %q: job ids are numbers", id)
		}
	}
	return nil
}

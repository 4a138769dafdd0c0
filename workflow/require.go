package workflow

import "time"

// LatestAttempt returns the latest run kept in runsDir of the workflow in
// file at session time t, or nil: what digdag's require> looks for before
// it starts a session of its own. Its State is LoadSummary's (a run whose
// process is gone is interrupted, not running).
func LatestAttempt(runsDir, file string, t time.Time) *Summary {
	ids, _ := RunIDs(runsDir)
	abs := absPath(file)
	var best *Summary
	for _, id := range ids {
		s, err := LoadSummary(runsDir, id)
		if err != nil || s.Path != abs || !s.SessionTime.Equal(t) {
			continue
		}
		if best == nil || s.StartedAt.After(best.StartedAt) {
			best = s
		}
	}
	return best
}

package workflow

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// RunIDs returns the ids of the runs kept in runsDir (the directories that
// hold a summary.json), newest first. A runs directory that does not exist
// yet holds no runs.
func RunIDs(runsDir string) ([]string, error) {
	entries, err := os.ReadDir(runsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := len(entries) - 1; i >= 0; i-- { // run ids sort by start time
		if !entries[i].IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(runsDir, entries[i].Name(), "summary.json")); err == nil {
			ids = append(ids, entries[i].Name())
		}
	}
	return ids, nil
}

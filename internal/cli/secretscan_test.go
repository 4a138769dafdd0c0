package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/emulator"
)

// Recognisable secrets for the scan (issue 7): neither may appear in any
// output or in any file tdctl writes.
const (
	scanKey      = "1234/SCAN-SECRET-KEY-xyz"
	scanKeyPart  = "SCAN-SECRET-KEY-xyz"
	scanPassword = "SCAN-PASSWORD-abc"
	// a URL password that net/url refuses and Redact's patterns cannot
	// delimit: only knowing the value masks it
	scanSpacePassword = "SCAN SPACE/PW?x"
	// a ${secret:...} value that a td> task puts in its query
	scanQuerySecret = "SCAN-QUERY-SECRET-qrs"
)

// scanSecrets are what no output may hold: the secrets, and the forms a
// URL-encoder gives the space password.
var scanSecrets = []string{scanKey, scanKeyPart, scanPassword, scanSpacePassword, url.PathEscape(scanSpacePassword),
	url.QueryEscape(scanSpacePassword), "SCAN SPACE", scanQuerySecret}

// scanDig is a tiny workflow: a query, then exports whose URLs take the API
// key and a password from ${secret:...}; the PostgreSQL one points at a
// closed port, so the run fails and reports the URL's failure.
const scanDig = `timezone: UTC
_export:
  td:
    database: sample_datasets

+q:
  td>:
  data: SELECT 1 AS a, 'x' AS b, '${secret:scan_q}' AS c

+to_td:
  td_result_export>:
  job_id: ${td.last_job_id}
  result_url: td://${secret:td.apikey}@/sample_datasets/scan_out

+to_pg:
  td_result_export>:
  job_id: ${td.last_job_id}
  result_url: postgresql://scan:${secret:scan_pw}@127.0.0.1:1/test/scan_out

+to_pg_space:
  _error:
    echo>: the space password export failed as expected
  td_result_export>:
  job_id: ${td.last_job_id}
  result_url: postgresql://scan:${secret:scan_space}@127.0.0.1:1/test/scan_out
`

// TestSecretScan runs every tdctl command that talks to the API or to a
// param store with --debug, a recognisable API key and URL passwords, and
// asserts that neither secret appears on stdout, on stderr, or in any file
// under the home, config, runs (log) and workflow directories.
// TestSecretScanLocal (secretscan_local_test.go) does the same for
// dev-server, demo and k8s.
func TestSecretScan(t *testing.T) {
	_, base := emulator.NewTestServer(t, fast())
	home := t.TempDir()
	runs := filepath.Join(home, "runs")
	e := &env{t: t, base: base, home: home, ctx: context.Background(), vars: map[string]string{
		"TD_API_KEY":              scanKey,
		"TD_API_SERVER":           base,
		"XDG_CONFIG_HOME":         filepath.Join(home, ".config"),
		"TDCTL_RUNS_DIR":          runs,
		"TDCTL_SECRET_SCAN_PW":    scanPassword,
		"TDCTL_SECRET_SCAN_Q":     scanQuerySecret,
		"TDCTL_SECRET_SCAN_SPACE": scanSpacePassword,
		"TDCTL_PARAM_STORE":       "sqlite://" + filepath.Join(home, "params.db"),
		"TDCTL_NO_PROGRESS":       "1",
	}}
	pgURL := "postgresql://scan:" + scanPassword + "@127.0.0.1:1/test/scan_out"
	spaceURL := "postgresql://scan:" + scanSpacePassword + "@127.0.0.1:1/test/scan_out"
	tdURL := "td://" + scanKey + "@/sample_datasets/scan_td"

	var runsDone int
	scan := func(wantCode func(int) bool, args ...string) result {
		t.Helper()
		full := append([]string{"--debug"}, args...)
		start := time.Now()
		r := e.run(full...)
		if d := time.Since(start); d > time.Second {
			shown := strings.NewReplacer(scanKey, "KEY", scanPassword, "PASSWORD").Replace(strings.Join(args, " "))
			t.Logf("slow: %s took %s", shown, d.Round(time.Millisecond))
		}
		runsDone++
		l := &leakCheck{secrets: scanSecrets}
		l.addResult(args, r)
		l.check(t) // a failure shows the output with the secrets hidden
		if wantCode != nil {
			assert.True(t, wantCode(r.code), "%s: exit code %d\nstdout: %s\nstderr: %s", l.hide(fmt.Sprint(args)), r.code, l.hide(r.stdout), l.hide(r.stderr))
		}
		return r
	}
	ok := func(c int) bool { return c == 0 }
	failed := func(c int) bool { return c != 0 }

	// query: with a result URL holding a password (the export fails: closed
	// port), and a plain one whose job the job commands then use
	r := scan(failed, "query", "-d", "sample_datasets", "-r", pgURL, "-w", "--poll-interval", "20ms", "SELECT 1 AS a")
	assert.Contains(t, r.stderr, "td request", "--debug traces HTTP")
	r = scan(ok, "query", "-d", "sample_datasets", "-r", tdURL, "-w", "--poll-interval", "20ms", "SELECT 2 AS a")
	r = scan(failed, "query", "-d", "sample_datasets", "-r", spaceURL, "-w", "--poll-interval", "20ms", "SELECT 1 AS a")
	assert.Contains(t, r.stderr, "td request", "--debug traces HTTP")
	r = scan(ok, "query", "-d", "sample_datasets", "SELECT 1 AS a, 'x' AS b")
	id := strings.TrimSpace(r.stdout)
	require.Regexp(t, `^\d+$`, id)
	r = scan(ok, "query", "-d", "sample_datasets", "-r", pgURL, "SELECT 3")
	badID := strings.TrimSpace(r.stdout)
	require.Regexp(t, `^\d+$`, badID)

	// job commands, in every output format that prints a job
	scan(ok, "job", "wait", id, "--poll-interval", "20ms")
	scan(failed, "job", "wait", badID, "--poll-interval", "20ms")
	for _, jid := range []string{id, badID} {
		for _, f := range []string{"", "json"} {
			args := []string{"job", "show", jid}
			if f != "" {
				args = append(args, "-o", f)
			}
			scan(ok, args...)
		}
		scan(ok, "job", "status", jid, "-o", "json")
	}
	r = scan(ok, "job", "show", badID, "-o", "json")
	assert.Contains(t, r.stdout, "postgresql://scan:", "the result URL is shown, redacted")
	for _, f := range []string{"", "json", "csv", "jsonl"} {
		args := []string{"job", "list", "--limit", "0"}
		if f != "" {
			args = append(args, "-o", f)
		}
		scan(ok, args...)
	}
	scan(ok, "job", "result", id, "-f", "csv")
	scan(ok, "job", "result", id, "-f", "json", "-w", "--poll-interval", "20ms")
	scan(ok, "job", "num-records", id)
	scan(ok, "job", "export", id, "--result-url", pgURL)
	scan(failed, "job", "export", id, "--wait", "--poll-interval", "20ms", "-o", "json", "--result-url", pgURL, "--result-url", tdURL)
	scan(failed, "job", "export", "--job-id", id, "--wait", "--poll-interval", "20ms", "--result-url", pgURL)
	scan(failed, "job", "export", id, "--result-url", "postgresql://scan:"+scanPassword+"@[::1") // unparsable URL
	scan(nil, "job", "export", id, "--wait", "--poll-interval", "20ms", "--result-url", spaceURL)
	r = scan(ok, "query", "-d", "sample_datasets", "SELECT 4")
	scan(ok, "job", "kill", strings.TrimSpace(r.stdout), "-o", "json")
	scan(ok, "job", "list", "--limit", "0", "-o", "json") // the export jobs too

	// config, with endpoints whose URL holds a password
	scan(ok, "config", "show")
	scan(ok, "config", "show", "-o", "json")
	for _, pw := range []string{scanPassword, scanSpacePassword, url.PathEscape(scanSpacePassword)} {
		e.vars["TD_API_SERVER"] = "http://scan:" + pw + "@127.0.0.1:1"
		for _, f := range []string{"table", "json", "csv"} {
			r := scan(ok, "config", "show", "-o", f)
			assert.Contains(t, r.stdout, "http://scan:***@127.0.0.1:1", "the endpoint is shown, masked")
		}
		scan(failed, "job", "list")
	}
	e.vars["TD_API_SERVER"] = base
	e.vars["TD_API_KEY"] = ""
	scan(ok, "--apikey", scanKey, "config", "show", "-o", "json")
	scan(ok, "--apikey", scanKey, "job", "list")
	e.vars["TD_API_KEY"] = scanKey

	// a workflow using ${secret:...}: the PostgreSQL export fails
	wfDir := t.TempDir()
	dig := filepath.Join(wfDir, "scan.dig")
	require.NoError(t, os.WriteFile(dig, []byte(scanDig), 0o600))
	scan(ok, "workflow", "check", dig)
	r = scan(failed, "workflow", "run", dig)
	assert.Regexp(t, regexp.MustCompile(`to_pg`), r.stdout+r.stderr, "the failing task is named")
	scan(nil, "workflow", "logs")
	scan(nil, "workflow", "logs", "-o", "json")
	scan(nil, "workflow", "logs", "--task", "+to_pg")
	scan(failed, "workflow", "run", dig, "--param-store", "postgres://postgres:"+scanPassword+"@127.0.0.1:1/test")

	// param commands against stores whose URL holds a password (closed ports)
	importFile := filepath.Join(wfDir, "params.json")
	require.NoError(t, os.WriteFile(importFile, []byte(`{"a": 1}`), 0o600))
	for _, store := range []string{
		"postgres://postgres:" + scanPassword + "@127.0.0.1:1/test",
		"postgresql://postgres:" + scanPassword + "@127.0.0.1:1/test?sslmode=disable",
		"redis://:" + scanPassword + "@127.0.0.1:1/0",
		"postgres://postgres:" + scanSpacePassword + "@127.0.0.1:1/test",
		"postgres://postgres:" + url.PathEscape(scanSpacePassword) + "@127.0.0.1:1/test",
		"redis://:" + url.QueryEscape(scanSpacePassword) + "@127.0.0.1:1/0",
	} {
		cmds := [][]string{
			{"param", "get", "k"},
			{"param", "set", "k", "v"},
			{"param", "delete", "k"},
			{"param", "list"},
			{"param", "export"},
			{"param", "import", importFile},
		}
		if strings.HasPrefix(store, "redis:") {
			cmds = cmds[:4] // go-redis retries a refused connection for ~1.7 s: the read and write paths suffice
		}
		for _, args := range cmds {
			scan(failed, append(args, "--store", store)...)
		}
		e.vars["TDCTL_PARAM_STORE"] = store
		scan(failed, "param", "list")
		e.vars["TDCTL_PARAM_STORE"] = "sqlite://" + filepath.Join(home, "params.db")
	}
	assert.Greater(t, runsDone, 40)

	// nothing tdctl wrote (config, param store, run logs, workflow dir) holds
	// a secret
	var files int
	for _, dir := range []string{home, wfDir} {
		require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			l := &leakCheck{secrets: scanSecrets[1:]}
			l.add("file "+p, string(b))
			l.check(t)
			return nil
		}))
	}
	var logs int
	_ = filepath.WalkDir(runs, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			logs++
		}
		return nil
	})
	assert.Positive(t, logs, "the workflow runs left logs to scan under %s", runs)
	t.Logf("%d commands, %d files scanned (%d under the runs dir)", runsDone, files, logs)
}

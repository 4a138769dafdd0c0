package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/td"
)

// More recognisable secrets, for the commands TestSecretScan does not run.
const (
	scanWrongKey     = "9999/SCAN-WRONG-KEY-def"     // a key the dev-server rejects
	scanK8sToken     = "SCAN-K8S-TOKEN-ghi"          // kubeconfig bearer token
	scanK8sPassword  = "SCAN-K8S-PASSWORD-jkl"       // kubeconfig basic-auth and server URL password
	scanK8sEnvValue  = "SCAN-K8S-ENV-VALUE-mno"      // k8s run --env value
	scanK8sExecValue = "SCAN-K8S-EXEC-SECRET-pqr"    // credential plugin argument and env
	scanK8sCertValue = "SCAN-K8S-CLIENT-KEY-DATA-st" // client-key-data that is no PEM
)

// syncBuffer is a bytes.Buffer safe for the dev-server's concurrent writes
// (a request log line per handler goroutine).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leakCheck collects texts to scan (outputs, files) and asserts afterwards,
// so that nothing is asserted while captureProcessOutput holds fds 1 and 2.
type leakCheck struct {
	secrets []string
	texts   []leakText
}

type leakText struct{ where, text string }

func (l *leakCheck) add(where, text string) { l.texts = append(l.texts, leakText{where, text}) }

func (l *leakCheck) addResult(args []string, r result) {
	l.add(fmt.Sprintf("stdout of %v", args), r.stdout)
	l.add(fmt.Sprintf("stderr of %v", args), r.stderr)
}

// split moves the texts whose where matches into a new leakCheck.
func (l *leakCheck) split(match func(where string) bool) *leakCheck {
	out := &leakCheck{secrets: l.secrets}
	kept := l.texts[:0]
	for _, x := range l.texts {
		if match(x.where) {
			out.texts = append(out.texts, x)
		} else {
			kept = append(kept, x)
		}
	}
	l.texts = kept
	return out
}

// addTree adds every file under dir and returns how many there were.
func (l *leakCheck) addTree(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		l.add("file "+p, string(b))
		return nil
	}))
	return n
}

// check asserts that no text holds a secret; a failure names the secret by
// its position in the list and shows the text with every secret replaced, so
// the failure message itself leaks nothing.
func (l *leakCheck) check(t *testing.T) {
	t.Helper()
	for _, x := range l.leaks() {
		t.Errorf("%s", x)
	}
}

// leaks describes each text holding a secret: where, which secret (by
// index), and up to three excerpts around it with every secret hidden.
func (l *leakCheck) leaks() []string {
	var out []string
	for _, x := range l.texts {
		for i, s := range l.secrets {
			n := strings.Count(x.text, s)
			if n == 0 {
				continue
			}
			msg := fmt.Sprintf("%s leaks secret #%d (%d times)", l.hide(x.where), i, n)
			rest := x.text
			for k := 0; k < 3; k++ {
				j := strings.Index(rest, s)
				if j < 0 {
					break
				}
				from, to := max(0, j-120), min(len(rest), j+len(s)+120)
				msg += "\n\t..." + strconv.QuoteToASCII(l.hide(rest[from:to])) + "..."
				rest = rest[j+len(s):]
			}
			out = append(out, msg)
		}
	}
	return out
}

// hide replaces every secret in s with <SECRET#i>, longest first.
func (l *leakCheck) hide(s string) string {
	idx := make([]int, len(l.secrets))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return len(l.secrets[b]) - len(l.secrets[a]) })
	for _, i := range idx {
		s = strings.ReplaceAll(s, l.secrets[i], fmt.Sprintf("<SECRET#%d>", i))
	}
	return s
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSecretScanLocal is TestSecretScan for the commands that serve or
// reach something other than the TD API: dev-server, demo and k8s. Each
// runs with --debug and recognisable secrets; none may appear on stdout,
// stderr, fds 1 and 2 of the process (klog, log, credential plugins) or in a
// file the command wrote.
func TestSecretScanLocal(t *testing.T) {
	t.Run("dev-server", testSecretScanDevServer)
	t.Run("demo", testSecretScanDemo)
	t.Run("k8s", testSecretScanK8s)
}

// startDevServer runs `tdctl dev-server` in-process until stop is called,
// and returns its base URL (read from its first stdout line). It reports a
// failure to start as an error rather than through t, so that it can run
// inside captureProcessOutput; stop is usable either way.
func startDevServer(t *testing.T, home string, args ...string) (base string, stop func() (code int, stdout, stderr string), err error) {
	ios, _, _, _ := iostreams.Test()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ios.Out, ios.ErrOut = out, errOut
	f := factory.New(ios)
	f.Getenv = func(string) string { return "" }
	f.HomeDir = home
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, f, append([]string{"--debug", "dev-server", "--addr", "127.0.0.1:0"}, args...))
	}()
	var once sync.Once
	code := -1
	stop = func() (int, string, string) {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
			}
		})
		return code, out.String(), errOut.String()
	}
	t.Cleanup(func() { stop() })
	listening := regexp.MustCompile(`(?m)^listening on (http://127\.0\.0\.1:\d+)$`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1], stop, nil
		}
		select {
		case code = <-done:
			once.Do(cancel)
			return "", stop, fmt.Errorf("dev-server ended with code %d before listening", code)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", stop, errors.New("dev-server did not print its address in 30s")
		}
	}
}

func testSecretScanDevServer(t *testing.T) {
	home := t.TempDir()
	data := filepath.Join(t.TempDir(), "devdata")
	l := &leakCheck{secrets: []string{scanKey, scanKeyPart, scanPassword, scanWrongKey}}
	pgURL := "postgresql://scan:" + scanPassword + "@127.0.0.1:1/db/t"
	tdURL := "td://" + scanKey + "@/sample_datasets/scan_td"
	wfDir := t.TempDir()
	dig := filepath.Join(wfDir, "scan.dig")
	require.NoError(t, os.WriteFile(dig, []byte(scanDig), 0o600))

	type step struct {
		args []string
		want func(int) bool // nil: any exit code
	}
	ok := func(c int) bool { return c == 0 }
	failed := func(c int) bool { return c != 0 }
	var codes []string // problems with exit codes, reported after the capture

	// Everything between the capture and stopCapture only collects: no
	// assertion may write to the test's stdout meanwhile.
	stopCapture := captureProcessOutput(t)
	var id string
	base, stopServer, startErr := startDevServer(t, home, "--data", data, "--verbose", "--running-for", "20ms", "--require-key", scanKey)
	if startErr == nil {
		e := &env{t: t, base: base, home: home, ctx: t.Context(), vars: map[string]string{
			"TD_API_KEY":           scanKey,
			"TD_API_SERVER":        base,
			"XDG_CONFIG_HOME":      filepath.Join(home, ".config"),
			"TDCTL_RUNS_DIR":       filepath.Join(home, "runs"),
			"TDCTL_SECRET_SCAN_PW": scanPassword,
			"TDCTL_PARAM_STORE":    "sqlite://" + filepath.Join(home, "params.db"),
			"TDCTL_NO_PROGRESS":    "1",
		}}
		run := func(s step) result {
			r := e.run(append([]string{"--debug"}, s.args...)...)
			l.addResult(s.args, r)
			if s.want != nil && !s.want(r.code) {
				codes = append(codes, fmt.Sprintf("%v: exit code %d", s.args, r.code))
			}
			return r
		}
		r := run(step{[]string{"query", "-d", "sample_datasets", "-r", pgURL, "-w", "--poll-interval", "20ms", "SELECT 1 AS a"}, failed})
		r = run(step{[]string{"query", "-d", "sample_datasets", "-r", tdURL, "-w", "--poll-interval", "20ms", "SELECT 2 AS a"}, ok})
		r = run(step{[]string{"query", "-d", "sample_datasets", "SELECT 1 AS a, 'x' AS b"}, ok})
		id = strings.TrimSpace(r.stdout)
		for _, s := range []step{
			{[]string{"job", "wait", id, "--poll-interval", "20ms"}, ok},
			{[]string{"job", "export", id, "--wait", "--poll-interval", "20ms", "--result-url", pgURL}, failed},
			{[]string{"job", "export", "--job-id", id, "--wait", "--poll-interval", "20ms", "-o", "json", "--result-url", pgURL, "--result-url", tdURL}, failed},
			{[]string{"job", "export", id, "--connection", "my_s3_connection", "--settings", `{"bucket":"b","path":"/p/","password":"` + scanPassword + `"}`, "--wait", "--poll-interval", "20ms"}, ok},
			{[]string{"job", "show", id, "-o", "json"}, ok},
			{[]string{"job", "list", "--limit", "0"}, ok},
			{[]string{"job", "list", "--limit", "0", "-o", "json"}, ok},
			{[]string{"workflow", "run", dig}, failed},
			{[]string{"config", "show", "-o", "json"}, ok},
			{[]string{"--apikey", scanWrongKey, "job", "list"}, failed}, // 401: the rejected key is not echoed either
		} {
			run(s)
		}
	}
	code, stdout, stderr := stopServer()
	fd12 := stopCapture()
	require.NoError(t, startErr, "dev-server stdout:\n%s\nstderr:\n%s", l.hide(stdout), l.hide(stderr))
	require.Regexp(t, `^\d+$`, l.hide(id))

	l.add("dev-server stdout", stdout)
	l.add("dev-server stderr", stderr)
	l.add("fds 1 and 2 of the process", fd12)
	files := l.addTree(t, data)
	files += l.addTree(t, home)
	stateDB := l.split(isStateDB)
	l.check(t)
	assert.Empty(t, l.hide(strings.Join(codes, "\n")), "unexpected exit codes")
	assert.Equal(t, 0, code, "the dev-server ends with 0 when its context is cancelled")
	assert.Contains(t, l.hide(stdout), "export TD_API_SERVER="+base+" TD_API_KEY=<one of your --require-key values>\n")
	assert.Contains(t, l.hide(stderr), "emulator: POST /v3/job/issue/presto/sample_datasets -> 200", "--verbose logs the requests it served")
	assert.Contains(t, l.hide(stderr), "-> 401", "the wrong key was refused")
	assert.Positive(t, files)
	t.Logf("dev-server: %d texts scanned, %d files under --data and home, %d bytes on fds 1 and 2", len(l.texts), files, len(fd12))

	// The same --data reopened by a dev-server without --require-key: it
	// prints its own key ("dev", intended), and the persisted jobs it serves
	// again leak nothing.
	l = &leakCheck{secrets: []string{scanKey, scanKeyPart, scanPassword, scanWrongKey}}
	base, stopServer, startErr = startDevServer(t, home, "--data", data)
	require.NoError(t, startErr)
	e := &env{t: t, base: base, home: home, ctx: t.Context(), vars: map[string]string{
		"TD_API_KEY": scanKey, "TD_API_SERVER": base, "XDG_CONFIG_HOME": filepath.Join(home, ".config"),
	}}
	for _, args := range [][]string{{"--debug", "job", "list", "--limit", "0", "-o", "json"}, {"--debug", "job", "show", id, "-o", "json"}} {
		r := e.run(args...)
		l.addResult(args, r)
		assert.Equal(t, 0, r.code, "%v: %s", args, l.hide(r.stderr))
	}
	code, stdout, stderr = stopServer()
	l.add("dev-server stdout", stdout)
	l.add("dev-server stderr", stderr)
	l.addTree(t, data)
	stateDB.texts = append(stateDB.texts, l.split(isStateDB).texts...)
	l.check(t)
	assert.Equal(t, 0, code)
	assert.Contains(t, l.hide(stdout), "export TD_API_SERVER="+base+" TD_API_KEY=dev\n", "the dev-server's own key is printed for users to export")

	t.Run("state database", func(t *testing.T) {
		require.NotEmpty(t, stateDB.texts, "the emulator keeps its jobs in %s", filepath.Join(data, "state.sqlite"))
		stateDB.check(t)
	})
}

// isStateDB matches the emulator's state database and its journal files.
func isStateDB(where string) bool {
	return strings.HasPrefix(filepath.Base(where), "state.sqlite")
}

func testSecretScanDemo(t *testing.T) {
	// democmd picks its default state dir with os.UserCacheDir, which reads
	// the process environment (not the factory's Getenv): point it at a
	// temporary directory.
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache) // os.UserCacheDir on darwin: $HOME/Library/Caches
	t.Setenv("LocalAppData", cache)
	userCache, err := os.UserCacheDir()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(userCache, cache), "the demo's default state dir %s is a temporary one", userCache)
	defaultDir := filepath.Join(userCache, "tdctl", "demo")

	home := t.TempDir()
	data := filepath.Join(t.TempDir(), "demo")
	l := &leakCheck{secrets: []string{scanKey, scanKeyPart, scanPassword}}
	e := &env{t: t, home: home, ctx: t.Context(), vars: map[string]string{
		"TD_API_KEY":           scanKey,
		"TDCTL_API_KEY":        scanKey,
		"XDG_CONFIG_HOME":      filepath.Join(home, ".config"),
		"XDG_CACHE_HOME":       cache,
		"TDCTL_SECRET_SCAN_PW": scanPassword,
		"TDCTL_PARAM_STORE":    "postgres://postgres:" + scanPassword + "@127.0.0.1:1/test",
		"TDCTL_NO_PROGRESS":    "1",
	}}
	runs := [][]string{
		{"--debug", "demo"},
		{"--debug", "--apikey", scanKey, "demo", "--data", data},
		{"--debug", "--apikey", scanKey, "demo", "--data", data, "-o", "json"}, // the second run reads the stored param
	}
	var results []result
	stopCapture := captureProcessOutput(t)
	for _, args := range runs {
		results = append(results, e.run(args...))
	}
	fd12 := stopCapture()
	l.add("fds 1 and 2 of the process", fd12)
	for i, r := range results {
		l.addResult(runs[i], r)
	}
	files := l.addTree(t, data)
	l.addTree(t, home)
	if _, err := os.Stat(defaultDir); err == nil {
		files += l.addTree(t, defaultDir)
	}
	l.check(t)
	for i, r := range results {
		assert.Equal(t, 0, r.code, "%s:\n%s%s", l.hide(fmt.Sprint(runs[i])), l.hide(r.stdout), l.hide(r.stderr))
	}
	assert.Contains(t, l.hide(results[0].stderr), "state in "+defaultDir, "without --data, the user cache directory")
	assert.Contains(t, l.hide(results[1].stderr), "state in "+data)
	_, err = os.Stat(filepath.Join(data, "emulator"))
	require.NoError(t, err, "the emulator's state is under --data")
	assert.Greater(t, files, 10, "params.db, emulator state, exported CSV, run logs, workflows")
	t.Logf("demo: %d texts scanned, %d files under its state dirs, %d bytes on fds 1 and 2", len(l.texts), files, len(fd12))
}

// scanKubeconfig has one cluster on a closed port and users whose every
// credential is a recognisable secret.
func scanKubeconfig() string {
	return `apiVersion: v1
kind: Config
current-context: token
clusters:
- name: closed
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
- name: closed-userinfo
  cluster:
    server: https://scan:` + scanK8sPassword + `@127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: token
  user:
    token: ` + scanK8sToken + `
- name: basic
  user:
    username: scan
    password: ` + scanK8sPassword + `
- name: exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /bin/sh
      args: ["-c", "exit 1", "` + scanK8sExecValue + `"]
      env:
      - name: SCAN_EXEC_SECRET
        value: ` + scanK8sExecValue + `
      interactiveMode: Never
- name: badcert
  user:
    client-certificate-data: ` + b64(scanK8sCertValue) + `
    client-key-data: ` + b64(scanK8sCertValue) + `
contexts:
- name: token
  context: {cluster: closed, user: token, namespace: scan-ns}
- name: basic
  context: {cluster: closed, user: basic}
- name: userinfo
  context: {cluster: closed-userinfo, user: token}
- name: exec
  context: {cluster: closed, user: exec}
- name: badcert
  context: {cluster: closed, user: badcert}
`
}

func testSecretScanK8s(t *testing.T) {
	home := t.TempDir()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte(scanKubeconfig()), 0o600))
	l := &leakCheck{secrets: []string{scanK8sToken, scanK8sPassword, scanK8sEnvValue, scanK8sExecValue, scanK8sCertValue, b64(scanK8sCertValue), scanKey, scanKeyPart}}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	e := &env{t: t, home: home, ctx: ctx, vars: map[string]string{
		"TD_API_KEY":      scanKey,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
		"KUBECONFIG":      kc, // the factory's; client-go reads the process's, hence --kubeconfig
	}}
	var runs [][]string
	for _, kctx := range []string{"token", "basic", "userinfo", "exec", "badcert"} {
		runs = append(runs,
			[]string{"--debug", "k8s", "run", "--kubeconfig", kc, "--context", kctx, "--image", "alpine",
				"--env", "SCAN_ENV=" + scanK8sEnvValue, "--secret-env", "DB_PASSWORD=scan-secret/password",
				"--timeout", "10s", "--", "sh", "-c", "echo $SCAN_ENV"},
			[]string{"--debug", "k8s", "gc", "--kubeconfig", kc, "--context", kctx, "-n", "scan-ns"},
		)
	}
	var results []result
	var took []time.Duration
	stopCapture := captureProcessOutput(t)
	for _, args := range runs {
		start := time.Now()
		results = append(results, e.run(args...))
		took = append(took, time.Since(start))
	}
	fd12 := stopCapture()
	l.add("fds 1 and 2 of the process", fd12)
	for i, r := range results {
		l.addResult(runs[i], r)
		args := strings.Join(runs[i][2:7], " ") // run|gc --kubeconfig FILE --context NAME
		assert.NotEqual(t, 0, r.code, "%s against a closed port must fail", args)
		assert.NotEmpty(t, strings.TrimSpace(r.stderr), "%s says why it failed", args)
		t.Logf("%s %s: exit %d in %s; stderr: %s", runs[i][2], runs[i][6], r.code, took[i].Round(time.Millisecond), l.hide(r.stderr))
	}
	l.addTree(t, home)
	l.check(t)
	t.Logf("k8s: %d texts scanned, %d bytes on fds 1 and 2", len(l.texts), len(fd12))
	// the context's failure reaches the user: connection refused (or the
	// credential plugin / bad key pair), never a bare "exit code 0"
	for i, r := range results {
		switch runs[i][6] {
		case "token", "basic", "userinfo":
			assert.Contains(t, l.hide(r.stderr), "connection refused", "%v", runs[i][2:7])
		case "exec":
			assert.Contains(t, l.hide(r.stderr), "getting credentials: exec: executable /bin/sh failed", "the plugin holding the secret ran: %v", runs[i][2:7])
		case "badcert":
			assert.Contains(t, l.hide(r.stderr), "cluster config: tls:", "the key pair holding the secret was read: %v", runs[i][2:7])
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return td.Redact(s)
}

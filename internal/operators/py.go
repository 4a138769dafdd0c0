package operators

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/k8sexec"
	"github.com/tdctl/tdctl/workflow"
)

// pyLib is the Python side of py>: our digdag module and the runner that
// calls the task's method (see pylib/tdctl_py.py).
//
//go:embed pylib/digdag.py pylib/tdctl_py.py
var pyLib embed.FS

// Py is py>, digdag's Python operator: py>: tasks.MyWorkflow.step1 imports
// the module tasks from the workflow's directory (a tasks.py or a
// tasks/__init__.py, searched after the standard library, as digdag does),
// makes a MyWorkflow and calls its step1; py>: tasks.step1 calls a
// function; py>: tasks.MyWorkflow calls its run method. The constructor's
// and the method's arguments are filled from the params by name (a keyword
// argument without a default that no param fills is an error; **kwargs gets
// every param). The script can import digdag:
//
//	import digdag
//	def step1(session_date):
//	    print(digdag.env.params["my_value"])
//	    digdag.env.store({"rows": 42})   # ${rows} in the tasks after this one
//
// digdag.env.add_subtask(Class.method, k=v) or add_subtask({"echo>":
// "hi"}) generates tasks that run right after the method, as the task's
// child ^sub (workflow.Result.Subtasks): one after the other, or in
// parallel when the script sets digdag.env.subtask_config["_parallel"] =
// True. digdag.env.export({...}) gives them params (as in digdag, it reaches
// no other task). The digdag module is tdctl's own, shipped inside tdctl
// and put on PYTHONPATH.
//
// python: [python3, -u] (beside py>, a param, or _export: {py: {python:
// ...}}) chooses the interpreter; default python3. The environment is
// sh>'s: the params and _env (see ParamEnv). Lines "::set-param k=v" the
// script prints are stored too, as with sh>.
//
// With _k8s settings (Shell's doc) or digdag's docker: {image: IMAGE} the
// script runs in a pod of that image instead, which must have python3:
// the project's files and the digdag module are put in the pod (a ConfigMap
// of at most 1 MiB), the params in its Secret, and the stored params come back as a
// ::set-param line in the pod's log (add_subtask fails there: a log does
// not carry tasks back). A docker: task without a cluster fails; it never
// runs on this host.
type Py struct{ Env *Env }

// pyCommand is the shape of a py> value: a module and a function, or a
// module, a class and a method, dotted Python names.
var pyCommand = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)+$`)

var errPyCommand = errors.New("py> needs a module and a method, e.g. py>: tasks.MyWorkflow.step1 or py>: tasks.step1 (tasks.py or tasks/__init__.py beside the .dig file)")

// pyKeys are py>'s own settings; every other key beside py> is a param
// for the method's arguments.
var pyKeys = []string{"python", "docker"}

func checkPyCommand(cmd string) error {
	if !strings.Contains(cmd, ".") {
		return errPyCommand
	}
	if !pyCommand.MatchString(cmd) {
		return fmt.Errorf("py> %q is not a Python name such as tasks.MyWorkflow.step1 (module.function or module.Class.method, dotted names of letters, digits and _)", cmd)
	}
	return nil
}

// pythonSetting is the interpreter and its arguments: python: beside py>,
// else the param python, else py.python (digdag's _export: {py: {python:
// ...}}); default python3.
func pythonSetting(tc *workflow.TaskContext) ([]string, error) {
	v, ok := tc.Config["python"]
	if !ok {
		v, ok = tc.Scope["python"]
	}
	if !ok {
		if py, isMap := tc.Scope["py"].(map[string]any); isMap {
			v, ok = py["python"]
		}
	}
	if !ok || v == nil {
		return []string{"python3"}, nil
	}
	out := commandList(v)
	if out == nil {
		return nil, fmt.Errorf("py> python: must be a command such as python3 or a list such as [python3, -u] (got %s)", workflow.Format(v))
	}
	return out, nil
}

// Validate implements workflow.Validator.
func (p *Py) Validate(tc *workflow.TaskContext) error {
	if !tc.Dynamic[""] {
		if err := checkPyCommand(workflow.Format(tc.Command)); err != nil {
			return err
		}
	}
	if _, ok := tc.Config["python"]; ok && !tc.Dynamic["python"] {
		if _, err := pythonSetting(tc); err != nil {
			return err
		}
	}
	for _, kv := range tc.Task.Params {
		if contains(pyKeys, kv.Key) {
			continue
		}
		// any other key is an argument, but one this close to a setting
		// is a typo that would otherwise be passed on unnoticed
		if near := workflow.ClosestKey(kv.Key, pyKeys); near != "" {
			return fmt.Errorf("unknown py> key %s (did you mean %s?); py> passes its other keys to the method as arguments", kv.Key, near)
		}
	}
	if err := checkEnvKeys(tc); err != nil {
		return err
	}
	inPod, err := podSettings(tc)
	if err != nil {
		return err
	}
	if inPod {
		return checkPod(tc)
	}
	return nil
}

// Defines implements workflow.Definer: a script may store any param.
func (p *Py) Defines(*workflow.Task) []string { return []string{workflow.AnyName} }

// pyOutput is what the runner writes (pylib/tdctl_py.py).
type pyOutput struct {
	Store    map[string]any  `json:"store"`
	Export   map[string]any  `json:"export"`
	Subtasks json.RawMessage `json:"subtasks"`
	Error    *struct {
		Class   string `json:"class"`
		Message string `json:"message"`
	} `json:"error"`
}

// pyParams is digdag.env.params: every param the task sees, its own keys
// winning.
func pyParams(tc *workflow.TaskContext) map[string]any {
	params := map[string]any{}
	for k, v := range tc.Scope {
		params[k] = v
	}
	for k, v := range tc.Config {
		params[k] = v
	}
	return params
}

// Run implements workflow.Operator.
func (p *Py) Run(ctx context.Context, tc *workflow.TaskContext) (*workflow.Result, error) {
	command := workflow.Format(tc.Command)
	if err := checkPyCommand(command); err != nil {
		return nil, err
	}
	python, err := pythonSetting(tc)
	if err != nil {
		return nil, err
	}
	input := map[string]any{"params": pyParams(tc), "subtasks_refused": nil}
	inPod, err := podSettings(tc)
	if err != nil {
		return nil, err
	}
	if inPod {
		return p.runPod(ctx, tc, command, python, input)
	}

	dir, err := os.MkdirTemp("", "tdctl-py-*")
	if err != nil {
		return nil, fmt.Errorf("py>: %w", err)
	}
	defer os.RemoveAll(dir)
	lib, err := writePyLib(dir)
	if err != nil {
		return nil, err
	}
	in, out := filepath.Join(dir, "input.json"), filepath.Join(dir, "output.json")
	if err := writeJSON(in, input); err != nil {
		return nil, err
	}
	args := append(append([]string{}, python[1:]...), filepath.Join(lib, "tdctl_py.py"), command, in, out)
	cmd := exec.Command(python[0], args...)
	cmd.Dir = tc.Workflow.Dir
	cmd.Env = append(append(os.Environ(), ParamEnv(tc)...), "PYTHONPATH="+pythonPath(lib))
	sc, runErr := runGroup(ctx, tc, cmd, p.Env.shellGrace(), "py")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var res pyOutput
	raw, readErr := os.ReadFile(out)
	if readErr == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		readErr = dec.Decode(&res)
	}
	if res.Error != nil {
		code := 1
		var xe *ExitError
		if errors.As(runErr, &xe) {
			code = xe.Code
		}
		return nil, fmt.Errorf("py> %s failed: %s (%s): %w", command, oneLine(res.Error.Message), res.Error.Class, &ExitError{Code: code})
	}
	if runErr != nil {
		// the interpreter failed before the runner could say why
		return nil, fmt.Errorf("py> %s (%s): %w", command, strings.Join(python, " "), runErr)
	}
	if readErr != nil {
		return nil, fmt.Errorf("py> %s: the runner's output is unreadable: %w", command, readErr)
	}
	sub, err := pySubtasks(res.Subtasks, res.Export)
	if err != nil {
		return nil, err
	}
	store, err := storeValues(sc.params)
	if err != nil {
		return nil, err
	}
	if store == nil {
		store = map[string]any{}
	}
	for k, v := range res.Store {
		store[k] = v // digdag.env.store wins over a printed ::set-param
	}
	return &workflow.Result{Store: store, Subtasks: sub}, nil
}

// pySubtasks turns digdag.env.subtask_config (JSON, keys in the order the
// script added them) into the task's generated subtasks, with what the
// script exported as their _export, as digdag's exportParams reach the
// generated tasks only. nil when the script generated nothing.
func pySubtasks(raw json.RawMessage, export map[string]any) (*yaml.Node, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "{}" || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("py>: digdag.env.subtask_config is not a mapping of tasks: %s", raw)
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.HasPrefix(m.Content[i].Value, "+") {
			typeKeys(m.Content[i+1])
		}
	}
	if len(export) > 0 {
		m = workflow.WithExport(m, export, slices.Sorted(maps.Keys(export)))
	}
	return m, nil
}

// typeKeys writes digdag's internal form of a generated task, _type: echo
// and _command: hi, as the .dig form echo>: hi.
func typeKeys(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return
	}
	var op string
	command := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	var keep []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "_type":
			op = n.Content[i+1].Value
		case "_command":
			command = n.Content[i+1]
		default:
			keep = append(keep, n.Content[i], n.Content[i+1])
		}
	}
	if op == "" {
		return
	}
	n.Content = append([]*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: op + ">"}, command}, keep...)
}

// oneLine keeps the first line of an exception's message (the traceback
// is in the task log).
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func pythonPath(lib string) string {
	if cur := os.Getenv("PYTHONPATH"); cur != "" {
		return lib + string(os.PathListSeparator) + cur
	}
	return lib
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("py>: params are not JSON: %w", err)
	}
	return os.WriteFile(path, b, 0o600)
}

// writePyLib writes the digdag module and the runner into dir/lib.
func writePyLib(dir string) (string, error) {
	lib := filepath.Join(dir, "lib")
	if err := os.Mkdir(lib, 0o700); err != nil {
		return "", fmt.Errorf("py>: %w", err)
	}
	for name, body := range pyLibFiles() {
		if err := os.WriteFile(filepath.Join(lib, name), []byte(body), 0o600); err != nil {
			return "", fmt.Errorf("py>: %w", err)
		}
	}
	return lib, nil
}

func pyLibFiles() map[string]string {
	out := map[string]string{}
	for _, name := range []string{"digdag.py", "tdctl_py.py"} {
		b, err := pyLib.ReadFile("pylib/" + name)
		if err != nil {
			panic(err) // embedded
		}
		out[name] = string(b)
	}
	return out
}

// maxProjectArchive bounds the project packed into a pod's ConfigMap
// (whose whole data may be 1 MiB).
const maxProjectArchive = 900 << 10

// projectArchive packs the workflow's directory for a pod: base64 of a
// tar.gz of its files, leaving out hidden files and directories and
// __pycache__.
func projectArchive(dir string) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && (strings.HasPrefix(name, ".") || name == "__pycache__") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(body))}); err != nil {
			return err
		}
		_, err = tw.Write(body)
		if buf.Len() > maxProjectArchive {
			return errProjectTooBig(dir)
		}
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return "", err
	}
	if buf.Len() > maxProjectArchive {
		return "", errProjectTooBig(dir)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// pyParamsVar carries a pod's params to the runner; maxPodParams keeps
// it under the 128 KiB an environment string may have on Linux.
const (
	pyParamsVar  = "TDCTL_PY_PARAMS"
	maxPodParams = 120 << 10
)

func errProjectTooBig(dir string) error {
	return fmt.Errorf("py>: the project directory %s packs to over %d KiB, more than a pod's files may hold; keep large data out of it (or build it into the image)", dir, maxProjectArchive>>10)
}

// runPod runs the method in a pod: the runner, the digdag module, the
// params and the project go in as files; the stored params come back as a
// ::set-param line in the log.
func (p *Py) runPod(ctx context.Context, tc *workflow.TaskContext, command string, python []string, input map[string]any) (*workflow.Result, error) {
	archive, err := projectArchive(tc.Workflow.Dir)
	if err != nil {
		return nil, err
	}
	// the params may hold secrets: they go in the run's Secret (as an
	// environment variable), not in its ConfigMap with the files
	params, err := json.Marshal(input["params"])
	if err != nil {
		return nil, fmt.Errorf("py>: params are not JSON: %w", err)
	}
	if len(params) > maxPodParams {
		return nil, fmt.Errorf("py>: the params are %d KiB as JSON, more than a pod's environment variable may hold (%d KiB): store large values elsewhere (a table, a file in the image)", len(params)>>10, maxPodParams>>10)
	}
	delete(input, "params")
	dir := k8sexec.DefaultFilesDir
	input["archive"] = dir + "/project.tgz.b64"
	// a pod's log carries stored params back, not generated tasks
	input["subtasks_refused"] = "digdag.env.add_subtask is not supported in a pod (docker: or _k8s:) by tdctl: generate the tasks from a py> task that runs locally, or list them in the .dig file"
	in, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("py>: params are not JSON: %w", err)
	}
	files := pyLibFiles()
	files["input.json"] = string(in)
	files["project.tgz.b64"] = archive
	argv := append(append([]string{}, python...), dir+"/tdctl_py.py", command, dir+"/input.json", "-")
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = shellQuote(a)
	}
	spec, err := podSpec(tc, "exec "+strings.Join(quoted, " "))
	if err != nil {
		return nil, err
	}
	spec.Files = files
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	env["PYTHONPATH"] = dir
	spec.Env = env
	spec.Secrets = map[string]string{pyParamsVar: string(params)}
	res, err := runPodSpec(ctx, tc, spec, p.Env.podRunner)
	if err != nil {
		var xe *ExitError
		if errors.As(err, &xe) {
			return nil, fmt.Errorf("py> %s failed in its pod (the task log has the traceback): %w", command, err)
		}
		return nil, err
	}
	return res, nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

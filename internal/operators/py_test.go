package operators

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/workflow"
)

// runProject writes files beside wf.dig and runs it with every operator.
func runPyProject(t *testing.T, dig string, files map[string]string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	wf, dir := parseProject(t, dig, files)
	var out bytes.Buffer
	r := &workflow.Runner{Operators: Operators(nil), RunsDir: filepath.Join(dir, "runs"), Output: &out}
	_, err := r.Run(context.Background(), wf)
	return out.String(), err
}

// digdag's python_api docs: step1 stores, step2 reads it as a param, as an
// argument and through digdag.env.params; the method's arguments come from
// the params by name (session_time is a built-in).
func TestPyStoreVisibleToNextTask(t *testing.T) {
	out, err := runPyProject(t, `
+step1:
  py>: tasks.MyWorkflow.step1
+step2:
  py>: tasks.MyWorkflow.step2
+step3:
  echo>: my_value=${my_value} nested=${nested.a}
`, map[string]string{"tasks/__init__.py": `
import digdag
class MyWorkflow(object):
    def step1(self, session_time):
        print("step1 at " + session_time)
        digdag.env.store({'my_value': 1, 'nested': {'a': 'x'}})
    def step2(self, my_value="default"):
        print("step2: %s %s" % (my_value, digdag.env.params["my_value"]))
`})
	require.NoError(t, err, out)
	assert.Regexp(t, `\+wf\+step1: step1 at \d{4}-\d{2}-\d{2}T`, out)
	assert.Contains(t, out, "+wf+step2: step2: 1 1\n")
	assert.Contains(t, out, "+wf+step3: my_value=1 nested=x\n")
}

// digdag's examples/python_args.dig: required, optional, mixed and
// keyword arguments, beside py> and from _export; a class's constructor
// takes params too (operators/py.md).
func TestPyArgumentsFromParams(t *testing.T) {
	out, err := runPyProject(t, `
+a:
  py>: args.required_arguments
  required1: "1"
  required2: 2
+b:
  py>: args.optional_arguments
+c:
  py>: args.mixed_arguments
  arg1: a
  arg2: {b: c}
+d:
  py>: args.keyword_arguments
  arg1: a
  key2: val2
+e:
  _export:
    key1: a
    key2: [1, 1.5, "x"]
  py>: args.Klass.method
+f:
  py>: args.Runner
`, map[string]string{"args.py": `
def required_arguments(required1, required2):
    print("required %r %r" % (required1, required2))
def optional_arguments(optional1=None, optional2="default"):
    print("optional %r %r" % (optional1, optional2))
def mixed_arguments(arg1, arg2=None, arg3=None):
    print("mixed %r %r %r" % (arg1, arg2, arg3))
def keyword_arguments(arg1, **kw):
    print("keywords %r %r %r" % (arg1, kw.get("key2"), "session_date" in kw))
class Klass:
    def __init__(self, key1):
        self.key1 = key1
    def method(self, key2):
        print("class %r %r" % (self.key1, key2))
class Runner:
    def run(self):
        print("run called")
`})
	require.NoError(t, err, out)
	assert.Contains(t, out, "+wf+a: required '1' 2\n")
	assert.Contains(t, out, "+wf+b: optional None 'default'\n")
	assert.Contains(t, out, "+wf+c: mixed 'a' {'b': 'c'} None\n")
	assert.Contains(t, out, "+wf+d: keywords 'a' 'val2' True\n")
	assert.Contains(t, out, "+wf+e: class 'a' [1, 1.5, 'x']\n")
	assert.Contains(t, out, "+wf+f: run called\n")
}

func TestPyMissingArgumentIsOneLine(t *testing.T) {
	out, err := runPyProject(t, "+a:\n  py>: args.f\n", map[string]string{"args.py": "def f(needed):\n    pass\n"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "py> args.f failed: 'args.f' requires parameter 'needed' but it is not set")
	assert.Contains(t, out, "Traceback", "the traceback is in the task log")
}

// digdag's PyIT: testPythonErrorMessageAndStacktrace, verifyLogWithSyntaxError,
// verifyLogWithDuplicateModuleError (a project module named like the
// standard library's loses to it, as the project comes after it).
func TestPyErrorsLikePyIT(t *testing.T) {
	files := map[string]string{
		"scripts/__init__.py":     "",
		"scripts/stacktrace.py":   "class MyError(Exception):\n    pass\n\ndef run():\n    raise MyError('my error message')\n",
		"scripts/syntax_error.py": "def func1():\n    print(\"func1 called)\n",
		"tokenize.py":             "def func1():\n    print('func1 called')\n",
	}
	out, err := runPyProject(t, "+s:\n  py>: scripts.stacktrace.run\n_error:\n  echo>: ERROR_BEGIN ${error.message} ERROR_END\n", files)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "py> scripts.stacktrace.run failed: my error message (MyError)")
	assert.Contains(t, out, ", in run\n", "the traceback is logged")
	assert.Contains(t, out, "ERROR_BEGIN py> scripts.stacktrace.run failed: my error message (MyError)")

	_, err = runPyProject(t, "+s:\n  py>: scripts.syntax_error.func1\n", files)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "(SyntaxError)")

	_, err = runPyProject(t, "+s:\n  py>: tokenize.main\n", files)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "standard library")

	_, err = runPyProject(t, "+s:\n  py>: scripts.nothere.f\n", files)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "No module named 'scripts.nothere'")
}

// digdag's RunParamsVisibilityIT (params_visibility.dig): a stored param
// reaches the tasks after the storing one, a later store overrides it, and
// stores in parallel branches stay in their branch until the join, where
// the last branch in order wins.
func TestPyParamsVisibilityLikeDigdagIT(t *testing.T) {
	out, err := runPyProject(t, `
+stores:
  +store:
    py>: helper.store_v
    value: simple_store
  +simple_store:
    echo>: simple_store=${v}
  +overwrite:
    py>: helper.store_v
    value: store_overwrite
  +store_overwrite:
    echo>: store_overwrite=${v}
+parallel_store_fork:
  +prepare:
    py>: helper.store_v
    value: prepare
  +fork:
    _parallel: true
    +a:
      +store:
        py>: helper.store_v
        value: a
      +dump:
        echo>: fork_a=${v}
    +b:
      +store:
        py>: helper.store_v
        value: b
      +dump:
        echo>: fork_b=${v}
    +c:
      echo>: fork_c=${v}
  +join:
    echo>: join=${v}
`, map[string]string{"helper.py": "import digdag\n\ndef store_v(value):\n    digdag.env.store({'v': value})\n"})
	require.NoError(t, err, out)
	for _, want := range []string{"simple_store=simple_store", "store_overwrite=store_overwrite",
		"fork_a=a", "fork_b=b", "fork_c=prepare", "join=b"} {
		assert.Contains(t, out, want+"\n")
	}
}

// digdag's PyIT verifyConfigurationPythonOption and py.md: python: as a
// string or a list, beside py> or as _export: {py: {python: ...}}; the
// environment has the params and _env as sh>'s does.
func TestPyPythonSettingAndEnvironment(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	out, err := runPyProject(t, `
_export:
  py:
    python: `+py+`
  greeting: hello
+a:
  py>: env.show
+b:
  py>: env.show
  python: [python3, -O]
  _env:
    EXTRA: from_env
`, map[string]string{"env.py": `
import os, sys
def show():
    print("optimize=%d greeting=%s extra=%s" % (sys.flags.optimize, os.environ.get("greeting"), os.environ.get("EXTRA")))
`})
	require.NoError(t, err, out)
	assert.Contains(t, out, "+wf+a: optimize=0 greeting=hello extra=None\n")
	assert.Contains(t, out, "+wf+b: optimize=1 greeting=hello extra=from_env\n")

	_, err = runPyProject(t, "+a:\n  py>: env.show\n  python: /no/such/python\n", map[string]string{"env.py": "def show(): pass\n"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "py> env.show (/no/such/python)")
}

// digdag's python_api docs ("Generating child tasks") and
// examples/python_generate_subtasks.dig: add_subtask with a method and its
// params, or with a task's settings (digdag's _type/_command form or the
// .dig form); subtask_config["_parallel"] runs them in parallel; what the
// script exports reaches the generated tasks only; what they store reaches
// the tasks after the generating one.
func TestPyAddSubtask(t *testing.T) {
	out, err := runPyProject(t, `
+split:
  py>: gen.ParallelProcess.split
+run:
  py>: gen.ParallelProcess.run
+other:
  py>: gen.other
+after:
  py>: gen.after
`, map[string]string{"gen.py": `
import digdag
class ParallelProcess(object):
    def split(self):
        digdag.env.store({"task_count": 3})
    def run(self, task_count):
        for i in range(task_count):
            digdag.env.add_subtask(ParallelProcess.subtask, index=i)
        digdag.env.subtask_config["_parallel"] = True
    def subtask(self, index):
        print("Processing " + str(index))

def other():
    digdag.env.export({"x": "exported"})
    digdag.env.add_subtask({"_type": "echo", "_command": "typed ${x}"})
    digdag.env.add_subtask({"echo>": "dig form ${x}"})
    digdag.env.add_subtask(store_last, value="from subtask")

def store_last(value):
    digdag.env.store({"last": value})

def after(last):
    print("last=%s x=%s" % (last, digdag.env.params.get("x")))
`})
	require.NoError(t, err, out)
	for i := range 3 {
		assert.Contains(t, out, fmt.Sprintf("+wf+run^sub+subtask%d: Processing %d\n", i, i))
	}
	assert.Contains(t, out, "+wf+other^sub+subtask0: typed exported\n")
	assert.Contains(t, out, "+wf+other^sub+subtask1: dig form exported\n")
	assert.Contains(t, out, "+wf+after: last=from subtask x=None\n", "the export reaches the generated tasks only")
}

func TestPyStoreOfNoJSONValueIsOneLine(t *testing.T) {
	_, err := runPyProject(t, "+a:\n  py>: m.f\n", map[string]string{"m.py": "import digdag\ndef f():\n    digdag.env.store({'x': object()})\n"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "py> m.f failed: digdag.env.store: values must be JSON values: Object of type object is not JSON serializable (TypeError)")
}

func TestPyAddSubtaskErrors(t *testing.T) {
	_, err := runPyProject(t, "+a:\n  py>: gen.f\n", map[string]string{"gen.py": `
import digdag
def f():
    digdag.env.add_subtask({"echo>": "x"}, arg=object())
`})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "add_subtask: parameters must be JSON values")

	_, err = runPyProject(t, "+a:\n  py>: gen.f\n", map[string]string{"gen.py": `
import digdag
def f():
    digdag.env.add_subtask({"nope>": "x"})
`})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope>")
}

func TestPyValidate(t *testing.T) {
	ops := Operators(nil)
	for _, tc := range []struct{ dig, want string }{
		{"+a:\n  py>:\n", "py> needs a module and a method"},
		{"+a:\n  py>: step1\n", "py> needs a module and a method"},
		{"+a:\n  py>: tasks.My-Workflow.step1\n", `py> "tasks.My-Workflow.step1" is not a Python name`},
		{"+a:\n  py>: tasks.f\n  python: {a: 1}\n", "py> python: must be a command such as python3"},
		{"+a:\n  py>: tasks.f\n  python: []\n", "py> python: must be a command such as python3"},
		{"+a:\n  py>: tasks.f\n  pyhton: python3\n", "unknown py> key pyhton (did you mean python?)"},
		{"+a:\n  py>: tasks.f\n  docker:\n    imag: python:3\n", `docker: unknown key "imag" (did you mean image?)`},
		{"+a:\n  py>: tasks.f\n  docker:\n    image: python:3\n    pull_always: true\n", "docker: pull_always is a digdag setting tdctl does not support"},
		{"+a:\n  py>: tasks.f\n  docker: python:3\n", "docker: must be a mapping"},
		{"+a:\n  py>: tasks.f\n  _env:\n    1X: y\n", `_env key "1X" is not a valid`},
		{"+a:\n  py>: tasks.f\n  _k8s:\n    image: python:3\n    memroy: 1Gi\n", `_k8s: unknown key "memroy" (did you mean memory?)`},
	} {
		err := checkWorkflow(t, tc.dig, nil, ops)
		if assert.Error(t, err, tc.dig) {
			assert.Contains(t, err.Error(), tc.want, tc.dig)
		}
	}
	for _, dig := range []string{
		"+a:\n  py>: tasks.MyWorkflow.step1\n  required1: x\n  python: [python3, -u]\n",
		"+a:\n  py>: ${mod}.f\n  _export: {mod: tasks}\n",
		"+a:\n  py>: tasks.f\n  docker:\n    image: python:3.13-slim\n",
		"_export:\n  docker:\n    image: python:3.13-slim\n+a:\n  sh>: echo hi\n",
	} {
		assert.NoError(t, checkWorkflow(t, dig, nil, ops), dig)
	}
}

"""tdctl's py> runner: python3 tdctl_py.py COMMAND INPUT OUTPUT.

COMMAND is module.function, module.Class.method or module.Class (its run
method). INPUT is a JSON file {"params": {...} (else the environment
variable TDCTL_PY_PARAMS holds them), "archive": PATH or null,
"subtasks_refused": why add_subtask cannot be used, or null};
an archive (base64 of a tar.gz of the project, for a pod) is unpacked into
a temporary directory that becomes the working directory. The project
directory is searched for the module after the standard library, as in
digdag. OUTPUT gets {"store": ..., "export": ..., "subtasks": ...,
"error": {...}}; OUTPUT "-" prints the stored params as one ::set-param
line instead (a pod's log is all tdctl reads back).
"""

import base64
import inspect
import io
import json
import os
import sys
import tarfile
import tempfile
import traceback

import digdag


def unpack(path):
    with open(path, "rb") as f:
        data = base64.b64decode(f.read())
    dest = tempfile.mkdtemp(prefix="tdctl-py-")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:
            for m in tar.getmembers():
                if m.name.startswith("/") or ".." in m.name.split("/"):
                    raise ValueError("unsafe path in project archive: %s" % m.name)
            tar.extractall(dest)
    return dest


def resolve(command):
    """Returns (callable, method name or None)."""
    parts = command.split(".")
    name = parts[-1]
    module = ".".join(parts[:-1])
    try:
        mod = __import__(module, fromlist=[name])
    except ImportError as first:
        # module.Class.method: the module is one name shorter
        if len(parts) < 3:
            raise
        cls_name = parts[-2]
        try:
            mod = __import__(".".join(parts[:-2]), fromlist=[cls_name])
        except ImportError:
            raise first
        if not hasattr(mod, cls_name):
            raise first
        return getattr(mod, cls_name), name
    if not hasattr(mod, name):
        raise AttributeError("module '%s' has no attribute '%s'" % (module, name))
    target = getattr(mod, name)
    if isinstance(target, type):
        return target, "run"
    return target, None


def arguments(fn, params, label):
    """The keyword arguments fn takes, filled from params by name."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}  # a builtin without a signature: no arguments
    args = {}
    takes_all = False
    for p in sig.parameters.values():
        if p.kind == p.VAR_KEYWORD:
            takes_all = True
        elif p.kind == p.VAR_POSITIONAL:
            continue
        elif p.name in params:
            args[p.name] = params[p.name]
        elif p.default is p.empty:
            raise TypeError("%s requires parameter '%s' but it is not set (give it beside py>, in _export or with -p)" % (label, p.name))
    return dict(params) if takes_all else args


def call(command, params):
    target, method = resolve(command)
    if method is None:
        return target(**arguments(target, params, "'%s'" % command))
    obj = target(**arguments(target, params, "'%s'" % target.__qualname__))
    fn = getattr(obj, method)
    return fn(**arguments(fn, params, "'%s.%s'" % (target.__qualname__, method)))


def main():
    command, in_path, out_path = sys.argv[1:4]
    with open(in_path) as f:
        data = json.load(f)
    if "params" in data:
        params = data["params"] or {}
    else:  # in a pod: from the run's Secret, not its files
        params = json.loads(os.environ.pop("TDCTL_PY_PARAMS", "{}"))
    digdag.env.params = params
    digdag.env.subtasks_refused = data.get("subtasks_refused")
    if data.get("archive"):
        os.chdir(unpack(data["archive"]))
    # the project after the standard library and site-packages, as digdag
    sys.path.append(os.path.abspath(os.getcwd()))

    error = None
    try:
        call(command, params)
    except SystemExit as e:
        error = {"class": "SystemExit",
                 "message": "%s called sys.exit(%s): is the module named like one of the standard library's?" % (command, e.code)}
        traceback.print_exc()
    except Exception as e:
        error = {"class": type(e).__name__, "message": str(e)}
        traceback.print_exc()
    sys.stderr.flush()

    env = digdag.env
    if not error and env.subtasks_refused and any(k.startswith("+") for k in env.subtask_config):
        error = {"class": "NotImplementedError", "message": env.subtasks_refused}
    out = {"store": env.store_params, "export": env.export_params,
           "subtasks": env.subtask_config}
    for name, what in (("store", "digdag.env.store"), ("export", "digdag.env.export"),
                       ("subtasks", "digdag.env.subtask_config")):
        try:
            json.dumps(out[name])
        except (TypeError, ValueError) as e:
            out[name] = {}
            if not error:
                error = {"class": "TypeError", "message": "%s: values must be JSON values: %s" % (what, e)}
    if error:
        out["error"] = error
    if out_path == "-":
        sys.stdout.flush()
        if error:
            print("py> %s failed: %s (%s)" % (command, error["message"], error["class"]))
        elif env.store_params:
            print("::set-param " + json.dumps(env.store_params, separators=(",", ":")))
        sys.stdout.flush()
    else:
        with open(out_path, "w") as f:
            json.dump(out, f)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())

"""The digdag module of tdctl's py> operator.

A py> task imports it as in digdag: digdag.env.params holds the task's
params, digdag.env.store({...}) hands params to the tasks after this one,
digdag.env.export({...}) to the tasks this one generates. tdctl ships this
file itself and puts its directory on PYTHONPATH; it is not digdag's code.
"""

import json

__all__ = ["env", "Env"]


def _merge(into, params, kw):
    if params:
        into.update(dict(params))
    into.update(kw)


class Env(object):
    """What a py> task sees of the workflow and hands back to it."""

    def __init__(self, params=None):
        self.params = dict(params or {})
        self.store_params = {}
        self.export_params = {}
        self.state_params = {}
        self.subtask_config = {}
        self._subtasks = 0
        # why add_subtask cannot run here; tdctl's runner clears it where
        # it runs generated tasks
        self.subtasks_refused = "digdag.env.add_subtask needs tdctl's py> runner"

    def store(self, params=None, **kw):
        """Params for the tasks that run after this one."""
        _merge(self.store_params, params, kw)

    def export(self, params=None, **kw):
        """Params for the tasks this one generates (add_subtask)."""
        _merge(self.export_params, params, kw)

    def set_state(self, params=None, **kw):
        """Kept for scripts written for digdag; like digdag's runner,
        tdctl hands nothing of it back."""
        _merge(self.state_params, params, kw)

    def add_subtask(self, function=None, **params):
        """Generate a task to run after this one, as its child: a py>
        method (given as the function itself) with params, or a task's
        settings as a dict, e.g. {'echo>': 'hi'} or {'_type': 'echo',
        '_command': 'hi'}."""
        if self.subtasks_refused:
            raise NotImplementedError(self.subtasks_refused)
        if isinstance(function, dict):
            config = dict(function)
            config.update(params)
        elif function is not None:
            owner = getattr(function, "__qualname__", function.__name__)
            config = dict(params)
            config["py>"] = "%s.%s" % (function.__module__, owner)
        else:
            config = dict(params)
        try:
            json.dumps(config)
        except (TypeError, ValueError) as e:
            raise TypeError("add_subtask: parameters must be JSON values: %s" % e)
        self.subtask_config["+subtask%d" % self._subtasks] = config
        self._subtasks += 1


env = Env()

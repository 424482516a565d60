# Test-kit callback: appends every task result, unabridged, as one JSON line to the file named by
# LWKIT_RESULTS_FILE. A notification callback, so the normal stdout callback still prints for humans.
from __future__ import annotations

DOCUMENTATION = """
    name: lwkit_results
    type: notification
    short_description: Write task results as JSON lines for the lightwhale.persistence test kit
    description:
        - Appends one JSON object per task result to the file named by LWKIT_RESULTS_FILE.
    requirements:
        - enabled in ANSIBLE_CALLBACKS_ENABLED (and ANSIBLE_LOAD_CALLBACK_PLUGINS for ad-hoc runs)
"""

import json
import os
from collections.abc import Mapping

from ansible.plugins.callback import CallbackBase


def _plain(obj):
    # Ansible 2.19+ may hand over tagged subclasses of the native types: make them plain.
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v) for v in obj]
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return repr(obj)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "lwkit_results"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, event, result=None, extra=None):
        path = os.environ.get("LWKIT_RESULTS_FILE")
        if not path:
            return
        rec = {"event": event}
        if result is not None:
            raw = getattr(result, "result", None)
            if raw is None:
                raw = getattr(result, "_result", {})
            task = getattr(result, "task", None) or getattr(result, "_task", None)
            host = getattr(result, "host", None) or getattr(result, "_host", None)
            rec["host"] = host.get_name() if host is not None else None
            rec["task"] = task.get_name() if task is not None else None
            rec["action"] = getattr(task, "action", None) if task is not None else None
            rec["result"] = _plain(raw)
        if extra:
            rec.update(_plain(extra))
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")

    def v2_runner_on_ok(self, result):
        self._write("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write("failed", result, {"ignore_errors": bool(ignore_errors)})

    def v2_runner_on_unreachable(self, result):
        self._write("unreachable", result)

    def v2_runner_on_skipped(self, result):
        self._write("skipped", result)

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        self._write("stats", extra={"stats": {h: stats.summarize(h) for h in hosts}})

# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import signal
import subprocess
import sys

from ansible_collections.lightwhale.persistence.plugins.module_utils import _plan


def test_plan_applies_in_order_and_records():
    calls = []
    plan = _plan.Plan()
    assert not plan
    plan.add('one', '/dev/x', 'first', lambda: calls.append(1))
    plan.add('two', None, 'second', lambda: calls.append(2))
    assert len(plan) == 2
    assert plan.describe() == ['/dev/x: first', 'second']
    assert plan.apply() == ['/dev/x: first', 'second']
    assert calls == [1, 2]


def test_checkpoint_does_nothing_without_the_variable(monkeypatch):
    monkeypatch.delenv(_plan.CRASH_ENV, raising=False)
    _plan.checkpoint('after:write-gpt')


def test_checkpoint_kills_at_the_named_point_and_count():
    code = ('import sys; sys.path[:0] = %r\n'
            'from ansible_collections.lightwhale.persistence.plugins.module_utils import _plan\n'
            'for step in ("a", "b", "b", "c"):\n'
            '    print(step, flush=True)\n'
            '    _plan.checkpoint("after:" + step)\n') % (sys.path,)
    env = dict(os.environ)
    env[_plan.CRASH_ENV] = 'after:b@2'
    proc = subprocess.run([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split() == [b'a', b'b', b'b']


def test_checkpoint_trace_lists_every_point_reached_with_its_count(tmp_path):
    code = ('import sys; sys.path[:0] = %r\n'
            'from ansible_collections.lightwhale.persistence.plugins.module_utils import _plan\n'
            'plan = _plan.Plan()\n'
            'for step in ("a", "b", "b"):\n'
            '    plan.add(step, None, step, lambda: None)\n'
            'plan.apply()\n') % (sys.path,)
    trace = tmp_path / 'trace'
    env = {k: v for k, v in os.environ.items() if k != _plan.CRASH_ENV}
    env[_plan.TRACE_ENV] = str(trace)
    proc = subprocess.run([sys.executable, '-c', code], env=env, check=False)
    assert proc.returncode == 0
    assert trace.read_text().split() == ['before:a@1', 'after:a@1', 'before:b@1', 'after:b@1', 'before:b@2', 'after:b@2']
    # With a crash point too, the point is traced before the process dies there.
    trace.unlink()
    env[_plan.CRASH_ENV] = 'before:b@2'
    proc = subprocess.run([sys.executable, '-c', code], env=env, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert trace.read_text().split()[-1] == 'before:b@2'

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A plan: the ordered writes a run will make. Check mode describes it; a real run applies it.

Crash injection for tests: when the environment variable LIGHTWHALE_PERSISTENCE_CRASH_AT names a
checkpoint (C(before:STEP) or C(after:STEP), optionally C(@N) for the N-th time it is reached), the
process kills itself with SIGKILL there. Only the test suite sets it; it proves that every
interrupted run converges on the next one.

Checkpoint trace, also for tests only: when LIGHTWHALE_PERSISTENCE_CRASH_TRACE names a file, every
checkpoint reached is appended to it as one line C(STEP@N) (before and after each action), so a test
can list the points a real run passes and crash at each of them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import signal
from collections import namedtuple

CRASH_ENV = 'LIGHTWHALE_PERSISTENCE_CRASH_AT'
TRACE_ENV = 'LIGHTWHALE_PERSISTENCE_CRASH_TRACE'

_reached = {}


def checkpoint(name):
    """Die here with SIGKILL if the test harness asked for it; note the point in the trace (module docstring)."""
    wanted = os.environ.get(CRASH_ENV)
    trace = os.environ.get(TRACE_ENV)
    if not wanted and not trace:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if trace:
        with open(trace, 'a') as out:
            out.write('%s@%d\n' % (name, _reached[name]))
    if not wanted:
        return
    for spec in wanted.split(','):
        point, _sep, count = spec.strip().partition('@')
        if point == name and _reached[name] == int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)


class Steps(list):
    """What an action that plans and applies its own steps returns: their descriptions, recorded in its place (an
    action that finds nothing to do records nothing)."""


# One write: the step it belongs to (the name of its checkpoints), the device or path it acts on, what it does in
# words (device first), and the function that does it.
Action = namedtuple('Action', ('step', 'device', 'description', 'func'))


class Plan:
    """An ordered list of actions; C(done) records the descriptions of those applied."""

    def __init__(self):
        self.actions = []
        self.done = []
        # What each device will hold afterwards, in words, for check mode's diff.
        self.expected = {}

    def add(self, step, device, description, func):
        self.actions.append(Action(step, device, '%s: %s' % (device, description) if device else description, func))

    def __len__(self):
        return len(self.actions)

    def describe(self):
        return [action.description for action in self.actions]

    def apply(self):
        for action in self.actions:
            checkpoint('before:' + action.step)
            result = action.func()
            if isinstance(result, Steps):
                self.done.extend(result)
            else:
                self.done.append(action.description)
            checkpoint('after:' + action.step)
        return self.done

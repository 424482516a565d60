# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures the planner tests share: a runner that fails the test when anything asks it to run a command, and the
writes recorded instead of made (planning must record none; applying a plan records the writes in order)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import inspect

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes


class RefusingRunner:
    """A runner for code that must run no command."""

    def run(self, cmd, args=None, **kwargs):
        raise AssertionError('a command was run: %s %s' % (cmd, ' '.join(args or [])))


@pytest.fixture
def refusing_runner():
    return RefusingRunner()


@pytest.fixture
def recorded_writes(monkeypatch):
    """Every function of _writes, and _mount.make_dirs, replaced by one that appends (name, args...) to the list
    returned; a RefusingRunner argument is left out of the record."""
    calls = []

    def recorder(name):
        def record(*args, **kwargs):
            calls.append((name,) + tuple(arg for arg in args if not isinstance(arg, RefusingRunner)))
        return record

    for name, func in inspect.getmembers(_writes, inspect.isfunction):
        if func.__module__ == _writes.__name__:
            monkeypatch.setattr(_writes, name, recorder(name))
    monkeypatch.setattr(_mount, 'make_dirs', recorder('make_dirs'))
    return calls

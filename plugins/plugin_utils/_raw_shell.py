# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the raw_* action plugins share: run a shell command on the host over the connection alone (no Python, no
module), and turn the core's errors into a failed result."""

from __future__ import annotations

from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import ProbeError


def run(action, command):
    """The standard output of C(command) run by the host's shell (with become when the task asks for it); ProbeError
    when it exits non-zero."""
    res = action._low_level_execute_command(command, sudoable=True)
    if res.get('rc') != 0:
        raise ProbeError('the shell command on the host exited %s: %s' % (
            res.get('rc'), (res.get('stderr') or res.get('stdout') or '').strip()[-500:]))
    return res.get('stdout') or ''


def failure(error):
    """The failed result of a PersistenceError: its message, the device it names and its details (C(changed) when
    they say so, else false)."""
    result = error.result()
    result.setdefault('changed', False)
    result.update(failed=True, msg=error.message)
    return result

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""raw_magic_disk: magic_disk state=present for a host without Python - probed over the connection, planned on the
controller with the module's planner (_magic.plan_present), written by a shell script that checks again first
(_raw_mark)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.lightwhale.persistence.plugins.module_utils import _magic
from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_mark
from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_probe
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.plugin_utils import _raw_shell

ARGUMENT_SPEC = dict(
    devices=dict(type='list', elements='str', required=True),
    force=dict(type='bool', default=False),
)


def probe(action, devices):
    text = _raw_shell.run(action, _raw_probe.shell_command(_raw_probe.PROBE_SCRIPT, ['/'] + list(devices)))
    disks, _signatures = _raw_probe.candidates(_raw_probe.Probe(text))
    return disks


def mark(action, devices, force, check_mode):
    """Plan as magic_disk does, then mark each planned disk with one script run (none in check mode)."""
    if not devices:
        raise PersistenceError('devices is empty: the disks to mark are never guessed')
    disks = probe(action, devices)
    # The runner is only used by the plan's own writes, which a raw run never applies.
    plan = _magic.plan_present(None, disks, force)
    wipe = set(item.device for item in plan.actions if item.step == 'wipe-signatures')
    targets = [item.device for item in plan.actions if item.step == 'write-header']
    done = []
    if not check_mode:
        for path in targets:
            try:
                outcome = _raw_mark.outcome(path, _raw_shell.run(action, _raw_mark.command(path, path in wipe)))
            except PersistenceError as exc:
                # What was written before the failure is said; a failure on a disk being wiped may have changed it.
                wiping = path in wipe and exc.device == path and 'refused' not in exc.details
                exc.details.update(actions=done, changed=bool(done) or wiping)
                raise
            if outcome == 'written':
                done.extend(item.description for item in plan.actions if item.device == path)
        disks = probe(action, devices)
        unmarked = [disk.path for disk in disks if disk.path in targets and not disk.magic]
        if unmarked:
            raise CommandError('%s: the magic header is not there after writing it' % ', '.join(unmarked),
                               device=unmarked[0])
    return dict(
        changed=bool(done) if not check_mode else bool(plan), actions=plan.describe() if check_mode else done,
        disks=[disk.to_result() for disk in disks],
        magic_disks=[disk.path for disk in disks if disk.magic],
        skipped_disks=[dict(device=disk.path, reason='already carries the magic header')
                       for disk in disks if disk.path not in targets])


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(mark(self, args['devices'], args['force'], self._task.check_mode))
        except PersistenceError as error:
            result.update(_raw_shell.failure(error))
        return result

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Steps 2 and 3 as magic_disk runs them: check the settings, probe the candidates, plan (_magic), apply, read back
what was written, and report."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.lightwhale.persistence.plugins.module_utils import _candidates
from ansible_collections.lightwhale.persistence.plugins.module_utils import _cmdline
from ansible_collections.lightwhale.persistence.plugins.module_utils import _magic
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _partitioning
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._units import parse_size


def probe(runner, devices):
    return _candidates.candidates(runner, devices, _mountinfo.read_mounts(), _mountinfo.read_swaps())


def describe(disk):
    return '%s: %s%s\n' % (disk.path, 'magic header; ' if disk.magic else '', _partitioning.describe_table(disk.table))


def run(module, runner, settings):
    disks = probe(runner, module.params['devices'])
    state = module.params['state']
    predicted = {}
    if state == 'present':
        plan = _magic.plan_present(runner, disks, module.params['force'])
    elif state == 'absent':
        plan = _magic.plan_absent(disks)
    else:
        plan, predicted = _magic.plan_partitioned(runner, disks, settings['swap'], settings['swap_size'],
                                                  _partitioning.read_mem_total(), module.params['timeout'])
    touched = sorted(set(action.device for action in plan.actions))
    before = ''.join(describe(disk) for disk in disks if disk.path in touched)

    found = disks
    if plan and not module.check_mode:
        plan.apply()
        found = probe(runner, module.params['devices'])
        verify(state, found, touched)
    magic_parts = _candidates.magic_partitions(found)
    if module.check_mode:
        for roles in predicted.values():
            for role, node in roles:
                if node not in magic_parts[role]:
                    magic_parts[role].append(node)

    result = dict(
        changed=bool(plan), actions=plan.describe(), swap=settings['swap'],
        disks=[disk.to_result() for disk in found],
        magic_disks=[disk.path for disk in disks if disk.magic and not disk.skipped],
        magic_partitions=magic_parts,
        skipped_disks=[dict(device=disk.path, reason=reason) for disk, reason in passed_over(state, disks, touched)])
    if module._diff and plan:
        if module.check_mode:
            after = ''.join('%s: %s\n' % (path, plan.expected[path]) for path in touched)
        else:
            after = ''.join(describe(disk) for disk in found if disk.path in touched)
        result['diff'] = dict(before=before, after=after)
    return result


def passed_over(state, disks, touched):
    """(disk, reason) for every candidate this run leaves alone: the host scan's exclusions, and why the state
    has nothing to write on each other disk."""
    for disk in disks:
        if disk.skipped:
            yield disk, disk.skipped
        elif disk.path in touched:
            continue
        elif state == 'present':
            yield disk, 'already carries the magic header'
        elif disk.lightwhale_layout:
            yield disk, 'no magic header; already holds the magic layout'
        else:
            yield disk, 'no magic header'


def verify(state, disks, touched):
    """Re-read what was written: tools have reported success on failed writes before."""
    for disk in disks:
        if disk.path not in touched:
            continue
        if state == 'present' and not disk.magic:
            raise CommandError('%s: the magic header is not there after writing it' % disk.path, device=disk.path)
        if state in ('absent', 'partitioned') and disk.magic:
            raise CommandError('%s: the magic header is still there after wiping it' % disk.path, device=disk.path)
        if state == 'partitioned' and not disk.lightwhale_layout:
            raise CommandError('%s: the partition table read back is not the magic layout' % disk.path,
                               device=disk.path)


def settings_of(params):
    """The checked swap settings; PersistenceError for bad input."""
    if params['state'] in ('present', 'absent') and not params['devices']:
        raise PersistenceError('state=%s needs devices: the disks to mark are never guessed' % params['state'])
    swap_size = None
    if params['swap_size'] != 'auto':
        try:
            swap_size = parse_size(params['swap_size'])
        except ValueError as exc:
            raise PersistenceError('swap_size: %s' % exc)
        if swap_size < 1024 * 1024:
            raise PersistenceError('swap_size: %s is less than 1 MiB' % params['swap_size'])
    return dict(swap=_cmdline.swap_wanted(params['swap'], params['kernel_cmdline']), swap_size=swap_size)


def execute(module):
    """magic_disk: check the settings, then probe, plan, apply and read back under the lock."""
    settings = settings_of(module.params)
    with _module.lock(module):
        return run(module, Runner(module), settings)

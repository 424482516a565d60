# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Plans for the magic header and the magic partitions (boot steps 2-4): what to write on which disk.

Each planner looks only at inspected Disk reports and returns a Plan, or raises DeviceError naming every
disk it refuses, before anything is written. The header is consent: nothing is written to a disk that
does not carry it, except by 'present', which writes the header itself and only on a blank disk unless
forced.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _partitioning
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import DeviceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan


def _refuse(refusals):
    if refusals:
        raise DeviceError('; '.join('%s: %s' % item for item in refusals), device=refusals[0][0],
                          refused=[dict(device=device, reason=reason) for device, reason in refusals])


def unfit(disk):
    """Reasons no write may touch C(disk) even with force: read-only or in use."""
    reasons = []
    if disk.read_only:
        reasons.append('read-only')
    reasons.extend('in use: ' + reason for reason in disk.usage)
    return reasons


def _first_nonzero(data):
    stripped = data.lstrip(b'\0')
    return len(data) - len(stripped) if stripped else None


def contents(disk):
    """What C(disk) holds that marking it would destroy: signatures, partitions, or unrecognised bytes. A disk probed
    over a raw shell brings its kernel partitions and the first non-zero bytes of its edges (C(disk.probed)); any
    other is read here."""
    probed = disk.probed or {}
    found = ['%s signature at offset %d' % (sig['type'], sig['offset']) for sig in disk.signatures]
    if disk.partitions:
        found.append('%d partition(s)' % len(disk.partitions))
    parts = probed['kernel_partitions'] if 'kernel_partitions' in probed else _blockdev.kernel_partitions(disk.device.name)
    if parts and not disk.partitions:
        found.append('kernel partitions %s' % ', '.join(parts))
    if not found:
        # No tool recognises anything: still refuse data we cannot name (plain dm-crypt, raw streams).
        span = min(disk.size, _layout.MIB)
        for offset in sorted(set((0, disk.size - span))):
            if 'nonzero' in probed:
                nonzero = probed['nonzero'][offset]
            else:
                nonzero = _first_nonzero(_blockdev.read_bytes(disk.path, offset, span))
            if nonzero is not None:
                found.append('unrecognised non-zero data at byte %d' % (offset + nonzero))
                break
    return found


def wipe_all(runner, disk):
    """Force: remove every old signature (both GPT copies) and zero the first and last MiB."""
    _writes.wipe_signatures(runner, disk.path)
    span = min(disk.size, _layout.MIB)
    _writes.zero(disk.path, 0, span)
    _writes.zero(disk.path, disk.size - span, span)
    if _blockdev.kernel_partitions(disk.device.name):
        _writes.forget_partitions(runner, disk.path)


def plan_present(runner, disks, force):
    plan = Plan()
    refusals = []
    for disk in disks:
        if disk.magic:
            continue
        problems = unfit(disk)
        if problems:
            refusals.append((disk.path, '; '.join(problems)))
            continue
        found = contents(disk)
        if found and not force:
            refusals.append((disk.path, 'holds %s; nothing written (force: true wipes it)' % ', '.join(found)))
            continue
        if found:
            plan.add('wipe-signatures', disk.path, 'wipe %s' % ', '.join(found), functools.partial(wipe_all, runner, disk))
        plan.add('write-header', disk.path, 'write the magic header', functools.partial(_writes.write_header, disk.path))
        plan.expected[disk.path] = 'magic header; ' + _partitioning.describe_table(None if found else disk.table)
    _refuse(refusals)
    return plan


def plan_absent(disks):
    plan = Plan()
    refusals = []
    for disk in disks:
        if not disk.magic:
            continue
        problems = unfit(disk)
        if problems:
            refusals.append((disk.path, '; '.join(problems)))
            continue
        length = len(_layout.MAGIC)
        if disk.head[length:length + 1] == b'\n':
            length += 1
        plan.add('remove-header', disk.path, 'remove the magic header (%d bytes at byte 0)' % length,
                 functools.partial(_writes.zero, disk.path, 0, length))
        plan.expected[disk.path] = _partitioning.describe_table(disk.table)
    _refuse(refusals)
    return plan


def partition_node(disk_path, number):
    """The kernel's name for partition C(number): sda1, but loop0p1, nvme0n1p1, mmcblk0p1."""
    return '%s%s%d' % (disk_path, 'p' if disk_path[-1].isdigit() else '', number)


def clear_regions(disk, layout):
    for offset, _role in layout.regions():
        _writes.zero(disk.path, offset, _layout.MIB)


def wipe_partitions(runner, nodes):
    for node in nodes:
        _writes.wipe_signatures(runner, node)


def _plan_sync_layout(plan, runner, disk, timeout):
    """A disk laid out earlier (no header left) whose magic partitions the kernel does not know, e.g. attached anew:
    tell the kernel, so the data filesystem is found on them."""
    named = _partitioning.magic_partitions(disk.table)
    nodes = [part['device'] for part in named['swap'] + named['data']]
    if nodes and not disk.usage and not _blockdev.partitions_match(disk.path, disk.partitions):
        plan.add('sync-partitions', disk.path, 'tell the kernel the partitions %s' % ', '.join(nodes),
                 functools.partial(_writes.sync_partitions, runner, disk.path, nodes, timeout, disk.partitions))


def plan_partitioned(runner, disks, swap, swap_size, mem_total, timeout):
    """Lay out every magic disk. Returns (plan, predicted) with predicted = {disk: [(role, node), ...]}.

    Order, so that a crash anywhere converges on the next run: clear where the partitions will start,
    write the GPT, tell the kernel, wipe the new partitions, and last wipe the header (the commit point:
    while the header is there, the disk is ours to lay out again). A magic disk that already holds our
    layout (a run that died before the header wipe) keeps its GPT and partition UUIDs.
    """
    plan = Plan()
    predicted = {}
    refusals = []
    for disk in disks:
        if disk.skipped:
            continue
        if not disk.magic:
            _plan_sync_layout(plan, runner, disk, timeout)
            continue
        problems = unfit(disk)
        if problems:
            refusals.append((disk.path, '; '.join(problems)))
            continue
        if disk.lightwhale_layout:
            plan.expected[disk.path] = _partitioning.describe_table(disk.table)
            roles = [('swap' if _partitioning.is_swap_partition(part) else 'data', part['device'])
                     for part in disk.partitions]
        else:
            layout, reason = _partitioning.plan_layout(disk.size, swap, swap_size, mem_total)
            if layout is None:
                refusals.append((disk.path, reason))
                continue
            plan.expected[disk.path] = layout.describe()
            roles = [(role, partition_node(disk.path, number))
                     for number, (_offset, role) in enumerate(layout.regions(), 1)]
            plan.add('clear-partitions', disk.path, 'zero the first MiB where each partition will start',
                     functools.partial(clear_regions, disk, layout))
            plan.add('write-gpt', disk.path, 'write %s' % layout.describe(),
                     functools.partial(_writes.write_partition_table, runner, disk.path, layout.sfdisk_script()))
        nodes = [node for _role, node in roles]
        predicted[disk.path] = roles
        plan.add('sync-partitions', disk.path, 'tell the kernel the partitions %s' % ', '.join(nodes),
                 functools.partial(_writes.sync_partitions, runner, disk.path, nodes, timeout))
        plan.add('wipe-partitions', disk.path, 'wipe old signatures inside %s' % ', '.join(nodes),
                 functools.partial(wipe_partitions, runner, nodes))
        plan.add('wipe-header', disk.path, 'wipe the magic header (MBR boot-code area, %d bytes)' % _layout.BOOT_CODE_SIZE,
                 functools.partial(_writes.zero, disk.path, 0, _layout.BOOT_CODE_SIZE))
    _refuse(refusals)
    return plan, predicted

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A data filesystem over time: magic disks that join it (grow) or take a missing member's place (replace).

plan_joins() plans, for each magic disk on a host whose data filesystem exists, what a first boot does to it (the
GPT, the partitions wiped, mkswap) and then the join to the mounted filesystem: C(btrfs device add), or
C(btrfs replace) of a missing member. As on a first boot, the GPT write wipes the header, and our layout with a
blank data partition is then the disk's consent; a disk whose data partition is a member already only has its
header wiped (an operator's header on a member), so a run killed anywhere converges. Then
plan_conversion() has the profiles converted in the background (_conversion). A magic disk that cannot be used is
reported with the reason (C(Planned.unusable)) and nothing is written to it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import os
import time

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _conversion
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_create
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _magic
from ansible_collections.lightwhale.persistence.plugins.module_utils import _partitioning
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Steps


class Join:
    """One magic disk to join: its layout to write (None: it has ours), the (role, node) of its partitions, and the
    partition already a member (a run killed before the header wipe), or None."""

    def __init__(self, disk, layout, roles, member=None):
        self.disk, self.layout, self.roles, self.member = disk, layout, roles, member


def _roles(disk):
    return [('swap' if _partitioning.is_swap_partition(part) else 'data', part['device']) for part in disk.partitions]


def sort_magic(decision, swap, mem_total):
    """(joins, unusable) for the magic disks of a decision: unusable is [{device, reason}]. Without a data
    filesystem, only the disks the first boot cannot lay out are unusable (the rest waits for it)."""
    fs = decision.fs
    joins, unusable = [], []
    for disk in decision.magic_disks + decision.laid_out:
        members = [part['device'] for part in disk.partitions] if fs is not None and not fs.new else []
        members = [node for node in members if node in fs.paths]
        if fs is not None and not fs.new and disk.path in fs.paths:
            unusable.append(dict(device=disk.path, reason='carries the magic header but is itself a member of the '
                                 'data filesystem %s: nothing written' % fs.uuid))
            continue
        if members:
            joins.append(Join(disk, None, _roles(disk), members[0]))
            continue
        problems = _magic.unfit(disk)
        if problems:
            unusable.append(dict(device=disk.path, reason='carries the magic header but cannot be used: %s'
                                 % '; '.join(problems)))
            continue
        layout = None
        if not disk.lightwhale_layout:
            layout, reason = _partitioning.plan_layout(disk.size, swap, None, mem_total)
            if layout is None:
                unusable.append(dict(device=disk.path, reason='carries the magic header but is %s' % reason))
                continue
        if fs is None or fs.new:
            continue
        roles = _roles(disk) if layout is None else [
            (role, _magic.partition_node(disk.path, number)) for number, (_offset, role) in enumerate(layout.regions(), 1)]
        joins.append(Join(disk, layout, roles))
    return joins, unusable


def plan_joins(ctx, decision, planned):
    """Lay out each magic disk and join its data partition to the data filesystem (mounted by the plan before)."""
    fs = decision.fs
    joins, planned.unusable = sort_magic(decision, ctx.swap, _partitioning.read_mem_total() if decision.magic_disks else 0)
    # The GPT write wipes the header (sfdisk --wipe): from then on our layout with a blank data partition is the
    # disk's consent (decision.laid_out), as on a first boot.
    if fs is None or fs.new:
        return
    plan = planned.plan
    missing = list(fs.missing or [])
    mountpoint = ctx.targets.data
    wipe_header = 'wipe the magic header (MBR boot-code area, %d bytes)' % _layout.BOOT_CODE_SIZE
    for join in joins:
        disk = join.disk
        if join.member is not None:
            plan.add('wipe-header', disk.path, '%s: its partition %s is a member already' % (wipe_header, join.member),
                     functools.partial(_writes.wipe_header_in_use, disk.path))
            continue
        nodes = [node for _role, node in join.roles]
        if join.layout is not None:
            plan.add('clear-partitions', disk.path, 'zero the first MiB where each partition will start',
                     functools.partial(_magic.clear_regions, disk, join.layout))
            plan.add('write-gpt', disk.path, 'write %s' % join.layout.describe(),
                     functools.partial(_writes.write_partition_table, ctx.runner, disk.path,
                                       join.layout.sfdisk_script()))
        plan.add('sync-partitions', disk.path, 'tell the kernel the partitions %s' % ', '.join(nodes),
                 functools.partial(_writes.sync_partitions, ctx.runner, disk.path, nodes, ctx.timeout))
        plan.add('wipe-partitions', disk.path, 'wipe old signatures inside %s' % ', '.join(nodes),
                 functools.partial(_magic.wipe_partitions, ctx.runner, nodes))
        swaps = [node for role, node in join.roles if role == 'swap' and ctx.swap]
        for node in swaps:
            plan.add('mkswap', node, 'format as swap, label %s' % _layout.SWAP_LABEL,
                     functools.partial(_datafs_create.make_swap, ctx.runner, node))
        for role, node in join.roles:
            if role != 'data':
                continue
            if missing:
                devid = missing.pop(0)
                plan.add('replace', node, 'take the place of the missing member devid %d of the data filesystem %s '
                         '(btrfs replace, copying in the background)' % (devid, fs.uuid),
                         functools.partial(replace, ctx.runner, fs.uuid, devid, node, mountpoint, ctx.timeout))
            else:
                plan.add('device-add', node, 'add to the data filesystem %s' % fs.uuid,
                         functools.partial(add, ctx.runner, fs.uuid, node, mountpoint))
            planned.joined.append(node)
        # Swap on only once the disk is a member: an active swap would make a disk still to join look in use.
        for node in swaps:
            plan.add('swapon', node, 'activate swap', functools.partial(_writes.swapon, ctx.runner, node))
            planned.swap_on.append(node)
        if disk.magic and join.layout is None:
            # A header written on a disk with our layout (the GPT write wipes it otherwise).
            plan.add('wipe-header', disk.path, wipe_header,
                     functools.partial(_writes.wipe_header_in_use, disk.path))


def plan_conversion(ctx, decision, planned, mounted):
    """The background conversion, decided when it runs (after the mounts and joins of the plan): planned when disks
    join, or when the mounted filesystem has chunks to convert and no job runs. C(mounted) tells whether the data
    filesystem is mounted before the plan; when it is not (a boot), after() asks once the plan mounted it."""
    fs = decision.fs
    if fs is None or fs.new:
        return
    if not planned.joined and not (mounted and needs_job(ctx, fs.uuid)):
        # Not mounted yet (a boot): whether chunks need converting is known once it is; the run asks then (after()).
        return
    why = 'converting' if planned.joined and not fs.missing else None
    planned.plan.add('convert', ctx.targets.data, 'convert the chunks that are not of the profiles for the member '
                     'count, in the background (a soft balance), when there are any',
                     functools.partial(convert, ctx, fs.uuid, why))


def needs_job(ctx, fsid, kernel=None):
    """Whether the mounted filesystem C(fsid) needs the background job started: chunks to convert and all members
    there, or a replace the job must wait for; and no job of ours runs yet. C(kernel) is a _conversion.kernel_view
    already read."""
    kernel = kernel or _conversion.kernel_view(fsid)
    if kernel['profiles'] is None:
        return False
    replacing = kernel['operation'] == 'device replace'
    if not replacing and (kernel['missing'] or not _conversion.stragglers(
            kernel['profiles'], _conversion.wanted(max(kernel['members'], 1)))):
        return False
    job = _conversion.read_job(ctx.targets.run_dir)
    return not (job is not None and job.get('fsid') == fsid and job.get('alive'))


def convert(ctx, fsid, why):
    """Start the background job when needed (needs_job); record it in ctx.conversion_job."""
    kernel = _conversion.kernel_view(fsid)
    if not needs_job(ctx, fsid, kernel):
        return Steps()
    target = _conversion.wanted(kernel['members'])
    if why is None:
        why = 'replacing' if kernel['operation'] == 'device replace' else 'restoring redundancy'
        # No chunk of a kind has its profile yet: a conversion (a member count that grew), not a straggler.
        if why == 'restoring redundancy' and any(target[kind] not in kernel['profiles'].get(kind, [])
                                                 for kind in ('data', 'metadata')):
            why = 'converting'
    job = _conversion.start_job(ctx.runner, ctx.targets.run_dir, fsid, ctx.targets.data, target, why)
    ctx.conversion_job = job
    return Steps(['%s: start the background conversion (%s) to data %s, metadata %s: process %d, log %s' % (
        ctx.targets.data, why, target['data'], target['metadata'], job['pid'],
        os.path.join(ctx.targets.run_dir, _conversion.LOG_FILE))])


def add(runner, fsid, node, mountpoint):
    """btrfs device add (online), then check the kernel lists the device as a member."""
    _writes.device_add(runner, node, mountpoint)
    name = os.path.basename(os.path.realpath(node))
    if name not in (_btrfs.kernel_devices(fsid) or []):
        raise CommandError('%s: btrfs device add exited 0 but the kernel does not list it in %s' % (node, fsid),
                           device=node)


def replace(runner, fsid, devid, node, mountpoint, timeout):
    """btrfs replace of the missing C(devid) by C(node). btrfs-progs copies in the background: wait until the kernel
    runs it (its state is then on disk, resumed at the next mount) or has finished it."""
    before = _replace_status(runner, mountpoint)
    _writes.replace_start(runner, devid, node, mountpoint)
    deadline = time.time() + timeout
    while True:
        if _conversion.exclusive_operation(fsid) == 'device replace' or devid not in (_btrfs.kernel_missing(fsid) or []):
            return
        line = _replace_status(runner, mountpoint)
        if (line != before and 'canceled' in line) or time.time() > deadline:
            raise CommandError('%s: the replace of the missing devid %d did not start: %s (see the kernel log: a '
                               'replacement smaller than the missing member, or a full filesystem)' % (
                                   node, devid, line or 'no status'), device=node)
        time.sleep(0.2)


def _replace_status(runner, mountpoint):
    """The one-line status of the filesystem's last replace (btrfs replace status -1)."""
    _rc, out, _err = runner.run('btrfs', ['replace', 'status', '-1', mountpoint], ok=(0, 1))
    return ' '.join(out.split())


def after(ctx, decision, planned):
    """After a real run of state=mounted that mounted the data filesystem: start the background conversion when its
    chunks need it (the plan could not tell before the mount). Returns what was done."""
    fs = decision.fs
    if fs is None or fs.new or fs.legacy or any(action.step == 'convert' for action in planned.plan.actions):
        return []
    if _btrfs.kernel_label(fs.uuid) is None:
        return []
    return list(convert(ctx, fs.uuid, None))

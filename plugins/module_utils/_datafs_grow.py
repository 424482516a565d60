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
reported with the reason (C(Planned.unusable)) and nothing is written to it; so is one that must wait while the
kernel runs an exclusive operation other than a balance (Gate: a replace cannot be paused, and the kernel refuses a
join meanwhile). A running or paused balance is canceled for the join; the conversion starts again after it.
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
    # How many members are missing; which device ids, the kernel tells once the filesystem is mounted (the ids the
    # superblocks suggest can be wrong after a member was removed by hand).
    missing = list(fs.missing) if fs.missing is not None else [None] * max(fs.num_devices - len(fs.members), 0)
    wipe_header = 'wipe the magic header (MBR boot-code area, %d bytes)' % _layout.BOOT_CODE_SIZE
    busy_now = busy(fs.uuid) if _btrfs.kernel_label(fs.uuid) is not None else None
    for join in joins:
        disk = join.disk
        if join.member is not None:
            plan.add('wipe-header', disk.path, '%s: its partition %s is a member already' % (wipe_header, join.member),
                     functools.partial(_writes.wipe_header_in_use, disk.path))
            continue
        if busy_now:
            planned.unusable.append(dict(device=disk.path, reason=busy_now))
            continue
        gate = Gate(fs.uuid, disk.path, planned)
        nodes = [node for _role, node in join.roles]
        if join.layout is not None:
            plan.add('clear-partitions', disk.path, 'zero the first MiB where each partition will start',
                     gate.first(functools.partial(_magic.clear_regions, disk, join.layout)))
            plan.add('write-gpt', disk.path, 'write %s' % join.layout.describe(),
                     gate.then(functools.partial(_writes.write_partition_table, ctx.runner, disk.path,
                                                 join.layout.sfdisk_script())))
        sync = functools.partial(_writes.sync_partitions, ctx.runner, disk.path, nodes, ctx.timeout)
        plan.add('sync-partitions', disk.path, 'tell the kernel the partitions %s' % ', '.join(nodes),
                 gate.then(sync) if join.layout is not None else gate.first(sync))
        plan.add('wipe-partitions', disk.path, 'wipe old signatures inside %s' % ', '.join(nodes),
                 gate.then(functools.partial(_magic.wipe_partitions, ctx.runner, nodes)))
        swaps = [node for role, node in join.roles if role == 'swap' and ctx.swap]
        for node in swaps:
            plan.add('mkswap', node, 'format as swap, label %s' % _layout.SWAP_LABEL,
                     gate.then(functools.partial(_datafs_create.make_swap, ctx.runner, node)))
        for role, node in join.roles:
            if role != 'data':
                continue
            if missing:
                devid = missing.pop(0)
                plan.add('replace', node, 'take the place of %s of the data filesystem %s (btrfs replace, copying '
                         'in the background)' % ('the missing member devid %d' % devid if devid else 'a missing member',
                                                 fs.uuid),
                         gate.then(functools.partial(replace, ctx, fs.uuid, devid, node)))
            else:
                plan.add('device-add', node, 'add to the data filesystem %s' % fs.uuid,
                         gate.then(functools.partial(add, ctx, fs.uuid, node)))
            planned.joined.append(node)
            gate.nodes.append(node)
        # Swap on only once the disk is a member: an active swap would make a disk still to join look in use.
        for node in swaps:
            plan.add('swapon', node, 'activate swap', gate.then(functools.partial(_writes.swapon, ctx.runner, node)))
            planned.swap_on.append(node)
            gate.nodes.append(node)
        if disk.magic and join.layout is None:
            # A header written on a disk with our layout (the GPT write wipes it otherwise).
            plan.add('wipe-header', disk.path, wipe_header,
                     gate.then(functools.partial(_writes.wipe_header_in_use, disk.path)))


class Gate:
    """The steps of one disk's join, at apply time. The first asks the kernel whether a disk can join now (busy());
    when it cannot, none of them writes anything and the disk is reported as not used, with the reason (it joins at a
    later boot or run; a disk already laid out keeps its consent)."""

    def __init__(self, fsid, device, planned):
        self.fsid, self.device, self.planned = fsid, device, planned
        self.nodes = []
        self.deferred = None

    def first(self, func):
        return functools.partial(self._run, func, True)

    def then(self, func):
        return functools.partial(self._run, func, False)

    def _run(self, func, first):
        if first:
            self.deferred = busy(self.fsid)
            if self.deferred:
                self.planned.unusable.append(dict(device=self.device, reason=self.deferred))
                self.planned.joined[:] = [node for node in self.planned.joined if node not in self.nodes]
                self.planned.swap_on[:] = [node for node in self.planned.swap_on if node not in self.nodes]
        if self.deferred:
            return Steps()
        return func()


def busy(fsid):
    """Why no disk can join the mounted filesystem C(fsid) now, or None: the kernel runs an exclusive operation
    other than a balance (a balance, the conversion, is canceled for the join and started again after it)."""
    operation = _conversion.exclusive_operation(fsid)
    if operation in (None, 'none') or operation.startswith('balance'):
        return None
    return ('carries the magic header and waits: the kernel runs a %s on the data filesystem %s; the disk joins at '
            'the first boot or run after it has ended' % (operation, fsid))


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


def add(ctx, fsid, node):
    """btrfs device add (online), then check the kernel lists the device as a member."""
    mountpoint = ctx.targets.data
    _stop_balance(ctx, fsid, mountpoint)
    _writes.device_add(ctx.runner, node, mountpoint)
    name = os.path.basename(os.path.realpath(node))
    if name not in (_btrfs.kernel_devices(fsid) or []):
        raise CommandError('%s: btrfs device add exited 0 but the kernel does not list it in %s' % (node, fsid),
                           device=node)


def replace(ctx, fsid, planned_devid, node):
    """btrfs replace of a missing member by C(node): the device id the kernel says is missing (the planned one when
    it is among them). btrfs-progs copies in the background: wait until the kernel runs it (its state is then on
    disk, resumed at the next mount) or has finished it."""
    mountpoint = ctx.targets.data
    missing = _btrfs.kernel_missing(fsid) or []
    if not missing:
        add(ctx, fsid, node)
        return Steps(['%s: add to the data filesystem %s (no member is missing any more)' % (node, fsid)])
    devid = planned_devid if planned_devid in missing else missing[0]
    _stop_balance(ctx, fsid, mountpoint)
    before = _replace_status(ctx.runner, mountpoint)
    _writes.replace_start(ctx.runner, devid, node, mountpoint)
    deadline = time.time() + ctx.timeout
    while True:
        # The kernel's exclusive operation says it (5.10 and later), or the devid is no longer missing; only when
        # sysfs does not tell is the status line read: changed to a progress or an end, it says it on older kernels.
        running = (_conversion.exclusive_operation(fsid) == 'device replace'
                   or devid not in (_btrfs.kernel_missing(fsid) or []))
        line = None if running else _replace_status(ctx.runner, mountpoint)
        if running or (line != before and line and 'canceled' not in line and 'never started' not in line.lower()):
            return Steps(['%s: take the place of the missing member devid %d of the data filesystem %s (btrfs replace, '
                          'copying in the background)' % (node, devid, fsid)])
        if (line != before and 'canceled' in line) or time.time() > deadline:
            raise CommandError('%s: the replace of the missing devid %d did not start: %s (see the kernel log: a '
                               'replacement smaller than the missing member, or a full filesystem)' % (
                                   node, devid, line or 'no status'), device=node)
        time.sleep(0.2)


def _stop_balance(ctx, fsid, mountpoint):
    """A balance (the conversion, or one the kernel resumed at mount) keeps a disk from joining: cancel it and wait
    for the job of ours that ran it to end. The conversion planned after the joins starts it again, to the profiles
    of the new member count."""
    if not (_conversion.exclusive_operation(fsid) or '').startswith('balance'):
        return
    _writes.balance_cancel(ctx.runner, mountpoint)
    deadline = time.time() + ctx.timeout
    while time.time() < deadline:
        job = _conversion.read_job(ctx.targets.run_dir)
        if not (job is not None and job.get('fsid') == fsid and job.get('alive')):
            return
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

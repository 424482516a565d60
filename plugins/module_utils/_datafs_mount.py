# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Step 6 of the data filesystem: mount its two subvolumes, or the volatile tmpfs when there is none, and swap.

The plan_* functions read a Decision (_datafs_find) and what the kernel says is mounted into a Plan;
they refuse, before anything is written, to mount over something that is not theirs. plan_fallback
is the tmpfs that lets a host boot when the data filesystem cannot be used. A legacy data filesystem (not
btrfs) is mounted as it is, with the state directory a plain directory on it (plan_legacy).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import os
import stat

from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_create
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_grow
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount_options
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _state_change
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import MountConflict
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan, Steps


TMPFS_OPTIONS = ('mode=0755',)


class Planned:
    """A plan plus what it needs around it: the creation (for its finally and its findings)."""

    def __init__(self):
        self.plan = Plan()
        self.creation = None
        # Predictions for check mode: mounts ({target: (fstype, root)}) and swap areas after the plan.
        self.mounts = {}
        self.swap_on = []
        # Data partitions of magic disks joining the filesystem, and magic disks that cannot be used ({device, reason}).
        self.joined = []
        self.unusable = []

    def apply(self):
        problems = []
        try:
            self.plan.apply()
        finally:
            if self.creation is not None:
                problems = self.creation.cleanup()
        return problems


def empty_tmpfs(ctx, mount, mounts):
    """Whether C(mount), at the data mount point, is a tmpfs with nothing in it but an empty state directory and
    nothing mounted below it: the volatile tmpfs of an earlier step of this boot, which may be replaced."""
    target = ctx.targets.data
    if mount is None or mount.fstype != 'tmpfs':
        return False
    if _mountinfo.below(mounts, target):
        return False
    try:
        names = os.listdir(target)
        if not names:
            return True
        state = os.path.join(target, os.path.basename(ctx.targets.state))
        return (names == [os.path.basename(ctx.targets.state)] and not os.path.islink(state)
                and os.path.isdir(state) and not os.listdir(state))
    except OSError:
        return False


def _expect_persistent(ctx, decision, mounts, members):
    """Which of the two subvolume mounts are missing; MountConflict if either target holds something else. With
    C(replace_tmpfs), an empty tmpfs at the data mount point counts as missing (C(plan_mounted) unmounts it first)."""
    fs = decision.fs
    wanted = ((ctx.targets.data, _layout.SUBVOL_DATA, _layout.DATA_MOUNT),
              (ctx.targets.state, _layout.SUBVOL_STATE, _layout.STATE_DIR))
    todo = []
    for target, subvolume, path in wanted:
        mount = _mountinfo.top_mount(mounts, target)
        if mount is None or (todo and _mountinfo.is_subvolume_mount(mount, subvolume, fs.uuid, members)):
            # Our state mount below a data mount still to be made would be hidden by it: it is mounted again on top.
            todo.append((target, subvolume, path))
        elif target == ctx.targets.data and ctx.replace_tmpfs and empty_tmpfs(ctx, mount, mounts):
            todo.append((target, subvolume, path))
        elif not _mountinfo.is_subvolume_mount(mount, subvolume, fs.uuid, members):
            if target == ctx.targets.data and mount.fstype == 'tmpfs' and not fs.new:
                message = ('%s: a tmpfs is mounted (volatile mode) although the data filesystem %s is there: an '
                           'earlier run could not mount it, or it appeared since. Nothing changed; unmount the tmpfs '
                           '(state: unmounted) and run again' % (target, fs.uuid))
                raise MountConflict(message, device=target, mode='volatile', failure=message)
            raise MountConflict('%s: %s is mounted there, not subvolume %s of the data filesystem %s; nothing '
                                'changed (unmount it first, for example with state: unmounted)' % (
                                    target, _mountinfo.describe_mount(mount, members), subvolume, fs.uuid or '(new)'),
                                device=target)
    return todo


def plan_volatile(ctx, mounts, planned, members):
    """The tmpfs at the data mount point with the state directory in it (no data filesystem)."""
    plan = planned.plan
    targets = ctx.targets
    mount = _mountinfo.top_mount(mounts, targets.data)
    state = _mountinfo.top_mount(mounts, targets.state)
    if mount is not None and mount.fstype != 'tmpfs':
        raise MountConflict('%s: %s is mounted there, and there is no data filesystem: nothing changed (unmount it '
                            'first, for example with state: unmounted)' % (targets.data, _mountinfo.describe_mount(mount, members)),
                            device=targets.data)
    if state is not None:
        raise MountConflict('%s: %s is mounted there, and there is no data filesystem: nothing changed' % (
            targets.state, _mountinfo.describe_mount(state, members)), device=targets.state)
    planned.mounts[targets.data] = ('tmpfs', '/')
    if mount is None:
        _mount.missing_dirs(targets.root, _layout.DATA_MOUNT)
        plan.add('mount-tmpfs', targets.data, 'mount a tmpfs (mode 0755, volatile) with the state directory %s in it'
                 % targets.state, functools.partial(_mount_tmpfs, ctx))
    elif _mount.missing_dirs(targets.root, _layout.STATE_DIR):
        plan.add('mkdir-state', targets.state, 'create the state directory (root, 0755) in the tmpfs',
                 functools.partial(_mount.make_dirs, targets.root, _layout.STATE_DIR))


def plan_mounted(ctx, decision, mounts, swaps, planned, members):
    """Steps 4-6: present, then the subvolumes (or the tmpfs) mounted, then swap."""
    if decision.fs is None:
        plan_volatile(ctx, mounts, planned, members)
        plan_swap(ctx, decision, swaps, planned)
        _datafs_grow.plan_joins(ctx, decision, planned)
        return
    if decision.fs.legacy:
        plan_legacy(ctx, decision, mounts, swaps, planned, members)
        # Only a btrfs grows: a magic disk next to a legacy filesystem is named, and nothing is written to it.
        planned.unusable = [dict(device=disk.path, reason='carries the magic header, but the data filesystem is a '
                                 'legacy %s that no disk can join' % (decision.fs.fstype or 'filesystem'))
                            for disk in decision.magic_disks]
        return
    # Refuse a conflict before anything is written, creation included.
    todo = _expect_persistent(ctx, decision, mounts, members)
    tmpfs = _mountinfo.top_mount(mounts, ctx.targets.data)
    if tmpfs is None:
        # A link or a file where the mount point goes: refused before anything is written.
        _mount.missing_dirs(ctx.targets.root, _layout.DATA_MOUNT)
    _datafs_create.plan_present(ctx, decision, planned)
    fs = decision.fs
    degraded = fs.degraded
    if tmpfs is not None and tmpfs.fstype == 'tmpfs' and any(target == ctx.targets.data for target, _s, _p in todo):
        # replace_tmpfs: the empty volatile tmpfs goes, under the same lock as the mounts that take its place.
        planned.plan.add('umount-tmpfs', ctx.targets.data, 'unmount the empty volatile tmpfs (replace_tmpfs)',
                         functools.partial(_writes.umount, ctx.runner, ctx.targets.data))
    for target, subvolume, path in todo:
        step = 'mount-data' if target == ctx.targets.data else 'mount-state'
        if step == 'mount-state' and not fs.new:
            # A pending rollback or reset, the rollback word, the boot snapshot: after the data mount, before this one.
            _state_change.plan_step(ctx, fs, mounts, planned.plan)
        description = 'mount subvolume %s of the %s%s' % (
            subvolume, 'new data filesystem' if fs.new else 'data filesystem %s' % fs.uuid,
            ' degraded (missing %s)' % fs.describe_missing() if degraded else '')
        planned.plan.add(step, target, description,
                         functools.partial(_mount_subvolume, ctx, fs, subvolume, target, path, degraded))
    planned.mounts[ctx.targets.data] = ('btrfs', '/' + _layout.SUBVOL_DATA)
    planned.mounts[ctx.targets.state] = ('btrfs', '/' + _layout.SUBVOL_STATE)
    plan_swap(ctx, decision, swaps, planned)
    # Magic disks join the mounted filesystem, then the profiles follow the member count (in the background).
    _datafs_grow.plan_joins(ctx, decision, planned)
    _datafs_grow.plan_conversion(ctx, decision, planned, mounted=not todo)


def is_legacy_mount(mount, fs):
    """Whether C(mount) is the legacy data filesystem C(fs), whole, on its device."""
    return fs is not None and fs.legacy and _mountinfo.is_device_mount(mount, fs.paths[0], fs.fstype)


def legacy_warnings(ctx, fs):
    """What a legacy data filesystem lacks, and the mount options it is not mounted with."""
    found = ['the data filesystem is the legacy %s %s on %s (Lightwhale 2.x): mounted as it is - no subvolumes, no '
             'RAID, no snapshots or rollback. Move the data to a btrfs data filesystem (a magic disk) to have them'
             % (fs.fstype, fs.uuid, fs.paths[0])]
    _used, dropped = _mount_options.for_legacy(ctx.mount_options)
    if dropped:
        found.append('mount option(s) %s not used: the legacy %s data filesystem is mounted only with %s' % (
            ','.join(dropped), fs.fstype, ', '.join(_mount_options.GENERIC)))
    return found


def plan_legacy(ctx, decision, mounts, swaps, planned, members):
    """A legacy data filesystem: mounted as it is (whole, no subvolume) at the data mount point, the state directory
    a plain directory on it (created when missing), then swap. Nothing on it is ever formatted."""
    fs = decision.fs
    targets = ctx.targets
    plan = planned.plan
    data = _mountinfo.top_mount(mounts, targets.data)
    state = _mountinfo.top_mount(mounts, targets.state)
    if state is not None:
        raise MountConflict('%s: %s is mounted there; on the legacy %s data filesystem %s the state directory is a '
                            'plain directory: nothing changed (unmount it first)' % (
                                targets.state, _mountinfo.describe_mount(state, members), fs.fstype, fs.paths[0]),
                            device=targets.state)
    mount_data = False
    if data is None:
        # A link or a file where the mount point goes: refused before anything is written.
        _mount.missing_dirs(targets.root, _layout.DATA_MOUNT)
        mount_data = True
    elif is_legacy_mount(data, fs):
        pass
    elif ctx.replace_tmpfs and empty_tmpfs(ctx, data, mounts):
        plan.add('umount-tmpfs', targets.data, 'unmount the empty volatile tmpfs (replace_tmpfs)',
                 functools.partial(_writes.umount, ctx.runner, targets.data))
        mount_data = True
    elif data.fstype == 'tmpfs':
        message = ('%s: a tmpfs is mounted (volatile mode) although the legacy data filesystem %s on %s is there: an '
                   'earlier run could not mount it, or it appeared since. Nothing changed; unmount the tmpfs (state: '
                   'unmounted) and run again' % (targets.data, fs.fstype, fs.paths[0]))
        raise MountConflict(message, device=targets.data, mode='volatile', failure=message)
    else:
        raise MountConflict('%s: %s is mounted there, not the legacy data filesystem %s on %s; nothing changed '
                            '(unmount it first, for example with state: unmounted)' % (
                                targets.data, _mountinfo.describe_mount(data, members), fs.fstype, fs.paths[0]),
                            device=targets.data)
    if mount_data:
        options, _dropped = _mount_options.for_legacy(ctx.mount_options)
        plan.add('mount-data', targets.data, 'mount the legacy %s data filesystem on %s as it is%s' % (
            fs.fstype, fs.paths[0], ' (%s)' % ','.join(options) if options else ''),
            functools.partial(_mount_legacy, ctx, fs, options))
        plan.add('mkdir-state', targets.state, 'create the state directory (root, 0755) on it when it is missing',
                 functools.partial(_make_state_dir, ctx))
    elif _mount.missing_dirs(targets.root, _layout.STATE_DIR):
        plan.add('mkdir-state', targets.state, 'create the state directory (root, 0755)',
                 functools.partial(_make_state_dir, ctx))
    planned.mounts[targets.data] = (fs.fstype, '/')
    plan_swap(ctx, decision, swaps, planned)


def _mount_legacy(ctx, fs, options):
    _mount.make_dirs(ctx.targets.root, _layout.DATA_MOUNT)
    _writes.mount(ctx.runner, fs.paths[0], ctx.targets.data, fs.fstype, options)
    ctx.mounted.append(ctx.targets.data)


def _make_state_dir(ctx):
    """The state directory on the legacy data filesystem, when missing; records a step only when it made one."""
    if not _mount.make_dirs(ctx.targets.root, _layout.STATE_DIR):
        return Steps()
    return Steps(['%s: created the state directory (root, 0755)' % ctx.targets.state])


def plan_swap(ctx, decision, swaps, planned):
    active = active_swap(swaps)
    for probed in decision.swap:
        on = is_active(probed.path, active)
        if ctx.swap and not on:
            planned.plan.add('swapon', probed.path, 'activate swap',
                             functools.partial(_writes.swapon, ctx.runner, probed.path))
        elif not ctx.swap and on:
            planned.plan.add('swapoff', probed.path, 'deactivate swap (swap is off)',
                             functools.partial(_writes.swapoff, ctx.runner, probed.path))
        if ctx.swap:
            planned.swap_on.append(probed.path)


def plan_unmounted(ctx, found, mounts, swaps, planned, members, decision=None):
    """Swap off, then the state mount, then the data mount (or the tmpfs): only what is ours. A legacy data
    filesystem (C(decision)) counts as ours only when its own device is mounted there, whole."""
    plan = planned.plan
    targets = ctx.targets
    active = active_swap(swaps)
    fs = decision.fs if decision is not None else None
    swap_areas = list(found.magic('swap'))
    if fs is not None and fs.legacy:
        swap_areas.extend(probed for probed in decision.swap if probed not in swap_areas)
    for probed in swap_areas:
        if is_active(probed.path, active):
            plan.add('swapoff', probed.path, 'deactivate swap',
                     functools.partial(_writes.swapoff, ctx.runner, probed.path))
    state = _mountinfo.top_mount(mounts, targets.state)
    data = _mountinfo.top_mount(mounts, targets.data)
    if state is not None:
        if state.fstype != 'btrfs' or state.root != '/' + _layout.SUBVOL_STATE:
            raise MountConflict('%s: %s is mounted there, not a %s subvolume: left alone, nothing changed' % (
                targets.state, _mountinfo.describe_mount(state, members), _layout.SUBVOL_STATE), device=targets.state)
        plan.add('umount-state', targets.state, 'unmount', functools.partial(_writes.umount, ctx.runner, targets.state))
    if data is not None and is_legacy_mount(data, fs):
        plan.add('umount-data', targets.data, 'unmount the legacy %s data filesystem' % fs.fstype,
                 functools.partial(_writes.umount, ctx.runner, targets.data))
    elif data is not None:
        if data.fstype != 'tmpfs' and (data.fstype != 'btrfs' or data.root != '/' + _layout.SUBVOL_DATA):
            raise MountConflict('%s: %s is mounted there, not a %s subvolume or the volatile tmpfs: left alone, '
                                'nothing changed' % (targets.data, _mountinfo.describe_mount(data, members), _layout.SUBVOL_DATA),
                                device=targets.data)
        plan.add('umount-data', targets.data, 'unmount the %s' % ('tmpfs' if data.fstype == 'tmpfs' else 'data subvolume'),
                 functools.partial(_writes.umount, ctx.runner, targets.data))


def plan_fallback(ctx, mounts, members):
    """After a failure with state=mounted: undo a half-done persistent mount, then the tmpfs if the target is free."""
    planned = Planned()
    targets = ctx.targets
    data = _mountinfo.top_mount(mounts, targets.data)
    state = _mountinfo.top_mount(mounts, targets.state)
    if targets.data in ctx.mounted and state is None and data is not None and data.fstype == 'btrfs':
        planned.plan.add('umount-data', targets.data, 'unmount the data subvolume mounted without its state subvolume',
                         functools.partial(_writes.umount, ctx.runner, targets.data))
        data = None
    if data is None:
        planned.mounts[targets.data] = ('tmpfs', '/')
        planned.plan.add('mount-tmpfs', targets.data, 'mount a tmpfs (mode 0755, volatile) with the state directory '
                         '%s in it, so the host still boots' % targets.state, functools.partial(_mount_tmpfs, ctx))
    return planned


def active_swap(swaps):
    """Device numbers and kernel names of the active swap areas."""
    devnos, names = set(), set()
    for area in swaps:
        names.add(os.path.basename(area))
        try:
            info = os.stat(area)
        except OSError:
            continue
        if stat.S_ISBLK(info.st_mode):
            devnos.add(info.st_rdev)
    return devnos, names


def is_active(path, active):
    devnos, names = active
    try:
        if os.stat(path).st_rdev in devnos:
            return True
    except OSError:
        pass
    return os.path.basename(path) in names


def _mount_subvolume(ctx, fs, subvolume, target, path, degraded):
    _mount.make_dirs(ctx.targets.root, path)
    options = ['subvol=/' + subvolume] + (['degraded'] if degraded else []) + ctx.mount_options
    if ctx.scanned != fs.paths:
        # The kernel must know every member before the first mount (no udev here): device= has the mount scan them,
        # with no process of its own. Once a run is enough.
        options += ['device=' + member for member in fs.paths]
        ctx.scanned = list(fs.paths)
    _writes.mount(ctx.runner, fs.paths[0], target, 'btrfs', options)
    ctx.mounted.append(target)


def _mount_tmpfs(ctx):
    _mount.make_dirs(ctx.targets.root, _layout.DATA_MOUNT)
    _writes.mount(ctx.runner, 'tmpfs', ctx.targets.data, 'tmpfs', list(TMPFS_OPTIONS))
    ctx.mounted.append(ctx.targets.data)
    _mount.make_dirs(ctx.targets.root, _layout.STATE_DIR)

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Step 5 of the data filesystem: create it on the magic partitions, and undo what a killed creation left.

Creation order, so that a run killed anywhere converges on the next run: mkswap on the magic swap
partitions; mkfs.btrfs over all magic data partitions WITHOUT a label; mount the top level on a
temporary directory under <root>/run/lightwhale; create and verify the subvolumes; unmount; THEN set
the label lightwhale-data. The label is the commit point.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import glob
import os
import tempfile

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan


SUBVOLUMES = (_layout.SUBVOL_DATA, _layout.SUBVOL_STATE, _layout.SUBVOL_SNAPSHOTS)


class Creation:
    """The creation of a new data filesystem, step by step (each step is one plan action)."""

    def __init__(self, ctx, fs):
        self.ctx, self.fs = ctx, fs
        # The temporary top-level mount point, and whether it is mounted now.
        self.top, self.top_mounted = None, False
        # What the creation found: the new filesystem's uuid, its profiles and subvolumes.
        self.uuid = self.profiles = self.subvolumes = None

    def _probe(self, label, after):
        uuids = set()
        for path in self.fs.paths:
            sigs = [sig for sig in _blockdev.signatures(self.ctx.runner, path) if sig.get('type') == 'btrfs']
            if not sigs or (sigs[0].get('label') or '') != label:
                raise CommandError('%s: after %s, libblkid reports %s, not a btrfs %s' % (
                    path, after, sigs or 'no btrfs', 'labelled %s' % label if label else 'without a label'),
                    device=path)
            uuids.add(sigs[0].get('uuid'))
        if len(uuids) != 1:
            raise CommandError('after %s the devices %s report several filesystems: %s' % (
                after, ', '.join(self.fs.paths), ', '.join(sorted(str(item) for item in uuids))))
        return uuids.pop()

    def mkfs(self):
        data, metadata = self.fs.profiles
        _writes.make_btrfs(self.ctx.runner, self.fs.paths, data, metadata)
        self.uuid = self._probe('', 'mkfs.btrfs')

    def mount_top(self):
        _mount.make_dirs(self.ctx.targets.root, _layout.RUN_DIR)
        self.top = tempfile.mkdtemp(prefix=_layout.TOP_PREFIX, dir=self.ctx.targets.run_dir)
        _writes.scan_btrfs(self.ctx.runner, self.fs.paths)
        _writes.mount(self.ctx.runner, self.fs.paths[0], self.top, 'btrfs', ['subvolid=%d' % _btrfs.TOP_LEVEL])
        self.top_mounted = True

    def subvolume(self, name):
        path = os.path.join(self.top, name)
        _writes.create_subvolume(self.ctx.runner, path)
        # btrfs-progs has exited 0 on a failed create (btrfs-progs#730): ask the kernel.
        if not _btrfs.is_subvolume(path):
            raise CommandError('btrfs subvolume create %s reported success, but there is no subvolume' % path,
                               device=path)

    def umount_top(self):
        runner = self.ctx.runner
        self.profiles = _btrfs.profiles_of(_btrfs.filesystem_df(runner, self.top))
        self.subvolumes = sorted(item['path'] for item in _btrfs.subvolume_list(runner, self.top))
        absent = [name for name in SUBVOLUMES if name not in self.subvolumes]
        if absent:
            raise CommandError('the new filesystem lists no subvolume %s' % ', '.join(absent))
        _writes.umount(runner, self.top)
        self.top_mounted = False
        os.rmdir(self.top)
        self.top = None

    def label(self):
        _writes.label_btrfs(self.ctx.runner, self.fs.paths[0], _layout.DATA_LABEL)
        uuid = self._probe(_layout.DATA_LABEL, 'setting the label')
        if uuid != self.uuid:
            raise CommandError('the filesystem UUID changed from %s to %s while labelling' % (self.uuid, uuid))
        self.fs.uuid = uuid

    def cleanup(self):
        """Always run after the plan (finally): never leave the temporary top-level mount behind."""
        problems = []
        if self.top_mounted:
            undo = Plan()
            undo.add('cleanup-top', self.top, 'unmount the temporary top-level mount',
                     functools.partial(_writes.umount, self.ctx.runner, self.top))
            try:
                undo.apply()
                self.top_mounted = False
            except PersistenceError as exc:
                problems.append(exc.message)
        if self.top and not self.top_mounted and os.path.isdir(self.top):
            try:
                os.rmdir(self.top)
            except OSError as exc:
                problems.append('cannot remove %s: %s' % (self.top, exc))
        return problems


def make_swap(runner, path):
    _writes.make_swap(runner, path, _layout.SWAP_LABEL)
    sigs = _blockdev.signatures(runner, path)
    if [sig.get('type') for sig in sigs] != ['swap'] or sigs[0].get('label') != _layout.SWAP_LABEL:
        raise CommandError('%s: after mkswap, libblkid reports %s' % (path, sigs), device=path)


def plan_present(ctx, decision, planned):
    """Swap partitions and, when there is none, the data filesystem (steps 4 and 5)."""
    plan = planned.plan
    for probed in decision.mkswap:
        plan.add('mkswap', probed.path, 'format as swap, label %s' % _layout.SWAP_LABEL,
                 functools.partial(make_swap, ctx.runner, probed.path))
    if not decision.create:
        return
    fs = decision.fs
    creation = Creation(ctx, fs)
    planned.creation = creation
    data, metadata = fs.profiles
    plan.add('mkfs', None, 'create a btrfs (data %s, metadata %s) without a label over %s' % (
        data, metadata, ', '.join(fs.paths)), creation.mkfs)
    plan.add('mount-top', None, 'mount the top level of the new filesystem on a temporary directory under %s'
             % ctx.targets.run_dir, creation.mount_top)
    for name in SUBVOLUMES:
        plan.add('subvolume', None, 'create and verify subvolume %s' % name,
                 functools.partial(creation.subvolume, name))
    plan.add('umount-top', None, 'unmount the temporary top-level mount', creation.umount_top)
    plan.add('label', None, 'label the filesystem %s (the commit point)' % _layout.DATA_LABEL, creation.label)


def leftovers(targets, mounts):
    """Temporary top-level mounts and directories an interrupted creation left: (mounts, dirs)."""
    stale = [mount for mount in mounts if targets.is_top_dir(mount.target)]
    dirs = sorted(path for path in glob.glob(os.path.join(targets.run_dir, _layout.TOP_PREFIX + '*'))
                  if os.path.isdir(path) and not os.path.islink(path))
    return stale, dirs


def _remove_leftovers(ctx, stale, dirs):
    for mount in reversed(stale):
        _writes.umount(ctx.runner, mount.target)
    for path in dirs:
        try:
            os.rmdir(path)
        except OSError as exc:
            raise PersistenceError('cannot remove the leftover directory %s: %s' % (path, exc))


def plan_cleanup(ctx, mounts):
    """Undo what a killed creation left in this mount namespace (a reboot does it by itself)."""
    plan = Plan()
    stale, dirs = leftovers(ctx.targets, mounts)
    if stale or dirs:
        what = ['unmount %s' % mount.target for mount in stale] + ['remove %s' % path for path in dirs]
        plan.add('cleanup', None, 'undo what an interrupted creation left: %s' % ', '.join(what),
                 functools.partial(_remove_leftovers, ctx, stale, dirs))
    return plan


def busy_by_leftovers(ctx, mounts, disks):
    """Disks whose only use is a leftover temporary mount (check mode: the cleanup would free them)."""
    stale, _dirs = leftovers(ctx.targets, mounts)
    members = _btrfs.mounted_members()
    fsids = set(_mountinfo.fsid_of(mount, members) for mount in stale) - set([None])
    names = set(name for name, fsid in members.items() if fsid in fsids)
    busy = set()
    for disk in disks:
        if disk.skipped or not disk.usage:
            continue
        parts = set(_blockdev.kernel_partitions(disk.device.name))
        only_busy = all(reason.startswith('busy') for reason in disk.usage)
        if only_busy and parts & names:
            busy.add(disk.path)
    return busy

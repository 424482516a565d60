# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The data filesystem (SPEC steps 1, 4, 5, 6): find it or create it, mount it or the tmpfs, swap.

survey() probes the candidates (read-only), decide() reads the survey into a Decision (which
filesystem, what to create, what is wrong), and the plan_* functions turn a decision and what the
kernel says is mounted into a Plan. Nothing here writes outside a Plan's actions.

Creation order, so that a run killed anywhere converges on the next run: mkswap on the magic swap
partitions; mkfs.btrfs over all magic data partitions WITHOUT a label; mount the top level on a
temporary directory under <root>/run/lightwhale; create and verify the subvolumes; unmount; THEN set
the label lightwhale-data. The label is the commit point: a labelled filesystem is never formatted,
and an unlabelled btrfs on magic data partitions is an interrupted creation, redone.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import glob
import os
import stat
import tempfile

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import (
    CommandError, MountConflict, PersistenceError)
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan

SUBVOLUMES = (_layout.SUBVOL_DATA, _layout.SUBVOL_STATE, _layout.SUBVOL_SNAPSHOTS)
# Temporary top-level mounts of a creation live in <root>/run/lightwhale/<prefix>XXXXXX.
TOP_PREFIX = 'datafs-top-'
TMPFS_OPTIONS = ('mode=0755',)


class DataFsFailure(PersistenceError):
    """The data filesystem cannot be used (damaged, ambiguous, or its partitions hold something else)."""


class Targets:
    """The paths this module mounts on, under the (resolved) root."""

    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.data = _mount.under(self.root, _layout.DATA_MOUNT)
        self.state = _mount.under(self.root, _layout.STATE_DIR)
        self.run_dir = _mount.under(self.root, _layout.RUN_DIR)

    def is_top_dir(self, path):
        return os.path.dirname(path) == self.run_dir and os.path.basename(path).startswith(TOP_PREFIX)


class Context:
    """What every planner needs: the runner, the targets and the settings of this run."""

    def __init__(self, runner, root, swap, mount_options, timeout, replace_tmpfs=False):
        self.runner = runner
        self.targets = Targets(root)
        self.swap = swap
        self.mount_options = list(mount_options)
        self.timeout = timeout
        # Replace an empty tmpfs at the data mount point by the data filesystem (see empty_tmpfs).
        self.replace_tmpfs = replace_tmpfs
        # Mount targets this run mounted, in order (the failure fallback undoes a half-done persistent mount).
        self.mounted = []


# ---------------------------------------------------------------------------------------------- survey

class Probed:
    """One probed block device of a candidate: the whole disk (C(part) None) or one of its partitions."""

    def __init__(self, path, disk, part, signatures, superblock=None):
        self.path = path
        self.disk = disk
        self.part = part
        self.signatures = signatures
        self.superblock = superblock

    @property
    def role(self):
        name = (self.part or {}).get('name')
        if name == _layout.DATA_PARTLABEL:
            return 'data'
        if name == _layout.SWAP_PARTLABEL:
            return 'swap'
        return None

    def signature(self, kind):
        for sig in self.signatures:
            if sig.get('type') == kind:
                return sig
        return None

    def types(self):
        return [sig.get('type') for sig in self.signatures]

    def __repr__(self):
        return 'Probed(%r)' % self.path


class Survey:
    def __init__(self, disks):
        self.disks = disks
        self.probed = []
        self.notes = []

    def magic(self, role):
        return [probed for probed in self.probed if probed.role == role]

    def magic_partitions(self):
        return dict(swap=[probed.path for probed in self.magic('swap')],
                    data=[probed.path for probed in self.magic('data')])


def survey(runner, disks, timeout, sync=True):
    """Probe every candidate disk and each partition in its table (read-only; partx tells the kernel of them).

    With C(sync=False) the kernel is not told of anything (a strictly read-only look, as persistence_info takes):
    a partition the kernel does not know with the bounds of the table is noted and not probed.
    """
    found = Survey(disks)
    for disk in disks:
        if disk.skipped:
            continue
        whole = Probed(disk.path, disk, None, disk.signatures)
        if whole.signature('btrfs'):
            whole.superblock = _btrfs.read_superblock(disk.path, disk.size)
        found.probed.append(whole)
        nodes = [part['device'] for part in disk.partitions]
        if nodes and not disk.usage and sync:
            _blockdev.sync_partitions(runner, disk.path, nodes, timeout, disk.partitions)
        geometry = _blockdev.kernel_geometry(disk.device.name) if nodes and not sync else {}
        for part in disk.partitions:
            node = part['device']
            if not sync and geometry.get(os.path.basename(node)) != (part['start'], part['size']):
                found.notes.append('%s: partition %s is not known to the kernel with the bounds of the table on the '
                                   'disk: not probed' % (disk.path, node))
                continue
            if not _blockdev.partition_node_ready(node):
                # Only possible on a disk in use, where partx is not run (or without sync: no device node).
                found.notes.append('%s: partition %s is not known to the kernel and %s: not probed' % (
                    disk.path, node, 'the disk is in use' if sync else 'it has no device node'))
                continue
            probed = Probed(node, disk, part, _blockdev.signatures(runner, node))
            if probed.role == 'data' or probed.signature('btrfs'):
                probed.superblock = _btrfs.read_superblock(node, part['size'])
            found.probed.append(probed)
    return found


# ---------------------------------------------------------------------------------------------- decide

class Filesystem:
    """The data filesystem found, or the one to be created (C(new), no uuid yet)."""

    def __init__(self, uuid, members, num_devices, missing, new=False, profiles=(None, None)):
        self.uuid = uuid
        self.members = members
        self.num_devices = num_devices
        # Device ids missing (by the superblocks); None when some are missing but their ids cannot be told.
        self.missing = missing
        self.new = new
        self.profiles = profiles

    @property
    def paths(self):
        return [member.path for member in self.members]

    @property
    def degraded(self):
        return self.missing is None or bool(self.missing)

    def describe_missing(self):
        if self.missing is None:
            return '%d of %d members (device ids unknown)' % (self.num_devices - len(self.members), self.num_devices)
        return ', '.join('devid %d' % devid for devid in self.missing) + ' (of %d)' % self.num_devices


class Decision:
    def __init__(self):
        self.fs = None
        self.create = False
        self.failure = None
        self.refused = []
        self.warnings = []
        self.swap = []
        self.mkswap = []


def _creation_refusal(probed):
    """Why a magic data partition may not be formatted, or None (blank, or an unlabelled btrfs: ours to redo)."""
    types = probed.types()
    superblock = probed.superblock
    if not types:
        if superblock is not None and superblock.is_btrfs and superblock.label:
            return 'holds a btrfs superblock labelled %r that libblkid rejects (%s)' % (
                superblock.label, superblock.problem() or 'unknown reason')
        return None
    if types == ['btrfs'] and not probed.signature('btrfs').get('label'):
        return None
    labels = ['%s%s' % (sig.get('type'), ' labelled %r' % sig['label'] if sig.get('label') else '')
              for sig in probed.signatures]
    return ('holds %s; a magic data partition is formatted only when blank or holding an unlabelled btrfs '
            '(an interrupted creation)' % ', '.join(labels))


def decide(found, swap, busy_ok=()):
    """Read a Survey: the data filesystem (found or to create), swap partitions, warnings, or a failure.

    C(busy_ok) lists disks whose 'busy' reason is only a leftover temporary mount that the plan removes.
    """
    decision = Decision()
    decision.warnings.extend(found.notes)
    labelled = {}
    damaged = []
    for probed in found.probed:
        sig = probed.signature('btrfs')
        superblock = probed.superblock
        if sig is not None and sig.get('label') == _layout.DATA_LABEL:
            problem = superblock.problem() if superblock is not None else 'superblock not readable'
            if problem is None and superblock.fsid != sig.get('uuid'):
                problem = 'superblock fsid %s differs from what libblkid reports (%s)' % (superblock.fsid, sig.get('uuid'))
            if problem:
                damaged.append((probed, problem))
            else:
                labelled.setdefault(superblock.fsid, []).append(probed)
        elif superblock is not None and superblock.is_btrfs and superblock.label == _layout.DATA_LABEL:
            # A newer libblkid verifies the checksum and reports nothing: still our filesystem, damaged.
            damaged.append((probed, superblock.problem() or 'not recognised by libblkid'))

    if len(labelled) > 1:
        decision.failure = ('several filesystems are labelled %s: %s; list the devices of the one to use'
                            % (_layout.DATA_LABEL, '; '.join('%s on %s' % (fsid, ', '.join(p.path for p in members))
                                                             for fsid, members in sorted(labelled.items()))))
        return decision
    if labelled:
        fsid, members = list(labelled.items())[0]
        devids = {}
        for member in members:
            devids.setdefault(member.superblock.devid, []).append(member.path)
        clones = ['devid %d on %s' % (devid, ' and '.join(paths)) for devid, paths in sorted(devids.items())
                  if len(paths) > 1]
        if clones:
            decision.failure = ('data filesystem %s: several devices claim the same member (%s), e.g. a cloned disk; '
                                'detach the copies' % (fsid, '; '.join(clones)))
            return decision
        members.sort(key=lambda member: member.superblock.devid)
        num_devices = max(member.superblock.num_devices for member in members)
        missing = _btrfs.missing_devids(num_devices, devids)
        decision.fs = Filesystem(fsid, members, num_devices, missing)
        for probed, problem in damaged:
            if probed.superblock is not None and probed.superblock.fsid == fsid:
                decision.warnings.append('%s: a member of the data filesystem %s has a damaged superblock (%s): '
                                         'counted as missing' % (probed.path, fsid, problem))
            else:
                decision.warnings.append('%s: holds a damaged %s superblock of another filesystem (%s): left untouched'
                                         % (probed.path, _layout.DATA_LABEL, problem))
        taken = set(member.path for member in members) | set(probed.path for probed, _problem in damaged)
        extra = [probed.path for probed in found.magic('data') if probed.path not in taken]
        if extra:
            decision.warnings.append(
                'magic data partition(s) %s are not part of the data filesystem %s and are left untouched '
                '(adding devices to an existing filesystem is not supported yet)' % (', '.join(extra), fsid))
    elif damaged:
        decision.failure = '; '.join(
            '%s: holds the %s filesystem%s but its superblock is damaged (%s); nothing was formatted. Repair it '
            '(btrfs rescue super-recover %s) or wipe it to start anew' % (
                probed.path, _layout.DATA_LABEL,
                ' %s' % probed.superblock.fsid if probed.superblock is not None else '', problem, probed.path)
            for probed, problem in damaged)
        return decision
    else:
        data = found.magic('data')
        # A candidate disk that still carries the magic header is not laid out yet (steps 2-3 unfinished: a first
        # boot killed between two disks). Creating now would leave it out of the filesystem for good: magic_disk
        # (state=partitioned) lays out every magic disk first, then one filesystem goes over all of them.
        pending = [disk.path for disk in found.disks if not disk.skipped and disk.magic]
        if data and not pending:
            for probed in data:
                why = _creation_refusal(probed)
                if why is None and probed.disk.read_only:
                    why = 'is on the read-only disk %s' % probed.disk.path
                if why is None and probed.disk.usage and probed.disk.path not in busy_ok:
                    why = 'its disk is in use: %s' % '; '.join(probed.disk.usage)
                if why:
                    decision.refused.append(dict(device=probed.path, reason=why))
            if decision.refused:
                decision.failure = 'cannot create the data filesystem: ' + '; '.join(
                    '%s %s' % (item['device'], item['reason']) for item in decision.refused)
                return decision
            decision.fs = Filesystem(None, data, len(data), [], new=True, profiles=_btrfs.profiles_for(len(data)))
            decision.create = True

    if decision.fs is not None:
        disks = set(member.disk.path for member in decision.fs.members)
        for probed in found.magic('swap'):
            if probed.disk.path not in disks:
                continue
            sig = probed.signature('swap')
            if sig is not None and sig.get('label') == _layout.SWAP_LABEL and len(probed.signatures) == 1:
                decision.swap.append(probed)
            elif not probed.signatures and probed.disk.read_only:
                if swap:
                    decision.warnings.append('magic swap partition %s is on the read-only disk %s: not formatted'
                                             % (probed.path, probed.disk.path))
            elif not probed.signatures:
                if swap:
                    decision.swap.append(probed)
                    decision.mkswap.append(probed)
            else:
                decision.warnings.append('magic swap partition %s holds %s, not a swap area labelled %s: left untouched'
                                         % (probed.path, ', '.join(probed.types()), _layout.SWAP_LABEL))
    return decision


# ---------------------------------------------------------------------------------------------- mounts

def top_mount(mounts, target):
    """The mount visible at C(target) (the last one mounted there), or None."""
    found = None
    for mount in mounts:
        if mount.target == target:
            found = mount
    return found


def fsid_of(mount, members):
    """The btrfs fsid of a mount, by its source device and the kernel's member lists; None if not known."""
    if mount is None or mount.fstype != 'btrfs':
        return None
    try:
        device = _blockdev.resolve(mount.source)
    except PersistenceError:
        return None
    return members.get(device.name)


def is_subvolume_mount(mount, subvolume, fsid, members):
    return (mount is not None and fsid is not None and mount.fstype == 'btrfs' and mount.root == '/' + subvolume
            and fsid_of(mount, members) == fsid)


def describe_mount(mount, members):
    if mount is None:
        return 'not mounted'
    if mount.fstype == 'btrfs':
        fsid = fsid_of(mount, members)
        return 'btrfs %s subvolume %s of filesystem %s' % (mount.source, mount.root, fsid or 'unknown')
    if mount.fstype == 'tmpfs':
        return 'tmpfs (volatile)'
    return '%s %s (root %s)' % (mount.fstype, mount.source, mount.root)


def mount_result(mount, members):
    if mount is None:
        return None
    options = list(mount.options)
    options.extend(option for option in mount.super_options if option not in options)
    return dict(target=mount.target, source=mount.source, fstype=mount.fstype, root=mount.root,
                uuid=fsid_of(mount, members), options=options)


def leftovers(targets, mounts):
    """Temporary top-level mounts and directories an interrupted creation left: (mounts, dirs)."""
    stale = [mount for mount in mounts if targets.is_top_dir(mount.target)]
    dirs = sorted(path for path in glob.glob(os.path.join(targets.run_dir, TOP_PREFIX + '*'))
                  if os.path.isdir(path) and not os.path.islink(path))
    return stale, dirs


def _remove_leftovers(ctx, stale, dirs):
    for mount in reversed(stale):
        _mount.umount(ctx.runner, mount.target)
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
    fsids = set(fsid_of(mount, members) for mount in stale) - set([None])
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


# ---------------------------------------------------------------------------------------------- actions

class Creation:
    """The creation of a new data filesystem, step by step (each step is one plan action)."""

    def __init__(self, ctx, fs):
        self.ctx = ctx
        self.fs = fs
        self.top = None
        self.top_mounted = False
        self.uuid = None
        self.profiles = None
        self.subvolumes = None

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
        self.top = tempfile.mkdtemp(prefix=TOP_PREFIX, dir=self.ctx.targets.run_dir)
        _btrfs.device_scan(self.ctx.runner, self.fs.paths)
        _mount.mount(self.ctx.runner, self.fs.paths[0], self.top, 'btrfs', ['subvolid=%d' % _btrfs.TOP_LEVEL])
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
        _mount.umount(runner, self.top)
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
            try:
                _mount.umount(self.ctx.runner, self.top)
                self.top_mounted = False
            except PersistenceError as exc:
                problems.append(exc.message)
        if self.top and not self.top_mounted and os.path.isdir(self.top):
            try:
                os.rmdir(self.top)
            except OSError as exc:
                problems.append('cannot remove %s: %s' % (self.top, exc))
        return problems


def _make_swap(runner, path):
    _writes.make_swap(runner, path, _layout.SWAP_LABEL)
    sigs = _blockdev.signatures(runner, path)
    if [sig.get('type') for sig in sigs] != ['swap'] or sigs[0].get('label') != _layout.SWAP_LABEL:
        raise CommandError('%s: after mkswap, libblkid reports %s' % (path, sigs), device=path)


def _mount_subvolume(ctx, fs, subvolume, target, path, degraded):
    _mount.make_dirs(ctx.targets.root, path)
    _btrfs.device_scan(ctx.runner, fs.paths)
    options = ['subvol=/' + subvolume] + (['degraded'] if degraded else []) + ctx.mount_options
    _mount.mount(ctx.runner, fs.paths[0], target, 'btrfs', options)
    ctx.mounted.append(target)


def _mount_tmpfs(ctx):
    _mount.make_dirs(ctx.targets.root, _layout.DATA_MOUNT)
    _mount.mount(ctx.runner, 'tmpfs', ctx.targets.data, 'tmpfs', list(TMPFS_OPTIONS))
    ctx.mounted.append(ctx.targets.data)
    _mount.make_dirs(ctx.targets.root, _layout.STATE_DIR)


class Planned:
    """A plan plus what it needs around it: the creation (for its finally and its findings)."""

    def __init__(self):
        self.plan = Plan()
        self.creation = None
        # Predictions for check mode: mounts ({target: (fstype, root)}) and swap areas after the plan.
        self.mounts = {}
        self.swap_on = []

    def apply(self):
        problems = []
        try:
            self.plan.apply()
        finally:
            if self.creation is not None:
                problems = self.creation.cleanup()
        return problems


def plan_present(ctx, decision, planned):
    """Swap partitions and, when there is none, the data filesystem (steps 4 and 5)."""
    plan = planned.plan
    for probed in decision.mkswap:
        plan.add('mkswap', probed.path, 'format as swap, label %s' % _layout.SWAP_LABEL,
                 functools.partial(_make_swap, ctx.runner, probed.path))
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


def empty_tmpfs(ctx, mount, mounts):
    """Whether C(mount), at the data mount point, is a tmpfs with nothing in it but an empty state directory and
    nothing mounted below it: the volatile tmpfs of an earlier step of this boot, which may be replaced."""
    target = ctx.targets.data
    if mount is None or mount.fstype != 'tmpfs':
        return False
    if any(other.target.startswith(target + '/') for other in mounts):
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
        mount = top_mount(mounts, target)
        if mount is None:
            todo.append((target, subvolume, path))
        elif target == ctx.targets.data and ctx.replace_tmpfs and empty_tmpfs(ctx, mount, mounts):
            todo.append((target, subvolume, path))
        elif not is_subvolume_mount(mount, subvolume, fs.uuid, members):
            if target == ctx.targets.data and mount.fstype == 'tmpfs' and not fs.new:
                message = ('%s: a tmpfs is mounted (volatile mode) although the data filesystem %s is there: an '
                           'earlier run could not mount it, or it appeared since. Nothing changed; unmount the tmpfs '
                           '(state: unmounted) and run again' % (target, fs.uuid))
                raise MountConflict(message, device=target, mode='volatile', failure=message)
            raise MountConflict('%s: %s is mounted there, not subvolume %s of the data filesystem %s; nothing '
                                'changed (unmount it first, for example with state: unmounted)' % (
                                    target, describe_mount(mount, members), subvolume, fs.uuid or '(new)'),
                                device=target)
    return todo


def plan_volatile(ctx, mounts, planned, members):
    """The tmpfs at the data mount point with the state directory in it (no data filesystem)."""
    plan = planned.plan
    targets = ctx.targets
    mount = top_mount(mounts, targets.data)
    state = top_mount(mounts, targets.state)
    if mount is not None and mount.fstype != 'tmpfs':
        raise MountConflict('%s: %s is mounted there, and there is no data filesystem: nothing changed (unmount it '
                            'first, for example with state: unmounted)' % (targets.data, describe_mount(mount, members)),
                            device=targets.data)
    if state is not None and state is not mount:
        raise MountConflict('%s: %s is mounted there, and there is no data filesystem: nothing changed' % (
            targets.state, describe_mount(state, members)), device=targets.state)
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
        return
    # Refuse a conflict before anything is written, creation included.
    todo = _expect_persistent(ctx, decision, mounts, members)
    tmpfs = top_mount(mounts, ctx.targets.data)
    if tmpfs is None:
        # A link or a file where the mount point goes: refused before anything is written.
        _mount.missing_dirs(ctx.targets.root, _layout.DATA_MOUNT)
    plan_present(ctx, decision, planned)
    fs = decision.fs
    degraded = fs.degraded
    if tmpfs is not None and tmpfs.fstype == 'tmpfs' and any(target == ctx.targets.data for target, _s, _p in todo):
        # replace_tmpfs: the empty volatile tmpfs goes, under the same lock as the mounts that take its place.
        planned.plan.add('umount-tmpfs', ctx.targets.data, 'unmount the empty volatile tmpfs (replace_tmpfs)',
                         functools.partial(_mount.umount, ctx.runner, ctx.targets.data))
    for target, subvolume, path in todo:
        step = 'mount-data' if target == ctx.targets.data else 'mount-state'
        description = 'mount subvolume %s of the %s%s' % (
            subvolume, 'new data filesystem' if fs.new else 'data filesystem %s' % fs.uuid,
            ' degraded (missing %s)' % fs.describe_missing() if degraded else '')
        planned.plan.add(step, target, description,
                         functools.partial(_mount_subvolume, ctx, fs, subvolume, target, path, degraded))
    planned.mounts[ctx.targets.data] = ('btrfs', '/' + _layout.SUBVOL_DATA)
    planned.mounts[ctx.targets.state] = ('btrfs', '/' + _layout.SUBVOL_STATE)
    plan_swap(ctx, decision, swaps, planned)


def plan_swap(ctx, decision, swaps, planned):
    active = active_swap(swaps)
    for probed in decision.swap:
        on = is_active(probed.path, active)
        if ctx.swap and not on:
            planned.plan.add('swapon', probed.path, 'activate swap',
                             functools.partial(_mount.swapon, ctx.runner, probed.path))
        elif not ctx.swap and on:
            planned.plan.add('swapoff', probed.path, 'deactivate swap (swap is off)',
                             functools.partial(_mount.swapoff, ctx.runner, probed.path))
        if ctx.swap:
            planned.swap_on.append(probed.path)


def plan_unmounted(ctx, found, mounts, swaps, planned, members):
    """Swap off, then the state mount, then the data mount (or the tmpfs): only what is ours."""
    plan = planned.plan
    targets = ctx.targets
    active = active_swap(swaps)
    for probed in found.magic('swap'):
        if is_active(probed.path, active):
            plan.add('swapoff', probed.path, 'deactivate swap',
                     functools.partial(_mount.swapoff, ctx.runner, probed.path))
    state = top_mount(mounts, targets.state)
    data = top_mount(mounts, targets.data)
    if state is not None and state is not data:
        if state.fstype != 'btrfs' or state.root != '/' + _layout.SUBVOL_STATE:
            raise MountConflict('%s: %s is mounted there, not a %s subvolume: left alone, nothing changed' % (
                targets.state, describe_mount(state, members), _layout.SUBVOL_STATE), device=targets.state)
        plan.add('umount-state', targets.state, 'unmount', functools.partial(_mount.umount, ctx.runner, targets.state))
    if data is not None:
        if data.fstype != 'tmpfs' and (data.fstype != 'btrfs' or data.root != '/' + _layout.SUBVOL_DATA):
            raise MountConflict('%s: %s is mounted there, not a %s subvolume or the volatile tmpfs: left alone, '
                                'nothing changed' % (targets.data, describe_mount(data, members), _layout.SUBVOL_DATA),
                                device=targets.data)
        plan.add('umount-data', targets.data, 'unmount the %s' % ('tmpfs' if data.fstype == 'tmpfs' else 'data subvolume'),
                 functools.partial(_mount.umount, ctx.runner, targets.data))


def plan_fallback(ctx, mounts, members):
    """After a failure with state=mounted: undo a half-done persistent mount, then the tmpfs if the target is free."""
    planned = Planned()
    targets = ctx.targets
    data = top_mount(mounts, targets.data)
    state = top_mount(mounts, targets.state)
    if targets.data in ctx.mounted and (state is None or state is data) and data is not None and data.fstype == 'btrfs':
        planned.plan.add('umount-data', targets.data, 'unmount the data subvolume mounted without its state subvolume',
                         functools.partial(_mount.umount, ctx.runner, targets.data))
        data = None
    if data is None:
        planned.mounts[targets.data] = ('tmpfs', '/')
        planned.plan.add('mount-tmpfs', targets.data, 'mount a tmpfs (mode 0755, volatile) with the state directory '
                         '%s in it, so the host still boots' % targets.state, functools.partial(_mount_tmpfs, ctx))
    return planned


# ---------------------------------------------------------------------------------------------- report

def describe_state(ctx, decision, mounts, swaps, members):
    """What a diff shows: the data filesystem, the two mount points, swap."""
    lines = []
    fs = decision.fs if decision is not None else None
    if fs is None:
        lines.append('data filesystem: none')
    elif fs.new:
        lines.append('data filesystem: none yet (magic data partitions %s)' % ', '.join(fs.paths))
    else:
        lines.append('data filesystem: btrfs %s %s on %s%s' % (
            _layout.DATA_LABEL, fs.uuid, ', '.join(fs.paths),
            ', missing %s' % fs.describe_missing() if fs.degraded else ''))
    for target in (ctx.targets.data, ctx.targets.state):
        lines.append('%s: %s' % (target, describe_mount(top_mount(mounts, target), members)))
    active = active_swap(swaps)
    ours = [probed.path for probed in (decision.swap if decision is not None else []) if is_active(probed.path, active)]
    lines.append('swap: %s' % (', '.join(ours) or 'none'))
    return '\n'.join(lines) + '\n'


def describe_predicted(ctx, decision, planned, state, mounts, swaps, members):
    """What the diff's 'after' will be once the plan has run (check mode)."""
    lines = []
    fs = decision.fs if decision is not None else None
    if fs is None:
        lines.append('data filesystem: none')
    elif fs.new:
        lines.append('data filesystem: btrfs %s (new; data %s, metadata %s) on %s' % (
            _layout.DATA_LABEL, fs.profiles[0], fs.profiles[1], ', '.join(fs.paths)))
    else:
        lines.append('data filesystem: btrfs %s %s on %s%s' % (
            _layout.DATA_LABEL, fs.uuid, ', '.join(fs.paths),
            ', missing %s' % fs.describe_missing() if fs.degraded else ''))
    for target in (ctx.targets.data, ctx.targets.state):
        if state == 'unmounted':
            what = 'not mounted'
        elif state == 'mounted' and target in planned.mounts:
            fstype, root = planned.mounts[target]
            if fstype == 'tmpfs':
                what = 'tmpfs (volatile)'
            else:
                what = 'btrfs %s subvolume %s of filesystem %s' % (fs.paths[0], root, fs.uuid or '(new)')
        elif state == 'mounted':
            what = 'not mounted'
        else:
            what = describe_mount(top_mount(mounts, target), members)
        lines.append('%s: %s' % (target, what))
    if state == 'mounted':
        swap_on = planned.swap_on
    elif state == 'unmounted':
        swap_on = []
    else:
        active = active_swap(swaps)
        swap_on = [probed.path for probed in (decision.swap if decision is not None else [])
                   if is_active(probed.path, active)]
    lines.append('swap: %s' % (', '.join(swap_on) or 'none'))
    return '\n'.join(lines) + '\n'


def filesystem_facts(ctx, fs, mounts, members, creation=None):
    """Profiles and subvolumes, read through a mount of the filesystem in this namespace (or the creation's)."""
    facts = dict(data_profile=None, metadata_profile=None, subvolumes=[], read_from=None)
    if fs is None:
        return facts
    mount = top_mount(mounts, ctx.targets.data)
    if not is_subvolume_mount(mount, _layout.SUBVOL_DATA, fs.uuid, members):
        mount = None
        for candidate in mounts:
            if candidate.fstype == 'btrfs' and fs.uuid and fsid_of(candidate, members) == fs.uuid:
                mount = candidate
    if mount is not None:
        df = _btrfs.filesystem_df(ctx.runner, mount.target)
        facts['data_profile'], facts['metadata_profile'] = _btrfs.profiles_of(df)
        facts['subvolumes'] = sorted(item['path'] for item in _btrfs.subvolume_list(ctx.runner, mount.target))
        facts['read_from'] = mount.target
    elif creation is not None and creation.profiles is not None:
        facts['data_profile'], facts['metadata_profile'] = creation.profiles
        facts['subvolumes'] = creation.subvolumes
    return facts

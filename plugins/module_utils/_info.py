# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host's persistence state as facts, for persistence_info: read only, from the probes of the other core files.

The mode comes from what the kernel says is mounted at <root>/mnt/lightwhale-data; a mounted data filesystem is
described by the kernel (/sys/fs/btrfs) and btrfs-progs through its mount, one that is not mounted by its superblocks
(the survey of _datafs_find). Nothing here writes, takes the lock, or tells the kernel anything (no partx).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _candidates
from ansible_collections.lightwhale.persistence.plugins.module_utils import _conversion
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_find
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_report
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _lvm
from ansible_collections.lightwhale.persistence.plugins.module_utils import _magic
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot
from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot_run
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay
from ansible_collections.lightwhale.persistence.plugins.module_utils import _units
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

MODES = ('persistent', 'degraded', 'volatile', 'none-yet')
BY_ID = '/dev/disk/by-id'
SYS_CLASS_BLOCK = '/sys/class/block'
WAITING = 'carries the magic header: laid out at the next boot'


def data_mount_kind(mount, fsid, label):
    """What is mounted at the data mount point: 'none', 'tmpfs', 'datafs' (subvolume @lightwhale-data of a btrfs
    labelled lightwhale-data, C(fsid) and C(label) as the kernel has them) or 'other'."""
    if mount is None:
        return 'none'
    if mount.fstype == 'tmpfs':
        return 'tmpfs'
    if (mount.fstype == 'btrfs' and fsid is not None and label == _layout.DATA_LABEL
            and mount.root == '/' + _layout.SUBVOL_DATA):
        return 'datafs'
    return 'other'


def mode_of(kind, missing):
    """The mode: persistent or degraded on the data filesystem, volatile on the tmpfs, none-yet otherwise."""
    if kind == 'legacy':
        return 'persistent'
    if kind == 'datafs':
        return 'degraded' if missing else 'persistent'
    if kind == 'tmpfs':
        return 'volatile'
    return 'none-yet'


def classify(disk):
    """(empty, reasons): whether a candidate disk is empty - fit to be marked without force - and if not, why.

    Empty means: not passed over by the scan, no magic header, not read-only, not in use (mounted, swap, holders,
    an exclusive open refused), no signature, no partition (on the disk or known to the kernel), and zero bytes in
    its first and last MiB (the checks of magic_disk state=present, from _magic).
    """
    if disk.skipped:
        return False, [disk.skipped]
    if disk.magic:
        return False, [WAITING]
    reasons = _magic.unfit(disk)
    if reasons:
        return False, reasons
    found = _magic.contents(disk)
    if found:
        return False, ['holds ' + ', '.join(found)]
    return True, []


def by_id_links(directory=BY_ID, dev_dir='/dev'):
    """{kernel name: [/dev/disk/by-id/... links to it]}; empty without udev (no such directory)."""
    links = {}
    try:
        entries = sorted(os.listdir(directory))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return links
        raise PersistenceError('cannot list %s: %s' % (directory, exc))
    for entry in entries:
        path = os.path.join(directory, entry)
        target = os.path.realpath(path)
        if os.path.dirname(target) == dev_dir and target != path:
            links.setdefault(os.path.basename(target), []).append(path)
    return links


def model_of(name, sys_class_block=SYS_CLASS_BLOCK):
    """The disk's model as sysfs has it (SCSI, ATA, NVMe, virtio has none), or None."""
    try:
        with open(os.path.join(sys_class_block, name, 'device', 'model')) as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def disk_fact(disk, empty, reasons, ids, model):
    """One candidate as reported: what magic_disk reports of it, and whether it is empty, and why not."""
    fact = disk.to_result()
    fact.update(empty=empty, reasons=reasons, ids=ids, model=model, name=disk.device.name)
    return fact


def empty_fact(fact):
    """The short form of an empty disk that the enable role's selector reads."""
    return dict((key, fact[key]) for key in ('device', 'given', 'name', 'size', 'ids', 'model'))


def read_status(root):
    """(document, problem): the status file <root>/run/lightwhale/persistence.json, or (None, None) when absent."""
    path = os.path.join(root, _layout.STATUS_FILE.lstrip('/'))
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        return None, 'cannot read the status file %s: %s' % (path, exc)
    try:
        status = json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, 'the status file %s is not JSON: %s' % (path, exc)
    if not isinstance(status, dict):
        return None, 'the status file %s holds %s, not an object' % (path, type(status).__name__)
    return status, None


def overlay_facts(root, mounts, paths):
    """(overlays, problems): each of C(paths) with its layers (default bases) and whether its overlay is mounted."""
    clean, bases = _overlay.validate_options(paths, _layout.OVERLAY_LOWER_BASE, _layout.OVERLAY_UPPER_BASE,
                                             _layout.OVERLAY_WORK_BASE)
    facts, problems = [], []
    for path in clean:
        state = _overlay.inspect(mounts, _overlay.layers_for(root, path, bases))
        facts.append(state.layers.to_result(state.overlay is not None))
        problems.extend(state.problems)
    return facts, problems


def space_of(path):
    """Size and free space of the filesystem at C(path), as statfs says (btrfs: usable space, after RAID1)."""
    info = os.statvfs(path)
    return dict(size=info.f_blocks * info.f_frsize, free=info.f_bavail * info.f_frsize)


def by_devid(names, dev_dir='/dev'):
    """Member names in btrfs device-id order, as lw_datafs lists members (each id read from the member's
    superblock); a member whose superblock cannot be read goes last."""
    def key(name):
        try:
            superblock = _btrfs.parse_superblock(_blockdev.read_bytes(
                os.path.join(dev_dir, name), _btrfs.SUPERBLOCK_OFFSET, _btrfs.SUPERBLOCK_SIZE))
        except (PersistenceError, ValueError):
            return (1, 0, name)
        return (0, superblock.devid, name) if superblock.is_btrfs else (1, 0, name)
    return sorted(names, key=key)


def kernel_filesystem(fsid, label, sys_fs_btrfs=_btrfs.SYS_FS_BTRFS):
    """A mounted data filesystem as the kernel describes it: members present (in device-id order) and missing,
    device count."""
    names = by_devid(_btrfs.kernel_devices(fsid, sys_fs_btrfs) or [])
    missing = _btrfs.kernel_missing(fsid, sys_fs_btrfs) or []
    return dict(label=label, uuid=fsid, mounted=True, members=['/dev/' + name for name in names],
                missing=['devid %d' % devid for devid in missing],
                num_devices=_btrfs.member_count(fsid, sys_fs_btrfs) or len(names))


def probed_filesystem(fs):
    """A data filesystem found on the disks (superblocks) but not mounted at the data mount point."""
    if fs.missing is None:
        missing = ['%d device(s), ids unknown' % (fs.num_devices - len(fs.members))]
    else:
        missing = ['devid %d' % devid for devid in fs.missing]
    return dict(label=_layout.DATA_LABEL, uuid=fs.uuid, mounted=False, members=fs.paths, missing=missing,
                num_devices=fs.num_devices)


def summary(result):
    """One line an operator reads at a glance."""
    mode = result['mode']
    fs = result['filesystem']
    parts = [mode]
    if fs is not None and fs.get('legacy'):
        what = 'legacy %s on %s' % (fs['fstype'], ','.join(fs['members']) or '-')
        if fs.get('size') is not None:
            what += ', %s free of %s' % (_units.human(fs['free']), _units.human(fs['size']))
        if not fs['mounted']:
            what += ', not mounted'
        parts.append(what)
    elif fs is not None:
        what = '%s/%s on %s (%d of %d members%s)' % (
            fs.get('data_profile') or '?', fs.get('metadata_profile') or '?', ','.join(fs['members']) or '-',
            len(fs['members']), fs['num_devices'], ', missing %s' % ', '.join(fs['missing']) if fs['missing'] else '')
        if fs.get('size') is not None:
            what += ', %s free of %s' % (_units.human(fs['free']), _units.human(fs['size']))
        if not fs['mounted']:
            what += ', not mounted'
        if fs.get('conversion'):
            what += '; %s' % _conversion.describe(fs['conversion'])
        parts.append(what)
    parts.append('swap %s' % (','.join(result['swap']['devices']) or 'off'))
    mounted = [item['path'] for item in result['overlays'] if item['mounted']]
    parts.append('overlays %s' % (' '.join(mounted) or 'none'))
    if result.get('snapshots'):
        parts.append('%d snapshot(s)' % len(result['snapshots']))
    if result.get('pending'):
        parts.append('at the next boot: %s' % result['pending']['description'])
    if result['magic_disks']:
        parts.append('%d magic disk(s) waiting for the next boot: %s' % (
            len(result['magic_disks']), ','.join(result['magic_disks'])))
    parts.append('%d empty disk(s)' % len(result['empty_disks']))
    if result['problems']:
        parts.append('%d problem(s)' % len(result['problems']))
    return '; '.join(parts)


def describe_filesystem(ctx, data_mount, kind, fsid, label, decision, mounts, members):
    """The data filesystem: the kernel's view when it is mounted at the data mount point, else the disks'."""
    if decision.fs is not None and decision.fs.legacy:
        legacy = decision.fs
        fs = dict(label=_layout.DATA_LABEL, uuid=legacy.uuid, mounted=kind == 'legacy', members=legacy.paths,
                  missing=[], num_devices=1, legacy=True, fstype=legacy.fstype, data_profile=None,
                  metadata_profile=None, subvolumes=[], size=None, free=None, usage={})
        if kind == 'legacy':
            fs.update(space_of(data_mount.target))
        return fs
    if kind == 'datafs':
        fs = kernel_filesystem(fsid, label)
        found = _datafs_find.Filesystem(fsid, [], fs['num_devices'], [])
    elif decision.fs is not None and not decision.fs.new:
        fs = probed_filesystem(decision.fs)
        found = decision.fs
    else:
        return None
    facts = _datafs_report.filesystem_facts(ctx, found, mounts, members)
    fs.update(data_profile=facts['data_profile'], metadata_profile=facts['metadata_profile'],
              subvolumes=facts['subvolumes'], size=None, free=None, usage={}, legacy=False, fstype='btrfs')
    fs['conversion'] = None
    if kind == 'datafs':
        fs.update(space_of(data_mount.target))
        fs['usage'] = _btrfs.filesystem_usage(ctx.runner, data_mount.target)
        fs['conversion'] = _conversion.facts(ctx.runner, fsid, data_mount.target, ctx.targets.run_dir,
                                             fs['num_devices'], bool(fs['missing']))
    return fs


def gather(runner, params):
    """persistence_info's result: every fact, read only."""
    root = os.path.realpath(params['root'])
    if not os.path.isdir(root):
        raise PersistenceError('root %s does not exist or is not a directory' % params['root'])
    mounts = _mountinfo.read_mounts()
    swaps = _mountinfo.read_swaps()
    # The overlay paths are checked before any disk is read.
    overlays, overlay_problems = overlay_facts(root, mounts, params['overlays'])
    disks = _candidates.candidates(runner, params['devices'], mounts, swaps, probe_in_use=True)
    mapped = _datafs_find.mapped_for(disks, _lvm.mapped_devices(), params['devices'])
    found = _datafs_find.survey(runner, disks, strict=[disk.path for disk in disks], mapped=mapped)
    decision = _datafs_find.decide(found, True)
    members = _btrfs.mounted_members()
    ctx = _datafs.Context(runner, root, True, [], 0)
    problems = list(decision.warnings)
    if decision.failure:
        problems.append(decision.failure)

    data_mount = _mountinfo.top_mount(mounts, ctx.targets.data)
    fsid = _mountinfo.fsid_of(data_mount, members)
    label = _btrfs.kernel_label(fsid) if fsid else None
    kind = data_mount_kind(data_mount, fsid, label)
    if kind == 'other' and _datafs_mount.is_legacy_mount(data_mount, decision.fs):
        kind = 'legacy'
    if kind == 'other':
        problems.append('%s: %s is mounted there, not the data filesystem or the volatile tmpfs' % (
            ctx.targets.data, _mountinfo.describe_mount(data_mount, members)))
    fs = describe_filesystem(ctx, data_mount, kind, fsid, label, decision, mounts, members)

    active = _datafs_mount.active_swap(swaps)
    areas = list(found.magic('swap'))
    if decision.fs is not None and decision.fs.legacy:
        areas.extend(probed for probed in decision.swap if probed not in areas)
    swap_devices = [probed.path for probed in areas if _datafs_mount.is_active(probed.path, active)]
    problems.extend(overlay_problems)
    status, status_problem = read_status(root)
    if status_problem:
        problems.append(status_problem)

    links = by_id_links()
    facts = []
    for disk in disks:
        empty, reasons = classify(disk)
        facts.append(disk_fact(disk, empty, reasons, links.get(disk.device.name, []), model_of(disk.device.name)))
    result = dict(
        changed=False,
        mode=mode_of(kind, fs['missing'] if kind == 'datafs' else []),
        legacy=kind == 'legacy',
        filesystem=fs,
        swap=dict(active=bool(swap_devices), devices=swap_devices),
        overlays=overlays,
        status=status,
        magic_disks=[disk.path for disk in disks if disk.magic and not disk.skipped],
        magic_partitions=found.magic_partitions(),
        empty_disks=[empty_fact(fact) for fact in facts if fact['empty']],
        disks=facts,
        failure=decision.failure,
        problems=problems)
    if status is not None and status.get('mode') not in (None, result['mode']):
        problems.append('the status file says %s, but the host is %s now (%s)' % (
            status.get('mode'), result['mode'], _layout.STATUS_FILE))
    result['snapshots'], result['pending'] = snapshot_facts(runner, root, problems)
    result['summary'] = summary(result)
    return result


def snapshot_facts(runner, root, problems):
    """The state's snapshots and the pending request, when the state of a data filesystem is mounted."""
    try:
        source, _fsid = _snapshot_run.mounted_filesystem(root)
    except PersistenceError:
        return [], None
    try:
        request = _snapshot.read_request(root)
    except PersistenceError as exc:
        problems.append(exc.message)
        request = None
    found, troubles = _snapshot.look(runner, root, source)
    problems.extend(troubles)
    target = request.get('target') if request else None
    return [_snapshot.to_result(snap, target) for snap in found], _snapshot_run.pending_result(request)


def execute(module):
    """persistence_info: every fact, read only."""
    return gather(Runner(module), module.params)

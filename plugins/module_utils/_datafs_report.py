# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What lw_datafs reports: the result (observed, or predicted in check mode), the diff, the warnings."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_create
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError


def describe_state(ctx, decision, mounts, swaps, members):
    """What a diff shows: the data filesystem, the two mount points, swap."""
    lines = []
    fs = decision.fs if decision is not None else None
    if fs is None:
        lines.append('data filesystem: none')
    elif fs.new:
        lines.append('data filesystem: none yet (magic data partitions %s)' % ', '.join(fs.paths))
    elif fs.legacy:
        lines.append('data filesystem: legacy %s %s %s on %s' % (fs.fstype, _layout.DATA_LABEL, fs.uuid, fs.paths[0]))
    else:
        lines.append('data filesystem: btrfs %s %s on %s%s' % (
            _layout.DATA_LABEL, fs.uuid, ', '.join(fs.paths),
            ', missing %s' % fs.describe_missing() if fs.degraded else ''))
    for target in (ctx.targets.data, ctx.targets.state):
        lines.append('%s: %s' % (target, _mountinfo.describe_mount(_mountinfo.top_mount(mounts, target), members)))
    active = _datafs_mount.active_swap(swaps)
    ours = [probed.path for probed in (decision.swap if decision is not None else []) if _datafs_mount.is_active(probed.path, active)]
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
    elif fs.legacy:
        lines.append('data filesystem: legacy %s %s %s on %s' % (fs.fstype, _layout.DATA_LABEL, fs.uuid, fs.paths[0]))
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
            elif fs.legacy:
                what = '%s %s (root /)' % (fstype, fs.paths[0])
            else:
                what = 'btrfs %s subvolume %s of filesystem %s' % (fs.paths[0], root, fs.uuid or '(new)')
        elif state == 'mounted' and fs is not None and fs.legacy:
            what = 'a directory on the data filesystem'
        elif state == 'mounted':
            what = 'not mounted'
        else:
            what = _mountinfo.describe_mount(_mountinfo.top_mount(mounts, target), members)
        lines.append('%s: %s' % (target, what))
    if state == 'mounted':
        swap_on = planned.swap_on
    elif state == 'unmounted':
        swap_on = []
    else:
        active = _datafs_mount.active_swap(swaps)
        swap_on = [probed.path for probed in (decision.swap if decision is not None else [])
                   if _datafs_mount.is_active(probed.path, active)]
    lines.append('swap: %s' % (', '.join(swap_on) or 'none'))
    return '\n'.join(lines) + '\n'


def filesystem_facts(ctx, fs, mounts, members, creation=None):
    """Profiles and subvolumes, read through a mount of the filesystem in this namespace (or the creation's)."""
    facts = dict(data_profile=None, metadata_profile=None, subvolumes=[], read_from=None)
    if fs is None or fs.legacy:
        return facts
    mount = _mountinfo.top_mount(mounts, ctx.targets.data)
    if not _mountinfo.is_subvolume_mount(mount, _layout.SUBVOL_DATA, fs.uuid, members):
        mount = None
        for candidate in mounts:
            if candidate.fstype == 'btrfs' and fs.uuid and _mountinfo.fsid_of(candidate, members) == fs.uuid:
                mount = candidate
    if mount is not None:
        profiles = _btrfs.profiles_from_sysfs(fs.uuid)
        if profiles is None:
            profiles = _btrfs.profiles_of(_btrfs.filesystem_df(ctx.runner, mount.target))
        facts['data_profile'], facts['metadata_profile'] = profiles
        facts['subvolumes'] = sorted(item['path'] for item in _btrfs.subvolume_list(ctx.runner, mount.target))
        facts['read_from'] = mount.target
    elif creation is not None and creation.profiles is not None:
        facts['data_profile'], facts['metadata_profile'] = creation.profiles
        facts['subvolumes'] = creation.subvolumes
    return facts


def missing_of(fs):
    if fs is None or fs.new or fs.legacy:
        return []
    kernel = _btrfs.kernel_missing(fs.uuid) if fs.uuid else None
    if kernel is not None:
        return ['devid %d' % devid for devid in kernel]
    if fs.missing is None:
        return ['%d device(s), ids unknown' % (fs.num_devices - len(fs.members))]
    return ['devid %d' % devid for devid in fs.missing]


def mode_of(state, ctx, seen, missing):
    fs = seen.decision.fs
    if state == 'mounted':
        mount = _mountinfo.top_mount(seen.mounts, ctx.targets.data)
        if fs is not None and fs.legacy:
            return 'persistent' if _datafs_mount.is_legacy_mount(mount, fs) else 'volatile'
        if fs is not None and _mountinfo.is_subvolume_mount(mount, _layout.SUBVOL_DATA, fs.uuid, seen.members):
            return 'degraded' if missing else 'persistent'
        return 'volatile'
    if fs is None:
        return 'volatile'
    return 'degraded' if missing else 'persistent'


def observed_result(ctx, state, seen, creation=None):
    """The result from what is there (a real run, after its writes)."""
    fs = seen.decision.fs
    missing = missing_of(fs)
    facts = filesystem_facts(ctx, fs, seen.mounts, seen.members, creation)
    mounts = [_mountinfo.mount_result(_mountinfo.top_mount(seen.mounts, target), seen.members)
              for target in (ctx.targets.data, ctx.targets.state)]
    return dict(
        mode=mode_of(state, ctx, seen, missing),
        label=_layout.DATA_LABEL if fs is not None else None,
        uuid=fs.uuid if fs is not None else None,
        devices=fs.paths if fs is not None else [],
        missing=missing, num_devices=fs.num_devices if fs is not None else 0,
        data_profile=facts['data_profile'], metadata_profile=facts['metadata_profile'],
        subvolumes=facts['subvolumes'],
        mounts=[mount for mount in mounts if mount is not None],
        swap_devices=active_swap_areas(seen, seen.swaps),
        magic_partitions=seen.found.magic_partitions(),
        legacy=bool(fs is not None and fs.legacy), fstype=fs.fstype if fs is not None else None)


def failure_defaults():
    """What a failed run reports of what it could not read: every key lw_datafs returns always, empty."""
    return dict(mode=None, label=None, uuid=None, devices=[], missing=[], num_devices=0, data_profile=None,
                metadata_profile=None, subvolumes=[], mounts=[], swap_devices=[], swap=None, magic_partitions=[],
                created=False, actions=[], state_change=None, boot_snapshot=None, pending=None, legacy=False,
                fstype=None)


def fallback_facts(ctx, mode, seen, fsid, mounts, members):
    """What a failed state=mounted run can still tell of the data filesystem that stays mounted (mode persistent or
    degraded): its members, profiles, subvolumes and swap, read as after a successful run; nothing in volatile mode.
    C(seen) is the run's last look at the disks (None when it failed before one), C(fsid) the mounted filesystem."""
    facts = dict(missing=[], num_devices=0, data_profile=None, metadata_profile=None, subvolumes=[],
                 swap_devices=[], magic_partitions=seen.found.magic_partitions() if seen is not None else [])
    if mode == 'volatile' or not fsid:
        return facts
    if seen is not None:
        facts['swap_devices'] = active_swap_areas(seen, _mountinfo.read_swaps())
    fs = seen.decision.fs if seen is not None else None
    if fs is not None and not fs.new and fs.uuid == fsid:
        facts.update(missing=missing_of(fs), num_devices=fs.num_devices)
        if fs.legacy:
            return facts
    else:
        facts.update(missing=['devid %d' % devid for devid in _btrfs.kernel_missing(fsid) or []],
                     num_devices=_btrfs.member_count(fsid))
    profiles = _btrfs.profiles_from_sysfs(fsid)
    if profiles is not None:
        facts['data_profile'], facts['metadata_profile'] = profiles
    try:
        facts['subvolumes'] = sorted(item['path'] for item in _btrfs.subvolume_list(ctx.runner, ctx.targets.data))
    except PersistenceError:
        pass  # the failure itself is what the result reports
    return facts


def active_swap_areas(seen, swaps):
    """The paths of the data filesystem's swap areas (swap_areas) that are on, by C(swaps) (/proc/swaps)."""
    active = _datafs_mount.active_swap(swaps)
    return [probed.path for probed in swap_areas(seen) if _datafs_mount.is_active(probed.path, active)]


def swap_areas(seen):
    """The swap areas that are the data filesystem's: the magic swap partitions, and those labelled lightwhale-swap
    next to a legacy data filesystem."""
    areas = list(seen.found.magic('swap'))
    fs = seen.decision.fs
    if fs is not None and fs.legacy:
        areas.extend(probed for probed in seen.decision.swap if probed not in areas)
    return areas


def predicted_result(ctx, state, seen, planned):
    """The result a real run would return (check mode)."""
    decision = seen.decision
    fs = decision.fs
    result = observed_result(ctx, state, seen)
    if fs is not None and fs.new:
        result.update(data_profile=fs.profiles[0], metadata_profile=fs.profiles[1], subvolumes=list(_datafs_create.SUBVOLUMES))
    if state == 'unmounted':
        result.update(mounts=[], swap_devices=[])
    elif state == 'mounted':
        mounts = []
        for target in (ctx.targets.data, ctx.targets.state):
            if target in planned.mounts:
                fstype, root = planned.mounts[target]
                mounts.append(dict(target=target, fstype=fstype, root=root,
                                   source='tmpfs' if fstype == 'tmpfs' else fs.paths[0],
                                   uuid=None if fstype == 'tmpfs' else fs.uuid))
        result.update(mounts=mounts, swap_devices=list(planned.swap_on))
        if fs is None:
            result['mode'] = 'volatile'
        elif fs.legacy:
            result['mode'] = 'persistent'
        else:
            result['mode'] = 'degraded' if fs.degraded else 'persistent'
    return result


def warnings(result):
    """What the operator must hear of a result: a missing member, chunks of several profiles."""
    found = []
    if result['mode'] == 'degraded':
        found.append('data filesystem %s is missing %s: %s. Re-attach the device, or write the magic header on a '
                     'new disk (magic_disk state=present): the boot makes it take the missing member\'s place' % (
                         result['uuid'], ', '.join(result['missing']),
                         'mounted degraded' if result['mounts'] else 'it will be mounted degraded'))
    for item in result.get('unusable_disks') or ():
        found.append('magic disk %s: %s' % (item['device'], item['reason']))
    for kind in ('data_profile', 'metadata_profile'):
        # Not degraded, several profiles and no conversion: none protects less than the member count calls for.
        if result[kind] and ',' in result[kind] and result['mode'] == 'degraded':
            found.append('the data filesystem holds chunks of several %s profiles (%s), written while a member is '
                         'missing: once every member is back or a new magic disk took the missing one\'s place, the '
                         'boot converts them in the background' % (kind.split('_', 1)[0], result[kind]))
    return found

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: lw_datafs
short_description: Find or create the Lightwhale data filesystem, and mount it or a volatile tmpfs
version_added: 0.1.0
description:
  - Boot steps 1, 4, 5 and 6 of Lightwhale persistence. Finds the btrfs labelled C(lightwhale-data) by probing the
    candidate disks and their partitions (no udev, no C(/dev/disk/by-label)). When there is none, creates it from
    the magic partitions (GPT partitions named C(lightwhale-data) and C(lightwhale-swap), laid out by
    M(lightwhale.persistence.magic_disk)), then mounts it, or a tmpfs when there is no data filesystem at all.
  - "Creation: C(mkswap -L lightwhale-swap) on the magic swap partitions; one btrfs over all magic data partitions,
    data C(single) and metadata C(dup) for one, data C(raid1) and metadata C(raid1), C(raid1c3), C(raid1c4) for 2, 3,
    4 or more; subvolumes C(@lightwhale-data), C(@lightwhale-state), C(@lightwhale-state-snapshots) at the top level;
    the label C(lightwhale-data) last. The label is the commit point: a labelled filesystem is never formatted, and
    an unlabelled btrfs on magic data partitions is an interrupted creation, which is redone."
  - "Mounting: subvolume C(@lightwhale-data) at C(<root>/mnt/lightwhale-data) and C(@lightwhale-state) at
    C(<root>/mnt/lightwhale-data/lightwhale-state). Idempotent by what the kernel says is mounted
    (C(/proc/self/mountinfo) and C(/sys/fs/btrfs)), never by option strings. A RAID1 member missing: mounted with
    C(degraded), RV(mode=degraded) and a warning naming it."
  - "A data filesystem that is found but cannot be used (damaged superblock, mount refused, two filesystems with the
    label) is never replaced silently: with O(state=mounted) the module mounts the tmpfs so the host still boots,
    returns RV(mode=volatile) and the reason in RV(failure), and fails."
  - Real runs hold the lock C(<root>/run/lightwhale/persistence.lock) from the first probe to the last write, so two
    runs at once never both format.
author:
  - lightwhale.persistence developers (!UNKNOWN)
requirements:
  - util-linux (C(wipefs), C(partx), C(sfdisk), C(mount), C(umount), C(mkswap), C(swapon), C(swapoff))
  - btrfs-progs (C(mkfs.btrfs), C(btrfs))
  - A kernel with btrfs (raid1c3 and raid1c4 need Linux 5.5 or later).
  - Root privileges.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Probes only and reports the same RV(actions) and C(changed) a real run would. It may tell the kernel about
        partitions already on a disk (C(partx)), which writes nothing to the disk.
  diff_mode:
    support: full
    details: Shows the data filesystem, the two mount points and the swap areas before and after.
  platform:
    platforms: posix
options:
  devices:
    description:
      - Candidate whole disks, for example V(/dev/sdb) or V(/dev/disk/by-id/virtio-extra1). The data filesystem is
        looked for on them and on their partitions; only their magic partitions are ever formatted.
      - When empty, the host is scanned with the rules of M(lightwhale.persistence.magic_disk) (C(sd*), C(vd*),
        C(xvd*), C(hd*), C(nvme*n*), C(mmcblk*); never loop, RAM, device-mapper, md or optical devices), except that
        disks in use are still probed, read-only, because the mounted data filesystem lives on them.
      - A path that does not exist, is not a block device, or is a partition is an error.
    type: list
    elements: path
    default: []
  state:
    description:
      - V(present) finds the data filesystem, or creates it from the magic partitions, and formats blank magic swap
        partitions on its disks. Mounts nothing.
      - V(mounted) does what V(present) does, then mounts the two subvolumes (or the tmpfs when there is no data
        filesystem) and activates swap.
      - V(unmounted) deactivates the magic swap partitions and unmounts the state subvolume, then the data subvolume
        or the tmpfs. It formats nothing and leaves anything it did not mount alone (a clear error).
    type: str
    choices: [present, mounted, unmounted]
    default: mounted
  swap:
    description:
      - Whether the magic swap partitions on the data filesystem's disks are formatted (when blank) and active.
      - With V(false), O(state=mounted) deactivates them when they are active.
      - The word C(noswap) on the kernel command line turns swap off, whatever this says.
    type: bool
    default: true
  kernel_cmdline:
    description:
      - The kernel command line whose C(noswap) word is honoured. Default is the contents of C(/proc/cmdline).
    type: str
  mount_options:
    description:
      - Extra mount options for both btrfs subvolume mounts, for example V(noatime) or V(compress=zstd).
      - They apply when the module mounts; a mount already in place is not remounted to match them.
      - C(subvol) and C(subvolid) are set by the module and may not be given. C(degraded) is added when a member is
        missing.
    type: list
    elements: str
    default: []
  root:
    description:
      - The root directory, for a sandbox. Mount points are C(<root>/mnt/lightwhale-data) and
        C(<root>/mnt/lightwhale-data/lightwhale-state); the lock and the temporary top-level mount of a creation
        live in C(<root>/run/lightwhale/).
    type: path
    default: /
  timeout:
    description:
      - Seconds to wait for the lock held by another run, and for partition nodes to appear.
    type: int
    default: 30
  replace_tmpfs:
    description:
      - With O(state=mounted), when the data filesystem is there (or is created by this run) and the data mount point
        holds an empty tmpfs - nothing in it but an empty state directory, nothing mounted below it, as the volatile
        tmpfs of an earlier step of the same boot is - unmount the tmpfs and mount the data filesystem in its place,
        in one locked run.
      - The boot role sets it on its first-boot path, so that two boots at once never unmount each other's mounts.
      - A tmpfs that holds anything, or has mounts below it (the overlays of a volatile boot), is never replaced; the
        run fails and says so, as it does without this option.
    type: bool
    default: false
notes:
  - Missing members are named by their btrfs device id (the name C(btrfs replace) takes), because a device that is
    gone has no path.
  - Profiles and subvolumes are read through a mount of the filesystem in this mount namespace (the data mount, or the
    temporary one of a creation). With O(state=present) or O(state=unmounted) on a filesystem that is not mounted they
    are null and empty.
  - Magic data partitions beyond the filesystem's members (a magic disk added later) are reported with a warning and
    left untouched; growing the filesystem is not supported yet.
seealso:
  - module: lightwhale.persistence.magic_disk
  - name: Lightwhale persistence boot sequence
    description: The boot steps this collection implements.
    link: https://example.invalid/lightwhale/persistence/blob/main/docs/boot-sequence.md
'''

EXAMPLES = r'''
- name: Find or create the data filesystem and mount it (boot steps 1, 4, 5, 6), scanning the host
  lightwhale.persistence.lw_datafs:
    state: mounted
  register: datafs

- name: Say what the host is running on
  ansible.builtin.debug:
    msg: "{{ datafs.mode }} on {{ datafs.devices | join(', ') or 'tmpfs' }}"

- name: Create the data filesystem on listed disks only, without mounting it
  lightwhale.persistence.lw_datafs:
    devices: [/dev/disk/by-id/virtio-extra1, /dev/disk/by-id/virtio-extra2]
    state: present

- name: Mount with compression and no access times, without swap
  lightwhale.persistence.lw_datafs:
    mount_options: [noatime, compress=zstd]
    swap: false

- name: Take it all down for maintenance
  lightwhale.persistence.lw_datafs:
    state: unmounted
'''

RETURN = r'''
mode:
  description:
    - V(persistent) (the data filesystem, all members present), V(degraded) (mounted or found with members missing) or
      V(volatile) (no data filesystem, or one that cannot be used; with O(state=mounted) a tmpfs is mounted).
    - With O(state=mounted), the mode the host is in after the run; otherwise, the mode the disks call for.
  returned: always
  type: str
  sample: persistent
label:
  description: The filesystem label, C(lightwhale-data), or null when there is no data filesystem.
  returned: always
  type: str
  sample: lightwhale-data
uuid:
  description: The data filesystem's UUID; null when there is none, or in check mode before its creation.
  returned: always
  type: str
  sample: 0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21
devices:
  description: The member devices present (or those the new filesystem will have, in check mode), by device id.
  returned: always
  type: list
  elements: str
  sample: [/dev/sdb2, /dev/sdc2]
missing:
  description: Members missing, by btrfs device id (V(devid 2)), or a count when their ids cannot be told.
  returned: always
  type: list
  elements: str
  sample: [devid 2]
num_devices:
  description: How many devices the data filesystem has, present or not; 0 when there is none.
  returned: always
  type: int
  sample: 2
data_profile:
  description: The data block-group profile (lower case; several are joined with a comma), or null when not read.
  returned: always
  type: str
  sample: raid1
metadata_profile:
  description: The metadata block-group profile, as RV(data_profile).
  returned: always
  type: str
  sample: raid1
subvolumes:
  description: The subvolumes of the data filesystem, by path from its top level.
  returned: always
  type: list
  elements: str
  sample: ['@lightwhale-data', '@lightwhale-state', '@lightwhale-state-snapshots']
mounts:
  description:
    - What is mounted at the two mount points after the run (predicted in check mode), each with C(target),
      C(source), C(fstype), C(root) (the subvolume path, V(/) for the tmpfs) and C(uuid); real runs add C(options).
  returned: always
  type: list
  elements: dict
  sample: [{target: /mnt/lightwhale-data, source: /dev/sdb2, fstype: btrfs, root: /@lightwhale-data}]
swap_devices:
  description: Magic swap partitions active after the run (predicted in check mode).
  returned: always
  type: list
  elements: str
  sample: [/dev/sdb1, /dev/sdc1]
swap:
  description: Whether swap is on for this run, after the kernel command line's C(noswap).
  returned: always
  type: bool
magic_partitions:
  description: Partitions named C(lightwhale-swap) and C(lightwhale-data) on the candidates, as probed.
  returned: always
  type: dict
  contains:
    swap:
      description: Swap partition device paths.
      type: list
      elements: str
    data:
      description: Data partition device paths.
      type: list
      elements: str
created:
  description: Whether this run created the data filesystem (would, in check mode).
  returned: always
  type: bool
actions:
  description: What was done, or would be in check mode, one line per step.
  returned: always
  type: list
  elements: str
  sample: ["create a btrfs (data raid1, metadata raid1) without a label over /dev/sdb2, /dev/sdc2",
           "label the filesystem lightwhale-data (the commit point)"]
failure:
  description:
    - Why the data filesystem could not be used (not C(failed), which Ansible reserves). The task fails; with
      O(state=mounted) the tmpfs is mounted so that the host still boots, and RV(mode) is V(volatile).
  returned: failure
  type: str
refused:
  description: Magic data partitions that could not be formatted, each with C(device) and C(reason); nothing written.
  returned: failure
  type: list
  elements: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _candidates
from ansible_collections.lightwhale.persistence.plugins.module_utils import _cmdline
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import (
    CommandError, LockTimeout, MountConflict, PersistenceError)
from ansible_collections.lightwhale.persistence.plugins.module_utils._lock import run_lock


class Observed:
    """Everything probed in one pass: disks, survey, decision, mounts, swap areas, mounted btrfs members."""

    def __init__(self, module, ctx, busy_ok=()):
        self.mounts = _mountinfo.read_mounts()
        self.swaps = _mountinfo.read_swaps()
        runner = ctx.runner
        devices = module.params['devices']
        if devices:
            disks = _candidates.listed(runner, devices, self.mounts, self.swaps)
        else:
            disks = _candidates.scanned(runner, self.mounts, self.swaps, probe_in_use=True)
        self.found = _datafs.survey(runner, disks, ctx.timeout)
        if busy_ok == 'leftovers':
            busy_ok = _datafs.busy_by_leftovers(ctx, self.mounts, disks)
        self.decision = _datafs.decide(self.found, ctx.swap, busy_ok)
        self.members = _btrfs.mounted_members()


def missing_of(fs):
    if fs is None or fs.new:
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
        mount = _datafs.top_mount(seen.mounts, ctx.targets.data)
        if fs is not None and _datafs.is_subvolume_mount(mount, _layout.SUBVOL_DATA, fs.uuid, seen.members):
            return 'degraded' if missing else 'persistent'
        return 'volatile'
    if fs is None:
        return 'volatile'
    return 'degraded' if missing else 'persistent'


def observed_result(ctx, state, seen, creation=None):
    """The result from what is there (a real run, after its writes)."""
    fs = seen.decision.fs
    missing = missing_of(fs)
    facts = _datafs.filesystem_facts(ctx, fs, seen.mounts, seen.members, creation)
    active = _datafs.active_swap(seen.swaps)
    mounts = [_datafs.mount_result(_datafs.top_mount(seen.mounts, target), seen.members)
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
        swap_devices=[probed.path for probed in seen.found.magic('swap') if _datafs.is_active(probed.path, active)],
        magic_partitions=seen.found.magic_partitions())


def predicted_result(ctx, state, seen, planned):
    """The result a real run would return (check mode)."""
    decision = seen.decision
    fs = decision.fs
    result = observed_result(ctx, state, seen)
    if fs is not None and fs.new:
        result.update(data_profile=fs.profiles[0], metadata_profile=fs.profiles[1], subvolumes=list(_datafs.SUBVOLUMES))
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
        else:
            result['mode'] = 'degraded' if fs.degraded else 'persistent'
    return result


def verify(state, ctx, before, after, planned):
    """Read back what was written: tools have reported success on failed writes before."""
    decision = after.decision
    # Only a run that created the filesystem reads it back; state=unmounted never creates, even when one is pending.
    if planned.creation is not None and (decision.fs is None or decision.fs.new
                                         or sorted(decision.fs.paths) != sorted(before.decision.fs.paths)):
        raise CommandError('after the creation, probing finds %s, not a filesystem labelled %s on %s' % (
            'no data filesystem' if decision.fs is None or decision.fs.new else ', '.join(decision.fs.paths),
            _layout.DATA_LABEL, ', '.join(before.decision.fs.paths)))
    if decision.failure and state != 'unmounted':
        raise CommandError('after the run: %s' % decision.failure)
    fs = decision.fs
    if state == 'mounted':
        data = _datafs.top_mount(after.mounts, ctx.targets.data)
        state_mount = _datafs.top_mount(after.mounts, ctx.targets.state)
        if fs is not None:
            ok = (_datafs.is_subvolume_mount(data, _layout.SUBVOL_DATA, fs.uuid, after.members)
                  and _datafs.is_subvolume_mount(state_mount, _layout.SUBVOL_STATE, fs.uuid, after.members))
        else:
            ok = data is not None and data.fstype == 'tmpfs' and os.path.isdir(ctx.targets.state)
        if not ok:
            raise CommandError('after mounting, mountinfo shows %s: %s and %s: %s' % (
                ctx.targets.data, _datafs.describe_mount(data, after.members),
                ctx.targets.state, _datafs.describe_mount(state_mount, after.members)))
    if state == 'unmounted':
        for target in (ctx.targets.state, ctx.targets.data):
            if _datafs.top_mount(after.mounts, target) is not None and target in [
                    action.device for action in planned.plan.actions]:
                raise CommandError('%s is still mounted after unmounting it' % target, device=target)
    active = _datafs.active_swap(after.swaps)
    for action in planned.plan.actions:
        if action.step == 'swapon' and not _datafs.is_active(action.device, active):
            raise CommandError('%s: swapon exited 0 but /proc/swaps does not list it' % action.device,
                               device=action.device)
        if action.step == 'swapoff' and _datafs.is_active(action.device, active):
            raise CommandError('%s: swapoff exited 0 but /proc/swaps still lists it' % action.device,
                               device=action.device)


def run(module, ctx, state, record):
    cleanup = _datafs.plan_cleanup(ctx, _mountinfo.read_mounts())
    record['plans'].append(cleanup)
    busy_ok = ()
    if cleanup and not module.check_mode:
        cleanup.apply()
    elif cleanup:
        busy_ok = 'leftovers'
    seen = Observed(module, ctx, busy_ok)
    record['seen'] = seen
    decision = seen.decision
    for warning in decision.warnings:
        module.warn(warning)
    planned = _datafs.Planned()
    record['plans'].append(planned.plan)
    if state == 'unmounted':
        _datafs.plan_unmounted(ctx, seen.found, seen.mounts, seen.swaps, planned, seen.members)
    elif decision.failure:
        raise _datafs.DataFsFailure(decision.failure, refused=decision.refused)
    elif state == 'present':
        _datafs.plan_present(ctx, decision, planned)
    else:
        _datafs.plan_mounted(ctx, decision, seen.mounts, seen.swaps, planned, seen.members)

    before = _datafs.describe_state(ctx, decision, seen.mounts, seen.swaps, seen.members)
    if module.check_mode:
        result = predicted_result(ctx, state, seen, planned)
        after = _datafs.describe_predicted(ctx, decision, planned, state, seen.mounts, seen.swaps, seen.members)
    else:
        after_seen = seen
        if planned.plan:
            for problem in planned.apply():
                module.warn(problem)
            after_seen = Observed(module, ctx)
            verify(state, ctx, seen, after_seen, planned)
            record['seen'] = after_seen
        result = observed_result(ctx, state, after_seen, planned.creation)
        after = _datafs.describe_state(ctx, after_seen.decision, after_seen.mounts, after_seen.swaps,
                                       after_seen.members)
    actions = cleanup.describe() + planned.plan.describe()
    result.update(changed=bool(actions), actions=actions, created=planned.creation is not None, swap=ctx.swap)
    if module._diff and actions:
        result['diff'] = dict(before=before, after=after)
    warn_about(module, result)
    return result


def warn_about(module, result):
    if result['mode'] == 'degraded':
        module.warn('data filesystem %s is missing %s: %s. Re-attach the device, or replace it '
                    '(btrfs replace start <devid> <new device> %s)' % (
                        result['uuid'], ', '.join(result['missing']),
                        'mounted degraded' if result['mounts'] else 'it will be mounted degraded',
                        _layout.DATA_MOUNT))
    for kind in ('data_profile', 'metadata_profile'):
        if result[kind] and ',' in result[kind]:
            module.warn('the data filesystem holds chunks of several %s profiles (%s), for example after a degraded '
                        'mount: once every member is back, run btrfs balance with convert filters' % (
                            kind.split('_', 1)[0], result[kind]))


def fallback(module, ctx, error, record):
    """state=mounted failed: mount the tmpfs (when the mount point is free) so the host boots, and say why."""
    done = []
    for plan in record['plans']:
        done.extend(plan.done)
    mounts = _mountinfo.read_mounts()
    members = _btrfs.mounted_members()
    planned = _datafs.plan_fallback(ctx, mounts, members)
    if module.check_mode:
        actions = planned.plan.describe()
    else:
        try:
            planned.apply()
        except PersistenceError as exc:
            return dict(msg='%s; and the volatile fallback failed too: %s' % (error.message, exc.message),
                        failure=error.message, mode='volatile', actions=done + planned.plan.done, changed=bool(done))
        actions = done + planned.plan.done
        mounts = _mountinfo.read_mounts()
    data = _datafs.top_mount(mounts, ctx.targets.data)
    mode = 'volatile'
    seen = record.get('seen')
    fs = seen.decision.fs if seen is not None else None
    if fs is not None and not fs.new and _datafs.is_subvolume_mount(data, _layout.SUBVOL_DATA, fs.uuid, members):
        mode = 'degraded' if missing_of(fs) else 'persistent'
    if mode == 'volatile' and planned.plan:
        how = '%s a tmpfs at %s so the host boots (volatile mode)' % (
            'would mount' if module.check_mode else 'mounted', ctx.targets.data)
    elif mode == 'volatile':
        how = 'the host stays in volatile mode (%s)' % _datafs.describe_mount(data, members)
    else:
        how = 'the data filesystem stays mounted (%s mode)' % mode
    result = dict(
        msg='%s; %s' % (error.message, how), failure=error.message, mode=mode,
        label=_layout.DATA_LABEL if fs is not None and not fs.new else None,
        uuid=fs.uuid if fs is not None else None, devices=fs.paths if fs is not None else [],
        mounts=[mount for mount in (_datafs.mount_result(_datafs.top_mount(mounts, target), members)
                                    for target in (ctx.targets.data, ctx.targets.state)) if mount is not None],
        actions=actions, changed=bool(actions), swap=ctx.swap)
    if seen is not None:
        result['magic_partitions'] = seen.found.magic_partitions()
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            devices=dict(type='list', elements='path', default=[]),
            state=dict(type='str', choices=['present', 'mounted', 'unmounted'], default='mounted'),
            swap=dict(type='bool', default=True),
            kernel_cmdline=dict(type='str'),
            mount_options=dict(type='list', elements='str', default=[]),
            root=dict(type='path', default='/'),
            timeout=dict(type='int', default=30),
            replace_tmpfs=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['timeout'] < 0:
        module.fail_json(msg='timeout must not be negative, got %d' % params['timeout'])
    for option in params['mount_options']:
        name = option.split('=', 1)[0].strip()
        if name in ('subvol', 'subvolid') or not name:
            module.fail_json(msg='mount_options: %r is not allowed: the module sets the subvolume itself' % option)
    swap = _cmdline.swap_wanted(params['swap'], params['kernel_cmdline'])

    ctx = _datafs.Context(Runner(module), params['root'], swap, params['mount_options'], params['timeout'],
                          replace_tmpfs=params['replace_tmpfs'])
    record = dict(plans=[], seen=None)
    error = None
    result = None
    try:
        with run_lock(params['root'], params['timeout'], module.check_mode):
            try:
                result = run(module, ctx, params['state'], record)
            except (MountConflict, LockTimeout):
                raise
            except PersistenceError as exc:
                if params['state'] != 'mounted':
                    raise
                error = exc
                result = fallback(module, ctx, exc, record)
    except PersistenceError as exc:
        error = exc
    if error:
        # Outside the except block: an expected failure is a message, not a traceback.
        details = error.result()
        details.update(result or {})
        details.setdefault('msg', error.message)
        done = [action for plan in record['plans'] for action in plan.done]
        details.setdefault('actions', done)
        details.setdefault('changed', bool(done))
        module.fail_json(**details)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The data filesystem (steps 1, 4, 5, 6), as lw_datafs runs it: observe, plan, apply, verify, fall back.

One run: undo what a killed creation left (_datafs_create.plan_cleanup); activate the LVM volume
groups (_lvm, where the tools exist); tell the kernel of partitions it does not know
(_datafs_find.plan_sync); probe and decide (_datafs_find); plan the state asked for
(_datafs_create, _datafs_mount); apply the plan, probe again and verify; report (_datafs_report). With
state=mounted, a failure mounts the tmpfs so the host still boots (_datafs_mount.plan_fallback).
Nothing here writes outside a Plan's actions.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import os

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _candidates
from ansible_collections.lightwhale.persistence.plugins.module_utils import _cmdline
from ansible_collections.lightwhale.persistence.plugins.module_utils import _conversion
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_create
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_find
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_grow
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_report
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _lvm
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount_options
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot
from ansible_collections.lightwhale.persistence.plugins.module_utils import _state_change
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import (
    CommandError, LockTimeout, MountConflict, PersistenceError)


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
        return os.path.dirname(path) == self.run_dir and os.path.basename(path).startswith(_layout.TOP_PREFIX)


class Context:
    """What every planner needs: the runner, the targets and the settings of this run."""

    def __init__(self, runner, root, swap, mount_options, timeout, replace_tmpfs=False, boot_snapshots=0,
                 cmdline='', activate_lvm=False):
        self.runner = runner
        self.targets = Targets(root)
        self.swap = swap
        self.mount_options = list(mount_options)
        self.timeout = timeout
        # Replace an empty tmpfs at the data mount point by the data filesystem (see empty_tmpfs).
        self.replace_tmpfs = replace_tmpfs
        # Mount targets this run mounted, in order (the failure fallback undoes a half-done persistent mount).
        self.mounted = []
        # The member devices this run told the kernel of (the device= options of its first mount), or None.
        self.scanned = None
        # Before the state is mounted: boot snapshots to keep (0: none), the kernel command line (its rollback word),
        # and what the state step did (_state_change.Outcome).
        self.boot_snapshots = boot_snapshots
        self.cmdline = cmdline
        self.outcome = _state_change.Outcome()
        self.check_mode = False
        # The background conversion this run started (_conversion.start_job), or None.
        self.conversion_job = None
        # Activate the LVM volume groups before step 1 (where the tools exist).
        self.activate_lvm = activate_lvm


# Plan steps that write to no disk: after a plan of only these the run's survey still holds, and the look after it
# reads only the mounts and swap areas again (the everyday boot probes no disk twice).
MOUNTS_ONLY = frozenset(('mount-tmpfs', 'mkdir-state', 'umount-tmpfs', 'mount-data', 'mount-state', 'swapon',
                         'swapoff', 'umount-state', 'umount-data', 'state-change', 'convert'))


class Observed:
    """Everything probed in one pass: disks, survey, decision, mounts, swap areas, mounted btrfs members.

    C(synced) is the plan that tells the kernel of partitions it does not know; with C(sync) it is applied before
    the survey, else those partitions are noted and not probed (check mode, and the look after a run's writes).
    """

    def __init__(self, module, ctx, busy_ok=(), sync=False, record=None, survey_of=None):
        self.mounts = _mountinfo.read_mounts()
        self.swaps = _mountinfo.read_swaps()
        if survey_of is not None:
            # Nothing was written to a disk since C(survey_of) looked: its survey holds, mounts and swap are new.
            self.synced, self.found, self.decision = Plan(), survey_of.found, survey_of.decision
            self.members = _btrfs.mounted_members()
            return
        runner = ctx.runner
        disks = _candidates.candidates(runner, module.params['devices'], self.mounts, self.swaps, probe_in_use=True)
        self.synced = _datafs_find.plan_sync(runner, disks, ctx.timeout)
        if record is not None:
            record['plans'].append(self.synced)
        if sync:
            self.synced.apply()
        # Logical volumes (and other device-mapper devices) are probed for the label only: never candidates.
        mapped = _datafs_find.mapped_for(disks, _lvm.mapped_devices(), module.params['devices'])
        self.found = _datafs_find.survey(runner, disks, () if sync else [action.device for action in self.synced.actions],
                                         mapped=mapped)
        if busy_ok == 'leftovers':
            busy_ok = _datafs_create.busy_by_leftovers(ctx, self.mounts, disks)
        self.decision = _datafs_find.decide(self.found, ctx.swap, busy_ok)
        self.members = _btrfs.mounted_members()


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
        data = _mountinfo.top_mount(after.mounts, ctx.targets.data)
        state_mount = _mountinfo.top_mount(after.mounts, ctx.targets.state)
        if fs is not None and fs.legacy:
            ok = (_datafs_mount.is_legacy_mount(data, fs) and state_mount is None
                  and os.path.isdir(ctx.targets.state) and not os.path.islink(ctx.targets.state))
        elif fs is not None:
            ok = (_mountinfo.is_subvolume_mount(data, _layout.SUBVOL_DATA, fs.uuid, after.members)
                  and _mountinfo.is_subvolume_mount(state_mount, _layout.SUBVOL_STATE, fs.uuid, after.members))
        else:
            ok = data is not None and data.fstype == 'tmpfs' and os.path.isdir(ctx.targets.state)
        if not ok:
            raise CommandError('after mounting, mountinfo shows %s: %s and %s: %s' % (
                ctx.targets.data, _mountinfo.describe_mount(data, after.members),
                ctx.targets.state, _mountinfo.describe_mount(state_mount, after.members)))
    if state == 'unmounted':
        for target in (ctx.targets.state, ctx.targets.data):
            if _mountinfo.top_mount(after.mounts, target) is not None and target in [
                    action.device for action in planned.plan.actions]:
                raise CommandError('%s is still mounted after unmounting it' % target, device=target)
    active = _datafs_mount.active_swap(after.swaps)
    for action in planned.plan.actions:
        if action.step == 'swapon' and not _datafs_mount.is_active(action.device, active):
            raise CommandError('%s: swapon exited 0 but /proc/swaps does not list it' % action.device,
                               device=action.device)
        if action.step == 'swapoff' and _datafs_mount.is_active(action.device, active):
            raise CommandError('%s: swapoff exited 0 but /proc/swaps still lists it' % action.device,
                               device=action.device)


def activate_lvm(module, ctx, state, record):
    """Before step 1: the volume groups activated (where the LVM tools exist), so that a logical volume holding the
    data filesystem is found. Check mode only says what it would do. Returns the activation (_lvm.Activation)."""
    disks = None
    if module.params['devices'] and ctx.activate_lvm and state != 'unmounted':
        # Listed disks: only the volume groups that lie on them (a bad path fails in the survey, which names it).
        disks = set()
        for given in module.params['devices']:
            try:
                disks.add(_blockdev.resolve(given).name)
            except PersistenceError:
                continue
    activation = _lvm.plan_activation(module, ctx.runner, ctx.activate_lvm and state != 'unmounted', disks)
    record['plans'].append(activation.plan)
    if activation.plan and not module.check_mode:
        _lvm.apply_activation(activation)
    for warning in activation.warnings:
        _module.warn(module, record['warnings'], warning)
    return activation


def run(module, ctx, state, record):
    cleanup = _datafs_create.plan_cleanup(ctx, _mountinfo.read_mounts())
    record['plans'].append(cleanup)
    busy_ok = ()
    if cleanup and not module.check_mode:
        cleanup.apply()
    elif cleanup:
        busy_ok = 'leftovers'
    activation = activate_lvm(module, ctx, state, record)
    seen = Observed(module, ctx, busy_ok, sync=not module.check_mode, record=record)
    record['seen'] = seen
    decision = seen.decision
    for warning in decision.warnings:
        _module.warn(module, record['warnings'], warning)
    if decision.fs is not None and decision.fs.legacy and state != 'unmounted':
        for warning in _datafs_mount.legacy_warnings(ctx, decision.fs):
            _module.warn(module, record['warnings'], warning)
        if state == 'mounted':
            for warning in _state_change.legacy_refusals(ctx):
                _module.warn(module, record['warnings'], warning)
    planned = _datafs_mount.Planned()
    record['plans'].append(planned.plan)
    if state == 'unmounted':
        _datafs_mount.plan_unmounted(ctx, seen.found, seen.mounts, seen.swaps, planned, seen.members, decision)
    elif decision.failure:
        raise DataFsFailure(decision.failure, refused=decision.refused)
    elif state == 'present':
        _datafs_create.plan_present(ctx, decision, planned)
    else:
        _datafs_mount.plan_mounted(ctx, decision, seen.mounts, seen.swaps, planned, seen.members)

    before = _datafs_report.describe_state(ctx, decision, seen.mounts, seen.swaps, seen.members)
    if module.check_mode:
        result = _datafs_report.predicted_result(ctx, state, seen, planned)
        after = _datafs_report.describe_predicted(ctx, decision, planned, state, seen.mounts, seen.swaps, seen.members)
    else:
        after_seen = seen
        if planned.plan:
            try:
                for problem in planned.apply():
                    _module.warn(module, record['warnings'], problem)
            except _state_change.ResetAll:
                record['done'].extend(planned.plan.done)
                planned = reset_all(module, ctx, seen, record)
            if state == 'mounted':
                planned.plan.done.extend(_datafs_grow.after(ctx, decision, planned))
            mounts_only = ctx.outcome.wiped is None and all(
                action.step in MOUNTS_ONLY for action in planned.plan.actions)
            after_seen = Observed(module, ctx, survey_of=seen if mounts_only else None)
            verify(state, ctx, seen, after_seen, planned)
            record['seen'] = after_seen
        result = _datafs_report.observed_result(ctx, state, after_seen, planned.creation)
        after = _datafs_report.describe_state(ctx, after_seen.decision, after_seen.mounts, after_seen.swaps,
                                              after_seen.members)
    lvm = activation.plan.describe() if module.check_mode else activation.plan.done
    actions = cleanup.describe() + lvm + seen.synced.describe() + (
        planned.plan.describe() if module.check_mode else record['done'] + planned.plan.done)
    result.update(changed=bool(actions), actions=actions, created=planned.creation is not None, swap=ctx.swap,
                  lvm_activated=list(activation.activated))
    grow_result(ctx, result, planned)
    state_result(ctx, result)
    for warning in ctx.outcome.warnings:
        _module.warn(module, record['warnings'], warning)
    if module._diff and actions:
        result['diff'] = dict(before=before, after=after)
    for warning in _datafs_report.warnings(result):
        _module.warn(module, record['warnings'], warning)
    return result


def reset_all(module, ctx, seen, record):
    """The pending factory reset of everything: unmount what this boot mounted of the filesystem, wipe its disks, and
    plan the volatile boot in its place (applied here). Returns that plan."""
    fs = seen.decision.fs
    wipe = Plan()
    record['plans'].append(wipe)
    mounts = _mountinfo.read_mounts()
    for target in (ctx.targets.state, ctx.targets.data):
        if _mountinfo.top_mount(mounts, target) is not None:
            wipe.add('umount-data' if target == ctx.targets.data else 'umount-state', target,
                     'unmount (factory reset)', functools.partial(_writes.umount, ctx.runner, target))
    active = _datafs_mount.active_swap(_mountinfo.read_swaps())
    swaps = [probed.path for probed in seen.decision.swap if _datafs_mount.is_active(probed.path, active)]
    for action in _state_change.plan_wipe(ctx, fs, swaps).actions:
        wipe.actions.append(action)
    wipe.apply()
    record['done'].extend(wipe.done)
    ctx.outcome.wiped = fs.uuid
    ctx.outcome.change = 'factory reset: the data filesystem %s was wiped (%s); the host is volatile' % (
        fs.uuid, ', '.join(fs.paths))
    fresh = Observed(module, ctx, sync=True)
    planned = _datafs_mount.Planned()
    _datafs_mount.plan_mounted(ctx, fresh.decision, fresh.mounts, fresh.swaps, planned, fresh.members)
    record['plans'].append(planned.plan)
    planned.apply()
    return planned


def grow_result(ctx, result, planned):
    """The magic disks that joined (or would) and those that cannot be used; the background conversion."""
    result['joined'] = list(planned.joined)
    result['unusable_disks'] = list(planned.unusable)
    result['conversion'] = None
    if result.get('mode') not in ('persistent', 'degraded') or not result.get('uuid'):
        return
    if ctx.check_mode and planned.joined:
        # The joins take the missing members' places first (replace), the rest add members.
        count = len(result['devices']) + max(len(planned.joined), len(result['missing']))
        target = _conversion.wanted(max(count, 1))
        result['conversion'] = dict(state='replacing' if result['missing'] else 'converting',
                                    target='%s/%s' % (target['data'], target['metadata']),
                                    profiles=_conversion.chunk_profiles(result['uuid']), progress=None)
        return
    result['conversion'] = _conversion.facts(ctx.runner, result['uuid'], ctx.targets.data, ctx.targets.run_dir,
                                             _btrfs.member_count(result['uuid']),
                                             bool(_btrfs.kernel_missing(result['uuid'])),
                                             just_started=ctx.conversion_job)


def state_result(ctx, result):
    """What the state step did, is waiting for, or could not do."""
    outcome = ctx.outcome
    result['state_change'] = outcome.change
    result['boot_snapshot'] = outcome.boot_snapshot
    if outcome.failure:
        result['state_change'] = 'NOT carried out: %s' % outcome.failure
        outcome.warnings.insert(0, outcome.failure)
    pending = outcome.pending
    if pending is None and result.get('mode') in ('persistent', 'degraded'):
        try:
            pending = _snapshot.read_request(ctx.targets.root)
        except PersistenceError:
            pending = None
    result['pending'] = _snapshot.describe_request(pending)


def fallback(module, ctx, error, record):
    """state=mounted failed: mount the tmpfs (when the mount point is free) so the host boots, and say why."""
    done = []
    for plan in record['plans']:
        done.extend(plan.done)
    mounts = _mountinfo.read_mounts()
    members = _btrfs.mounted_members()
    planned = _datafs_mount.plan_fallback(ctx, mounts, members)
    if module.check_mode:
        actions = planned.plan.describe()
    else:
        try:
            planned.apply()
        except PersistenceError as exc:
            return dict(_datafs_report.failure_defaults(), swap=ctx.swap,
                        msg='%s; and the volatile fallback failed too: %s' % (error.message, exc.message),
                        failure=error.message, mode='volatile', actions=done + planned.plan.done, changed=bool(done))
        actions = done + planned.plan.done
        mounts = _mountinfo.read_mounts()
    data = _mountinfo.top_mount(mounts, ctx.targets.data)
    mode = 'volatile'
    seen = record.get('seen')
    fs = seen.decision.fs if seen is not None else None
    if fs is not None and not fs.new and _mountinfo.is_subvolume_mount(data, _layout.SUBVOL_DATA, fs.uuid, members):
        mode = 'degraded' if _datafs_report.missing_of(fs) else 'persistent'
    elif _datafs_mount.is_legacy_mount(data, fs):
        mode = 'persistent'
    kernel = None
    if fs is None:
        # Failed before the disks were surveyed: the data and state subvolumes mounted already say the mode.
        fsid = _mountinfo.fsid_of(data, members)
        state = _mountinfo.top_mount(mounts, ctx.targets.state)
        if (fsid and _btrfs.kernel_label(fsid) == _layout.DATA_LABEL
                and _mountinfo.is_subvolume_mount(data, _layout.SUBVOL_DATA, fsid, members)
                and _mountinfo.is_subvolume_mount(state, _layout.SUBVOL_STATE, fsid, members)):
            mode = 'degraded' if _btrfs.kernel_missing(fsid) else 'persistent'
            kernel = (fsid, ['/dev/' + name for name in _btrfs.kernel_devices(fsid) or []])
    if mode == 'volatile' and planned.plan:
        how = '%s a tmpfs at %s so the host boots (volatile mode)' % (
            'would mount' if module.check_mode else 'mounted', ctx.targets.data)
    elif mode == 'volatile':
        how = 'the host stays in volatile mode (%s)' % _mountinfo.describe_mount(data, members)
    else:
        how = 'the data filesystem stays mounted (%s mode)' % mode
    result = dict(
        msg='%s; %s' % (error.message, how), failure=error.message, mode=mode,
        label=_layout.DATA_LABEL if (fs is not None and not fs.new) or kernel else None,
        uuid=fs.uuid if fs is not None else (kernel[0] if kernel else None),
        devices=fs.paths if fs is not None else (kernel[1] if kernel else []),
        mounts=[mount for mount in (_mountinfo.mount_result(_mountinfo.top_mount(mounts, target), members)
                                    for target in (ctx.targets.data, ctx.targets.state)) if mount is not None],
        actions=actions, changed=bool(actions), swap=ctx.swap,
        legacy=bool(fs is not None and fs.legacy),
        fstype=fs.fstype if fs is not None and not fs.new else ('btrfs' if kernel else None),
        # The label is the creation's commit point: created when this run labelled a filesystem before it failed.
        created=any(action.step == 'label' and action.description in plan.done
                    for plan in record['plans'] for action in plan.actions))
    result.update(_datafs_report.fallback_facts(ctx, mode, seen, result['uuid'], mounts, members))
    state_result(ctx, result)
    return result


def status_part(result, warnings):
    """What lw_datafs records in the status file: the mode and why, the filesystem, swap, its warnings."""
    keys = ('mode', 'failure', 'label', 'uuid', 'devices', 'missing', 'data_profile', 'metadata_profile', 'created',
            'swap_devices', 'state_change', 'mount_options', 'joined', 'conversion', 'unusable_disks', 'legacy', 'fstype')
    part = dict((key, result.get(key)) for key in keys)
    # Kept in the part only (not a field of the document): the logical volumes this boot activated.
    part['lvm_activated'] = result.get('lvm_activated') or None
    part['warnings'] = list(warnings)
    return part


def record_status(module, record, result):
    """With record_status, record this run's part of the status file; the result gains C(status) and C(changed) when
    the file changed."""
    if not module.params['record_status'] or module.params['state'] != 'mounted':
        return
    recorded = _status.record(module, module.params['root'], 'datafs', status_part(result, record['warnings']))
    result['status'] = recorded['status']
    result['changed'] = result.get('changed', False) or recorded['changed']


def execute(module):
    """lw_datafs: the run asked for, under the lock; with state=mounted a failure falls back to the tmpfs. Returns
    the result; a PersistenceError raised carries the result so far (the fallback's) and the actions done. Both
    are recorded in the status file when asked."""
    params = module.params
    record = dict(plans=[], seen=None, warnings=[], done=[])
    error = None
    try:
        # Refused before anything is touched, the lock file included.
        mount_options = _mount_options.check(params['mount_options'])
        cmdline = params['kernel_cmdline'] if params['kernel_cmdline'] is not None else _cmdline.read_cmdline()
        swap = _cmdline.swap_wanted(params['swap'], cmdline)
        if params['boot_snapshots'] < 0:
            raise PersistenceError('boot_snapshots must not be negative, got %d' % params['boot_snapshots'])
        ctx = Context(Runner(module), params['root'], swap, mount_options, params['timeout'],
                      replace_tmpfs=params['replace_tmpfs'], boot_snapshots=params['boot_snapshots'],
                      cmdline=cmdline, activate_lvm=params['activate_lvm'])
        ctx.check_mode = module.check_mode
        with _module.lock(module):
            try:
                result = run(module, ctx, params['state'], record)
            except (MountConflict, LockTimeout):
                raise
            except PersistenceError as exc:
                if params['state'] != 'mounted':
                    raise
                error = exc
                error.details.update(fallback(module, ctx, exc, record))
            if error is None:
                # Each boot mounts the data filesystem afresh: the options asked for are those it is mounted with.
                result['mount_options'] = mount_options if result.get('mode') in ('persistent', 'degraded') else []
                if result.get('legacy'):
                    result['mount_options'] = _mount_options.for_legacy(mount_options)[0]
                record_status(module, record, result)
                return result
            try:
                record_status(module, record, error.details)
            except PersistenceError as exc:
                error.details['msg'] = '%s; the status file was not written: %s' % (
                    error.details.get('msg', error.message), exc.message)
        raise error
    except PersistenceError as exc:
        done = [action for plan in record['plans'] for action in plan.done]
        exc.details.setdefault('actions', done)
        exc.details.setdefault('changed', bool(done))
        for key, empty in _datafs_report.failure_defaults().items():
            exc.details.setdefault(key, empty)
        raise

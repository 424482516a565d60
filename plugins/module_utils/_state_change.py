# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""At boot, between the mount of @lightwhale-data and that of the state: the pending rollback or reset, the
kernel command line's rollback word, and the boot snapshot. Never under a mounted state.

A rollback or a reset of the state, step by step (S = @lightwhale-state, N = @lightwhale-state.new,
O = @lightwhale-state.old, K = the snapshot that keeps the replaced state); each step is recognised from the
names and read-only flags alone, so a run killed anywhere is finished by the next boot:

  S writable, no N   keep: K = read-only snapshot of S (unless dropped or there), then stage: N = read-only
                     snapshot of the target (a reset: a new empty subvolume, then made read-only, two steps)
  S writable, N writable   a reset's staging was cut short: delete N, stage again
  S writable, N read-only  swap: exchange S and N in one rename (through O where the kernel cannot)
  O there            finish the swap through O
  S read-only, N writable  the swap is done: delete N (the replaced state, kept as K)
  S read-only, no N  unlock: make S writable
Then the request is removed. S is always there but for the instant of a fallback rename, and then O and N are.

A factory reset of everything (scope all) is carried out by lw_datafs itself: ResetAll stops this boot's plan, the
data filesystem is unmounted and its disks wiped (plan_wipe), and the host comes up volatile.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import os
import time

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _cmdline
from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan, Steps


class ResetAll(PersistenceError):
    """The pending request is a factory reset of the whole data filesystem: lw_datafs wipes it (plan_wipe)."""

    def __init__(self, request):
        super(ResetAll, self).__init__('factory reset of the data filesystem %s' % request.get('uuid'))
        self.request = request


class Outcome:
    """What the boot's state step did and has to say: C(change) ("rolled back to X"), C(failure), C(warnings)."""

    def __init__(self):
        self.change, self.failure, self.warnings, self.boot_snapshot = None, None, [], None
        self.pending = None
        # The uuid of the filesystem a factory reset wiped in this run.
        self.wiped = None


def cmdline_rollback(cmdline):
    """The kernel command line's rollback word: None when absent, '' for the newest boot snapshot, else a name."""
    for word in _cmdline.split_words(cmdline):
        if word == _layout.CMDLINE_ROLLBACK:
            return ''
        if word.startswith(_layout.CMDLINE_ROLLBACK + '='):
            return word.split('=', 1)[1]
    return None


def _is_ro(path):
    return _btrfs.is_read_only(path)


def _keep(runner, top, request, now):
    what = 'rollback to %s' % request['target'] if request['action'] == 'rollback' else 'factory reset'
    _snapshot.make_snapshot(runner, top, request['kept'], 'kept', 'the state before the %s' % what, False, now)


def _stage(runner, top, request):
    """N: a read-only snapshot of the target; a reset's new empty subvolume (made read-only by the next step)."""
    if request['action'] == 'rollback':
        _writes.snapshot_subvolume(runner, top.snapshot(request['target']), top.new, read_only=True)
        _check_staged(top)
    else:
        _writes.create_subvolume(runner, top.new)
        if not _btrfs.is_subvolume(top.new):
            raise CommandError('%s: btrfs subvolume create reported success, but there is no subvolume' % top.new,
                               device=top.new)


def _stage_read_only(runner, top):
    _writes.set_read_only(runner, top.new, True)
    _check_staged(top)


def _check_staged(top):
    if not _btrfs.is_subvolume(top.new) or not _is_ro(top.new):
        raise CommandError('%s: staging reported success, but there is no read-only subvolume' % top.new,
                           device=top.new)


def _swap(top):
    """S and N change places; through O when the kernel has no atomic exchange (each rename recognisable)."""
    if not os.path.lexists(top.old):
        if _writes.exchange(top.state, top.new):
            return
        _writes.rename(top.state, top.old)
    if not os.path.lexists(top.state):
        _writes.rename(top.new, top.state)
    _writes.rename(top.old, top.new)


def _delete(runner, path):
    _writes.set_read_only(runner, path, False)
    _writes.delete_subvolume(runner, path)
    if os.path.lexists(path):
        raise CommandError('btrfs subvolume delete %s reported success, but it is still there' % path, device=path)


def _unlock(runner, top):
    _writes.set_read_only(runner, top.state, False)
    if _is_ro(top.state):
        raise CommandError('%s is still read-only after making it writable' % top.state, device=top.state)


def plan_change(runner, top, request, root, now, done_mark=False):
    """The steps still to do for C(request), from what the top level shows (module docstring); SnapshotError when it
    cannot be carried out (nothing written)."""
    plan = Plan()
    target = request.get('target')
    state_there = os.path.lexists(top.state)
    new_there = os.path.lexists(top.new)
    if os.path.lexists(top.old):
        plan.add('swap-state', top.state, 'finish the exchange of the state with the staged one',
                 functools.partial(_swap, top))
        state_ro, new_there = True, True
    elif not state_there:
        raise _snapshot.SnapshotError('the data filesystem has neither %s nor %s: nothing to mount as the state' % (
            _layout.SUBVOL_STATE, _layout.SUBVOL_STATE_OLD))
    else:
        state_ro = _is_ro(top.state)
    if not state_ro:
        if new_there and not _is_ro(top.new):
            plan.add('delete-staged', top.new, 'delete the staging cut short',
                     functools.partial(_delete, runner, top.new))
            new_there = False
        if not new_there:
            if request['action'] == 'rollback' and not _btrfs.is_subvolume(top.snapshot(target)):
                raise _snapshot.SnapshotError('rollback to %s: there is no snapshot %s' % (target, target))
            _snapshot.refuse_nested(top, runner, 'rollback to %s' % target if target else 'factory reset of the state')
            kept = request.get('kept')
            if kept and not _btrfs.is_subvolume(top.snapshot(kept)):
                plan.add('keep-state', top.snapshot(kept), 'keep the state in use as read-only snapshot %s' % kept,
                         functools.partial(_keep, runner, top, request, now))
            plan.add('stage-state', top.new, 'stage %s' % ('snapshot %s' % target if target else 'a new empty state'),
                     functools.partial(_stage, runner, top, request))
            if not target:
                plan.add('stage-read-only', top.new, 'make the staged state read-only until it is in place',
                         functools.partial(_stage_read_only, runner, top))
        plan.add('swap-state', top.state, 'put the staged state in place of the state in use (one exchange)',
                 functools.partial(_swap, top))
        new_there = True
    if new_there:
        plan.add('delete-replaced', top.new, 'delete the replaced state%s' % (
            ' (kept as snapshot %s)' % request['kept'] if request.get('kept') else ''),
            functools.partial(_delete, runner, top.new))
    plan.add('unlock-state', top.state, 'make the new state writable', functools.partial(_unlock, runner, top))
    if done_mark:
        plan.add('cmdline-done', None, 'note that the kernel command line\'s rollback was carried out',
                 functools.partial(_files.write_file, _mount.under(root, _layout.CMDLINE_ROLLBACK_DONE), b'', 0o644))
    plan.add('request-done', None, 'remove the request (carried out)', functools.partial(_snapshot.remove_request, root))
    return plan


def describe_done(request):
    if request['action'] == 'rollback':
        return 'rolled back to %s' % request['target']
    return 'reset the state (a fresh empty state)'


def plan_boot_snapshot(runner, top, keep, now, protected, outcome):
    """The read-only snapshot of the state at this boot, then the boot snapshots beyond the newest C(keep) deleted,
    one action each (each deletion committed)."""
    plan = Plan()
    snapshots = top.list()
    name = _snapshot.utc_name(now, set(snap.name for snap in snapshots), _snapshot.BOOT_PREFIX)
    plan.add('boot-snapshot', name, 'take a read-only snapshot of the state (boot snapshot)',
             functools.partial(_boot_snapshot, runner, top, name, now, outcome))
    new = _snapshot.Snapshot(name, _snapshot.utc_time(now), '', False, 'boot', now)
    for old in _snapshot.prune_choice(snapshots + [new], keep, 0, now, protected, kinds=('boot',)):
        plan.add('boot-prune', old.name, 'delete (boot snapshots beyond the newest %d; committed)' % keep,
                 functools.partial(_snapshot.delete_snapshot, runner, top, old.name))
    return plan


def _boot_snapshot(runner, top, name, now, outcome):
    _snapshot.make_snapshot(runner, top, name, 'boot', 'the state as this boot found it', False, now)
    outcome.boot_snapshot = name


def at_boot(ctx, fs, outcome, boot_snapshots, cmdline, now=None):
    """The plan action between the data mount and the state mount. Returns the descriptions of what it did. Nothing
    here fails the boot: a failure is kept in C(outcome) and the state is mounted as it is (a request that failed
    stays pending); only a factory reset of everything stops the plan (ResetAll)."""
    done = Steps()
    try:
        _carry_out(ctx, fs, outcome, boot_snapshots, cmdline, time.time() if now is None else now, done)
    except ResetAll:
        raise
    except PersistenceError as exc:
        if outcome.pending is not None:
            outcome.failure = '%s: %s; the state in use is mounted as it is and the request stays pending ' \
                              '(lw_snapshot state=cancelled drops it)' % (
                                  _snapshot.describe_request(outcome.pending), exc.message)
        else:
            outcome.warnings.append('before the state was mounted: %s' % exc.message)
    return done


def _carry_out(ctx, fs, outcome, boot_snapshots, cmdline, now, done):
    root = ctx.targets.root
    word = cmdline_rollback(cmdline)
    mark = _mount.under(root, _layout.CMDLINE_ROLLBACK_DONE)
    if word is None and os.path.lexists(mark):
        cleared = Plan()
        cleared.add('cmdline-clear', mark, 'the kernel command line has no rollback word: forget that it was done',
                    functools.partial(_files.remove_file, mark))
        done += cleared.apply()
    try:
        request = _snapshot.read_request(root)
    except PersistenceError as exc:
        outcome.failure = exc.message
        request = None
    wants_word = word is not None and not os.path.lexists(mark)
    if request is not None and request['action'] == 'reset' and request['scope'] == 'all':
        if request.get('uuid') != fs.uuid:
            outcome.failure = ('the pending factory reset names the filesystem %s, but this one is %s; cancel it '
                               'with lw_snapshot state=cancelled' % (request.get('uuid'), fs.uuid))
        else:
            raise ResetAll(request)
        request = None
    if request is None and not wants_word and not boot_snapshots:
        return
    outcome.pending = request
    mount = _snapshot.TopMount(ctx.runner, root, fs.paths[0])
    opened = Plan()
    opened.add('mount-top', None, 'mount the top level of the data filesystem on a temporary directory under %s'
               % ctx.targets.run_dir, mount.mount)
    try:
        done += opened.apply()
        top = mount.top
        top.check()
        if request is None and wants_word:
            request = _word_request(top, word, now, outcome)
            if request is not None:
                written = Plan()
                written.add('cmdline-request', None, 'request the rollback to %s that the kernel command line asks for'
                            % request['target'], functools.partial(_snapshot.write_request, root, request))
                done += written.apply()
        if request is not None:
            outcome.pending = request
            try:
                change = plan_change(ctx.runner, top, request, root, now, done_mark=request.get('by') == 'cmdline')
                done += change.apply()
                outcome.change, outcome.pending = describe_done(request), None
            except PersistenceError as exc:
                what = _snapshot.describe_request(request)
                outcome.failure = '%s: %s; the state in use is mounted as it is and the request stays pending ' \
                                  '(lw_snapshot state=cancelled drops it)' % (what, exc.message)
                # The boot snapshot below keeps the target of the request that stays pending.
                outcome.pending = request
        if boot_snapshots:
            protected = set([outcome.pending.get('target')]) - set([None]) if outcome.pending else set()
            try:
                _snapshot.refuse_nested(top, ctx.runner, 'the boot snapshot')
                done += plan_boot_snapshot(ctx.runner, top, boot_snapshots, now, protected, outcome).apply()
            except PersistenceError as exc:
                outcome.warnings.append('no boot snapshot: %s' % exc.message)
        closed = Plan()
        closed.add('umount-top', None, 'unmount the temporary top-level mount', mount.umount)
        done += closed.apply()
    finally:
        problems = mount.cleanup()
        outcome.warnings.extend(problems)


def _word_request(top, word, now, outcome):
    """The request the rollback word stands for: the named snapshot, or the newest boot snapshot."""
    snapshots = top.list()
    if word:
        if word not in [snap.name for snap in snapshots]:
            outcome.warnings.append('the kernel command line asks for a rollback to %s: there is no such snapshot'
                                    % word)
            return None
        target = word
    else:
        boots = [snap for snap in snapshots if snap.kind == 'boot']
        if not boots:
            outcome.warnings.append('the kernel command line asks for a rollback to the newest boot snapshot: there '
                                    'is none (boot snapshots are off, or none was taken yet)')
            return None
        target = boots[-1].name
    kept = _snapshot.utc_name(now, set(snap.name for snap in snapshots), 'before-rollback-')
    return dict(action='rollback', target=target, kept=kept, by='cmdline', requested=_snapshot.utc_time(now))


def plan_wipe(ctx, fs, swaps_active):
    """A factory reset of everything, disk after disk: first the partition table and the header area (from then on
    no boot finds magic partitions there, nor the header: a run killed later leaves nothing to lay out or create
    again), then the signatures at the start of each magic partition and btrfs's superblock copies (zeroed through
    the disk, at the offsets of the table read before), then the kernel forgets the partitions. Not a secure erase."""
    plan = Plan()
    runner = ctx.runner
    disks = []
    for member in fs.members:
        if member.disk.path not in [disk.path for disk in disks]:
            disks.append(member.disk)
    for path in swaps_active:
        plan.add('swapoff', path, 'deactivate swap (factory reset)', functools.partial(_writes.swapoff, runner, path))
    for disk in disks:
        plan.add('reset-table', disk.path, 'wipe the partition table and the header area (factory reset)',
                 functools.partial(_wipe_table, runner, disk.path))
        for part in disk.partitions:
            if part.get('name') in (_layout.DATA_PARTLABEL, _layout.SWAP_PARTLABEL):
                plan.add('reset-wipe', part['device'], 'zero its signatures and superblock copies (factory reset)',
                         functools.partial(_wipe_partition, disk.path, part['start'], part['size']))
        plan.add('reset-forget', disk.path, 'the kernel forgets the partitions',
                 functools.partial(_forget, runner, disk.path))
    return plan


def _wipe_table(runner, path):
    _writes.wipe_signatures(runner, path)
    _writes.zero(path, 0, _layout.BOOT_CODE_SIZE)


# What is zeroed in a partition: its first MiB (swap's header, btrfs's primary superblock at 64 KiB, most other
# signatures) and btrfs's superblock copies at 64 MiB and 256 GiB where the partition reaches them.
_HEAD = _layout.MIB
_SUPER_COPIES = (64 * _layout.MIB, 256 * _layout.GIB)
_SUPER_SIZE = 4096


def _wipe_partition(disk, start, size):
    _writes.zero(disk, start, min(_HEAD, size))
    for offset in _SUPER_COPIES:
        if offset + _SUPER_SIZE <= size:
            _writes.zero(disk, start + offset, _SUPER_SIZE)


def _forget(runner, path):
    if _blockdev.kernel_partitions(os.path.basename(path)):
        _writes.forget_partitions(runner, path)


def plan_step(ctx, fs, mounts, plan):
    """Add the state step (at_boot) to C(plan), just before the state is mounted. A real run always adds it: it reads
    the request once the data subvolume is mounted and records only what it does. Check mode describes what it can
    know: the request when the data subvolume is mounted already, the boot snapshot, the rollback word."""
    step = functools.partial(at_boot, ctx, fs, ctx.outcome, ctx.boot_snapshots, ctx.cmdline)
    if not ctx.check_mode:
        plan.add('state-change', None, 'carry out what is due before the state is mounted', step)
        return
    data = _mountinfo.top_mount(mounts, ctx.targets.data)
    request = None
    if data is not None and data.fstype == 'btrfs':
        request = _snapshot.read_request(ctx.targets.root)
    word = cmdline_rollback(ctx.cmdline)
    if request is not None:
        plan.add('state-change', None, 'carry out the pending request: %s' % _snapshot.describe_request(request), step)
    elif word is not None and not os.path.lexists(_mount.under(ctx.targets.root, _layout.CMDLINE_ROLLBACK_DONE)):
        plan.add('state-change', None, 'roll back to %s, as the kernel command line asks' % (
            word or 'the newest boot snapshot'), step)
    if ctx.boot_snapshots:
        plan.add('state-change', None, 'take a read-only snapshot of the state (boot snapshot), keep the newest %d'
                 % ctx.boot_snapshots, step)


def legacy_refusals(ctx):
    """What a boot on a legacy data filesystem (no subvolumes, no snapshots) cannot carry out, as warnings: the
    kernel command line's rollback word, boot snapshots."""
    found = []
    word = cmdline_rollback(ctx.cmdline)
    if word is not None:
        found.append('the kernel command line asks for a rollback (%s), but the data filesystem is a legacy one without '
                     'snapshots: nothing rolled back' % _layout.CMDLINE_ROLLBACK)
    if ctx.boot_snapshots:
        found.append('boot snapshots (%d asked for) are not taken: the data filesystem is a legacy one without '
                     'subvolumes or snapshots' % ctx.boot_snapshots)
    return found

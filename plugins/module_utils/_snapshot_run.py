# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""lw_snapshot on a running host: check the options, find the mounted state, mount the top level for the run, plan
the state asked for, apply it, list what is there after.

Nothing here touches the state in use: snapshots are taken of it and deleted beside it; a rollback or reset is only
requested here (a file on @lightwhale-data) and carried out by the next boot (_state_change).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import re
import time

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_create
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan
from ansible_collections.lightwhale.persistence.plugins.module_utils._snapshot import SnapshotError

_AGE = re.compile(r'\A\s*(\d+)\s*([smhdw]?)\s*\Z')
_AGE_UNITS = dict(s=1, m=60, h=3600, d=86400, w=604800)
_AGE_UNITS[''] = 1


def parse_age(text):
    """Seconds in C(text): a whole number with an optional unit s, m, h, d or w (V(7d)); SnapshotError otherwise."""
    match = _AGE.match(text or '')
    if not match:
        raise SnapshotError('min_age %r: a whole number of seconds, or with a unit s, m, h, d or w (7d)' % (text,))
    return int(match.group(1)) * _AGE_UNITS[match.group(2)]


def check_params(params):
    """The checked settings, before anything is read or written; SnapshotError for bad input."""
    state = params['state']
    if params['name'] is not None:
        _snapshot.check_name(params['name'])
    if state in ('absent', 'rolled_back') and not params['name']:
        raise SnapshotError('state=%s needs name: the snapshot is never guessed' % state)
    if params['keep'] < 0:
        raise SnapshotError('keep must not be negative, got %d' % params['keep'])
    min_age = parse_age(params['min_age'])
    if state == 'reset' and params['reset'] == 'all' and not params['confirm_uuid']:
        raise SnapshotError('reset=all wipes the data filesystem\'s disks: give its UUID as confirm_uuid')
    return dict(min_age=min_age)


def mounted_filesystem(root):
    """(source device, fsid) of the data filesystem whose state is mounted under C(root); SnapshotError otherwise."""
    targets = _datafs.Targets(root)
    mounts = _mountinfo.read_mounts()
    members = _btrfs.mounted_members()
    state = _mountinfo.top_mount(mounts, targets.state)
    data = _mountinfo.top_mount(mounts, targets.data)
    fsid = _mountinfo.fsid_of(state, members) if state is not None else None
    if data is not None and data.fstype not in ('btrfs', 'tmpfs') and data.root == '/' and state is None:
        raise SnapshotError('%s: the data filesystem is a legacy %s (%s, labelled %s but not btrfs): it has no '
                            'subvolumes, so there are no snapshots, rollback or reset on this host; nothing written. '
                            'Move the data to a btrfs data filesystem (a magic disk) to have them' % (
                                targets.data, data.fstype, data.source, _layout.DATA_LABEL),
                            device=targets.data, mode='persistent', legacy=True)
    if fsid is None or not _mountinfo.is_subvolume_mount(state, _layout.SUBVOL_STATE, fsid, members) or \
            not _mountinfo.is_subvolume_mount(data, _layout.SUBVOL_DATA, fsid, members):
        raise SnapshotError('%s: %s, not the state of a data filesystem: the host is volatile (or its data filesystem '
                            'is not mounted), so there is no state to snapshot, roll back or reset; nothing written' % (
                                targets.state, _mountinfo.describe_mount(state, members) if state is not None
                                else 'nothing is mounted there'), device=targets.state, mode='volatile')
    return state.source, fsid


def pending_result(request):
    if request is None:
        return None
    result = dict((key, request.get(key)) for key in ('action', 'target', 'scope', 'kept', 'uuid', 'requested', 'by'))
    result['description'] = _snapshot.describe_request(request)
    return result


def _same_request(old, new):
    keys = ('action', 'target', 'scope', 'uuid')
    return all(old.get(key) == new.get(key) for key in keys) and bool(old.get('kept')) == bool(new.get('kept'))


def plan_state(module, runner, top, fsid, settings, now):
    """The plan of the state asked for, and the snapshot it concerns (or None)."""
    params = module.params
    state = params['state']
    root = params['root']
    plan = Plan()
    snapshots = top.list()
    names = [snap.name for snap in snapshots]
    request = _snapshot.read_request(root)
    name = params['name']
    if state == 'present':
        name = name or _snapshot.utc_name(now, set(names))
        if name in names:
            meta = dict((key, params[key]) for key in ('description', 'important') if params[key] is not None)
            snap = snapshots[names.index(name)]
            if any(getattr(snap, key) != value for key, value in meta.items()):
                plan.add('snapshot-meta', name, 'update %s' % ', '.join(sorted(meta)),
                         functools.partial(_snapshot.set_meta, top, name, **meta))
            return plan, name
        _snapshot.refuse_nested(top, runner, 'snapshot %s' % name)
        plan.add('snapshot', name, 'take a read-only snapshot of the state',
                 functools.partial(_snapshot.make_snapshot, runner, top, name, 'manual', params['description'] or '',
                                   bool(params['important']), now))
        return plan, name
    if state == 'absent':
        if name not in names:
            return plan, None
        if request is not None and request.get('target') == name:
            raise SnapshotError('snapshot %s is the target of the pending request (%s): not deleted; cancel the '
                                'request first (state=cancelled)' % (name, _snapshot.describe_request(request)))
        plan.add('snapshot-delete', name, 'delete (committed)', functools.partial(_snapshot.delete_snapshot, runner, top,
                                                                                  name))
        return plan, name
    if state == 'pruned':
        protected = set([request['target']]) if request is not None and request.get('target') else set()
        chosen = _snapshot.prune_choice(snapshots, params['keep'], settings['min_age'], now, protected,
                                        kinds=params['kinds'])
        for snap in chosen:
            plan.add('snapshot-delete', snap.name, 'delete (retention; committed)',
                     functools.partial(_snapshot.delete_snapshot, runner, top, snap.name))
        return plan, None
    if state == 'cancelled':
        if request is not None:
            plan.add('request-cancel', None, 'cancel the pending request: %s' % _snapshot.describe_request(request),
                     functools.partial(_snapshot.remove_request, root))
        return plan, None
    # rolled_back, reset: a request for the next boot.
    new = dict(action='rollback' if state == 'rolled_back' else 'reset', by='lw_snapshot',
               requested=_snapshot.utc_time(now))
    if state == 'rolled_back':
        if name not in names:
            raise SnapshotError('rollback to %s: there is no snapshot %s (there are: %s); nothing written' % (
                name, name, ', '.join(names) or 'none'))
        new['target'] = name
        kind = 'before-rollback-'
    else:
        new['scope'] = params['reset']
        new['uuid'] = fsid
        kind = 'before-reset-'
        if params['reset'] == 'all' and params['confirm_uuid'] != fsid:
            raise SnapshotError('reset=all: confirm_uuid %s is not the UUID of the data filesystem, %s; nothing '
                                'written' % (params['confirm_uuid'], fsid))
    if params['keep_current'] and not (state == 'reset' and params['reset'] == 'all'):
        new['kept'] = _snapshot.utc_name(now, set(names), kind)
    if request is not None:
        if _same_request(request, new):
            return plan, name
        raise SnapshotError('a request is pending already (%s): cancel it first (state=cancelled); nothing written'
                            % _snapshot.describe_request(request))
    if new['action'] == 'rollback' or new['scope'] == 'state':
        _snapshot.refuse_nested(top, runner, 'rollback to %s' % name if name else 'factory reset of the state')
    plan.add('request', _snapshot.request_path(root), 'request for the next boot: %s' % _snapshot.describe_request(new),
             functools.partial(_snapshot.write_request, root, new))
    return plan, name


def run(module, runner, settings):
    params = module.params
    source, fsid = mounted_filesystem(params['root'])
    mount = _snapshot.TopMount(runner, params['root'], source, read_only=module.check_mode)
    opened = Plan()
    opened.add('mount-top', None, 'mount the top level', mount.mount)
    try:
        opened.apply()
        top = mount.top
        top.check()
        plan, name = plan_state(module, runner, top, fsid, settings, time.time())
        if not module.check_mode:
            plan.apply()
        snapshots = top.list()
        request = _snapshot.read_request(params['root'])
        closed = Plan()
        closed.add('umount-top', None, 'unmount the top level', mount.umount)
        closed.apply()
    finally:
        problems = mount.cleanup()
    for problem in problems:
        module.warn(problem)
    if module.check_mode:
        snapshots = _predicted_snapshots(plan, snapshots, time.time())
    pending = request if not module.check_mode else _predicted_request(plan, request)
    target = pending.get('target') if pending else None
    result = dict(changed=bool(plan), actions=plan.describe(), name=name, uuid=fsid,
                  snapshots=[_snapshot.to_result(snap, target) for snap in snapshots],
                  pending=pending_result(pending))
    return result


def _predicted_snapshots(plan, snapshots, now):
    """Check mode: the snapshots as a real run would leave them."""
    found = list(snapshots)
    for action in plan.actions:
        if action.step == 'snapshot-delete':
            found = [snap for snap in found if snap.name != action.device]
        elif action.step == 'snapshot':
            args = action.func.args
            found.append(_snapshot.Snapshot(args[2], _snapshot.utc_time(now), args[4], args[5], args[3], now))
        elif action.step == 'snapshot-meta':
            found = [snap._replace(**action.func.keywords) if snap.name == action.device else snap for snap in found]
    return found


def _predicted_request(plan, request):
    """Check mode: the request as a real run would leave it."""
    for action in plan.actions:
        if action.step == 'request-cancel':
            return None
        if action.step == 'request':
            return action.func.args[1]
    return request


def cleanup_leftovers(module, runner):
    """A killed run's temporary top-level mount, undone under the lock (as lw_datafs does)."""
    ctx = _datafs.Context(runner, module.params['root'], True, [], module.params['timeout'])
    plan = _datafs_create.plan_cleanup(ctx, _mountinfo.read_mounts())
    if plan and not module.check_mode:
        plan.apply()
    return plan.describe()


def execute(module):
    settings = check_params(module.params)
    runner = Runner(module)
    with _module.lock(module):
        undone = cleanup_leftovers(module, runner)
        result = run(module, runner, settings)
    if undone:
        result['actions'] = undone + result['actions']
        result['changed'] = True
    return result

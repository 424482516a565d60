# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Snapshots of the state, and the request that the next boot carries out.

At the top level of the data filesystem:
  @lightwhale-state                                 the state in use
  @lightwhale-state-snapshots/<name>                a read-only snapshot of it
  @lightwhale-state-snapshots/.meta/<name>.json     its time, description, kind and important flag
  @lightwhale-state.new, @lightwhale-state.old      only while a rollback or reset is carried out (_state_change)
The top level is reached through a temporary mount under <root>/run/lightwhale (TopMount), which plan actions make
and undo. The request (rollback or reset at the next boot) is a JSON file on @lightwhale-data (_layout.REQUEST_FILE),
which is mounted before the state and never rolled back.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import json
import os
import re
import tempfile
import time
from collections import namedtuple

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, PersistenceError

NAME_PATTERN = re.compile(r'\A[A-Za-z0-9][A-Za-z0-9._+@-]*\Z')
MAX_NAME = 100
# What made a snapshot: lw_snapshot (manual), the boot (boot), a rollback or reset that kept the state it replaced.
KINDS = ('manual', 'boot', 'kept')
BOOT_PREFIX = 'boot-'
META_MODE = 0o644
REQUEST_VERSION = 1
PEEK_PREFIX = 'snapshot-look-'

# C(epoch): the creation time in seconds with their fraction, which orders snapshots taken within one second.
Snapshot = namedtuple('Snapshot', ('name', 'time', 'description', 'important', 'kind', 'epoch'))
Snapshot.__new__.__defaults__ = (0.0,)


def age_order(snapshot):
    """Oldest first: by the time kept beside it, then the exact creation time, then the name."""
    return (snapshot.time, snapshot.epoch, snapshot.name)


class SnapshotError(PersistenceError):
    """A snapshot, rollback or reset is refused or failed; nothing was written unless the message says so."""


def check_name(name, option='name'):
    """C(name) when it can name a snapshot (one path component of safe characters); SnapshotError otherwise."""
    if not name:
        raise SnapshotError('%s: a snapshot name must not be empty' % option)
    if '/' in name:
        raise SnapshotError('%s %r: a snapshot name must not contain /' % (option, name))
    if name.startswith('.'):
        raise SnapshotError('%s %r: a snapshot name must not start with . (no ., no .., no hidden names)'
                            % (option, name))
    if len(name) > MAX_NAME:
        raise SnapshotError('%s: a snapshot name has at most %d characters, %r has %d' % (
            option, MAX_NAME, name, len(name)))
    if not NAME_PATTERN.match(name):
        raise SnapshotError('%s %r: a snapshot name holds only letters, digits and . _ + @ -' % (option, name))
    return name


def utc_time(now):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))


def utc_name(now, taken, prefix=''):
    """A new name from the UTC time (C(20261206T123000Z)), with a counter when the second is taken already."""
    base = prefix + time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))
    name, count = base, 1
    while name in taken:
        count += 1
        name = '%s-%d' % (base, count)
    return name


def to_result(snapshot, pending):
    return dict(name=snapshot.name, time=snapshot.time, description=snapshot.description,
                important=snapshot.important, kind=snapshot.kind, pending=snapshot.name == pending)


def read_json(path):
    """The JSON object in the file at C(path), or None when there is none; SnapshotError when it cannot be read."""
    found = _files.read_file(path)
    if found is None:
        return None
    try:
        value = json.loads(found.data.decode('utf-8'))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError('%s is not valid JSON (%s): left alone; fix or remove it' % (path, exc), device=path)
    if not isinstance(value, dict):
        raise SnapshotError('%s holds no JSON object: left alone; fix or remove it' % path, device=path)
    return value


def write_json(path, value):
    _files.write_file(path, (json.dumps(value, indent=2, sort_keys=True) + '\n').encode('utf-8'), META_MODE)


class Top:
    """The filesystem's top level as mounted at C(path): the state, its staging names and the snapshots."""

    def __init__(self, path):
        self.path = path
        self.state = os.path.join(path, _layout.SUBVOL_STATE)
        self.new = os.path.join(path, _layout.SUBVOL_STATE_NEW)
        self.old = os.path.join(path, _layout.SUBVOL_STATE_OLD)
        self.snapshots = os.path.join(path, _layout.SUBVOL_SNAPSHOTS)
        self.meta_dir = os.path.join(self.snapshots, _layout.SNAPSHOT_META_DIR)

    def snapshot(self, name):
        return os.path.join(self.snapshots, name)

    def meta(self, name):
        return os.path.join(self.meta_dir, name + '.json')

    def check(self):
        """SnapshotError unless the layout of step 5 is there (a filesystem of an older layout has no snapshots)."""
        for path in (self.state, self.snapshots):
            if not _btrfs.is_subvolume(path):
                raise SnapshotError('the data filesystem has no subvolume %s: it holds no state to snapshot (a '
                                    'filesystem made by an older Lightwhale)' % os.path.basename(path))

    def names(self):
        """Names of the snapshots (subvolumes in @lightwhale-state-snapshots), sorted."""
        try:
            entries = os.listdir(self.snapshots)
        except OSError as exc:
            raise SnapshotError('cannot list %s: %s' % (self.snapshots, exc.strerror or exc))
        return sorted(name for name in entries
                      if not name.startswith('.') and _btrfs.is_subvolume(os.path.join(self.snapshots, name)))

    def list(self):
        """Every snapshot, oldest first (age_order)."""
        found = []
        for name in self.names():
            try:
                meta = read_json(self.meta(name)) or {}
            except PersistenceError:
                meta = {}
            kind = meta.get('kind') if meta.get('kind') in KINDS else 'manual'
            epoch = meta.get('epoch')
            found.append(Snapshot(name, str(meta.get('time') or ''), str(meta.get('description') or ''),
                                  meta.get('important') is True, kind,
                                  float(epoch) if isinstance(epoch, (int, float)) else 0.0))
        return sorted(found, key=age_order)

    def nested(self, runner):
        """Subvolumes inside the state (Docker's btrfs storage driver makes one per layer), as paths in the state."""
        nested = _btrfs.nested_subvolumes(_btrfs.subvolume_list(runner, self.path), _layout.SUBVOL_STATE)
        return [path[len(_layout.SUBVOL_STATE) + 1:] for path in nested]


def refuse_nested(top, runner, what):
    nested = top.nested(runner)
    if nested:
        shown = ', '.join(nested[:5]) + (' and %d more' % (len(nested) - 5) if len(nested) > 5 else '')
        raise SnapshotError(
            '%s refused: the state holds nested subvolumes (%s); a snapshot would hold them as empty directories. '
            'Docker makes them with its btrfs storage driver: set another storage driver (docker_data_root does '
            'unless one is chosen) and move the data off' % (what, shown))


def make_snapshot(runner, top, name, kind, description, important, now):
    """A read-only snapshot of the state as C(name): its description first, then the snapshot, verified. A failure
    names the snapshot, with paths from the filesystem's top level, and leaves no description behind."""
    target = top.snapshot(name)
    try:
        if not os.path.isdir(top.meta_dir):
            _files.make_dirs(top.path, top.meta_dir)
        write_json(top.meta(name), dict(time=utc_time(now), description=description, important=bool(important),
                                        kind=kind, epoch=round(now, 6)))
        _writes.snapshot_subvolume(runner, top.state, target, read_only=True)
        if not _btrfs.is_subvolume(target) or not _btrfs.is_read_only(target):
            raise CommandError('btrfs subvolume snapshot reported success, but there is no read-only subvolume')
    except PersistenceError as exc:
        if not _btrfs.is_subvolume(target):
            try:
                _files.remove_file(top.meta(name))
            except PersistenceError:
                pass
        raise SnapshotError('snapshot %s not taken: %s' % (name, exc.message.replace(top.path + '/', '')),
                            device=name)


def delete_snapshot(runner, top, name):
    """Delete a snapshot, committed, then what is kept beside it."""
    target = top.snapshot(name)
    if _btrfs.is_subvolume(target):
        if _btrfs.is_read_only(target):
            # A read-only subvolume is deleted after it is made writable (older kernels refuse otherwise).
            _writes.set_read_only(runner, target, False)
        _writes.delete_subvolume(runner, target)
        if os.path.lexists(target):
            raise CommandError('btrfs subvolume delete %s reported success, but it is still there' % target,
                               device=target)
    _files.remove_file(top.meta(name))


def set_meta(top, name, **changes):
    meta = read_json(top.meta(name)) or dict(kind='manual', time='', description='', important=False)
    meta.update(changes)
    write_json(top.meta(name), meta)


def prune_choice(snapshots, keep, min_age, now, protected, kinds=None):
    """The snapshots retention removes, oldest first: beyond the newest C(keep) (of C(kinds), all when None), older
    than C(min_age) seconds; never an important one, never one in C(protected)."""
    subject = [snap for snap in snapshots if kinds is None or snap.kind in kinds]
    newest_first = sorted(subject, key=age_order, reverse=True)
    chosen = []
    for snap in newest_first[keep:]:
        if snap.important or snap.name in protected:
            continue
        if min_age and (not snap.time or now - parse_time(snap.time) < min_age):
            continue
        chosen.append(snap)
    return list(reversed(chosen))


def parse_time(text):
    """Seconds since the epoch of a C(utc_time) text; 0 when it cannot be read (taken as old)."""
    try:
        return int(calendar.timegm(time.strptime(text, '%Y-%m-%dT%H:%M:%SZ')))
    except (TypeError, ValueError):
        return 0


class TopMount:
    """The temporary mount of the top level (subvolid 5) under <root>/run/lightwhale: mount() and umount() are plan
    actions; cleanup() always runs after the plan, so no run leaves it behind."""

    def __init__(self, runner, root, source, read_only=False, directory=None):
        self.runner, self.root, self.source, self.read_only = runner, root, source, read_only
        # Where the temporary directory goes (default <root>/run/lightwhale).
        self.directory = directory
        self.path, self.mounted = None, False

    @property
    def top(self):
        return Top(self.path)

    def mount(self):
        if self.directory is None:
            _mount.make_dirs(self.root, _layout.RUN_DIR)
        # A read-only look (check mode, no lock held) gets its own prefix: a locked run's cleanup leaves it alone.
        prefix = PEEK_PREFIX if self.read_only else _layout.TOP_PREFIX
        self.path = tempfile.mkdtemp(prefix=prefix, dir=self.directory or _mount.under(self.root, _layout.RUN_DIR))
        options = ['subvolid=%d' % _btrfs.TOP_LEVEL] + (['ro'] if self.read_only else [])
        _writes.mount(self.runner, self.source, self.path, 'btrfs', options)
        self.mounted = True

    def umount(self):
        _writes.umount(self.runner, self.path)
        self.mounted = False
        os.rmdir(self.path)
        self.path = None

    def cleanup(self):
        """Unmount and remove what is left (after a failure); returns the problems met, as texts."""
        problems = []
        if self.mounted:
            try:
                _writes.umount(self.runner, self.path)
                self.mounted = False
            except PersistenceError as exc:
                problems.append(exc.message)
        if self.path and not self.mounted:
            try:
                os.rmdir(self.path)
                self.path = None
            except OSError as exc:
                problems.append('cannot remove %s: %s' % (self.path, exc))
        return problems


def request_path(root):
    return _mount.under(root, _layout.REQUEST_FILE)


def read_request(root):
    """The pending request on the mounted data subvolume under C(root), or None; SnapshotError when unreadable."""
    request = read_json(request_path(root))
    if request is None:
        return None
    if request.get('action') not in ('rollback', 'reset') or (
            request.get('action') == 'rollback' and not request.get('target')) or (
            request.get('action') == 'reset' and request.get('scope') not in ('state', 'all')):
        raise SnapshotError('%s is not a request this collection wrote (%s): left alone; remove it to cancel' % (
            request_path(root), json.dumps(request, sort_keys=True)), device=request_path(root))
    return request


def describe_request(request):
    if request is None:
        return None
    if request['action'] == 'rollback':
        text = 'roll back to %s' % request['target']
    elif request['scope'] == 'all':
        text = 'factory reset of the whole data filesystem %s (its disks wiped, the host volatile)' % request.get('uuid')
    else:
        text = 'factory reset of the state (a fresh empty state)'
    if request.get('kept'):
        text += ', keeping the state in use as snapshot %s' % request['kept']
    elif request['action'] == 'rollback' or request['scope'] == 'state':
        text += ', dropping the state in use'
    return text


def write_request(root, request):
    directory = _mount.under(root, _layout.REQUEST_DIR)
    if not os.path.isdir(directory):
        _mount.make_dirs(root, _layout.REQUEST_DIR, mode=0o700)
    request = dict(request, version=REQUEST_VERSION)
    write_json(request_path(root), request)


def remove_request(root):
    return _files.remove_file(request_path(root))


def look(runner, root, source):
    """(snapshots, problems) through a read-only mount of the top level on a temporary directory outside C(root),
    undone before returning: for a report that writes nothing under C(root)."""
    mount = TopMount(runner, root, source, read_only=True, directory=tempfile.gettempdir())
    problems = []
    try:
        mount.mount()
        top = mount.top
        top.check()
        found = top.list()
        mount.umount()
    except PersistenceError as exc:
        found = []
        problems.append('snapshots: %s' % exc.message)
    finally:
        problems.extend(mount.cleanup())
    return found, problems

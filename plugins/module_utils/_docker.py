# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Docker's data root: C(data-root) in daemon.json, merged with the keys already there, and the
directory itself (root-owned 0710, as dockerd makes it).

plan() reads and decides; nothing is written outside the Plan's actions. The file is rewritten only when
C(data-root) differs, so an operator's formatting survives every boot that has nothing to change.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import json
import os
import posixpath
from collections import OrderedDict

from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan

DATA_ROOT_KEY = 'data-root'
# Docker's btrfs storage driver makes a nested subvolume per layer, which snapshots and rollback of the state refuse:
# another driver is set unless the operator chose one, or Docker already keeps its layers with btrfs there.
STORAGE_DRIVER_KEY = 'storage-driver'
DEFAULT_STORAGE_DRIVER = 'overlay2'
# dockerd before 23.0 also read the data root from 'graph' and refuses a file that sets both.
LEGACY_KEY = 'graph'
DATA_ROOT_MODE = 0o710
CONFIG_MODE = 0o644
CONFIG_DIR_MODE = 0o755


def check_path(name, path):
    """An absolute, normalised path as seen inside the root; raise PersistenceError otherwise."""
    if not path or not path.startswith('/'):
        raise PersistenceError('%s %r is not an absolute path' % (name, path))
    if '..' in path.split('/'):
        raise PersistenceError('%s %s must not contain ..' % (name, path))
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise PersistenceError('%s %r holds a control character (a newline, a tab...): refused' % (name, path))
    normal = posixpath.normpath(path)
    if normal.startswith('//'):
        normal = '/' + normal.lstrip('/')
    if normal == '/':
        raise PersistenceError('%s must not be /' % name)
    return normal


def parse_config(data, path):
    """daemon.json's bytes as an OrderedDict (key order kept). Empty means no settings; anything that is not a JSON
    object is an error: a file dockerd cannot read is the operator's to fix, never ours to overwrite."""
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise PersistenceError('%s is not UTF-8 text (%s): left alone; fix or remove it' % (path, exc))
    if not text.strip():
        return OrderedDict()
    try:
        config = json.loads(text, object_pairs_hook=OrderedDict)
    except ValueError as exc:
        raise PersistenceError('%s is not valid JSON (%s): left alone; fix or remove it' % (path, exc))
    if not isinstance(config, dict):
        raise PersistenceError('%s holds a JSON %s, not an object: left alone; fix or remove it'
                               % (path, type(config).__name__))
    return config


def merge(config, data_root):
    """A copy of C(config) with C(data-root) set; every other key and the order of keys kept (a new key goes last)."""
    merged = OrderedDict(config)
    merged[DATA_ROOT_KEY] = data_root
    return merged


def render(config):
    """The text written: two-space indentation like Docker's documentation, a final newline."""
    return json.dumps(config, indent=2, separators=(',', ': '), ensure_ascii=False) + '\n'


class DockerPlan:
    """What plan() found and decided."""

    def __init__(self, config_path, data_dir):
        self.plan = Plan()
        self.config_path = config_path
        self.data_dir = data_dir
        self.previous = None
        self.before = ''
        self.after = ''
        self.warnings = []


def wanted_driver(settings, data_dir, storage_driver):
    """The storage driver to add to C(settings), or None: only when none is set, and Docker has not stored layers
    with its btrfs driver in C(data_dir) already (switching would hide its images and containers)."""
    if not storage_driver or STORAGE_DRIVER_KEY in settings:
        return None
    if os.path.isdir(os.path.join(data_dir, 'btrfs')):
        return None
    return storage_driver


def plan(root, config, data_root, read_from=None, storage_driver=DEFAULT_STORAGE_DRIVER):
    """Plan data-root = C(data_root) in C(config) and the directory C(data_root), all paths inside C(root), and the
    storage driver (wanted_driver). C(read_from): where to read the file instead (a check-mode prediction through an
    overlay not mounted yet)."""
    config_path = _mount.under(root, config)
    data_dir = _mount.under(root, data_root)
    found = DockerPlan(config_path, data_dir)

    config_dir = posixpath.dirname(config)
    if read_from is not None:
        missing_config_dirs = []
        info = _files.read_file(read_from)
    else:
        missing_config_dirs = _mount.missing_dirs(root, config_dir)
        info = None if missing_config_dirs else _files.read_file(config_path)
    settings = parse_config(info.data, config_path) if info is not None else OrderedDict()
    found.before = info.data.decode('utf-8') if info is not None else ''
    found.previous = settings.get(DATA_ROOT_KEY)
    if LEGACY_KEY in settings:
        found.warnings.append('%s also sets the old key %r (%r), which dockerd before 23.0 reads as the data root and '
                              'refuses together with %r; remove it' % (config_path, LEGACY_KEY, settings[LEGACY_KEY],
                                                                       DATA_ROOT_KEY))

    # The data root's parent (the state directory on the data filesystem) must be there: creating it would put
    # Docker's data on whatever is mounted below, for example the read-only image.
    missing = _mount.missing_dirs(root, data_root)
    if missing and missing != [data_dir]:
        raise PersistenceError('%s does not exist: the data filesystem (or the volatile tmpfs) is not mounted, or '
                               'data_root is wrong; nothing changed' % os.path.dirname(data_dir))

    driver = wanted_driver(settings, data_dir, storage_driver)
    if storage_driver and STORAGE_DRIVER_KEY not in settings and driver is None:
        found.warnings.append('Docker keeps its layers with its btrfs storage driver in %s: snapshots and rollback of '
                              'the state refuse while those subvolumes are there (choose another storage-driver in %s '
                              'and move the images off)' % (data_dir, config_path))
    if found.previous != data_root or driver is not None:
        merged = merge(settings, data_root)
        if driver is not None:
            merged[STORAGE_DRIVER_KEY] = driver
        found.after = render(merged)
        if missing_config_dirs:
            found.plan.add('mkdir-config', _mount.under(root, config_dir), 'create the directory (root, 0755)',
                           functools.partial(_mount.make_dirs, root, config_dir, CONFIG_DIR_MODE))
        mode, uid, gid = (info.mode, info.uid, info.gid) if info is not None else (CONFIG_MODE, 0, 0)
        added = ', %s = %s' % (STORAGE_DRIVER_KEY, driver) if driver is not None else ''
        if info is None:
            what = 'create it with %s = %s%s' % (DATA_ROOT_KEY, data_root, added)
        elif found.previous == data_root:
            what = 'add %s = %s (%d other key(s) kept)' % (STORAGE_DRIVER_KEY, driver, len(settings))
        elif found.previous is None:
            what = 'add %s = %s%s (%d other key(s) kept)' % (DATA_ROOT_KEY, data_root, added, len(settings))
        else:
            what = 'set %s = %s, was %s%s (%d other key(s) kept)' % (DATA_ROOT_KEY, data_root, found.previous, added,
                                                                     len(settings) - 1)
        found.plan.add('write-config', config_path, what,
                       functools.partial(_files.write_file, config_path, found.after.encode('utf-8'), mode, uid, gid))
    else:
        found.after = found.before
    if missing:
        found.plan.add('mkdir-data-root', data_dir, 'create the data root (root, 0710)',
                       functools.partial(_mount.make_dirs, root, data_root, DATA_ROOT_MODE))
    return found


def verify(root, config, data_root, storage_driver=DEFAULT_STORAGE_DRIVER):
    """Read back what was written: the file must now name the data root, the directory must be there."""
    after = plan(root, config, data_root, storage_driver=storage_driver)
    if after.plan:
        raise PersistenceError('after writing, there is still something to do: %s' % '; '.join(after.plan.describe()))


def run(module, root, config, data_root, storage_driver):
    found = plan(root, config, data_root, storage_driver=storage_driver)
    for warning in found.warnings:
        module.warn(warning)
    if found.plan and not module.check_mode:
        found.plan.apply()
        verify(root, config, data_root, storage_driver)
    result = dict(changed=bool(found.plan), actions=found.plan.describe(), data_root=data_root,
                  previous_data_root=found.previous, config=found.config_path, directory=found.data_dir)
    if module._diff and found.plan:
        result['diff'] = dict(before=found.before, after=found.after, before_header=found.config_path,
                              after_header=found.config_path)
    return result


def execute(module):
    """docker_data_root: check the paths, then plan, apply and read back under the lock."""
    params = module.params
    data_root = check_path('data_root', params['data_root'])
    config = check_path('config', params['config'])
    with _module.lock(module):
        return run(module, params['root'], config, data_root, params['storage_driver'])

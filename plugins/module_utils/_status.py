# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The status file <root>/run/lightwhale/persistence.json and the one summary line an operator reads on the console.

build() makes the document from what the boot found (pure), summary() the line. The file is rewritten only when
something other than its C(time) differs, so C(time) says since when the host has been in the state it describes,
and a run that finds the same state writes nothing.

Each step of the boot records its own part under C(steps) (record()): lw_datafs the data filesystem and swap,
lw_overlay the overlays and Docker's data root, lw_status whatever the role adds (a failure Ansible saw). The
document is composed from the parts (compose()): each field from the last part that gives it, the failures and
warnings of all; the overlays are checked against what is mounted whenever a part is recorded.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import time
from collections import OrderedDict

from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _conversion
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

VERSION = 1
MODES = ('persistent', 'degraded', 'volatile')
PREFIX = 'lightwhale-persistence: '
FILE_MODE = 0o644
# The keys a reader can rely on, in the order they are written.
KEYS = ('version', 'time', 'mode', 'ok', 'failure', 'summary', 'label', 'uuid', 'devices', 'missing', 'data_profile',
        'metadata_profile', 'mount_options', 'created', 'joined', 'conversion', 'unusable_disks', 'swap_devices', 'overlays',
        'overlays_missing', 'docker_data_root', 'state_change', 'warnings', 'legacy', 'fstype')

# The parts of the document, in the order they are layered; the key that holds them.
STEPS = ('datafs', 'overlay', 'boot')
STEPS_KEY = 'steps'
# The fields a part may give (the last part that gives one wins); 'failure' and 'warnings' add up instead.
FIELDS = ('mode', 'label', 'uuid', 'devices', 'missing', 'data_profile', 'metadata_profile', 'mount_options', 'created',
          'joined', 'conversion', 'unusable_disks', 'swap_devices', 'overlays', 'docker_data_root', 'state_change',
          'legacy', 'fstype')

_SPACE = re.compile(r'\s+')


def one_line(text):
    """C(text) with every run of white space (newlines included) made one space."""
    return _SPACE.sub(' ', text or '').strip()


def mounted_overlays(mounts, root, paths):
    """The C(paths) (inside C(root)) whose visible mount is an overlay, from parsed mountinfo."""
    real = os.path.realpath(root)
    found = []
    for path in paths:
        target = os.path.join(real, path.strip('/')).rstrip('/') or '/'
        top = _mountinfo.top_mount(mounts, target)
        if top is not None and top.fstype == 'overlay':
            found.append(path)
    return found


def build(mode, failure=None, label=None, uuid=None, devices=(), missing=(), data_profile=None, metadata_profile=None,
          created=False, swap_devices=(), overlays=(), overlays_missing=(), docker_data_root=None, warnings=(),
          state_change=None, mount_options=(), joined=(), conversion=None, unusable_disks=(), legacy=False, fstype=None):
    """The status document without its time (see stamp())."""
    status = OrderedDict()
    status['version'] = VERSION
    status['time'] = None
    status['mode'] = mode
    status['ok'] = not failure and not overlays_missing
    status['failure'] = one_line(failure) or None
    status['summary'] = None
    status['label'] = label if mode != 'volatile' else None
    status['uuid'] = uuid if mode != 'volatile' else None
    status['devices'] = list(devices) if mode != 'volatile' else []
    status['missing'] = list(missing) if mode != 'volatile' else []
    status['data_profile'] = data_profile if mode != 'volatile' else None
    status['metadata_profile'] = metadata_profile if mode != 'volatile' else None
    # The extra options the data filesystem was mounted with (lw_datafs mount_options).
    status['mount_options'] = list(mount_options) if mode != 'volatile' else []
    status['created'] = bool(created)
    # Data partitions of magic disks that joined the filesystem at this boot; the background conversion of its
    # profiles (state, target, profiles per chunk type, progress); magic disks that cannot be used, and why.
    status['joined'] = list(joined) if mode != 'volatile' else []
    status['conversion'] = conversion if mode != 'volatile' else None
    status['unusable_disks'] = [dict(device=item['device'], reason=one_line(item['reason'])) for item in unusable_disks]
    status['swap_devices'] = list(swap_devices)
    status['overlays'] = list(overlays)
    status['overlays_missing'] = list(overlays_missing)
    status['docker_data_root'] = docker_data_root
    # What the boot did to the state before mounting it (a rollback, a reset), or why it did not.
    status['state_change'] = one_line(state_change) or None
    status['warnings'] = []
    for warning in warnings:
        # Several runs of one module in a boot may warn alike: each warning once, in order.
        line = one_line(warning)
        if line and line not in status['warnings']:
            status['warnings'].append(line)
    # A legacy data filesystem (not btrfs, mounted as it is: no subvolumes, RAID or snapshots) and its type.
    status['legacy'] = bool(legacy) and mode != 'volatile'
    status['fstype'] = fstype if mode != 'volatile' else None
    status['summary'] = summary(status)
    return status


def summary(status):
    """The one line: mode and layout, swap, overlays, Docker's data root, warnings; the failure first when there is one."""
    mode = status['mode']
    if mode == 'volatile':
        what = 'volatile (tmpfs: nothing written survives a reboot)'
    elif status.get('legacy'):
        what = '%s legacy %s on %s' % ('persistent' if mode == 'persistent' else 'DEGRADED', status.get('fstype') or '?',
                                       ','.join(status['devices']) or '?')
        if status.get('mount_options'):
            what += ' (%s)' % ','.join(status['mount_options'])
    else:
        what = '%s %s/%s on %s' % ('persistent' if mode == 'persistent' else 'DEGRADED',
                                   status['data_profile'] or '?', status['metadata_profile'] or '?',
                                   ','.join(status['devices']) or '?')
        if status['missing']:
            what += ', MISSING %s' % ', '.join(status['missing'])
        if status.get('mount_options'):
            what += ' (%s)' % ','.join(status['mount_options'])
        if status['created']:
            what += ' (created at this boot)'
        if status.get('joined'):
            what += ' (joined at this boot: %s)' % ','.join(status['joined'])
        if status.get('conversion'):
            what += '; ' + _conversion.describe(status['conversion'])
    parts = [what]
    for item in status.get('unusable_disks') or ():
        parts.append('magic disk %s not used: %s' % (item['device'], item['reason']))
    if status.get('state_change'):
        parts.append(status['state_change'])
    if status['failure']:
        parts.insert(0, 'FAILED: %s' % status['failure'])
    parts.append('swap %s' % (','.join(status['swap_devices']) or 'off'))
    overlays = 'overlays %s' % (' '.join(status['overlays']) or 'none')
    if status['overlays_missing']:
        overlays += ' (NOT mounted: %s)' % ' '.join(status['overlays_missing'])
    parts.append(overlays)
    parts.append('docker data-root %s' % (status['docker_data_root'] or 'not set'))
    if status['warnings']:
        parts.append('%d warning(s) in %s' % (len(status['warnings']), _layout.STATUS_FILE))
    return PREFIX + '; '.join(parts)


def created_earlier(old, new):
    """Whether an earlier run of this boot created the filesystem that C(new) describes (C(created) is per boot:
    the file lives under /run, which a reboot empties)."""
    return (old is not None and old.get('created') is True and not new['created'] and new['uuid'] is not None
            and old.get('uuid') == new['uuid'])


def stamp(status, now=None):
    """A copy of C(status) with its time set (UTC, ISO 8601, whole seconds)."""
    stamped = OrderedDict(status)
    stamped['time'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))
    return stamped


def render(status):
    """The file's text: two-space indentation, one key per line, UTF-8 (the boot hook reads the summary with sed)."""
    return json.dumps(status, indent=2, separators=(',', ': '), ensure_ascii=False) + '\n'


def parse(data):
    """A status document read back (bytes), or None when it is not one (then it is simply rewritten)."""
    try:
        status = json.loads(data.decode('utf-8'), object_pairs_hook=OrderedDict)
    except (UnicodeDecodeError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def same(old, new):
    """Whether two documents say the same, their times aside."""
    if old is None:
        return False
    return (dict((key, value) for key, value in old.items() if key != 'time')
            == dict((key, value) for key, value in new.items() if key != 'time'))


def compose(parts):
    """The arguments of build() from the recorded C(parts) (step name -> dict), C(overlays_missing) aside: each field
    from the last step that gives it (no step: volatile, the default overlays), the failures and warnings of every
    step in order. A failure that repeats another (the role's note of a module's failure) is said once."""
    fields = dict(mode='volatile', overlays=list(_layout.OVERLAY_PATHS))
    failures = []
    warnings = []
    for step in STEPS:
        part = parts.get(step) or {}
        for key in FIELDS:
            if part.get(key) is not None:
                fields[key] = part[key]
        failure = one_line(part.get('failure'))
        if failure and not any(failure in other or other in failure for other in failures):
            failures.append(failure)
        warnings.extend(part.get('warnings') or ())
    fields['failure'] = '; '.join(failures) or None
    fields['warnings'] = warnings
    return fields


def mounted_now(root):
    """A C(mounted)(wanted) for record() that asks the kernel (mountinfo read once, when first needed)."""
    return lambda wanted: mounted_overlays(_mountinfo.read_mounts(), root, wanted)


def record(module, root, step, part, mounted=None):
    """Record C(part) as the part of C(step), compose the document and write it when it changed (never in check mode).

    C(mounted)(wanted) says which of the wanted overlays are mounted; by default the kernel is asked (in check mode
    too: the overlays as they are). The step C(datafs) starts a new run's record: a C(boot) part (the role's note
    of an earlier run's failure) is dropped. Returns dict(changed, status, summary, ok, path) and, with diff, C(diff).
    """
    if not os.path.isdir(root):
        raise PersistenceError('root %s does not exist or is not a directory' % root)
    path = _mount.under(root, _layout.STATUS_FILE)
    run_dir = os.path.dirname(_layout.STATUS_FILE)
    found = None if _mount.missing_dirs(root, run_dir) else _files.read_file(path)
    old = parse(found.data) if found is not None else None
    parts = OrderedDict()
    if old is not None and isinstance(old.get(STEPS_KEY), dict):
        parts.update((name, dict(old[STEPS_KEY][name])) for name in STEPS
                     if isinstance(old[STEPS_KEY].get(name), dict) and not (step == 'datafs' and name == 'boot'))
    parts[step] = dict((key, value) for key, value in part.items() if value is not None)
    earlier = (old.get(STEPS_KEY) or {}).get(step) if old is not None and isinstance(old.get(STEPS_KEY), dict) else None
    if isinstance(earlier, dict) and earlier.get('lvm_activated') and not parts[step].get('lvm_activated'):
        # The file lives under /run: what an earlier run of this boot activated stays said (like 'created').
        parts[step]['lvm_activated'] = earlier['lvm_activated']
    parts = OrderedDict((name, parts[name]) for name in STEPS if name in parts)

    arguments = compose(parts)
    wanted = ['/' + item.strip('/') for item in arguments['overlays']]
    shown = (mounted or mounted_now(root))(wanted)
    arguments.update(overlays=shown, overlays_missing=[item for item in wanted if item not in shown])
    status = build(**arguments)
    if created_earlier(old, status):
        # This boot created the filesystem; a later run of the same boot only finds it.
        arguments['created'] = parts[step]['created'] = True
        status = build(**arguments)
    status[STEPS_KEY] = parts

    changed = not same(old, status)
    if changed:
        status = stamp(status)
        if not module.check_mode:
            _mount.make_dirs(root, run_dir)
            _files.write_file(path, render(status).encode('utf-8'), FILE_MODE)
    else:
        status = old
    result = dict(changed=changed, status=status, summary=status['summary'], ok=status['ok'], path=path)
    if module._diff and changed:
        result['diff'] = dict(before=found.data.decode('utf-8', 'replace') if found is not None else '',
                              after=render(status), before_header=path, after_header=path)
    return result


def execute(module):
    """lw_status: record the fields given as the part C(boot); the fields not given keep what the boot's modules
    recorded."""
    params = module.params
    wanted = None
    if params['overlays'] is not None:
        wanted = []
        for path in params['overlays']:
            if not path.startswith('/'):
                raise PersistenceError('overlay path %r is not an absolute path' % path)
            wanted.append('/' + path.strip('/'))
    part = dict((key, params.get(key)) for key in FIELDS if key != 'overlays')
    part.update(overlays=wanted, failure=params['failure'], warnings=params['warnings'])
    if part['docker_data_root'] == '':
        part['docker_data_root'] = None
    mounted = (lambda wanted: wanted) if module.check_mode else None
    return record(module, params['root'], 'boot', part, mounted)

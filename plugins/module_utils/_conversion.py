# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Profile conversion of the mounted data filesystem, in the background.

The profiles a filesystem should have follow from its member count (_btrfs.profiles_for). After a disk joins, or
after a degraded period left chunks of one copy, some chunks are of other profiles: a background job waits for the
kernel's exclusive operation to end (a replace, a resumed balance), then runs a soft conversion, which touches only
the chunks not yet converted. The kernel resumes a balance cut by a reboot at the next mount; the next boot's run
starts the job again while chunks are left. Everything here reads sysfs, except the progress line of a running
operation and the start of the job.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

KINDS = ('data', 'metadata', 'system')
JOB_FILE = 'conversion.json'
LOG_FILE = 'conversion.log'
# A job that waits for the kernel's exclusive operation, then converts what is left: sh, so the job needs no Python;
# no exec, so the job keeps its fsid in its command line while the balance runs (read_job tells it by that). $3 and
# $4 are the balance filters for data and for metadata (system chunks follow metadata), empty for none.
JOB_SCRIPT = r'''
op="/sys/fs/btrfs/$1/exclusive_operation"
while [ -r "$op" ] && [ "$(cat "$op")" != none ] && [ "$(cat "$op")" != "balance paused" ]; do sleep 2; done
if [ -n "$3$4" ]; then btrfs balance start ${3:+"-d$3"} ${4:+"-m$4"} "$2"; fi
'''
STATES = ('converting', 'restoring redundancy', 'replacing', 'pending')


def chunk_profiles(fsid, sys_fs_btrfs=_btrfs.SYS_FS_BTRFS):
    """{data, metadata, system: sorted profile names} of a mounted filesystem, from the block-group types the kernel
    lists; None when it is not mounted here or anywhere."""
    base = os.path.join(sys_fs_btrfs, fsid or '-', 'allocation')
    found = {}
    for kind in KINDS:
        names = _btrfs.listdir(os.path.join(base, kind))
        if names is None:
            return None
        found[kind] = sorted(name for name in names if name in _btrfs.PROFILE_NAMES
                             and os.path.isdir(os.path.join(base, kind, name)))
    return found


def kernel_view(fsid):
    """What the kernel says of the mounted filesystem C(fsid), read once: its chunk profiles (None when it is not
    mounted), its exclusive operation, its member count (_btrfs.member_count), the missing devids."""
    return dict(profiles=chunk_profiles(fsid), operation=exclusive_operation(fsid),
                members=_btrfs.member_count(fsid), missing=_btrfs.kernel_missing(fsid) or [])


def wanted(count):
    """{data, metadata, system: profile} for a filesystem of C(count) members (system chunks follow metadata)."""
    data, metadata = _btrfs.profiles_for(count)
    return dict(data=data, metadata=metadata, system=metadata)


def stragglers(profiles, target):
    """{kind: [profiles that protect less than the target's]} of C(profiles), only kinds that have some."""
    found = dict((kind, [name for name in profiles.get(kind, []) if name in _btrfs.weaker(target[kind])])
                 for kind in KINDS)
    return dict((kind, names) for kind, names in found.items() if names)


def balance_filters(target):
    """(data, metadata) filters of the job's soft conversion to C(target): only chunks of a weaker profile are
    touched; '' for a kind that has no weaker profile. System chunks follow the metadata filter, so it names what is
    weaker than either target."""
    def convert_to(profile, names):
        return 'convert=%s,soft,profiles=%s' % (profile, '|'.join(names)) if names else ''
    meta = sorted(set(_btrfs.weaker(target['metadata'])) | set(_btrfs.weaker(target['system'])))
    return convert_to(target['data'], _btrfs.weaker(target['data'])), convert_to(target['metadata'], meta)


def exclusive_operation(fsid, sys_fs_btrfs=_btrfs.SYS_FS_BTRFS):
    """The kernel's exclusive operation on the filesystem ('none', 'balance', 'device replace' ...), or None when
    the kernel does not say (not mounted, or a kernel older than 5.10)."""
    try:
        with open(os.path.join(sys_fs_btrfs, fsid or '-', 'exclusive_operation')) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def read_job(run_dir):
    """The job file of the last background job started under C(run_dir), with C(alive) added; None without one."""
    try:
        with open(os.path.join(run_dir, JOB_FILE)) as handle:
            job = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    if not isinstance(job, dict):
        return None
    job['alive'] = _alive(job.get('pid'), job.get('fsid'))
    return job


def _alive(pid, fsid, tries=100):
    """Whether process C(pid) is still the job of C(fsid) (a reused pid runs something else). While a process execs
    the next program its command line reads empty for a moment: such a process is read again, not taken for gone."""
    for _attempt in range(tries):
        try:
            with open('/proc/%d/cmdline' % int(pid), 'rb') as handle:
                cmdline = handle.read()
            with open('/proc/%d/stat' % int(pid), 'rb') as handle:
                state, ppid = handle.read().rsplit(b')', 1)[1].split()[:2]
        except (IOError, OSError, TypeError, ValueError):
            return False
        if cmdline or state in (b'Z', b'X') or ppid == b'2':
            # A command line, a process that has ended, or a kernel thread (on a reused pid): the answer stands.
            return (fsid or '').encode('ascii') in cmdline.split(b'\0')
        time.sleep(0.01)
    return False


def start_job(runner, run_dir, fsid, mountpoint, target, why):
    """Start the background job (detached, its own session, output to the log file); record it in the job file."""
    if not os.path.isdir(run_dir):
        os.makedirs(run_dir, 0o755)
    heading = '%s: %s, to data %s, metadata %s' % (
        time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), why, target['data'], target['metadata'])
    try:
        pid = _writes.spawn_detached(
            runner, ['sh', '-c', JOB_SCRIPT, 'lightwhale-conversion', fsid, mountpoint] + list(balance_filters(target)),
            os.path.join(run_dir, LOG_FILE), heading)
    except (IOError, OSError) as exc:
        raise PersistenceError('cannot start the background conversion of %s: %s' % (fsid, exc))
    job = dict(pid=pid, fsid=fsid, mountpoint=mountpoint, why=why,
               target='%s/%s' % (target['data'], target['metadata']), started=int(time.time()))
    path = os.path.join(run_dir, JOB_FILE)
    with open(path + '.tmp', 'w') as handle:
        json.dump(job, handle)
    os.rename(path + '.tmp', path)
    return job


def progress(runner, mountpoint, operation):
    """The kernel's progress line of the running operation, or None."""
    if operation is None or operation == 'none' or mountpoint is None:
        return None
    if operation.startswith('balance'):
        rc, out, _err = runner.run('btrfs', ['balance', 'status', mountpoint], ok=(0, 1))
    elif operation == 'device replace':
        rc, out, _err = runner.run('btrfs', ['replace', 'status', '-1', mountpoint], ok=(0, 1))
    else:
        return operation
    lines = [' '.join(line.split()) for line in out.splitlines() if line.strip()]
    return lines[-1] if rc in (0, 1) and lines else None


def facts(runner, fsid, mountpoint, run_dir, members, missing, just_started=None):
    """What the conversion of the mounted filesystem is doing: None when there is nothing to convert and nothing
    runs; else state (converting, restoring redundancy, replacing, pending), why, target, profiles, progress.
    C(members) is its member count (_btrfs.member_count), C(missing) whether any is missing (then nothing converts)."""
    profiles = chunk_profiles(fsid)
    if profiles is None or members < 1:
        return None
    target = wanted(members)
    left = stragglers(profiles, target)
    operation = exclusive_operation(fsid)
    job = just_started or read_job(run_dir)
    if job is not None and (job.get('fsid') != fsid or not (job is just_started or job.get('alive'))):
        job = None
    if operation == 'device replace':
        state = 'replacing'
    elif (operation or '').startswith('balance') or job is not None:
        state = job['why'] if job is not None and job.get('why') in STATES else 'converting'
        if state == 'replacing':
            # The job waited for a replace, which has ended: it now converts the single-copy chunks back.
            state = 'restoring redundancy'
    elif left and not missing:
        state = 'pending'
    else:
        return None
    if state != 'replacing' and not left and job is None:
        return None
    return dict(state=state, target='%s/%s' % (target['data'], target['metadata']), profiles=profiles,
                progress=progress(runner, mountpoint, operation) or ('started' if job is not None else None))


def describe(conversion):
    """The conversion in a few words for the summary line."""
    if not conversion:
        return None
    words = '%s to %s' % (conversion['state'], conversion['target'])
    if conversion['state'] == 'replacing':
        words = 'replacing a missing member'
    if conversion.get('progress'):
        words += ' (%s)' % conversion['progress']
    return words

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Hosts without Python: a POSIX shell probe run over a raw connection, and its output turned into the Disk reports
and the facts persistence_info gives, on the controller, with the parsers and rules the modules use.

The probe reads only: sysfs, /proc, the first 512 bytes and the first and last MiB of each disk (dd, od), and what
wipefs and sfdisk print. Every section of its output is marked, and the output must end with the end mark: a cut or
garbled output is a ProbeError, never "blank". What the shell cannot do: the exclusive open (O_EXCL) that tells a
disk busy in another mount namespace; holders, mounts and swap areas are still checked.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _candidates
from ansible_collections.lightwhale.persistence.plugins.module_utils import _info
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _partitioning
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import DeviceError, ProbeError

MARK = '::lw::'
VERSION = '1'

# The whole disks the kernel lists; the controller applies the scan rules to the names.
LIST_SCRIPT = 'exec 2>/dev/null; echo "%s names"; for d in /sys/block/*; do [ -e "$d" ] && echo "${d##*/}"; done; echo "%s end"' % (MARK, MARK)

# edge NAME OFFSET SECTORS: od's dump of that region, cut after 4 lines. Zeros print as one line, '*' and the end
# offset (the bytes read); other data prints a line with a non-zero byte within the first three.
PROBE_SCRIPT = r'''
exec 2>/dev/null
m='::lw::'
root=$1; shift
edge() {
    printf '%s edge %s\n' "$m" "$2"
    dd if="$1" bs=512 skip="$3" count="$4" | od -Ad -tx1 | head -n 4
}
printf '%s probe 1\n' "$m"
printf '%s mountinfo\n' "$m"; cat /proc/self/mountinfo
printf '%s swaps\n' "$m"; cat /proc/swaps
for f in /sys/fs/btrfs/*/devices; do
    [ -d "$f" ] || continue
    d=${f%/devices}
    printf '%s btrfs %s\n' "$m" "${d##*/}"
    printf 'label %s\n' "$(tr -d '\n' < "$d/label")"
    echo "devices" $(ls "$f")
    ids=; missing=
    for i in "$d"/devinfo/*; do
        [ -d "$i" ] || continue
        ids="$ids ${i##*/}"
        [ "$(cat "$i/missing")" = 1 ] && missing="$missing ${i##*/}"
    done
    echo "devids$ids"
    echo "missing$missing"
    for k in data metadata; do
        p=
        for q in "$d/allocation/$k"/*; do [ -d "$q" ] && p="$p ${q##*/}"; done
        echo "$k$p"
    done
done
printf '%s status\n' "$m"; cat "$root/run/lightwhale/persistence.json"; echo
printf '%s byid\n' "$m"
for l in /dev/disk/by-id/*; do [ -L "$l" ] && printf '%s %s\n' "$l" "$(readlink -f "$l")"; done
paths=
for g in "$@"; do
    printf '%s disk %s\n' "$m" "$g"
    if [ ! -e "$g" ]; then echo "error missing"; continue; fi
    p=$(readlink -f "$g")
    if [ ! -b "$p" ]; then echo "error not-block"; continue; fi
    n=${p##*/}; s=/sys/class/block/$n
    if [ ! -e "$s/dev" ]; then echo "error not-in-sysfs"; continue; fi
    echo "name $n"
    echo "dev $(cat "$s/dev")"
    [ -e "$s/partition" ] && { echo "partition"; continue; }
    case " $paths " in *" $p "*) echo "again"; continue ;; esac
    sectors=$(cat "$s/size")
    echo "size $sectors"
    echo "ro $(cat "$s/ro")"
    printf 'model %s\n' "$(tr -d '\n' < "$s/device/model")"
    echo "holders" $(ls "$s/holders")
    # wipefs fails on a drive without a medium: such a drive is not probed (the scan passes over it).
    [ "$sectors" -gt 0 ] && paths="$paths $p"
    for q in "$s/$n"*; do
        [ -e "$q/partition" ] || continue
        echo "kpart ${q##*/} $(cat "$q/dev")" $(ls "$q/holders")
        [ "$sectors" -gt 0 ] && paths="$paths /dev/${q##*/}"
    done
    echo "head $(dd if="$p" bs=512 count=1 | od -An -v -tx1 | tr -d ' \n')"
    span=2048; [ "$sectors" -lt 2048 ] && span=$sectors
    edge "$p" 0 0 "$span"
    edge "$p" $(( (sectors - span) * 512 )) $(( sectors - span )) "$span"
    printf '%s sfdisk %s\n' "$m" "$n"
    sfdisk --json "$p"
    printf '%s sfdisk-rc %s %s\n' "$m" "$n" "$?"
done
printf '%s wipefs\n' "$m"
if [ -n "$paths" ]; then
    wipefs --no-act --json --output DEVICE,OFFSET,TYPE,UUID,LABEL $paths
    printf '%s wipefs-rc %s\n' "$m" "$?"
else
    printf '%s wipefs-rc 0\n' "$m"
fi
printf '%s end\n' "$m"
'''

_HEADER = re.compile(r'^::lw:: (\S+)(?: (.*))?$')
_OD_LINE = re.compile(r'^(\d+)((?: [0-9a-f]{2})*)$')


def shell_command(script, args):
    """The command line that runs C(script) with C(args) under /bin/sh, each word quoted for the shell."""
    return ' '.join([quote(word) for word in ['/bin/sh', '-c', script, 'lightwhale-persistence'] + list(args)])


def quote(word):
    """C(word) as one word for any POSIX shell."""
    return "'" + word.replace("'", "'\"'\"'") + "'"


def sections(text):
    """[(name, argument, [lines])] of the probe's output; ProbeError when it does not end with the end mark."""
    found = []
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            found.append((match.group(1), match.group(2) or '', []))
        elif found:
            found[-1][2].append(line)
        elif line.strip():
            raise ProbeError('the probe printed %r before its first section: not the probe\'s output' % line[:200])
    if not found or found[-1][0] != 'end':
        raise ProbeError('the probe\'s output is cut short (no end mark): %r' % text[-300:])
    return found


def listed_names(text):
    """The names LIST_SCRIPT printed."""
    for name, _argument, lines in sections(text):
        if name == 'names':
            return [line.strip() for line in lines if line.strip()]
    raise ProbeError('the list of disks is missing from the output: %r' % text[-300:])


def first_nonzero(lines, length):
    """The offset of the first non-zero byte in an od -Ad -tx1 dump (cut after 4 lines) of C(length) bytes, or None
    when every byte is zero; ProbeError when the dump shows fewer bytes than C(length) or is not od's."""
    offset = None
    for line in lines:
        line = line.strip()
        if line == '*':
            continue
        match = _OD_LINE.match(line)
        if not match:
            raise ProbeError('od printed %r' % line[:200])
        offset = int(match.group(1))
        values = match.group(2).split()
        for index, value in enumerate(values):
            if value != '00':
                return offset + index
        if not values:
            break
    if offset != length:
        raise ProbeError('read %s of %d bytes' % ('no' if offset is None else offset, length))
    return None


def _words(line, key):
    return line[len(key):].split()


class _DiskSection:
    def __init__(self, given):
        self.given = given
        self.values = {}
        self.kparts = []
        self.edges = {}
        self.sfdisk = None
        self.sfdisk_rc = None

    def read(self, lines):
        for line in lines:
            key = line.split(' ', 1)[0]
            if key == 'kpart':
                words = line.split()
                if len(words) < 3:
                    raise ProbeError('%s: the probe printed %r' % (self.given, line[:200]), device=self.given)
                self.kparts.append(dict(name=words[1], dev=words[2], holders=words[3:]))
            elif key:
                self.values[key] = line[len(key) + 1:]


def _devno(text, device):
    try:
        major, minor = text.split(':')
        return (int(major), int(minor))
    except ValueError:
        raise ProbeError('%s: device number %r' % (device, text), device=device)


def _int(text, what):
    if not re.match(r'^-?[0-9]+$', text.strip()):
        raise ProbeError('the probe printed %r for %s' % (text[:80], what))
    return int(text)


# The sections every probe prints once, in this order around the disks'.
_ONCE = ('probe', 'mountinfo', 'swaps', 'status', 'byid', 'wipefs', 'wipefs-rc', 'end')
_PER_DISK = ('edge', 'sfdisk', 'sfdisk-rc')


class Probe:
    """The parsed output of PROBE_SCRIPT: every fixed section exactly once, the per-disk ones after a disk's."""

    def __init__(self, text):
        self.mounts, self.swaps, self.btrfs, self.status_text, self.by_id = [], [], {}, '', {}
        self.disks = []
        self.wipefs, self.wipefs_rc = '', None
        current = None
        parts = sections(text)
        names = [name for name, _argument, _lines in parts]
        missing = [name for name in _ONCE if names.count(name) != 1]
        if missing:
            raise ProbeError('the probe\'s output lacks or repeats the section(s) %s: not the probe\'s output'
                             % ', '.join(missing))
        for name, argument, lines in parts:
            if name in _PER_DISK and current is None:
                raise ProbeError('the probe printed the section %r before any disk\'s' % name)
            if name == 'probe' and argument != VERSION:
                raise ProbeError('probe version %r, expected %s' % (argument, VERSION))
            elif name == 'mountinfo':
                try:
                    self.mounts = [_mountinfo.parse_mountinfo_line(line) for line in lines if line.strip()]
                except ValueError as exc:
                    raise ProbeError('cannot parse /proc/self/mountinfo: %s' % exc)
                if not self.mounts:
                    raise ProbeError('the probe could not read /proc/self/mountinfo')
            elif name == 'swaps':
                if not lines:
                    raise ProbeError('the probe could not read /proc/swaps')
                self.swaps = _mountinfo.parse_swaps('\n'.join(lines))
            elif name == 'btrfs':
                self.btrfs[argument] = dict((line.split(' ', 1)[0], line.split(' ', 1)[1] if ' ' in line else '')
                                            for line in lines if line)
            elif name == 'status':
                self.status_text = '\n'.join(lines).strip()
            elif name == 'byid':
                for line in lines:
                    if ' ' in line:
                        link, target = line.rsplit(' ', 1)
                        self.by_id.setdefault(target.rsplit('/', 1)[-1], []).append(link)
            elif name == 'disk':
                current = _DiskSection(argument)
                current.read(lines)
                self.disks.append(current)
            elif name == 'edge':
                current.edges[_int(argument, 'an offset')] = lines
            elif name == 'sfdisk':
                current.sfdisk = '\n'.join(lines)
            elif name == 'sfdisk-rc':
                current.sfdisk_rc = _int(argument.split()[-1] if argument.split() else '', 'the exit of sfdisk')
            elif name == 'wipefs':
                self.wipefs = '\n'.join(lines)
            elif name == 'wipefs-rc':
                self.wipefs_rc = _int(argument, 'the exit of wipefs')

    def members(self):
        """{kernel name: fsid} of every mounted btrfs, as _btrfs.mounted_members."""
        found = {}
        for fsid, values in self.btrfs.items():
            for name in values.get('devices', '').split():
                found[name] = fsid
        return found

    def status(self):
        """(document, problem) of the status file, as _info.read_status."""
        if not self.status_text:
            return None, None
        try:
            status = json.loads(self.status_text)
        except ValueError as exc:
            return None, 'the status file %s is not JSON: %s' % (_layout.STATUS_FILE, exc)
        if not isinstance(status, dict):
            return None, 'the status file %s holds %s, not an object' % (_layout.STATUS_FILE, type(status).__name__)
        return status, None


def _resolve(section):
    """The BlockDevice of a listed disk; DeviceError as _blockdev.resolve and _candidates.listed raise them."""
    given = section.given
    error = section.values.get('error')
    if not given.startswith('/'):
        raise DeviceError('%s: not an absolute path' % given, device=given)
    if error == 'missing':
        raise DeviceError('%s: does not exist' % given, device=given)
    if error == 'not-block':
        raise DeviceError('%s: not a block device' % given, device=given)
    if error:
        raise ProbeError('%s: block device is not in sysfs' % given, device=given)
    name = section.values.get('name')
    if not name:
        raise ProbeError('%s: the probe did not name the device' % given, device=given)
    device = _blockdev.BlockDevice(name, given, _devno(section.values.get('dev', ''), given))
    if 'partition' in section.values:
        raise DeviceError('%s: %s is a partition, not a whole disk' % (given, device.path), device=given)
    return device


def _number(section, key, device):
    try:
        return int(section.values[key])
    except (KeyError, ValueError):
        raise ProbeError('%s: the probe did not read its %s' % (device, key), device=device)


def _head(section, path):
    text = section.values.get('head', '')
    try:
        head = bytes(bytearray(int(text[index:index + 2], 16) for index in range(0, len(text), 2)))
    except ValueError:
        raise ProbeError('%s: cannot parse the first sector as read: %r' % (path, text[:80]), device=path)
    return head


def disk_of(section, probe, scan_skipped=None):
    """A Disk report (_candidates.Disk) from one disk section, with what the core reads itself in C(disk.probed).
    A listed drive without a medium is a ProbeError, as wipefs makes it for the module; the scan passes over it."""
    device = _resolve(section)
    disk = _candidates.Disk(device)
    path = device.path
    disk.size = _number(section, 'size', path) * 512
    disk.read_only = section.values.get('ro') == '1'
    devnos = {device.devno: device.name}
    holders = section.values.get('holders', '').split()
    for part in section.kparts:
        devnos[_devno(part['dev'], path)] = part['name']
        holders.extend(part['holders'])
    disk.usage = _blockdev.usage_reasons(devnos, probe.mounts, probe.swaps, holders)
    # The module's exclusive open refuses every member of a mounted btrfs; mountinfo names only one of them.
    members = probe.members()
    disk.usage.extend('/dev/%s is a member of the mounted btrfs %s' % (name, members[name])
                      for name in sorted(devnos.values()) if name in members
                      and not any(reason.startswith('/dev/%s is mounted' % name) for reason in disk.usage))
    if not disk.size:
        if scan_skipped is None:
            raise ProbeError('%s: no medium (size 0): nothing to probe' % path, device=path)
        disk.skipped = 'no medium (size 0)'
        return disk
    if disk.size >= 512:
        disk.head = _head(section, path)
        if len(disk.head) != 512:
            raise ProbeError('%s: short read of the first sector (%d of 512 bytes)' % (path, len(disk.head)),
                             device=path)
    disk.magic = _blockdev.has_magic(disk.head)
    span = min(disk.size, _layout.MIB)
    nonzero = {}
    for offset in sorted(set((0, disk.size - span))):
        if offset not in section.edges:
            raise ProbeError('%s: the probe did not read the MiB at byte %d' % (path, offset), device=path)
        try:
            nonzero[offset] = first_nonzero(section.edges[offset], span)
        except ProbeError as exc:
            raise ProbeError('%s: at byte %d: %s' % (path, offset, exc.message), device=path)
    disk.probed = dict(kernel_partitions=sorted(part['name'] for part in section.kparts), nonzero=nonzero,
                       model=section.values.get('model') or None)
    return disk


def _signatures(probe, disks):
    """Every disk's signatures from the one wipefs run; its partitions' too ({path: [...]})."""
    paths = []
    for disk in disks:
        if disk.size:
            paths.append(disk.path)
            paths.extend('/dev/' + name for name in disk.probed['kernel_partitions'])
    if not paths:
        return {}
    if probe.wipefs_rc == 127:
        raise ProbeError('wipefs is not on the host: a disk\'s signatures cannot be read, so none is taken as blank',
                         device=paths[0])
    if probe.wipefs_rc != 0:
        raise ProbeError('wipefs failed on %s (exit %s): %s' % (
            ' '.join(paths), probe.wipefs_rc, probe.wipefs.strip()[:300]), device=paths[0])
    return _blockdev.parse_wipefs_json_of(probe.wipefs, paths)


def _table(section, disk):
    if not any(sig['type'] in _blockdev.PARTITION_TABLE_TYPES for sig in disk.signatures):
        return None
    if section.sfdisk_rc != 0:
        raise ProbeError('%s: sfdisk cannot read the partition table (exit %s): %s' % (
            disk.path, section.sfdisk_rc, (section.sfdisk or '').strip()[:300]), device=disk.path)
    return _blockdev.parse_sfdisk_json(section.sfdisk, disk.path)


def candidates(probe, scan_skipped=None):
    """Disk reports of every disk section, in order (each listed disk once). With C(scan_skipped) ({name: reason}
    of the host scan's exclusions, the probe having run on the other names), the scan's rules apply as in
    _candidates.scanned with probe_in_use: read-only and empty drives are passed over, disks in use are reported."""
    disks, seen = [], set()
    for section in probe.disks:
        if 'again' in section.values:
            _resolve(section)
            continue
        disk = disk_of(section, probe, scan_skipped)
        if disk.device.name in seen:
            continue
        seen.add(disk.device.name)
        if scan_skipped is not None and disk.read_only:
            disk.skipped = 'read-only'
        disks.append((section, disk))
    signatures = _signatures(probe, [disk for _section, disk in disks])
    for section, disk in disks:
        disk.signatures = signatures.get(disk.path, [])
        disk.table = _table(section, disk)
    found = [disk for _section, disk in disks]
    if scan_skipped is not None:
        found.extend(_candidates.Disk(_blockdev.BlockDevice(name, '/dev/' + name, None), skipped=reason)
                     for name, reason in scan_skipped.items())
        found.sort(key=lambda disk: disk.device.name)
    return found, signatures


def scan_plan(names):
    """(probe, skipped) of the host scan over the names LIST_SCRIPT printed: the names to probe, and the others
    with the reason the scan passes over them."""
    probe, skipped = [], {}
    for name in names:
        reason = _blockdev.scan_exclusion(name)
        if reason:
            skipped[name] = reason
        else:
            probe.append('/dev/' + name)
    return probe, skipped


def _kernel_filesystem(probe, fsid, label):
    values = probe.btrfs.get(fsid, {})
    names = values.get('devices', '').split()
    devids = [int(item) for item in values.get('devids', '').split() if item.isdigit()]
    missing = [int(item) for item in values.get('missing', '').split() if item.isdigit()]
    profiles = [','.join(sorted(name for name in values.get(kind, '').split() if name in _btrfs.PROFILE_NAMES)) or None
                for kind in ('data', 'metadata')]
    return dict(label=label, uuid=fsid, mounted=True, members=['/dev/' + name for name in sorted(names)],
                missing=['devid %d' % devid for devid in sorted(missing)], num_devices=len(devids) or len(names),
                data_profile=profiles[0], metadata_profile=profiles[1], subvolumes=[], size=None, free=None, usage={},
                legacy=False, fstype='btrfs')


def _legacy_filesystem(data_mount, signatures):
    """The legacy data filesystem (labelled lightwhale-data, not btrfs) mounted whole at the data mount point, by the
    signatures of its source device; None when that is not what is mounted there."""
    if data_mount is None or data_mount.fstype in ('btrfs', 'tmpfs') or data_mount.root != '/':
        return None
    for sig in signatures.get(data_mount.source, []):
        if sig['type'] == data_mount.fstype and sig.get('label') == _layout.DATA_LABEL:
            return dict(label=_layout.DATA_LABEL, uuid=sig.get('uuid'), mounted=True, members=[data_mount.source],
                        missing=[], num_devices=1, data_profile=None, metadata_profile=None, subvolumes=[], size=None,
                        free=None, usage={}, legacy=True, fstype=data_mount.fstype)
    return None


def _found_filesystem(signatures):
    """A data filesystem the disks hold (a btrfs labelled lightwhale-data on a partition or disk), not mounted."""
    members = sorted(path for path, found in signatures.items()
                     for sig in found if sig['type'] == 'btrfs' and sig.get('label') == _layout.DATA_LABEL)
    if not members:
        return None
    uuids = sorted(set(sig.get('uuid') for path in members for sig in signatures[path] if sig['type'] == 'btrfs'))
    return dict(label=_layout.DATA_LABEL, uuid=','.join(str(uuid) for uuid in uuids), mounted=False, members=members,
                missing=[], num_devices=len(members), data_profile=None, metadata_profile=None, subvolumes=[],
                size=None, free=None, usage={}, legacy=False, fstype='btrfs')


def facts(probe, root, scan_skipped=None):
    """persistence_info's result for a host probed over a raw shell: the same keys (snapshots are not read), with
    C(probe) raw. The disks' verdicts (empty, reasons) come from _info.classify, as the module's do."""
    disks, signatures = candidates(probe, scan_skipped)
    members = probe.members()
    root = root.rstrip('/')
    data_mount = _mountinfo.top_mount(probe.mounts, (root + _layout.DATA_MOUNT) if root else _layout.DATA_MOUNT)
    fsid = members.get(data_mount.source.rsplit('/', 1)[-1]) if data_mount is not None and \
        data_mount.fstype == 'btrfs' else None
    label = probe.btrfs.get(fsid, {}).get('label') if fsid else None
    kind = _info.data_mount_kind(data_mount, fsid, label)
    legacy = _legacy_filesystem(data_mount, signatures) if kind == 'other' else None
    if legacy is not None:
        kind = 'legacy'
    problems = []
    if kind == 'other':
        problems.append('%s: %s is mounted there, not the data filesystem or the volatile tmpfs' % (
            data_mount.target, _mountinfo.describe_mount(data_mount, members)))
    if kind == 'datafs':
        fs = _kernel_filesystem(probe, fsid, label)
    elif legacy is not None:
        fs = legacy
    else:
        fs = _found_filesystem(signatures)
    swap_devices = [area for area in probe.swaps
                    if any(sig['type'] == 'swap' and sig.get('label') == _layout.SWAP_LABEL
                           for sig in signatures.get(area, []))]
    status, status_problem = probe.status()
    if status_problem:
        problems.append(status_problem)
    overlays = [dict(path=path, mounted=any(mount.fstype == 'overlay' for mount in _mountinfo.stack_at(
        probe.mounts, (root + path) if root else path))) for path in _layout.OVERLAY_PATHS]
    disk_facts = []
    for disk in disks:
        empty, reasons = _info.classify(disk)
        disk_facts.append(_info.disk_fact(disk, empty, reasons, probe.by_id.get(disk.device.name, []),
                                          (disk.probed or {}).get('model')))
    magic_partitions = dict(swap=[], data=[])
    for disk in disks:
        if not disk.skipped:
            named = _partitioning.magic_partitions(disk.table)
            for role in ('swap', 'data'):
                magic_partitions[role].extend(part['device'] for part in named[role])
    mode = _info.mode_of(kind, fs['missing'] if kind == 'datafs' else [])
    result = dict(
        changed=False, probe='raw', mode=mode, filesystem=fs, legacy=kind == 'legacy',
        swap=dict(active=bool(swap_devices), devices=swap_devices), overlays=overlays, status=status,
        magic_disks=[disk.path for disk in disks if disk.magic and not disk.skipped],
        magic_partitions=magic_partitions,
        empty_disks=[_info.empty_fact(fact) for fact in disk_facts if fact['empty']],
        disks=disk_facts, failure=None, problems=problems, snapshots=[], pending=None)
    if status is not None and status.get('mode') not in (None, mode):
        problems.append('the status file says %s, but the host is %s now (%s)' % (
            status.get('mode'), mode, _layout.STATUS_FILE))
    result['summary'] = _info.summary(result)
    return result

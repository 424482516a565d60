# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read-only probes of block devices: which disks are candidates, what each one holds, who uses it.

Facts come from sysfs, from the device itself (first sector), from libblkid (wipefs) and libfdisk
(sfdisk). Partition tables are read from the disk, not from the kernel, because the kernel may not
have parsed them (no udev, loop devices without partscan). A probe that fails raises ProbeError:
it is never read as "blank disk".
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import re
import stat
import time

from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, DeviceError, ProbeError

SYS_CLASS_BLOCK = '/sys/class/block'
SYS_BLOCK = '/sys/block'
SYS_DEV_BLOCK = '/sys/dev/block'

# Whole disks the host scan takes.
SCANNED_DISK = re.compile(r'^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+|nvme[0-9]+n[0-9]+|mmcblk[0-9]+)$')
# Why the scan passes over other kinds; the first matching prefix wins.
SCAN_EXCLUDED = (
    ('loop', 'loop device (taken only when listed in devices)'),
    ('zram', 'compressed RAM disk'),
    ('ram', 'RAM disk'),
    ('dm-', 'device-mapper device'),
    ('md', 'md RAID device'),
    ('sr', 'optical drive'),
    ('fd', 'floppy drive'),
    ('nbd', 'network block device'),
)
# wipefs signature types that are partition tables.
PARTITION_TABLE_TYPES = frozenset(('gpt', 'PMBR', 'dos', 'atari', 'bsd', 'sun', 'sgi', 'mac', 'solaris',
                                   'unixware', 'minix', 'aix', 'ultrix'))


class BlockDevice:
    """A block device resolved to its kernel name: C(path) is /dev/NAME, C(given) what the user wrote."""

    def __init__(self, name, given, devno):
        self.name = name
        self.given = given
        self.devno = devno
        self.path = '/dev/' + name

    def __repr__(self):
        return 'BlockDevice(%r)' % self.path


def _read_sys(name, attr):
    try:
        with open(os.path.join(SYS_CLASS_BLOCK, name, attr)) as handle:
            return handle.read().strip()
    except (IOError, OSError) as exc:
        raise ProbeError('cannot read %s of %s from sysfs: %s' % (attr, name, exc), device='/dev/' + name)


def resolve(given):
    """Resolve a device path (symlinks such as /dev/disk/by-id included) to a BlockDevice; DeviceError if unfit."""
    if not os.path.isabs(given):
        raise DeviceError('%s: not an absolute path' % given, device=given)
    try:
        info = os.stat(given)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise DeviceError('%s: does not exist' % given, device=given)
        raise ProbeError('%s: cannot stat: %s' % (given, exc), device=given)
    if not stat.S_ISBLK(info.st_mode):
        raise DeviceError('%s: not a block device' % given, device=given)
    devno = (os.major(info.st_rdev), os.minor(info.st_rdev))
    sysdir = os.path.realpath(os.path.join(SYS_DEV_BLOCK, '%d:%d' % devno))
    if not os.path.isdir(sysdir):
        raise ProbeError('%s: block device %d:%d is not in sysfs' % ((given,) + devno), device=given)
    return BlockDevice(os.path.basename(sysdir), given, devno)


def is_partition(name):
    return os.path.exists(os.path.join(SYS_CLASS_BLOCK, name, 'partition'))


def size_bytes(name):
    # sysfs counts 512-byte sectors whatever the logical sector size.
    return int(_read_sys(name, 'size')) * 512


def is_read_only(name):
    return _read_sys(name, 'ro') == '1'


def kernel_partitions(name):
    """Names of the partitions of disk C(name) that the kernel knows (may lag behind the disk: see sync)."""
    base = os.path.join(SYS_CLASS_BLOCK, name)
    try:
        entries = os.listdir(base)
    except OSError as exc:
        raise ProbeError('cannot list %s: %s' % (base, exc), device='/dev/' + name)
    return sorted(entry for entry in entries
                  if entry.startswith(name) and os.path.exists(os.path.join(base, entry, 'partition')))


def holders(name):
    """Devices stacked on C(name) or its partitions (dm, md, bcache ...)."""
    found = []
    for part in [name] + kernel_partitions(name):
        path = os.path.join(SYS_CLASS_BLOCK, part, 'holders')
        try:
            found.extend(os.listdir(path))
        except OSError as exc:
            # A partition removed while we look has no holders.
            if exc.errno != errno.ENOENT:
                raise ProbeError('cannot list %s: %s' % (path, exc), device='/dev/' + name)
    return sorted(found)


def devno_of(name):
    major, minor = _read_sys(name, 'dev').split(':')
    return (int(major), int(minor))


def exclusive_busy(path):
    """True when the kernel refuses an exclusive open: mounted (in any namespace), swap, held by md/dm, or claimed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_EXCL)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return True
        raise ProbeError('%s: cannot open: %s' % (path, exc), device=path)
    os.close(fd)
    return False


def usage(device, mounts, swaps):
    """Why C(device) (a BlockDevice, whole disk) is in use, as a list of short reasons; empty when it is free."""
    names = [device.name] + kernel_partitions(device.name)
    reasons = usage_reasons(dict((devno_of(name), name) for name in names), mounts, swaps, holders(device.name))
    if not reasons and exclusive_busy(device.path):
        reasons.append('busy: the kernel refuses an exclusive open (mounted in another namespace, swap or claimed)')
    return reasons


def usage_reasons(devnos, mounts, swaps, holder_names):
    """The reasons of usage() that need no open of the device: C(devnos) maps (major, minor) to the kernel name of
    the disk and of each of its partitions; C(holder_names) are the devices stacked on any of them."""
    names = set(devnos.values())
    sources = dict(('/dev/' + name, name) for name in names)
    reasons = []
    for mount in mounts:
        # btrfs shows an anonymous device number in mountinfo: match its source path too.
        name = devnos.get(mount.devno) or sources.get(mount.source)
        if name:
            reasons.append('/dev/%s is mounted at %s' % (name, mount.target))
    for area in swaps:
        if os.path.basename(area) in names:
            reasons.append('%s is an active swap area' % area)
    reasons.extend('held by %s' % holder for holder in sorted(holder_names))
    return reasons


def read_bytes(path, offset, length):
    """Read C(length) bytes at C(offset) of a device; ProbeError on any failure or short read."""
    try:
        with open(path, 'rb', buffering=0) as handle:
            handle.seek(offset)
            data = handle.read(length)
    except (IOError, OSError) as exc:
        raise ProbeError('%s: cannot read %d bytes at offset %d: %s' % (path, length, offset, exc), device=path)
    if len(data) != length:
        raise ProbeError('%s: short read at offset %d (%d of %d bytes)' % (path, offset, len(data), length), device=path)
    return data


def has_magic(head):
    """The magic header: exactly these 27 bytes at byte 0 (a trailing newline may follow)."""
    return head[:len(_layout.MAGIC)] == _layout.MAGIC


def signatures(runner, path):
    """Every signature libblkid finds on C(path) (filesystems, RAID, LVM, LUKS, partition tables), via wipefs."""
    _rc, out, _err = runner.run('wipefs', ['--no-act', '--json', path], device=path)
    return parse_wipefs_json(out, path)


def signatures_of(runner, paths):
    """signatures() of several devices in one wipefs run (a survey of every partition costs one process): a dict
    path -> list of signatures, every path present. Any device that cannot be probed fails the whole probe."""
    paths = list(paths)
    if len(paths) < 2:
        return dict((path, signatures(runner, path)) for path in paths)
    try:
        _rc, out, _err = runner.run('wipefs', ['--no-act', '--json', '--output', 'DEVICE,OFFSET,TYPE,UUID,LABEL']
                                    + paths, device=paths[0])
    except CommandError:
        # One of them cannot be probed: probe them one by one, so that the error names that device.
        for path in paths:
            signatures(runner, path)
        raise
    return parse_wipefs_json_of(out, paths)


def parse_wipefs_json_of(text, paths):
    """The output of one wipefs run over C(paths), by path (wipefs names each device by its base name)."""
    found = dict((path, []) for path in paths)
    by_name = dict((os.path.basename(path), path) for path in paths)
    if len(by_name) != len(paths):
        raise ProbeError('two of %s have the same name: probe them one by one' % ', '.join(paths), device=paths[0])
    if not text.strip():
        return found
    try:
        entries = json.loads(text).get('signatures', [])
        names = [os.path.basename(str(entry.get('device'))) for entry in entries]
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProbeError('%s: cannot parse wipefs output: %s' % (', '.join(paths), exc), device=paths[0])
    for entry, name in zip(entries, names):
        if name not in by_name:
            raise ProbeError('wipefs reported a signature on %r, which was not probed' % name, device=paths[0])
        try:
            found[by_name[name]].append(_signature(entry))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ProbeError('%s: cannot parse wipefs output: %s' % (by_name[name], exc), device=by_name[name])
    return found


def _signature(entry):
    return dict(type=entry.get('type'), offset=int(str(entry.get('offset', '0')), 0), label=entry.get('label'),
                uuid=entry.get('uuid'))


def parse_wipefs_json(text, path='device'):
    if not text.strip():
        return []
    try:
        data = json.loads(text)
        found = data.get('signatures', [])
        return [_signature(entry) for entry in found]
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProbeError('%s: cannot parse wipefs output: %s' % (path, exc), device=path)


def partition_table(runner, path):
    """The partition table on the disk itself, via sfdisk: dict(label, partitions=[...]); ProbeError if unreadable."""
    _rc, out, _err = runner.run('sfdisk', ['--json', path], device=path)
    return parse_sfdisk_json(out, path)


def parse_sfdisk_json(text, path='device'):
    try:
        table = json.loads(text)['partitiontable']
        sector = int(table.get('sectorsize', 512))
        partitions = []
        for entry in table.get('partitions', []):
            node = entry['node']
            match = re.search(r'([0-9]+)$', node)
            partitions.append(dict(
                device=node, number=int(match.group(1)) if match else None,
                name=entry.get('name'), type=(entry.get('type') or '').upper(),
                uuid=(entry.get('uuid') or '').upper() or None,
                start=int(entry['start']) * sector, size=int(entry['size']) * sector))
        return dict(label=table.get('label'), id=table.get('id'), partitions=partitions)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProbeError('%s: cannot parse sfdisk output: %s' % (path, exc), device=path)


def scan_names():
    """Every whole disk the kernel lists, sorted by name."""
    try:
        return sorted(os.listdir(SYS_BLOCK))
    except OSError as exc:
        raise ProbeError('cannot list %s: %s' % (SYS_BLOCK, exc))


def scan_exclusion(name):
    """Why the host scan passes over disk C(name) by its kind, or None when it is a candidate kind."""
    if SCANNED_DISK.match(name):
        return None
    for prefix, reason in SCAN_EXCLUDED:
        if name.startswith(prefix):
            return reason
    return 'not a kind of whole disk the scan takes (sd, vd, xvd, hd, nvme, mmcblk)'


def partition_node_ready(node):
    """True when the kernel knows partition C(node) and /dev has a block node with its number."""
    name = os.path.basename(node)
    try:
        info = os.stat(node)
    except OSError:
        return False
    if not stat.S_ISBLK(info.st_mode) or not os.path.exists(os.path.join(SYS_CLASS_BLOCK, name, 'partition')):
        return False
    return (os.major(info.st_rdev), os.minor(info.st_rdev)) == devno_of(name)


def kernel_geometry(name):
    """{partition name: (start, size) in bytes} of the partitions the kernel knows on disk C(name)."""
    geometry = {}
    for part in kernel_partitions(name):
        geometry[part] = (int(_read_sys(part, 'start')) * 512, int(_read_sys(part, 'size')) * 512)
    return geometry


def partitions_match(path, partitions):
    """Whether the kernel knows exactly C(partitions) (a table's, from partition_table) on disk C(path), with the
    table's bounds, and /dev has their nodes. Existing nodes are not enough: after a new table the kernel may still
    hold the old partitions under the same names with other bounds."""
    expected = dict((os.path.basename(part['device']), (part['start'], part['size'])) for part in partitions)
    return (kernel_geometry(os.path.basename(path)) == expected
            and all(partition_node_ready(part['device']) for part in partitions))


def wait_partitions(path, partitions, timeout):
    """Wait until the kernel's partitions of C(path) match C(partitions) (after partx; no udev here)."""
    deadline = time.time() + timeout
    while not partitions_match(path, partitions):
        if time.time() > deadline:
            raise ProbeError('%s: the kernel\'s partitions %s do not match the table on the disk within %ss after partx'
                             % (path, sorted(kernel_geometry(os.path.basename(path)).items()), timeout), device=path)
        time.sleep(0.05)

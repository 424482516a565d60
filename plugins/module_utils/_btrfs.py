# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""btrfs: the profile rule, the superblock read from the device, what the kernel says of mounted
filesystems (sysfs), and parsers of btrfs-progs output.

The superblock is read and checked here (magic, checksum, label, device id, device count) rather than
trusted from libblkid alone: libblkid versions differ in whether they verify its checksum, and a
data filesystem with a damaged superblock must never be mistaken for a blank partition.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import hashlib
import os
import re
import struct
import uuid
from collections import namedtuple

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import ProbeError

SUPERBLOCK_OFFSET = 64 * 1024
SUPERBLOCK_SIZE = 4096
MAGIC = b'_BHRfS_M'
# mkfs.btrfs writes this magic while it works and the real one when it is done.
MAGIC_TEMPORARY = b'!BHRfS_M'
TOP_LEVEL = 5
# Every subvolume's root directory has this inode number (BTRFS_FIRST_FREE_OBJECTID).
SUBVOLUME_INODE = 256
SYS_FS_BTRFS = '/sys/fs/btrfs'
# Block-group profiles, as the kernel names their directories under allocation/ and btrfs-progs prints them.
PROFILE_NAMES = frozenset(('single', 'dup', 'raid0', 'raid1', 'raid1c3', 'raid1c4', 'raid10', 'raid5', 'raid6'))

_CSUM_NAMES = {0: 'crc32c', 1: 'xxhash64', 2: 'sha256', 3: 'blake2b'}


# How much a profile protects: (member failures it survives, copies of each block). A chunk is converted only when
# its profile protects less than the target's; an operator's stronger profile (raid1c3 data) is left as it is.
PROTECTION = dict(single=(0, 1), raid0=(0, 1), dup=(0, 2), raid1=(1, 2), raid10=(1, 2), raid5=(1, 2),
                  raid1c3=(2, 3), raid6=(2, 3), raid1c4=(3, 4))


def weaker(profile):
    """The profiles that protect less than C(profile), sorted (PROTECTION)."""
    return sorted(name for name in PROTECTION if PROTECTION[name] < PROTECTION[profile])


def profiles_for(count):
    """(data, metadata) profiles of a new filesystem over C(count) devices (boot step 5).

    One device: data single, metadata dup. Several: data raid1; metadata raid1 for 2, raid1c3 for 3,
    raid1c4 for 4 or more (Lightwhale's "raid1cn": as many copies as the devices allow, at most 4).
    """
    if count < 1:
        raise ValueError('a filesystem needs at least one device, got %d' % count)
    if count == 1:
        return 'single', 'dup'
    if count == 2:
        return 'raid1', 'raid1'
    if count == 3:
        return 'raid1', 'raid1c3'
    return 'raid1', 'raid1c4'


def _crc32c_table():
    table = []
    for index in range(256):
        crc = index
        for _bit in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as btrfs checksums its superblock with csum_type 0."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for byte in bytearray(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def superblock_checksum(csum_type, data):
    """The checksum btrfs stores in the first bytes of a superblock, or None for a type not computed here."""
    body = bytes(data[32:SUPERBLOCK_SIZE])
    if csum_type == 0:
        return struct.pack('<I', crc32c(body))
    if csum_type == 2:
        return hashlib.sha256(body).digest()
    if csum_type == 3:
        return hashlib.blake2b(body, digest_size=32).digest()
    return None


class Superblock(namedtuple('Superblock', ('magic', 'csum_ok', 'csum_type', 'fsid', 'label', 'devid', 'dev_uuid',
                                           'num_devices', 'generation', 'bytenr'))):
    """The fields of a btrfs superblock this collection needs. C(csum_ok) is None when not verifiable here."""

    __slots__ = ()

    @property
    def is_btrfs(self):
        """The final magic: a complete btrfs (mkfs finished), whatever its checksum says."""
        return self.magic == MAGIC

    @property
    def valid(self):
        return self.is_btrfs and self.csum_ok is not False

    def problem(self):
        """Why the kernel would refuse this superblock, or None."""
        if self.magic == MAGIC_TEMPORARY:
            return 'an unfinished mkfs.btrfs (temporary magic)'
        if not self.is_btrfs:
            return 'no btrfs magic'
        if self.csum_ok is False:
            return 'superblock checksum mismatch (%s)' % _CSUM_NAMES.get(self.csum_type, self.csum_type)
        return None

    def to_dict(self):
        return dict(magic=self.magic.decode('latin-1'), csum_ok=self.csum_ok, fsid=self.fsid, label=self.label,
                    devid=self.devid, dev_uuid=self.dev_uuid, num_devices=self.num_devices,
                    generation=self.generation)


def parse_superblock(data):
    """Parse the 4096 bytes of a superblock (struct btrfs_super_block, little endian). Never raises on content."""
    data = bytes(data)
    if len(data) < SUPERBLOCK_SIZE:
        raise ValueError('a superblock is %d bytes, got %d' % (SUPERBLOCK_SIZE, len(data)))
    magic = data[64:72]
    csum_type = struct.unpack_from('<H', data, 196)[0]
    expected = superblock_checksum(csum_type, data)
    csum_ok = None if expected is None else data[:len(expected)] == expected
    label = data[299:299 + 256].split(b'\0', 1)[0].decode('utf-8', 'replace')
    return Superblock(
        magic=magic, csum_ok=csum_ok, csum_type=csum_type,
        fsid=str(uuid.UUID(bytes=data[32:48])), label=label,
        devid=struct.unpack_from('<Q', data, 201)[0], dev_uuid=str(uuid.UUID(bytes=data[267:283])),
        num_devices=struct.unpack_from('<Q', data, 136)[0], generation=struct.unpack_from('<Q', data, 72)[0],
        bytenr=struct.unpack_from('<Q', data, 48)[0])


def read_superblock(path, size):
    """The primary superblock of device C(path) (C(size) bytes), or None when the device is too small to hold one."""
    if size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE:
        return None
    return parse_superblock(_blockdev.read_bytes(path, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE))


def listdir(path):
    """The names in directory C(path), or None when it does not exist (nothing mounted); ProbeError otherwise."""
    try:
        return os.listdir(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise ProbeError('cannot list %s: %s' % (path, exc))


def mounted_members(sys_fs_btrfs=SYS_FS_BTRFS):
    """Kernel names of the devices of every mounted btrfs (any mount namespace): {kernel name: fsid}."""
    found = {}
    for fsid in listdir(sys_fs_btrfs) or []:
        # A filesystem unmounted while we look (any process, any namespace) leaves no devices: skip it.
        for name in listdir(os.path.join(sys_fs_btrfs, fsid, 'devices')) or []:
            found[name] = fsid
    return found


def kernel_missing(fsid, sys_fs_btrfs=SYS_FS_BTRFS):
    """Device ids the kernel marks missing in a mounted filesystem, or None when it is not mounted."""
    devinfo = os.path.join(sys_fs_btrfs, fsid, 'devinfo')
    devids = listdir(devinfo)
    if devids is None:
        return None
    missing = []
    for devid in devids:
        try:
            with open(os.path.join(devinfo, devid, 'missing')) as handle:
                if handle.read().strip() == '1':
                    missing.append(int(devid))
        except (IOError, OSError, ValueError) as exc:
            raise ProbeError('cannot read %s/%s/missing: %s' % (devinfo, devid, exc))
    return sorted(missing)


def missing_devids(num_devices, present):
    """Device ids missing from 1..C(num_devices) given the C(present) ones; None when ids have gaps (unknowable)."""
    present = set(present)
    missing = sorted(set(range(1, num_devices + 1)) - present)
    if len(missing) != num_devices - len(present):
        return None
    return missing


_DF_LINE = re.compile(r'^\s*([A-Za-z+]+),\s*([A-Za-z0-9]+):\s*total=(\S+),\s*used=(\S+)\s*$')


def parse_filesystem_df(text):
    """C(btrfs filesystem df --raw) text -> {'Data': ['raid1'], 'Metadata': [...], 'System': [...], ...}.

    Profiles are lower case, in the order printed; a type has several while a conversion (or a degraded
    write) left chunks of another profile.
    """
    found = {}
    for line in text.splitlines():
        match = _DF_LINE.match(line)
        if not match:
            continue
        kind, profile = match.group(1), match.group(2).lower()
        profiles = found.setdefault(kind, [])
        if profile not in profiles:
            profiles.append(profile)
    if 'Data' not in found and 'Data+Metadata' not in found:
        raise ProbeError('cannot parse btrfs filesystem df output: %r' % text[:200])
    return found


def profiles_from_sysfs(fsid, sys_fs_btrfs=SYS_FS_BTRFS):
    """(data, metadata) profiles of a mounted btrfs as the kernel lists its block-group types under
    /sys/fs/btrfs/<fsid>/allocation (lower case, several joined with a comma), or None when it does not tell (not
    mounted, or mixed data and metadata groups): then filesystem_df asks btrfs-progs."""
    base = os.path.join(sys_fs_btrfs, fsid or '-', 'allocation')
    found = []
    for kind in ('data', 'metadata'):
        names = sorted(name for name in listdir(os.path.join(base, kind)) or []
                       if name in PROFILE_NAMES and os.path.isdir(os.path.join(base, kind, name)))
        if not names:
            return None
        found.append(','.join(names))
    return tuple(found)


def profiles_of(df):
    """(data, metadata) profile strings from parse_filesystem_df; several profiles are joined with a comma."""
    data = df.get('Data') or df.get('Data+Metadata') or []
    metadata = df.get('Metadata') or df.get('Data+Metadata') or []
    return ','.join(data) or None, ','.join(metadata) or None


_SUBVOL_LINE = re.compile(r'^ID (\d+) gen (\d+) top level (\d+) path (.+)$')


def parse_subvolume_list(text):
    """C(btrfs subvolume list) text -> [dict(id, gen, top_level, path)]; ProbeError on a line it cannot read."""
    found = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _SUBVOL_LINE.match(line.rstrip('\n'))
        if not match:
            raise ProbeError('cannot parse btrfs subvolume list line: %r' % line)
        found.append(dict(id=int(match.group(1)), gen=int(match.group(2)), top_level=int(match.group(3)),
                          path=match.group(4)))
    return found


def filesystem_df(runner, mountpoint):
    _rc, out, _err = runner.run('btrfs', ['filesystem', 'df', '--raw', mountpoint], device=mountpoint)
    return parse_filesystem_df(out)


def subvolume_list(runner, mountpoint):
    _rc, out, _err = runner.run('btrfs', ['subvolume', 'list', mountpoint], device=mountpoint)
    return parse_subvolume_list(out)


# ioctl BTRFS_IOC_SUBVOL_GETFLAGS (_IOR(0x94, 25, u64)) and its read-only flag (linux/btrfs.h).
_IOC_SUBVOL_GETFLAGS = 0x80089419
_SUBVOL_RDONLY = 1 << 1


def is_read_only(path):
    """Whether the subvolume at C(path) is read-only, as the kernel says (no process started); ProbeError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as exc:
        raise ProbeError('cannot open subvolume %s: %s' % (path, exc.strerror or exc), device=path)
    try:
        flags = bytearray(8)
        fcntl.ioctl(fd, _IOC_SUBVOL_GETFLAGS, flags, True)
    except (IOError, OSError) as exc:
        raise ProbeError('cannot read the flags of subvolume %s: %s' % (path, exc), device=path)
    finally:
        os.close(fd)
    return bool(struct.unpack('<Q', bytes(flags))[0] & _SUBVOL_RDONLY)


def nested_subvolumes(subvolumes, parent):
    """The paths (from the top level) of the subvolumes inside subvolume C(parent), from subvolume_list()."""
    return sorted(item['path'] for item in subvolumes if item['path'].startswith(parent + '/'))


def is_subvolume(path):
    """True when C(path) is the root of a btrfs subvolume, as the kernel says (inode 256, a directory)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return info.st_ino == SUBVOLUME_INODE and os.path.isdir(path) and not os.path.islink(path)


def kernel_label(fsid, sys_fs_btrfs=SYS_FS_BTRFS):
    """The label the kernel has for a mounted filesystem, or None when it is not mounted (any namespace)."""
    try:
        with open(os.path.join(sys_fs_btrfs, fsid, 'label')) as handle:
            return handle.read().rstrip('\n')
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise ProbeError('cannot read the label of %s from %s: %s' % (fsid, sys_fs_btrfs, exc))


def kernel_devices(fsid, sys_fs_btrfs=SYS_FS_BTRFS):
    """Kernel names of the devices present in a mounted filesystem, sorted; None when it is not mounted."""
    devices = os.path.join(sys_fs_btrfs, fsid, 'devices')
    try:
        return sorted(os.listdir(devices))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise ProbeError('cannot list %s: %s' % (devices, exc))


def kernel_devids(fsid, sys_fs_btrfs=SYS_FS_BTRFS):
    """Every device id of a mounted filesystem, present or missing, sorted; None when it is not mounted."""
    devinfo = os.path.join(sys_fs_btrfs, fsid, 'devinfo')
    try:
        return sorted(int(devid) for devid in os.listdir(devinfo) if devid.isdigit())
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise ProbeError('cannot list %s: %s' % (devinfo, exc))


def member_count(fsid, sys_fs_btrfs=SYS_FS_BTRFS):
    """The count of members of a mounted filesystem, present or missing (0 when it is not mounted); the target of a
    running replace (devid 0) is not one."""
    return len([devid for devid in kernel_devids(fsid, sys_fs_btrfs) or [] if devid > 0])


_USAGE_LINE = re.compile(r'^\s{2,}([A-Za-z][A-Za-z ,()]*?):\s+(\S+)(?:\s+\((min|used): (\S+)\))?\s*$')


def _usage_key(text):
    return re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')


def _usage_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ('yes', 'no'):
        return text == 'yes'
    return text


def parse_filesystem_usage(text):
    """The 'Overall' section of C(btrfs filesystem usage -b) -> {key: value}, keys in snake case.

    For example C(device_size), C(device_allocated), C(device_missing), C(used), C(free_estimated) (with
    C(free_estimated_min)), C(free_statfs_df), C(data_ratio), C(metadata_ratio), C(global_reserve) (with
    C(global_reserve_used)), C(multiple_profiles). Lines a btrfs-progs version does not print are absent.
    """
    found = {}
    section = False
    for line in text.splitlines():
        if line.startswith('Overall:'):
            section = True
            continue
        if not section:
            continue
        if not line.strip():
            if found:
                break
            continue
        match = _USAGE_LINE.match(line)
        if not match:
            continue
        key = _usage_key(match.group(1))
        found[key] = _usage_value(match.group(2))
        if match.group(3):
            found['%s_%s' % (key, match.group(3))] = _usage_value(match.group(4))
    if 'device_size' not in found:
        raise ProbeError('cannot parse btrfs filesystem usage output: %r' % text[:200])
    return found


def filesystem_usage(runner, mountpoint):
    _rc, out, _err = runner.run('btrfs', ['filesystem', 'usage', '-b', mountpoint], device=mountpoint)
    return parse_filesystem_usage(out)

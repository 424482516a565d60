# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The mount vocabulary: what the kernel says is mounted (/proc/self/mountinfo) and swapped on (/proc/swaps).

One place answers "what is mounted here, which mount is on top, is it this subvolume of this filesystem"
for every module. Mounts are keyed on what the kernel reports (device numbers, root, fstype), never on
option strings or fstab. Parsers take a path so tests can feed them fixture files.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath
import re
import stat
from collections import namedtuple

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

MOUNTINFO = '/proc/self/mountinfo'
SWAPS = '/proc/swaps'

_OCTAL = re.compile(r'\\([0-7]{3})')


def unescape(field):
    r"""Undo the kernel's octal escapes (\040 for a space, \011, \012, \134)."""
    return _OCTAL.sub(lambda match: chr(int(match.group(1), 8)), field)


_FIELDS = ('mount_id', 'parent_id', 'major', 'minor', 'root', 'target', 'options', 'fstype', 'source', 'super_options',
           'propagation')


class Mount(namedtuple('Mount', _FIELDS)):
    """One line of mountinfo. C(super_options) are split on ',' as the kernel prints them; values stay escaped (the
    kernel escapes ',' inside them), so a consumer unescapes each value it reads. C(propagation) holds the optional
    fields (shared:N, master:N, propagate_from:N, unbindable); empty for a private mount."""

    __slots__ = ()

    @property
    def devno(self):
        return (self.major, self.minor)

    def to_dict(self):
        return dict(zip(self._fields, self))


def parse_mountinfo_line(line):
    """Parse one mountinfo line; raise ValueError for a line that is not in the kernel's format."""
    fields = line.rstrip('\n').split(' ')
    try:
        sep = fields.index('-', 6)
    except ValueError:
        raise ValueError('mountinfo line without separator: %r' % line)
    if len(fields) < 10 or sep + 3 > len(fields):
        raise ValueError('mountinfo line too short: %r' % line)
    major, minor = fields[2].split(':')
    return Mount(
        mount_id=int(fields[0]), parent_id=int(fields[1]), major=int(major), minor=int(minor),
        root=unescape(fields[3]), target=unescape(fields[4]), options=fields[5].split(','),
        fstype=fields[sep + 1], source=unescape(fields[sep + 2]),
        super_options=fields[sep + 3].split(',') if len(fields) > sep + 3 else [],
        propagation=fields[6:sep])


def read_mounts(path=MOUNTINFO):
    with open(path) as handle:
        return [parse_mountinfo_line(line) for line in handle if line.strip()]


def parse_swaps(text):
    """Return the active swap areas listed in /proc/swaps text (header line skipped)."""
    areas = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields:
            areas.append(unescape(fields[0]))
    return areas


def read_swaps(path=SWAPS):
    with open(path) as handle:
        return parse_swaps(handle.read())


# ---------------------------------------------------------------------------------------------- which mount

def is_within(path, parent):
    """Whether C(path) is C(parent) or lies below it (both absolute and normalised)."""
    return parent == '/' or path == parent or path.startswith(parent + '/')


def stack_at(mounts, target):
    """The mounts on C(target), bottom first."""
    return [mount for mount in mounts if mount.target == target]


def top_of(stack):
    """The visible one of mounts stacked on one target: the one no other mount of the stack sits on (a mount
    stacked on another has the one below as its parent); the last listed when that does not tell."""
    if not stack:
        return None
    parents = set(mount.parent_id for mount in stack)
    tops = [mount for mount in stack if mount.mount_id not in parents]
    return (tops or stack)[-1]


def top_mount(mounts, target):
    """The mount visible at C(target), or None: the top of its stack, unless the stack hangs off a mount that is
    no longer the one visible at the parent directory (something mounted over a parent later hides it). When the
    list does not hold the mounts the stack hangs off (a partial list), the top of the stack is taken."""
    stack = stack_at(mounts, target)
    top = top_of(stack)
    if top is None or target == '/':
        return top
    ids = set(mount.mount_id for mount in stack)
    listed = set(mount.mount_id for mount in mounts)
    bottoms = [mount for mount in stack if mount.parent_id not in ids]
    if not all(mount.parent_id in listed for mount in bottoms):
        return top
    above, _root = providing([mount for mount in mounts if mount.mount_id not in ids], posixpath.dirname(target))
    if above is not None and all(mount.parent_id != above.mount_id for mount in bottoms):
        return None
    return top


def below(mounts, target):
    """The targets of the mounts strictly below C(target)."""
    return [mount.target for mount in mounts if mount.target != target and is_within(mount.target, target)]


def providing(mounts, path, ignore=()):
    """The mount that shows C(path) when the mounts with ids in C(ignore) are left out, and the root a bind of
    C(path) gets (its directory inside that mount's filesystem); (None, None) when no mount holds it."""
    mounts = [mount for mount in mounts if mount.mount_id not in ignore]
    mount = top_mount(mounts, path)
    if mount is not None:
        return mount, mount.root
    if path == '/':
        return None, None
    mount, root = providing(mounts, posixpath.dirname(path))
    return (mount, posixpath.join(root, posixpath.basename(path))) if mount is not None else (None, None)


# ---------------------------------------------------------------------------------------------- btrfs mounts

def fsid_of(mount, members):
    """The btrfs fsid of a mount, by its source device and the kernel's member lists (_btrfs.mounted_members);
    None if not known."""
    if mount is None or mount.fstype != 'btrfs':
        return None
    try:
        device = _blockdev.resolve(mount.source)
    except PersistenceError:
        return None
    return members.get(device.name)


def is_subvolume_mount(mount, subvolume, fsid, members):
    """Whether C(mount) is subvolume C(subvolume) of the btrfs C(fsid)."""
    return (mount is not None and fsid is not None and mount.fstype == 'btrfs' and mount.root == '/' + subvolume
            and fsid_of(mount, members) == fsid)


def is_device_mount(mount, path, fstype):
    """Whether C(mount) is the whole filesystem (root /) of type C(fstype) on the block device C(path): a legacy data
    filesystem mounted as it is. Keyed on the device number the kernel reports, not on the source string."""
    if mount is None or mount.fstype != fstype or mount.root != '/':
        return False
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISBLK(info.st_mode) and (os.major(info.st_rdev), os.minor(info.st_rdev)) == mount.devno


def describe_mount(mount, members):
    if mount is None:
        return 'not mounted'
    if mount.fstype == 'btrfs':
        fsid = fsid_of(mount, members)
        return 'btrfs %s subvolume %s of filesystem %s' % (mount.source, mount.root, fsid or 'unknown')
    if mount.fstype == 'tmpfs':
        return 'tmpfs (volatile)'
    return '%s %s (root %s)' % (mount.fstype, mount.source, mount.root)


def mount_result(mount, members):
    """A mount as modules return it, or None."""
    if mount is None:
        return None
    options = list(mount.options)
    options.extend(option for option in mount.super_options if option not in options)
    return dict(target=mount.target, source=mount.source, fstype=mount.fstype, root=mount.root,
                uuid=fsid_of(mount, members), options=options)

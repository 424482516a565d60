# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the kernel says is mounted (/proc/self/mountinfo) and swapped on (/proc/swaps).

Mounts are keyed on what the kernel reports (device numbers, root, fstype), never on option strings
or fstab. Parsers take a path so tests can feed them fixture files.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

MOUNTINFO = '/proc/self/mountinfo'
SWAPS = '/proc/swaps'

_OCTAL = re.compile(r'\\([0-7]{3})')


def unescape(field):
    r"""Undo the kernel's octal escapes (\040 for a space, \011, \012, \134)."""
    return _OCTAL.sub(lambda match: chr(int(match.group(1), 8)), field)


class Mount:
    """One line of mountinfo."""

    __slots__ = ('mount_id', 'parent_id', 'major', 'minor', 'root', 'target', 'options',
                 'fstype', 'source', 'super_options', 'propagation')

    def __init__(self, mount_id, parent_id, major, minor, root, target, options, fstype, source, super_options,
                 propagation=None):
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.major = major
        self.minor = minor
        self.root = root
        self.target = target
        self.options = options
        self.fstype = fstype
        self.source = source
        # Split on ',' as the kernel prints them; values stay escaped (the kernel escapes ',' inside them),
        # so a consumer unescapes each value it reads.
        self.super_options = super_options
        # The optional fields: shared:N, master:N, propagate_from:N, unbindable; empty for a private mount.
        self.propagation = propagation or []

    @property
    def devno(self):
        return (self.major, self.minor)

    def to_dict(self):
        return dict((name, getattr(self, name)) for name in self.__slots__)


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

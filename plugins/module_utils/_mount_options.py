# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The extra mount options of the data filesystem: only those safe to change from one boot to the next.

Each boot mounts the data filesystem afresh with them. An option is allowed when it changes how the kernel works
with the filesystem and nothing on the disks that a later boot without it would have to undo: access times,
compression of new writes, discard, commit interval, SSD allocation, defragmentation of new writes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

FLAGS = ('noatime', 'relatime', 'nodiratime', 'lazytime', 'nolazytime', 'autodefrag', 'noautodefrag', 'discard',
         'nodiscard', 'ssd', 'nossd', 'flushoncommit', 'noflushoncommit')
_COMPRESSION = re.compile(r'^(?:zlib(?::[1-9])?|lzo|zstd(?::(?:[1-9]|1[0-5]))?|no)$')
VALUES = {
    'compress': ('zlib[:1-9], lzo, zstd[:1-15] or no', _COMPRESSION.match),
    'compress-force': ('zlib[:1-9], lzo, zstd[:1-15] or no', _COMPRESSION.match),
    'discard': ('sync or async', lambda value: value in ('sync', 'async')),
    'commit': ('seconds, 1 to 300', lambda value: re.match(r'^[0-9]{1,3}$', value) and 1 <= int(value) <= 300),
}
# Options users may reach for that must not be set this way, and why.
REFUSED = {
    'subvol': 'the subvolume is set by the module',
    'subvolid': 'the subvolume is set by the module',
    'degraded': 'added by the module when a member is missing',
    'device': 'the members are named by the module',
    'ro': 'the data filesystem is mounted read-write',
    'rw': 'the data filesystem is mounted read-write',
    'nodatacow': 'turns off checksums and copy-on-write of new files',
    'nodatasum': 'turns off checksums of new files',
    'nobarrier': 'risks the filesystem at a power loss',
    'space_cache': 'changes the free-space cache on the disks',
    'nospace_cache': 'changes the free-space cache on the disks',
    'clear_cache': 'changes the free-space cache on the disks',
    'skip_balance': 'a recovery option: mount by hand for it',
    'rescue': 'a recovery option: mount by hand for it',
    'usebackuproot': 'a recovery option: mount by hand for it',
}


def allowed():
    """The allowed options, as a user reads them."""
    return list(FLAGS) + ['%s=%s' % (name, what) for name, (what, _test) in sorted(VALUES.items())]


def check(options):
    """C(options) as given, each one stripped; PersistenceError naming the first option refused and why, and what
    is allowed."""
    checked = []
    for option in options:
        text = str(option).strip()
        name, sep, value = text.partition('=')
        reason = None
        if not text or ',' in text:
            reason = 'one option per item, without commas'
        elif name in REFUSED:
            reason = REFUSED[name]
        elif not sep and name in FLAGS:
            pass
        elif not sep and name in ('compress', 'compress-force'):
            pass
        elif sep and name in VALUES:
            what, test = VALUES[name]
            if not test(value):
                reason = 'the value must be %s' % what
        else:
            reason = 'not one of the options safe to change at each boot'
        if reason:
            raise PersistenceError('mount_options: %r is not allowed: %s. Allowed: %s' % (
                option, reason, ', '.join(allowed())))
        checked.append(text)
    return checked


# The options that mean the same to every filesystem (the VFS's): the only ones a legacy data filesystem is mounted with.
GENERIC = ('noatime', 'relatime', 'nodiratime', 'lazytime', 'nolazytime')


def for_legacy(options):
    """(used, dropped): the options a legacy (not btrfs) data filesystem is mounted with, and those left out."""
    used = [option for option in options if option in GENERIC]
    return used, [option for option in options if option not in GENERIC]

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every write this collection makes to a block device, in one file so that a review sees them all.

Callers decide whether a write is allowed (magic header present, or an explicit force); these functions
only write, flush, and open devices exclusively so a device that became busy meanwhile is refused by the kernel.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError


def _pwrite(path, offset, data):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_EXCL)
    except OSError as exc:
        raise CommandError('%s: cannot open for writing: %s' % (path, exc), device=path)
    try:
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
        os.fsync(fd)
    except OSError as exc:
        raise CommandError('%s: write of %d bytes at offset %d failed: %s' % (path, len(data), offset, exc),
                           device=path)
    finally:
        os.close(fd)


def write_header(path):
    """Write the magic header as users do with echo | dd: the 27 bytes and a newline, at byte 0."""
    _pwrite(path, 0, _layout.MAGIC + b'\n')


def zero(path, offset, length):
    _pwrite(path, offset, b'\0' * length)


def wipe_signatures(runner, path):
    """Erase every signature libblkid knows on C(path) (both GPT copies, PMBR, filesystems, RAID, LVM, LUKS)."""
    runner.run('wipefs', ['--all', '--quiet', path], device=path)


def write_partition_table(runner, path, script):
    """Write a new partition table from an sfdisk script. The kernel is told separately (partx), not here."""
    runner.run('sfdisk', ['--quiet', '--wipe', 'always', '--wipe-partitions', 'always', '--no-reread',
                          '--no-tell-kernel', '--lock', path], data=script, device=path)


def make_swap(runner, path, label):
    """Format C(path) as a swap area labelled C(label) (mkswap opens it exclusively and wipes old signatures)."""
    runner.run('mkswap', ['--label', label, path], device=path)


def make_btrfs(runner, paths, data_profile, metadata_profile):
    """Create one btrfs over C(paths), without a label (the label is set last, as the commit point).

    --force: a creation that was interrupted may have left an unlabelled btrfs there; the caller has
    checked that nothing else is.
    """
    runner.run('mkfs.btrfs', ['--force', '--data', data_profile, '--metadata', metadata_profile] + list(paths),
               device=', '.join(paths))


def create_subvolume(runner, path):
    """Create the subvolume C(path) inside a mounted btrfs. The caller verifies it (btrfs-progs#730)."""
    runner.run('btrfs', ['subvolume', 'create', path], device=path)


def label_btrfs(runner, path, label):
    """Set the label of the (unmounted) btrfs that C(path) belongs to, on every member's superblocks."""
    runner.run('btrfs', ['filesystem', 'label', path, label], device=path)

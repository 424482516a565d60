# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The magic partition layout (boot step 3): GPT, partition 1 swap, partition 2 data filling the rest.

Pure functions: sizes, the sfdisk script, and recognising a layout already on a disk.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils._units import human

MEMINFO = '/proc/meminfo'


def read_mem_total(path=MEMINFO):
    """Bytes of RAM, from the MemTotal line of /proc/meminfo."""
    with open(path) as handle:
        for line in handle:
            if line.startswith('MemTotal:'):
                return int(line.split()[1]) * 1024
    raise ValueError('no MemTotal in %s' % path)


def _floor_mib(size):
    return size // _layout.MIB * _layout.MIB


def auto_swap_size(disk_size, mem_total):
    """The documented rule: min(RAM, 4 GiB, disk/8), rounded down to a whole MiB."""
    return _floor_mib(min(mem_total, _layout.MAX_AUTO_SWAP, disk_size // 8))


class Layout:
    """Planned partition sizes in bytes for one disk; swap_size 0 means no swap partition."""

    def __init__(self, disk_size, swap_size):
        self.disk_size = disk_size
        self.swap_size = swap_size
        self.data_start = _layout.ALIGNMENT + swap_size
        self.data_size = _floor_mib(disk_size - self.data_start - _layout.GPT_TAIL)

    def regions(self):
        """(offset, role) of each partition, in order: where their first bytes will lie on the disk."""
        regions = []
        if self.swap_size:
            regions.append((_layout.ALIGNMENT, 'swap'))
        regions.append((self.data_start, 'data'))
        return regions

    def sfdisk_script(self):
        lines = ['label: gpt']
        if self.swap_size:
            lines.append('start=%d, size=%d, type=%s, name="%s"' % (
                _layout.ALIGNMENT // 512, self.swap_size // 512, _layout.GPT_TYPE_LINUX_SWAP, _layout.SWAP_PARTLABEL))
        lines.append('start=%d, size=%d, type=%s, name="%s"' % (
            self.data_start // 512, self.data_size // 512, _layout.GPT_TYPE_LINUX_FS, _layout.DATA_PARTLABEL))
        return '\n'.join(lines) + '\n'

    def describe(self):
        parts = []
        if self.swap_size:
            parts.append('%s %s' % (_layout.SWAP_PARTLABEL, human(self.swap_size)))
        parts.append('%s %s' % (_layout.DATA_PARTLABEL, human(self.data_size)))
        return 'gpt: ' + ', '.join(parts)


def required_size(swap_size):
    return _layout.ALIGNMENT + swap_size + _layout.MIN_DATA_SIZE + _layout.GPT_TAIL


def plan_layout(disk_size, swap, swap_size, mem_total):
    """The Layout for a disk, or (None, reason) when the disk is too small. C(swap_size) None means auto."""
    if not swap:
        size = 0
    elif swap_size is None:
        size = auto_swap_size(disk_size, mem_total)
    else:
        size = _floor_mib(swap_size)
    needed = required_size(size)
    if disk_size < needed:
        return None, 'too small for the layout: %s, needs at least %s (%s%s data, GPT)' % (
            human(disk_size), human(needed), 'swap %s, ' % human(size) if size else '', human(_layout.MIN_DATA_SIZE))
    return Layout(disk_size, size), None


def is_swap_partition(part):
    return part.get('name') == _layout.SWAP_PARTLABEL and part.get('type') == _layout.GPT_TYPE_LINUX_SWAP


def is_data_partition(part):
    return part.get('name') == _layout.DATA_PARTLABEL and part.get('type') == _layout.GPT_TYPE_LINUX_FS


def is_lightwhale_layout(table):
    """True for a GPT that holds exactly our layout: an optional swap partition 1, then the data partition."""
    if not table or table.get('label') != 'gpt':
        return False
    parts = sorted(table.get('partitions', []), key=lambda part: part['start'])
    if len(parts) == 2:
        return is_swap_partition(parts[0]) and is_data_partition(parts[1])
    return len(parts) == 1 and is_data_partition(parts[0])


def magic_partitions(table):
    """Partitions named lightwhale-swap / lightwhale-data (by GPT name, whatever their type): dict swap=[], data=[]."""
    found = dict(swap=[], data=[])
    for part in (table or {}).get('partitions', []):
        if part.get('name') == _layout.SWAP_PARTLABEL:
            found['swap'].append(part)
        elif part.get('name') == _layout.DATA_PARTLABEL:
            found['data'].append(part)
    return found


def describe_table(table):
    """One line for a diff: what partition table a disk holds."""
    if not table:
        return 'no partition table'
    parts = ['%s %s' % (part.get('name') or '(unnamed)', human(part['size'])) for part in table.get('partitions', [])]
    return '%s: %s' % (table.get('label'), ', '.join(parts) or 'no partitions')

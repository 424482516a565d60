# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Candidate disks: the listed ones or the host scan (the scan rules), each inspected into a Disk report."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _partitioning
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import DeviceError


class Disk:
    """What one candidate holds. C(skipped) is the reason it is passed over, or None."""

    def __init__(self, device, skipped=None):
        self.device = device
        self.skipped = skipped
        self.size = None
        self.read_only = None
        self.head = b''
        self.magic = False
        self.signatures = []
        self.table = None
        self.usage = []
        # What a probe over a raw shell read in place of the core's own reads (_raw_probe): kernel_partitions,
        # nonzero ({offset of an edge: first non-zero byte in it, or None}). None: the core reads the host.
        self.probed = None

    @property
    def path(self):
        return self.device.path

    @property
    def partitions(self):
        return (self.table or {}).get('partitions', [])

    @property
    def lightwhale_layout(self):
        return _partitioning.is_lightwhale_layout(self.table)

    def to_result(self):
        return dict(
            device=self.path, given=self.device.given, size=self.size, magic=self.magic,
            read_only=self.read_only, partition_table=(self.table or {}).get('label'),
            partitions=self.partitions, signatures=self.signatures, in_use=self.usage,
            layout='lightwhale' if self.lightwhale_layout else None, skipped=self.skipped)


def inspect(runner, device, mounts, swaps, signatures=None):
    """Probe one whole disk fully (C(signatures): its signatures, when probed already). Raises ProbeError when any
    probe fails."""
    disk = Disk(device)
    disk.size = _blockdev.size_bytes(device.name)
    disk.read_only = _blockdev.is_read_only(device.name)
    disk.usage = _blockdev.usage(device, mounts, swaps)
    if disk.size >= 512:
        disk.head = _blockdev.read_bytes(device.path, 0, 512)
    disk.magic = _blockdev.has_magic(disk.head)
    disk.signatures = _blockdev.signatures(runner, device.path) if signatures is None else signatures
    if any(sig['type'] in _blockdev.PARTITION_TABLE_TYPES for sig in disk.signatures):
        disk.table = _blockdev.partition_table(runner, device.path)
    return disk


def listed(runner, paths, mounts, swaps):
    """Inspect the disks the user listed. A path that is missing, not a block device or a partition is a DeviceError."""
    disks = []
    seen = set()
    for given in paths:
        device = _blockdev.resolve(given)
        if _blockdev.is_partition(device.name):
            raise DeviceError('%s: %s is a partition, not a whole disk' % (given, device.path), device=given)
        if device.name in seen:
            continue
        seen.add(device.name)
        disks.append(device)
    return inspect_all(runner, disks, mounts, swaps)


def inspect_all(runner, devices, mounts, swaps):
    """inspect() each device (a Disk already, when passed over, is kept), their signatures in one probe."""
    probed = _blockdev.signatures_of(runner, [device.path for device in devices if not isinstance(device, Disk)])
    return [device if isinstance(device, Disk) else inspect(runner, device, mounts, swaps, probed[device.path])
            for device in devices]


def scanned(runner, mounts, swaps, probe_in_use=False):
    """Every whole disk of the host, under the scan rules; the ones passed over carry the reason in C(skipped).

    With C(probe_in_use), a disk in use is still inspected (read-only probes) and keeps its reasons in
    C(usage) instead of being passed over: a mounted data filesystem must still be found on its disks.
    """
    disks = []
    for name in _blockdev.scan_names():
        device = _blockdev.BlockDevice(name, '/dev/' + name, None)
        reason = _blockdev.scan_exclusion(name)
        if reason is None and _blockdev.is_read_only(name):
            reason = 'read-only'
        if reason is None and _blockdev.size_bytes(name) == 0:
            reason = 'no medium (size 0)'
        if reason is None and not probe_in_use:
            busy = _blockdev.usage(device, mounts, swaps)
            if busy:
                reason = 'in use: ' + '; '.join(busy)
        disks.append(Disk(device, skipped=reason) if reason else device)
    return inspect_all(runner, disks, mounts, swaps)


def candidates(runner, devices, mounts, swaps, probe_in_use=False):
    """The disks listed in C(devices), or the host's disks when it is empty (scanned)."""
    if devices:
        return listed(runner, devices, mounts, swaps)
    return scanned(runner, mounts, swaps, probe_in_use)


def magic_partitions(disks):
    """Partition device paths named lightwhale-swap / lightwhale-data on the candidates (boot step 4)."""
    found = dict(swap=[], data=[])
    for disk in disks:
        if disk.skipped:
            continue
        named = _partitioning.magic_partitions(disk.table)
        for role in ('swap', 'data'):
            found[role].extend(part['device'] for part in named[role])
    return found

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Steps 1 and 4 of the data filesystem: find it, or the magic partitions to create it on (read-only).

plan_sync() tells the kernel of partitions it does not know yet (the only write here, a plan action);
survey() probes the candidates and their partitions; decide() reads the survey into a Decision: the
filesystem found or the one to create, the swap partitions, warnings, or why nothing can be used.
A labelled filesystem is never formatted; an unlabelled btrfs on magic data partitions is an
interrupted creation, redone. A labelled filesystem that is not btrfs (the ext4 of Lightwhale 2.x) is the
legacy data filesystem: used as it is. Active device-mapper devices (logical volumes) are probed for the
label too, only to find it: nothing is ever created on them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import os
from collections import namedtuple

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan

# ---------------------------------------------------------------------------------------------- survey


class Probed(namedtuple('Probed', ('path', 'disk', 'part', 'signatures', 'superblock'))):
    """One probed block device of a candidate: the whole disk (C(part) None) or one of its partitions, with its
    libblkid signatures and, for a btrfs or a magic data partition, its superblock (else None)."""

    __slots__ = ()

    def __new__(cls, path, disk, part, signatures, superblock=None):
        return super(Probed, cls).__new__(cls, path, disk, part, signatures, superblock)

    @property
    def role(self):
        name = (self.part or {}).get('name')
        if name == _layout.DATA_PARTLABEL:
            return 'data'
        if name == _layout.SWAP_PARTLABEL:
            return 'swap'
        return None

    def signature(self, kind):
        for sig in self.signatures:
            if sig.get('type') == kind:
                return sig
        return None

    def types(self):
        return [sig.get('type') for sig in self.signatures]

    def __repr__(self):
        return 'Probed(%r)' % (self.path,)


class Survey:
    def __init__(self, disks):
        self.disks = disks
        self.probed = []
        self.notes = []

    def magic(self, role):
        return [probed for probed in self.probed if probed.role == role]

    def magic_partitions(self):
        return dict(swap=[probed.path for probed in self.magic('swap')],
                    data=[probed.path for probed in self.magic('data')])


def plan_sync(runner, disks, timeout):
    """Tell the kernel of the partitions in each candidate's table that it does not know with their bounds (a disk
    attached anew, or a table another host wrote): one action a disk. A disk in use is never re-read."""
    plan = Plan()
    for disk in disks:
        if disk.skipped or disk.usage or not disk.partitions or _blockdev.partitions_match(disk.path, disk.partitions):
            continue
        nodes = [part['device'] for part in disk.partitions]
        plan.add('sync-partitions', disk.path, 'tell the kernel the partitions %s' % ', '.join(nodes),
                 functools.partial(_writes.sync_partitions, runner, disk.path, nodes, timeout, disk.partitions))
    return plan


class MappedDisk:
    """What a probed device-mapper device stands in for a disk: C(path) is what it shares with its swap area (its
    volume group, else itself); never a candidate, never written to."""

    def __init__(self, mapped):
        self.mapped = mapped
        self.path = mapped.group
        self.skipped = None
        self.magic = False
        self.read_only = False
        self.usage = []
        self.partitions = []


def mapped_for(disks, mapped, listed):
    """The device-mapper devices (_lvm.mapped_devices) to probe: all of them for a host scan; with C(listed) devices,
    only those that lie on the candidate disks alone."""
    if not listed:
        return list(mapped)
    names = set(disk.device.name for disk in disks if not disk.skipped)
    return [item for item in mapped if item.disks and set(item.disks) <= names]


def _has_label(sigs):
    return any(sig.get('label') in (_layout.DATA_LABEL, _layout.SWAP_LABEL) for sig in sigs)


def survey(runner, disks, strict=(), mapped=()):
    """Probe every candidate disk and each partition in its table (read-only), and the device-mapper devices in
    C(mapped) (_lvm.Mapped: logical volumes), which are kept only when they carry one of the two labels.

    A partition is probed when the kernel has its node. On the disks listed in C(strict) the kernel must also
    know it with the bounds of the table (a look that told the kernel nothing: persistence_info, check mode);
    what it does not know is noted and not probed.
    """
    found = Survey(disks)
    wanted = []
    for disk in disks:
        if disk.skipped:
            continue
        whole = Probed(disk.path, disk, None, disk.signatures)
        if whole.signature('btrfs'):
            whole = whole._replace(superblock=_btrfs.read_superblock(disk.path, disk.size))
        wanted.append(whole)
        strictly = disk.path in strict
        geometry = _blockdev.kernel_geometry(disk.device.name) if disk.partitions and strictly else {}
        for part in disk.partitions:
            node = part['device']
            if strictly and geometry.get(os.path.basename(node)) != (part['start'], part['size']):
                found.notes.append('%s: partition %s is not known to the kernel with the bounds of the table on the '
                                   'disk: not probed' % (disk.path, node))
                continue
            if not _blockdev.partition_node_ready(node):
                # Only possible on a disk in use, where partx is not run (or in a look that runs no partx).
                found.notes.append('%s: partition %s is not known to the kernel and %s: not probed' % (
                    disk.path, node, 'it has no device node' if strictly else 'the disk is in use'))
                continue
            wanted.append((disk, part))
    # Every partition's signatures in one probe; the survey keeps the disks' order, each whole disk first.
    mapped = list(mapped)
    signatures = _blockdev.signatures_of(runner, [item[1]['device'] for item in wanted if not isinstance(item, Probed)]
                                         + ['/dev/' + item.name for item in mapped])
    for item in mapped:
        sigs = signatures['/dev/' + item.name]
        if not _has_label(sigs):
            continue
        probed = Probed(item.path, MappedDisk(item), None, sigs)
        if probed.signature('btrfs'):
            probed = probed._replace(superblock=_btrfs.read_superblock('/dev/' + item.name, item.size))
        wanted.append(probed)
    for item in wanted:
        if isinstance(item, Probed):
            found.probed.append(item)
            continue
        disk, part = item
        node = part['device']
        probed = Probed(node, disk, part, signatures[node])
        if probed.role == 'data' or probed.signature('btrfs'):
            probed = probed._replace(superblock=_btrfs.read_superblock(node, part['size']))
        found.probed.append(probed)
    return found


# ---------------------------------------------------------------------------------------------- decide


class Filesystem:
    """The data filesystem found, or the one to be created (C(new), no uuid yet)."""

    def __init__(self, uuid, members, num_devices, missing, new=False, profiles=(None, None), fstype='btrfs'):
        self.uuid, self.members, self.num_devices, self.new, self.profiles = uuid, members, num_devices, new, profiles
        # A legacy data filesystem (not btrfs: no subvolumes, mounted as it is) has its own type here.
        self.fstype = fstype
        # Device ids missing (by the superblocks); None when some are missing but their ids cannot be told.
        self.missing = missing

    @property
    def paths(self):
        return [member.path for member in self.members]

    @property
    def legacy(self):
        return self.fstype != 'btrfs'

    @property
    def degraded(self):
        return self.missing is None or bool(self.missing)

    def describe_missing(self):
        if self.missing is None:
            return '%d of %d members (device ids unknown)' % (self.num_devices - len(self.members), self.num_devices)
        return ', '.join('devid %d' % devid for devid in self.missing) + ' (of %d)' % self.num_devices


class Decision:
    """What decide() read from a survey: the filesystem (C(fs), to create when C(create)), or C(failure) and the
    magic data partitions C(refused); the swap partitions to use and to format first; warnings."""

    def __init__(self):
        self.fs, self.create, self.failure = None, False, None
        self.refused, self.warnings, self.swap, self.mkswap = [], [], [], []
        # Candidates that carry the magic header: laid out on a first boot, joined to the filesystem later.
        self.magic_disks = []
        # Disks with our layout whose data partition is blank: a join cut after the GPT was written.
        self.laid_out = []


def _creation_refusal(probed):
    """Why a magic data partition may not be formatted, or None (blank, or an unlabelled btrfs: ours to redo)."""
    types = probed.types()
    superblock = probed.superblock
    if not types:
        if superblock is not None and superblock.is_btrfs and superblock.label:
            return 'holds a btrfs superblock labelled %r that libblkid rejects (%s)' % (
                superblock.label, superblock.problem() or 'unknown reason')
        return None
    if types == ['btrfs'] and not probed.signature('btrfs').get('label'):
        return None
    labels = ['%s%s' % (sig.get('type'), ' labelled %r' % sig['label'] if sig.get('label') else '')
              for sig in probed.signatures]
    return ('holds %s; a magic data partition is formatted only when blank or holding an unlabelled btrfs '
            '(an interrupted creation)' % ', '.join(labels))


# Signature types that are not a filesystem to mount, whatever their label says.
NOT_FILESYSTEMS = frozenset(('btrfs', 'swap', 'crypto_LUKS', 'LVM2_member')) | _blockdev.PARTITION_TABLE_TYPES


def legacy_signature(probed):
    """The signature of a filesystem labelled lightwhale-data that is not btrfs (ext4, ext3, ext2, xfs...), or None."""
    for sig in probed.signatures:
        kind = sig.get('type') or ''
        if sig.get('label') == _layout.DATA_LABEL and kind not in NOT_FILESYSTEMS and not kind.endswith('_member'):
            return sig
    return None


def home_of(probed):
    """Where a probed device lives, for 'next to it': its disk, or the volume group of a logical volume."""
    return probed.disk.path


def legacy_swap(found, home):
    """The swap areas labelled lightwhale-swap next to a legacy data filesystem (on the same disk, or in the same
    volume group), whatever their partition is named: Lightwhale 2.x made them with mkswap -L."""
    areas = []
    for probed in found.probed:
        sig = probed.signature('swap')
        if (sig is not None and sig.get('label') == _layout.SWAP_LABEL and len(probed.signatures) == 1
                and home_of(probed) == home):
            areas.append(probed)
    return areas


def decide(found, swap, busy_ok=()):
    """Read a Survey: the data filesystem (found or to create), swap partitions, warnings, or a failure.

    C(busy_ok) lists disks whose 'busy' reason is only a leftover temporary mount that the plan removes.
    """
    decision = Decision()
    decision.warnings.extend(found.notes)
    decision.magic_disks = [disk for disk in found.disks if not disk.skipped and disk.magic]
    labelled = {}
    damaged = []
    legacy = []
    for probed in found.probed:
        old = legacy_signature(probed)
        if old is not None:
            legacy.append((probed, old))
        sig = probed.signature('btrfs')
        superblock = probed.superblock
        if sig is not None and sig.get('label') == _layout.DATA_LABEL:
            problem = superblock.problem() if superblock is not None else 'superblock not readable'
            if problem is None and superblock.fsid != sig.get('uuid'):
                problem = 'superblock fsid %s differs from what libblkid reports (%s)' % (superblock.fsid, sig.get('uuid'))
            if problem:
                damaged.append((probed, problem))
            else:
                labelled.setdefault(superblock.fsid, []).append(probed)
        elif superblock is not None and superblock.is_btrfs and superblock.label == _layout.DATA_LABEL:
            # A newer libblkid verifies the checksum and reports nothing: still our filesystem, damaged.
            damaged.append((probed, superblock.problem() or 'not recognised by libblkid'))

    if len(labelled) + len(legacy) > 1 or (legacy and damaged):
        decision.failure = ('several filesystems are labelled %s: %s; list the devices of the one to use'
                            % (_layout.DATA_LABEL, '; '.join(
                                ['%s on %s' % (fsid, ', '.join(p.path for p in members))
                                 for fsid, members in sorted(labelled.items())]
                                + ['%s %s on %s' % (sig.get('type'), sig.get('uuid'), probed.path)
                                   for probed, sig in legacy]
                                + ['a damaged btrfs on %s' % probed.path for probed, _problem in damaged])))
        return decision
    if legacy:
        probed, sig = legacy[0]
        decision.fs = Filesystem(sig.get('uuid'), [probed], 1, [], fstype=sig.get('type'))
        extra = [item.path for item in found.magic('data')]
        if extra:
            decision.warnings.append(
                'magic data partition(s) %s are left untouched: the data filesystem is the legacy %s on %s'
                % (', '.join(extra), sig.get('type'), probed.path))
        decision.swap = legacy_swap(found, home_of(probed))
        return decision
    if labelled:
        fsid, members = list(labelled.items())[0]
        devids = {}
        for member in members:
            devids.setdefault(member.superblock.devid, []).append(member.path)
        clones = ['devid %d on %s' % (devid, ' and '.join(paths)) for devid, paths in sorted(devids.items())
                  if len(paths) > 1]
        if clones:
            decision.failure = ('data filesystem %s: several devices claim the same member (%s), e.g. a cloned disk; '
                                'detach the copies' % (fsid, '; '.join(clones)))
            return decision
        members.sort(key=lambda member: member.superblock.devid)
        num_devices = max(member.superblock.num_devices for member in members)
        missing = _btrfs.missing_devids(num_devices, devids)
        decision.fs = Filesystem(fsid, members, num_devices, missing)
        for probed, problem in damaged:
            if probed.superblock is not None and probed.superblock.fsid == fsid:
                decision.warnings.append('%s: a member of the data filesystem %s has a damaged superblock (%s): '
                                         'counted as missing' % (probed.path, fsid, problem))
            else:
                decision.warnings.append('%s: holds a damaged %s superblock of another filesystem (%s): left untouched'
                                         % (probed.path, _layout.DATA_LABEL, problem))
        taken = set(member.path for member in members) | set(probed.path for probed, _problem in damaged)
        magic = set(disk.path for disk in decision.magic_disks)
        extra = []
        for probed in found.magic('data'):
            if probed.path in taken or probed.disk.path in magic:
                continue
            if not probed.signatures and probed.disk.lightwhale_layout and probed.disk not in decision.laid_out:
                # Laid out after its header gave consent (a join killed after the GPT was written): it joins.
                decision.laid_out.append(probed.disk)
            else:
                extra.append(probed.path)
        if extra:
            decision.warnings.append(
                'magic data partition(s) %s are not part of the data filesystem %s and are left untouched: write '
                'the magic header on the disk to have it join' % (', '.join(extra), fsid))
    elif damaged:
        decision.failure = '; '.join(
            '%s: holds the %s filesystem%s but its superblock is damaged (%s); nothing was formatted. Repair it '
            '(btrfs rescue super-recover %s) or wipe it to start anew' % (
                probed.path, _layout.DATA_LABEL,
                ' %s' % probed.superblock.fsid if probed.superblock is not None else '', problem, probed.path)
            for probed, problem in damaged)
        return decision
    else:
        data = found.magic('data')
        # A candidate disk that still carries the magic header is not laid out yet (steps 2-3 unfinished: a first
        # boot killed between two disks). Creating now would leave it out of the filesystem for good: magic_disk
        # (state=partitioned) lays out every magic disk first, then one filesystem goes over all of them.
        pending = [disk.path for disk in found.disks if not disk.skipped and disk.magic]
        if data and not pending:
            for probed in data:
                why = _creation_refusal(probed)
                if why is None and probed.disk.read_only:
                    why = 'is on the read-only disk %s' % probed.disk.path
                if why is None and probed.disk.usage and probed.disk.path not in busy_ok:
                    why = 'its disk is in use: %s' % '; '.join(probed.disk.usage)
                if why:
                    decision.refused.append(dict(device=probed.path, reason=why))
            if decision.refused:
                decision.failure = 'cannot create the data filesystem: ' + '; '.join(
                    '%s %s' % (item['device'], item['reason']) for item in decision.refused)
                return decision
            decision.fs = Filesystem(None, data, len(data), [], new=True, profiles=_btrfs.profiles_for(len(data)))
            decision.create = True

    if decision.fs is not None:
        disks = set(member.disk.path for member in decision.fs.members)
        for probed in found.magic('swap'):
            if probed.disk.path not in disks:
                continue
            sig = probed.signature('swap')
            if sig is not None and sig.get('label') == _layout.SWAP_LABEL and len(probed.signatures) == 1:
                decision.swap.append(probed)
            elif not probed.signatures and probed.disk.read_only:
                if swap:
                    decision.warnings.append('magic swap partition %s is on the read-only disk %s: not formatted'
                                             % (probed.path, probed.disk.path))
            elif not probed.signatures:
                if swap:
                    decision.swap.append(probed)
                    decision.mkswap.append(probed)
            else:
                decision.warnings.append('magic swap partition %s holds %s, not a swap area labelled %s: left untouched'
                                         % (probed.path, ', '.join(probed.types()), _layout.SWAP_LABEL))
    return decision

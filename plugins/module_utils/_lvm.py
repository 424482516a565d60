# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""LVM before step 1: activate the volume groups, so that a logical volume holding the data filesystem is found;
and the device-mapper devices (logical volumes among them) probed for the label, read only.

Only activation: no volume group or logical volume is ever created, changed or removed. Without udev, LVM is told
to make the /dev/mapper nodes itself (activation/udev_sync=0, udev_rules=0). A host without the LVM tools skips all
of this; a failed activation is a warning, never a failed boot.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import functools
import os

from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan, Steps

SYS_BLOCK = '/sys/block'
DEV_MAPPER = '/dev/mapper'
# No udev on these hosts: LVM makes the device nodes itself and waits for no udev event.
NO_UDEV = 'activation { udev_sync = 0 udev_rules = 0 }'
LVS_FIELDS = 'vg_name,lv_name,lv_attr'


class LogicalVolume:
    """One line of lvs: C(active) from the fifth attribute character, C(skipped) from the tenth (activation
    skip: vgchange -ay leaves it inactive, so it is never counted as to activate)."""

    def __init__(self, vg, lv, attr):
        self.vg, self.lv, self.attr = vg, lv, attr

    @property
    def active(self):
        return len(self.attr) > 4 and self.attr[4] == 'a'

    @property
    def skipped(self):
        return len(self.attr) > 9 and self.attr[9] == 'k'

    @property
    def name(self):
        return '%s/%s' % (self.vg, self.lv)

    def __repr__(self):
        return 'LogicalVolume(%r, %r, %r)' % (self.vg, self.lv, self.attr)


def parse_lvs(text):
    """The logical volumes of C(lvs --noheadings --separator '|' -o vg_name,lv_name,lv_attr) output."""
    volumes = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        fields = [field.strip() for field in line.split('|')]
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise ValueError('unexpected lvs line %r' % line)
        volumes.append(LogicalVolume(fields[0], fields[1], fields[2]))
    return volumes


def list_volumes(runner):
    """The host's logical volumes (read only)."""
    _rc, out, _err = runner.run('lvs', ['--noheadings', '--separator', '|', '-o', LVS_FIELDS, '--config', NO_UDEV])
    try:
        return parse_lvs(out)
    except ValueError as exc:
        raise PersistenceError('cannot parse the output of lvs: %s' % exc)


def parse_pvs(text):
    """{volume group: [physical volume paths]} of C(pvs --noheadings --separator '|' -o pv_name,vg_name) output
    (physical volumes in no group left out)."""
    groups = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        fields = [field.strip() for field in line.split('|')]
        if len(fields) != 2 or not fields[0]:
            raise ValueError('unexpected pvs line %r' % line)
        if fields[1]:
            groups.setdefault(fields[1], []).append(fields[0])
    return groups


def disk_of(path, sys_class_block='/sys/class/block'):
    """The kernel name of the whole disk C(path) is, or is a partition of."""
    name = os.path.basename(os.path.realpath(path))
    if os.path.exists(os.path.join(sys_class_block, name, 'partition')):
        return os.path.basename(os.path.dirname(os.path.realpath(os.path.join(sys_class_block, name))))
    return name


def groups_on(runner, disks):
    """The volume groups whose physical volumes all lie on the disks named in C(disks) (kernel names)."""
    _rc, out, _err = runner.run('pvs', ['--noheadings', '--separator', '|', '-o', 'pv_name,vg_name',
                                        '--config', NO_UDEV])
    try:
        groups = parse_pvs(out)
    except ValueError as exc:
        raise PersistenceError('cannot parse the output of pvs: %s' % exc)
    return set(vg for vg, pvs in groups.items() if all(disk_of(pv) in disks for pv in pvs))


def inactive_groups(volumes):
    """{volume group: [its inactive logical volumes]} for the groups that hold one vgchange -ay would activate."""
    groups = {}
    for volume in volumes:
        if not volume.active and not volume.skipped:
            groups.setdefault(volume.vg, []).append(volume.lv)
    return groups


def newly_active(before, after):
    """The logical volumes active in C(after) that were not in C(before), by name."""
    was = set(volume.name for volume in before if volume.active)
    return sorted(volume.name for volume in after if volume.active and volume.name not in was)


def missing_nodes(volumes, dev_mapper=DEV_MAPPER):
    """Active logical volumes without their /dev/mapper node (activated before this /dev, or by a tool that left the
    nodes to udev)."""
    return [volume.name for volume in volumes
            if volume.active and not os.path.exists(os.path.join(dev_mapper, mapper_name(volume.vg, volume.lv)))]


def mapper_name(vg, lv):
    """The device-mapper name of a logical volume: dashes doubled, joined by one dash."""
    return '%s-%s' % (vg.replace('-', '--'), lv.replace('-', '--'))


class Activation:
    """What LVM activation planned or did: the plan (its one action), the warnings, the tools found."""

    def __init__(self):
        self.plan = Plan()
        self.warnings = []
        self.available = False
        # The logical volumes this run activated (vg/lv).
        self.activated = []


def plan_activation(module, runner, enabled, disks=None):
    """Plan the activation of the volume groups that hold inactive logical volumes (read only until applied); with
    C(disks) (kernel names of the listed disks), only the groups that lie on them alone.

    Nothing when C(enabled) is false or vgchange is not installed. A failing lvs or pvs is a warning."""
    found = Activation()
    if not enabled or not module.get_bin_path('vgchange') or not module.get_bin_path('lvs'):
        return found
    found.available = True
    try:
        volumes = list_volumes(runner)
        groups = inactive_groups(volumes)
        if groups and disks is not None:
            allowed = groups_on(runner, disks)
            groups = dict((vg, lvs) for vg, lvs in groups.items() if vg in allowed)
            volumes = [volume for volume in volumes if volume.vg in allowed]
    except PersistenceError as exc:
        found.warnings.append('LVM: cannot list the logical volumes, no volume group activated: %s' % exc.message)
        return found
    nodes = missing_nodes(volumes)
    if groups:
        found.plan.add('activate-lvm', None, 'activate the volume group(s) %s (inactive logical volumes %s)' % (
            ', '.join(sorted(groups)), ', '.join('%s/%s' % (vg, lv) for vg in sorted(groups) for lv in groups[vg])),
            functools.partial(_activate, runner, sorted(groups), volumes, found))
    elif nodes:
        found.plan.add('activate-lvm', None, 'make the missing device nodes of the active logical volume(s) %s'
                       % ', '.join(nodes), functools.partial(_mknodes, runner, nodes))
    return found


def _activate(runner, groups, before, activation):
    """vgchange -ay on C(groups), then the nodes; records what became active (nothing: no step recorded)."""
    _writes.activate_volume_groups(runner, groups, NO_UDEV)
    after = list_volumes(runner)
    if missing_nodes(after):
        _writes.make_lvm_nodes(runner, NO_UDEV)
    done = newly_active(before, after)
    activation.activated = done
    if not done:
        raise PersistenceError('vgchange -ay %s exited 0 but activated no logical volume' % ' '.join(groups))
    return Steps(['activated the logical volume(s) %s' % ', '.join(done)])


def _mknodes(runner, nodes):
    _writes.make_lvm_nodes(runner, NO_UDEV)
    return Steps(['made the device nodes of %s' % ', '.join(nodes)])


def apply_activation(activation):
    """Apply the plan; a failure becomes a warning (the boot goes on without the logical volumes)."""
    try:
        activation.plan.apply()
    except PersistenceError as exc:
        activation.warnings.append('LVM: activating the volume groups failed, their logical volumes are not used: %s'
                                   % exc.message)


# ---------------------------------------------------------------------------------------------- mapped devices

def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise


class Mapped:
    """A device-mapper device worth probing for the label: C(path) the /dev/mapper node when it exists (else
    /dev/dm-N), C(name) its kernel name, C(group) what it shares with its swap (the volume group of a logical volume,
    else the device itself), C(disks) the whole disks below it."""

    def __init__(self, name, path, group, disks, size):
        self.name, self.path, self.group, self.disks, self.size = name, path, group, disks, size

    def __repr__(self):
        return 'Mapped(%r)' % self.path


def lvm_group(uuid):
    """The volume group of a device-mapper uuid C(LVM-<32 characters of VG uuid><32 of LV uuid>[-suffix]), or None."""
    if not uuid or not uuid.startswith('LVM-') or len(uuid) < 4 + 64:
        return None
    return 'vg:' + uuid[4:36]


def disks_below(name, sys_block=SYS_BLOCK, depth=0):
    """The whole disks under a stacked device (through slaves, partitions mapped to their disks)."""
    if depth > 8:
        return []
    found = []
    for slave in _listdir(os.path.join(sys_block, name, 'slaves')):
        if os.path.isdir(os.path.join(sys_block, slave)):
            if _listdir(os.path.join(sys_block, slave, 'slaves')):
                found.extend(disks_below(slave, sys_block, depth + 1))
            else:
                found.append(slave)
        else:
            # A partition: /sys/class/block/<part> lives under its disk's directory.
            disk = os.path.basename(os.path.dirname(os.path.realpath(os.path.join('/sys/class/block', slave))))
            found.append(disk)
    return sorted(set(found))


def mapped_devices(sys_block=SYS_BLOCK, dev_mapper=DEV_MAPPER):
    """The device-mapper devices to probe for the data filesystem's label: every dm device that nothing is stacked
    on (no holders - the internal devices of snapshots and pools have one), not read-only, with a size."""
    found = []
    for name in _listdir(sys_block):
        if not name.startswith('dm-'):
            continue
        base = os.path.join(sys_block, name)
        if _listdir(os.path.join(base, 'holders')) or _read(os.path.join(base, 'ro')) == '1':
            continue
        size = int(_read(os.path.join(base, 'size')) or 0) * 512
        if size == 0 or _read(os.path.join(base, 'dm', 'suspended')) == '1':
            continue
        dm_name = _read(os.path.join(base, 'dm', 'name'))
        path = os.path.join(dev_mapper, dm_name) if dm_name and os.path.exists(os.path.join(dev_mapper, dm_name)) \
            else '/dev/' + name
        group = lvm_group(_read(os.path.join(base, 'dm', 'uuid'))) or path
        found.append(Mapped(name, path, group, disks_below(name, sys_block), size))
    return found

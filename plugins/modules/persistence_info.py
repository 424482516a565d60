#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: persistence_info
short_description: Report a host's Lightwhale persistence state - mode, data filesystem, swap, overlays, disks
version_added: 0.1.0
description:
  - Read only. In one run, reports the persistence mode of the host, its data filesystem (label, UUID, members present
    and missing, profiles, size, free space, subvolumes), swap, the overlays over C(/etc), C(/var) and C(/home), the
    status file the boot left, the disks that carry the magic header and wait for the next boot, and the candidate
    disks that are empty - the ones M(lightwhale.persistence.magic_disk) would mark without O(lightwhale.persistence.magic_disk#module:force).
  - "The mode is read from what the kernel says is mounted at C(<root>/mnt/lightwhale-data): V(persistent) - the
    C(@lightwhale-data) subvolume of the btrfs labelled C(lightwhale-data), every member present, or a legacy data
    filesystem (labelled C(lightwhale-data), not btrfs) mounted as it is; V(degraded) - the
    same with members missing; V(volatile) - a tmpfs; V(none-yet) - nothing, or something that is not ours (the
    boot sequence has not run, or the host does not use it)."
  - Active device-mapper devices (LVM logical volumes) are probed for the label too; no volume group is activated.
  - Writes nothing, ever - no lock file, no status file, and unlike the other modules it does not tell the kernel
    about partitions (C(partx)); a partition the kernel does not know is reported in RV(problems), not probed.
  - To list the snapshots of the state (see M(lightwhale.persistence.lw_snapshot)), it mounts the top level of the
    data filesystem read-only on a temporary directory under the system's temporary directory (outside O(root)) for
    the length of the run.
  - A probe that fails (C(wipefs), C(sfdisk), a read error) fails the module, so a disk is never reported empty
    because it could not be read.
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - util-linux (C(wipefs), C(sfdisk))
  - btrfs-progs (C(btrfs)), when a data filesystem is mounted
  - Root privileges (disks are read directly).
attributes:
  check_mode:
    support: full
    details: The module never changes anything; check mode runs it the same way.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  overlays:
    description:
      - The image's directories whose overlays are reported, with the layer paths of M(lightwhale.persistence.lw_overlay)'s
        defaults.
    type: list
    elements: path
    default: [/etc, /var, /home]
notes:
  - Size and free space are the ones C(statfs) reports on the data mount point (usable space, after RAID1), and the
    raw figures of C(btrfs filesystem usage -b) in RV(filesystem.usage). They are null when the data filesystem is not
    mounted at the data mount point.
  - Missing members are named by their btrfs device id, because a device that is gone has no path.
seealso:
  - module: lightwhale.persistence.lw_datafs
  - module: lightwhale.persistence.magic_disk
  - ref: ansible_collections.lightwhale.persistence.docsite.fleet
    description: Turning persistence on across a fleet, and verifying it (docs/fleet.md in the collection).
extends_documentation_fragment: [ansible.builtin.action_common_attributes, lightwhale.persistence.common,
  lightwhale.persistence.common.devices]
'''

EXAMPLES = r'''
- name: Look at the host
  lightwhale.persistence.persistence_info:
  register: persistence

- name: Say how the host keeps its data
  ansible.builtin.debug:
    msg: "{{ persistence.summary }}"

- name: Fail a host that is not persistent with two members
  ansible.builtin.assert:
    that:
      - persistence.mode == 'persistent'
      - persistence.filesystem.members | length == 2
    fail_msg: "{{ inventory_hostname }}: {{ persistence.summary }}"

- name: The empty disks of at least 100 GiB
  ansible.builtin.debug:
    msg: "{{ persistence.empty_disks | selectattr('size', '>=', 100 * 1024 ** 3) | map(attribute='device') }}"
'''

RETURN = r'''
mode:
  description:
    - V(persistent), V(degraded), V(volatile) or V(none-yet), from what is mounted at the data mount point (see the
      description).
  returned: always
  type: str
  sample: persistent
summary:
  description: One line for an operator - mode, profiles, members, space, swap, overlays, disks waiting, problems.
  returned: always
  type: str
  sample: "persistent; raid1/raid1 on /dev/sdb2,/dev/sdc2 (2 of 2 members), 9.4 GiB free of 9.5 GiB; swap /dev/sdb1,/dev/sdc1;
    overlays /etc /var /home; 0 empty disk(s)"
filesystem:
  description:
    - The data filesystem - the one mounted at the data mount point, or else the one found on the candidates' disks
      (then RV(filesystem.mounted) is false and space, profiles and subvolumes are null or empty unless it is mounted
      elsewhere in this mount namespace). Null when there is none.
  returned: always
  type: dict
  contains:
    label:
      description: The label, C(lightwhale-data).
      type: str
    uuid:
      description: The filesystem UUID.
      type: str
    mounted:
      description: Whether it is the filesystem mounted at the data mount point.
      type: bool
    members:
      description: Member devices present.
      type: list
      elements: str
      sample: [/dev/sdb2, /dev/sdc2]
    missing:
      description: Members missing, by btrfs device id (V(devid 2)).
      type: list
      elements: str
    num_devices:
      description: How many members the filesystem has, present or not.
      type: int
    data_profile:
      description: The data block-group profile (lower case; several are joined with a comma).
      type: str
      sample: raid1
    metadata_profile:
      description: The metadata block-group profile.
      type: str
      sample: raid1
    size:
      description: Usable size in bytes (C(statfs) of the data mount point).
      type: int
    free:
      description: Bytes available (C(statfs) of the data mount point).
      type: int
    usage:
      description:
        - The overall figures of C(btrfs filesystem usage -b), keys in snake case - C(device_size),
          C(device_allocated), C(device_missing), C(used), C(free_estimated), C(data_ratio), C(metadata_ratio) and
          more, as the installed btrfs-progs prints them. Empty when not mounted.
      type: dict
    subvolumes:
      description: Subvolumes by path from the top level.
      type: list
      elements: str
      sample: ['@lightwhale-data', '@lightwhale-state', '@lightwhale-state-snapshots']
    conversion:
      description:
        - The background conversion of the profiles, read live from the kernel - null when every chunk has the
          profiles the member count calls for and nothing runs, or when the filesystem is not mounted. C(state) is
          V(converting), V(restoring redundancy), V(replacing) or V(pending) (chunks left, no job running - the next
          boot starts it); C(target) the profiles as C(data/metadata); C(profiles) the profiles of the chunks now, per
          chunk type; C(progress) the kernel's progress line or null. See M(lightwhale.persistence.lw_datafs).
      type: dict
      sample: {state: converting, target: raid1/raid1, progress: "5 out of about 9 chunks balanced (6 considered), 44% left",
               profiles: {data: [raid1, single], metadata: [raid1], system: [raid1]}}
    legacy:
      description:
        - Whether it is a legacy data filesystem - labelled C(lightwhale-data) but not btrfs (the ext4 of Lightwhale
          2.x) - mounted as it is, without subvolumes, RAID, snapshots or rollback. Then the mode is V(persistent),
          profiles are null, subvolumes and usage empty.
      type: bool
    fstype:
      description: Its type, V(btrfs) or that of a legacy one (V(ext4) ...).
      type: str
      sample: btrfs
legacy:
  description: Whether the host runs on a legacy data filesystem mounted at the data mount point (see RV(filesystem.legacy)).
  returned: always
  type: bool
  sample: false
swap:
  description: Swap on the magic swap partitions (on a legacy data filesystem, the swap areas labelled C(lightwhale-swap) next to it).
  returned: always
  type: dict
  contains:
    active:
      description: Whether any magic swap partition is an active swap area.
      type: bool
    devices:
      description: The magic swap partitions that are active.
      type: list
      elements: str
overlays:
  description: Each path of O(overlays) with its layers and whether its overlay is mounted.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The directory, as seen inside the root.
      type: str
    target:
      description: The directory on the host (under O(root)).
      type: str
    lower:
      description: The bind mount of the image's directory.
      type: str
    upper:
      description: The upper layer, where changes land.
      type: str
    work:
      description: The overlay's work directory.
      type: str
    mounted:
      description: Whether the overlay is mounted on RV(overlays[].target).
      type: bool
status:
  description: The contents of C(<root>/run/lightwhale/persistence.json), written by the boot; null when absent.
  returned: always
  type: dict
magic_disks:
  description: Candidate disks that carry the magic header - laid out and made persistent at the next boot.
  returned: always
  type: list
  elements: str
magic_partitions:
  description: Partitions named C(lightwhale-swap) and C(lightwhale-data) on the candidates; C(swap) and C(data), each a list
    of partition device paths.
  returned: always
  type: dict
  sample: {swap: [/dev/sdb1], data: [/dev/sdb2]}
empty_disks:
  description:
    - Candidate disks that are empty - no magic header, no signature, no partition, no holder, not in use, not
      read-only, zero first and last MiB - each with C(device), C(given) (the path as listed), C(name) (kernel name),
      C(size) (bytes), C(ids) (its C(/dev/disk/by-id) links, empty without udev) and C(model) (or null).
  returned: always
  type: list
  elements: dict
  sample: [{device: /dev/sdc, given: /dev/sdc, name: sdc, size: 10737418240, ids: [/dev/disk/by-id/virtio-extra2],
            model: null}]
disks:
  description:
    - Every candidate as M(lightwhale.persistence.magic_disk) reports it (C(device), C(size), C(magic), C(read_only),
      C(partition_table), C(partitions), C(signatures), C(in_use), C(layout), C(skipped)), with C(empty), C(reasons)
      (why it is not empty), C(name), C(ids) and C(model).
  returned: always
  type: list
  elements: dict
failure:
  description:
    - Why the data filesystem on the candidates' disks cannot be used (damaged, ambiguous, or its magic partitions
      hold something else), as M(lightwhale.persistence.lw_datafs) would fail; null when nothing is wrong.
  returned: always
  type: str
snapshots:
  description:
    - The snapshots of the state, oldest first, as M(lightwhale.persistence.lw_snapshot) returns them (C(name),
      C(time), C(description), C(important), C(kind), C(pending)); empty when the state is not mounted.
  returned: always
  type: list
  elements: dict
pending:
  description:
    - The rollback or factory reset the next boot carries out (C(action), C(target), C(scope), C(kept), C(uuid),
      C(requested), C(by), C(description)), or null.
  returned: always
  type: dict
problems:
  description:
    - What looks wrong, one line each - a damaged or ambiguous data filesystem, partitions the kernel does not know,
      an unreadable status file, overlays not ours, something foreign on the data mount point.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _info
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module


def main():
    _module.finish(AnsibleModule(argument_spec=dict(
        overlays=dict(type='list', elements='path', default=list(_layout.OVERLAY_PATHS)),
        devices=dict(type='list', elements='path', default=[]),
        root=dict(type='path', default='/'),
    ), supports_check_mode=True), _info.execute, on_error=lambda error: dict(changed=False))


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: magic_disk
short_description: Mark disks with the Lightwhale magic header and lay out the magic partitions
version_added: 0.1.0
description:
  - Writes, removes, or acts on the Lightwhale magic header, the 27 bytes C(lightwhale-please-format-me) at byte 0
    of a whole disk, which asks the host to turn the disk into persistent storage at its next boot.
  - With O(state=partitioned) it lays out every disk that carries the header (boot steps 2 to 4) - a GPT with
    partition 1 C(lightwhale-swap) (Linux swap) and partition 2 C(lightwhale-data) (Linux filesystem) filling the
    rest, aligned to 1 MiB - then wipes the header so the disk is never laid out again.
  - Nothing is ever written to a disk that does not carry the header, except by O(state=present), which only
    marks blank disks unless O(force=true).
  - Works without udev. Partition tables are read from the disks themselves; after partitioning the kernel is told
    with C(partx) and the module waits for the partition nodes.
  - Always returns what it saw, in RV(disks), RV(magic_disks), RV(magic_partitions) and RV(skipped_disks).
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - util-linux (C(wipefs), C(partx), C(sfdisk))
  - Root privileges.
attributes:
  check_mode:
    support: full
    details: Probes only; reports the same RV(actions) and C(changed) a real run would.
  diff_mode:
    support: full
    details: Shows each affected disk's header and partition table before and after.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) writes the header (27 bytes and a newline) on every listed disk that does not carry it yet. A disk
        that holds a partition table, a filesystem, RAID, LVM, LUKS or any other signature, or non-zero bytes in its
        first or last MiB, is refused unless O(force=true). A disk that is read-only or in use is always refused.
      - V(absent) removes the header from the listed disks that carry it.
      - V(present) and V(absent) need O(devices) - the disks to mark are never guessed.
      - V(partitioned) lays out every candidate that carries the header. A disk that already holds the layout and
        still carries the header (a run that was interrupted) keeps its partition table; only the partitions'
        old signatures and the header are wiped. A disk laid out earlier whose partitions the kernel does not know
        (attached anew) has them told to the kernel (C(partx)).
      - When any disk is refused, the module fails naming each disk and the reason, and writes nothing at all.
    type: str
    choices: [present, absent, partitioned]
    default: present
  force:
    description:
      - With O(state=present), wipe every old signature first (C(wipefs --all), which removes both GPT copies, then
        zero the first and last MiB), so nothing stale survives.
      - Never overrides a read-only or in-use disk.
    type: bool
    default: false
  swap:
    description:
      - Whether O(state=partitioned) creates the C(lightwhale-swap) partition.
      - The word C(noswap) on the kernel command line turns it off, whatever this says.
    type: bool
    default: true
  swap_size:
    description:
      - Size of the swap partition. V(auto) is min(RAM, 4 GiB, disk size / 8), rounded down to a whole MiB.
      - Otherwise a whole number with an optional unit K, M, G or T (powers of 1024), for example V(512M) or
        V(2GiB); rounded down to a whole MiB, at least 1 MiB.
      - A disk too small for the swap partition plus a 256 MiB data partition is refused and left untouched.
    type: str
    default: auto
notes:
  - The header sits in the MBR boot-code area, which GPT tools may keep; O(state=partitioned) zeroes that area
    explicitly after writing the GPT, as its last write.
extends_documentation_fragment: [ansible.builtin.action_common_attributes, lightwhale.persistence.common,
  lightwhale.persistence.common.timeout, lightwhale.persistence.common.devices,
  lightwhale.persistence.common.kernel_cmdline]
'''

EXAMPLES = r'''
- name: Ask a host to turn a blank disk into persistent storage at its next boot
  lightwhale.persistence.magic_disk:
    devices:
      - /dev/disk/by-id/virtio-extra1
    state: present

- name: Mark a disk that held something else, wiping every old signature
  lightwhale.persistence.magic_disk:
    devices: [/dev/sdb]
    state: present
    force: true

- name: Lay out every magic disk on the host (boot steps 2 to 4)
  lightwhale.persistence.magic_disk:
    state: partitioned
  register: magic

- name: Show the data partitions found
  ansible.builtin.debug:
    var: magic.magic_partitions.data

- name: Lay out listed disks without swap
  lightwhale.persistence.magic_disk:
    devices: [/dev/sdb, /dev/sdc]
    state: partitioned
    swap: false

- name: Take the mark back before the next boot
  lightwhale.persistence.magic_disk:
    devices: [/dev/sdb]
    state: absent
'''

RETURN = r'''
disks:
  description: One entry per candidate disk, as found after the run (as found before it in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    device:
      description: The kernel's device path.
      type: str
      sample: /dev/sdb
    given:
      description: The path as listed in O(devices).
      type: str
      sample: /dev/disk/by-id/virtio-extra1
    size:
      description: Size in bytes; null for a skipped disk.
      type: int
      sample: 21474836480
    magic:
      description: Whether the disk carries the magic header.
      type: bool
    read_only:
      description: Whether the kernel reports the disk read-only; null for a skipped disk.
      type: bool
    partition_table:
      description: Partition table type found on the disk (V(gpt), V(dos)) or null.
      type: str
      sample: gpt
    partitions:
      description: Partitions read from the disk, with C(device), C(number), C(name), C(type), C(uuid), C(start)
        and C(size) (bytes).
      type: list
      elements: dict
    signatures:
      description: Signatures found by libblkid, with C(type), C(offset), C(label) and C(uuid).
      type: list
      elements: dict
    in_use:
      description: Why the disk is in use (mounts, swap, holders); empty when free.
      type: list
      elements: str
    layout:
      description: V(lightwhale) when the disk holds the magic partition layout, else null.
      type: str
    skipped:
      description: Why the host scan passed over this disk, or null.
      type: str
      sample: loop device (taken only when listed in devices)
magic_disks:
  description: Disks that carried the magic header when the run started.
  returned: always
  type: list
  elements: str
  sample: [/dev/sdb]
magic_partitions:
  description: Partitions named C(lightwhale-swap) and C(lightwhale-data) on the candidates after the run
    (predicted in check mode).
  returned: always
  type: dict
  contains:
    swap:
      description: Swap partition device paths.
      type: list
      elements: str
      sample: [/dev/sdb1]
    data:
      description: Data partition device paths.
      type: list
      elements: str
      sample: [/dev/sdb2]
refused:
  description: Disks refused, each with C(device) and C(reason); nothing was written.
  returned: failure
  type: list
  elements: dict
skipped_disks:
  description:
    - Every candidate this run leaves alone, each with C(device) and C(reason).
    - The reasons are the host scan's exclusions (loop, read-only, in use...) and, for the disks considered, why
      there is nothing to write (for example C(no magic header)).
    - The key is not called C(skipped) because Ansible reads a truthy C(skipped) key as a skipped task.
  returned: always
  type: list
  elements: dict
  sample: [{device: /dev/loop0, reason: loop device (taken only when listed in devices)}, {device: /dev/sdc, reason: no magic header}]
actions:
  description: What was written, or would be in check mode, one line per step.
  returned: always
  type: list
  elements: str
  sample: ["/dev/sdb: write gpt: lightwhale-swap 2 GiB, lightwhale-data 18 GiB", "/dev/sdb: wipe the magic header"]
swap:
  description: Whether swap partitions are laid out, after the kernel command line's C(noswap).
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _magic_run
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module


def main():
    _module.finish(AnsibleModule(argument_spec=dict(
        force=dict(type='bool', default=False),
        state=dict(type='str', choices=['present', 'absent', 'partitioned'], default='present'),
        devices=dict(type='list', elements='path', default=[]),
        swap=dict(type='bool', default=True),
        swap_size=dict(type='str', default='auto'),
        kernel_cmdline=dict(type='str'),
        root=dict(type='path', default='/'),
        timeout=dict(type='int', default=30),
    ), supports_check_mode=True), _magic_run.execute)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The work is done on the controller by the action plugin of the same name: this file holds its documentation.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: raw_magic_disk
short_description: Mark disks with the Lightwhale magic header on a host without Python
version_added: 0.2.0
description:
  - M(lightwhale.persistence.magic_disk) with O(lightwhale.persistence.magic_disk#module:state=present) for hosts that
    have no usable Python. It probes the disks with the shell probe of M(lightwhale.persistence.raw_persistence_info),
    decides on the controller with the planner of M(lightwhale.persistence.magic_disk) (the same refusals, with the
    same reasons), and marks each chosen disk with one shell script run over the connection.
  - Only the header is written - C(lightwhale-please-format-me) and a newline at byte 0 - and only on a disk that is
    blank, or with O(force=true) on a listed disk that holds something (then its old signatures are wiped and its
    first and last MiB zeroed first). A disk that is read-only or in use is always refused. The host's own
    persistence step does the rest at its next boot.
  - Right before writing, the script checks again what the decision relied on - not held, not mounted, not swap, not a
    member of a mounted btrfs, and
    for a blank disk no kernel partition, no signature, zero first and last MiB - and refuses a disk that changed
    since the probe. It reads the header back after writing it, and the disks are probed again afterwards.
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - On the host - what M(lightwhale.persistence.raw_persistence_info) needs, and C(sync); C(partx) with O(force=true)
    when the kernel knows partitions of the disk; root privileges (use become).
attributes:
  check_mode:
    support: full
    details: Probes only; reports the same RV(actions) and C(changed) a real run would.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Needs no Python on the host - only its shell, over the connection.
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  devices:
    description:
      - The whole disks to mark, for example V(/dev/sdb) or V(/dev/disk/by-id/virtio-extra1) (resolved on the host).
        Never empty - the disks to mark are never guessed. A disk that already carries the header is left alone.
    type: list
    elements: str
    required: true
  force:
    description:
      - Mark listed disks that hold something (signatures, partitions, non-zero bytes) after wiping them.
    type: bool
    default: false
notes:
  - The shell cannot try an exclusive open of a disk, so a disk used only in another mount namespace is not seen as
    busy; holders, mounts and swap areas are.
  - Unlike M(lightwhale.persistence.magic_disk), no lock is taken on the host; do not run it while the host's boot lays
    out its disks.
seealso:
  - module: lightwhale.persistence.magic_disk
  - module: lightwhale.persistence.raw_persistence_info
  - module: lightwhale.persistence.raw_reboot
extends_documentation_fragment: [ansible.builtin.action_common_attributes,
  ansible.builtin.action_common_attributes.flow]
'''

EXAMPLES = r'''
- name: Mark a blank disk on a host without Python
  lightwhale.persistence.raw_magic_disk:
    devices: [/dev/disk/by-id/virtio-extra1]
  become: true
'''

RETURN = r'''
actions:
  description: What was written (in check mode, what would be), one line per write, device first.
  returned: always
  type: list
  elements: str
  sample: ["/dev/vdb: write the magic header"]
disks:
  description: Every listed disk as M(lightwhale.persistence.magic_disk) reports it, as found after the run.
  returned: always
  type: list
  elements: dict
magic_disks:
  description: The listed disks that carry the magic header after the run.
  returned: always
  type: list
  elements: str
skipped_disks:
  description: The listed disks left alone, with the reason (C(device), C(reason)).
  returned: always
  type: list
  elements: dict
refused:
  description: On failure, the disks refused and why (C(device), C(reason)); nothing is written then.
  returned: failure
  type: list
  elements: dict
'''

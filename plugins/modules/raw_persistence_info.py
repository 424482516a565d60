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
module: raw_persistence_info
short_description: Report a host's Lightwhale persistence state without Python on the host
version_added: 0.2.0
description:
  - M(lightwhale.persistence.persistence_info) for hosts that have no usable Python, such as a minimal appliance
    image. It runs a POSIX shell probe over the connection, as M(ansible.builtin.raw) does, and turns its output into
    the same facts on the controller, with the parsers and the rules of the modules.
  - The probe reads sysfs, C(/proc/self/mountinfo), C(/proc/swaps), the status file, the first 512 bytes and the first
    and last MiB of each candidate disk (C(dd), C(od)), and what C(wipefs) and C(sfdisk) print. It writes nothing.
  - A disk is reported empty by the rules of M(lightwhale.persistence.persistence_info) - no magic header, no
    signature, no partition (on the disk or known to the kernel), no holder, not mounted, not swap, not a member of a
    mounted btrfs, not read-only, zero first and last MiB. Unlike the module, the shell cannot try an exclusive open, so a disk used only in
    another mount namespace is not seen as busy.
  - An output that is cut short or not the probe's, or a probe that fails (C(wipefs) missing, a short read), fails the
    task, so a disk is never reported empty because it could not be read.
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - On the host - a POSIX shell, C(dd), C(od), C(tr), C(head), C(readlink -f), util-linux C(wipefs) with C(--json)
    and C(sfdisk) with C(--json), root privileges (use become).
attributes:
  check_mode:
    support: full
    details: Reads only; check mode runs it the same way.
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
      - Candidate whole disks, as for M(lightwhale.persistence.persistence_info). Symbolic links are resolved on the
        host. A path that does not exist, is not a block device, or is a partition fails the task and is named.
      - When empty, the host's whole disks are scanned with the scan rules of the modules (C(sd*), C(vd*), C(xvd*),
        C(hd*), C(nvme*n*), C(mmcblk*); read-only and empty drives are passed over).
    type: list
    elements: str
    default: []
  root:
    description:
      - The root directory the data mount point C(<root>/mnt/lightwhale-data) and the status file
        C(<root>/run/lightwhale/persistence.json) are taken under, for a sandbox.
    type: str
    default: /
notes:
  - Not reported, because they need Python or btrfs-progs on the host - the space and usage figures and the
    subvolumes of the data filesystem, and the snapshots of the state (RV(snapshots) is empty, RV(pending) null).
  - A data filesystem that is not mounted at the data mount point is recognised by its label on the disks'
    partitions (C(wipefs)); its member count is then the members found.
seealso:
  - module: lightwhale.persistence.persistence_info
  - module: lightwhale.persistence.raw_magic_disk
  - ref: ansible_collections.lightwhale.persistence.docsite.fleet
    description: Turning persistence on across a fleet, hosts without Python included (docs/fleet.md in the collection).
extends_documentation_fragment: [ansible.builtin.action_common_attributes,
  ansible.builtin.action_common_attributes.flow]
'''

EXAMPLES = r'''
- name: Look at a host without Python
  lightwhale.persistence.raw_persistence_info:
  become: true
  register: persistence

- name: Say how the host keeps its data
  ansible.builtin.debug:
    msg: "{{ persistence.summary }}"
'''

RETURN = r'''
probe:
  description: How the facts were gathered, V(raw).
  returned: always
  type: str
  sample: raw
mode:
  description: V(persistent), V(degraded), V(volatile) or V(none-yet), as M(lightwhale.persistence.persistence_info) says.
  returned: always
  type: str
  sample: none-yet
summary:
  description: One line for an operator, as M(lightwhale.persistence.persistence_info) gives it.
  returned: always
  type: str
  sample: "none-yet; swap off; overlays none; 1 empty disk(s)"
filesystem:
  description:
    - The data filesystem (C(label), C(uuid), C(mounted), C(members), C(missing), C(num_devices), C(data_profile),
      C(metadata_profile), C(legacy), C(fstype)); C(size), C(free) are null and C(usage), C(subvolumes) empty. Null
      when there is none.
    - A legacy data filesystem (labelled C(lightwhale-data), not btrfs) is recognised when it is mounted at the data
      mount point; one that is not mounted is not looked for over a raw shell.
  returned: always
  type: dict
legacy:
  description: Whether the host runs on a legacy data filesystem mounted at the data mount point.
  returned: always
  type: bool
  sample: false
swap:
  description: The magic swap partitions that are active (C(active), C(devices)).
  returned: always
  type: dict
overlays:
  description: C(/etc), C(/var) and C(/home), each with C(path) and whether an overlay is mounted on it (C(mounted)).
  returned: always
  type: list
  elements: dict
status:
  description: The contents of the status file the boot left; null when absent.
  returned: always
  type: dict
magic_disks:
  description: Candidate disks that carry the magic header.
  returned: always
  type: list
  elements: str
magic_partitions:
  description: Partitions named C(lightwhale-swap) and C(lightwhale-data) on the candidates (C(swap), C(data)).
  returned: always
  type: dict
empty_disks:
  description: Candidate disks that are empty (C(device), C(given), C(name), C(size), C(ids), C(model)).
  returned: always
  type: list
  elements: dict
disks:
  description:
    - Every candidate as M(lightwhale.persistence.persistence_info) reports it, with C(empty) and C(reasons).
  returned: always
  type: list
  elements: dict
failure:
  description: Always null - the shell probe does not survey the superblocks of a filesystem that is not mounted.
  returned: always
  type: str
snapshots:
  description: Always empty.
  returned: always
  type: list
  elements: dict
pending:
  description: Always null.
  returned: always
  type: dict
problems:
  description: What looks wrong, one line each (something foreign on the data mount point, an unreadable status file).
  returned: always
  type: list
  elements: str
'''

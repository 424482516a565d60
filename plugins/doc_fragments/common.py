# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """The options the modules share, each documented once: C(root) with the boot sequence (every module), and
    C(timeout), C(devices), C(kernel_cmdline)."""

    DOCUMENTATION = r'''
seealso:
  - ref: ansible_collections.lightwhale.persistence.docsite.boot_sequence
    description: The boot steps this collection implements, and the layout on disk (docs/boot-sequence.md in the collection).
options:
  root:
    description:
      - The root directory every other path is taken under, for a sandbox or an image.
      - Under it are the data mount point C(<root>/mnt/lightwhale-data) with the state directory
        C(<root>/mnt/lightwhale-data/lightwhale-state), the overlaid directories C(<root>/etc), C(<root>/var),
        C(<root>/home), and C(<root>/run/lightwhale/) with the status file C(persistence.json) and the lock
        C(persistence.lock) that real runs of the modules that write hold, so two runs never write at once.
    type: path
    default: /
'''

    TIMEOUT = r'''
options:
  timeout:
    description:
      - Seconds to wait for the lock held by another run, and, where the module tells the kernel of partitions
        (C(partx)), for their device nodes to appear.
      - Must not be negative.
    type: int
    default: 30
'''

    DEVICES = r'''
options:
  devices:
    description:
      - Candidate whole disks, for example V(/dev/sdb) or V(/dev/disk/by-id/virtio-extra1). Symbolic links are
        resolved. A path that does not exist, is not a block device, or is a partition is an error that names it.
      - When empty, the host is scanned for whole disks named C(sd*), C(vd*), C(xvd*), C(hd*), C(nvme*n*) and
        C(mmcblk*). Loop, RAM, device-mapper, md and optical devices are never scanned; loop devices are candidates
        only when listed here.
      - A scan that writes (M(lightwhale.persistence.magic_disk)) leaves out disks that are read-only or in use; a
        scan that looks for the data filesystem (M(lightwhale.persistence.lw_datafs),
        M(lightwhale.persistence.persistence_info)) still probes disks in use, read-only, because the mounted data
        filesystem lives on them. Only magic disks and magic partitions are ever written.
    type: list
    elements: path
    default: []
'''

    KERNEL_CMDLINE = r'''
options:
  kernel_cmdline:
    description:
      - The kernel command line whose C(noswap) word is honoured. Default is the contents of C(/proc/cmdline).
    type: str
'''

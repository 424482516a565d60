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
module: raw_reboot
short_description: Reboot a host without Python and wait until it is back
version_added: 0.2.0
description:
  - M(ansible.builtin.reboot) runs a module on the host to learn its distribution, so it cannot reboot a host without
    Python. This action needs only the host's shell - it reads the boot id (C(/proc/sys/kernel/random/boot_id)),
    starts O(reboot_command) detached two seconds later, and polls over the connection until the host answers with
    another boot id.
  - Refused over the local connection, which would reboot the control node.
author:
  - lightwhale.persistence developers (@lightwhale)
attributes:
  check_mode:
    support: full
    details: Reports C(changed) and reboots nothing, as M(ansible.builtin.reboot) does.
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
  reboot_command:
    description: The command that reboots the host, run by its shell.
    type: str
    default: reboot
  reboot_timeout:
    description: Seconds to wait for the host to come back before failing; at least 1.
    type: int
    default: 600
  poll_interval:
    description: Seconds between two attempts to reach the host; at least 1.
    type: int
    default: 5
seealso:
  - module: ansible.builtin.reboot
  - module: lightwhale.persistence.raw_magic_disk
extends_documentation_fragment: [ansible.builtin.action_common_attributes,
  ansible.builtin.action_common_attributes.flow]
'''

EXAMPLES = r'''
- name: Reboot a host without Python
  lightwhale.persistence.raw_reboot:
    reboot_timeout: 900
  become: true
'''

RETURN = r'''
rebooted:
  description: Whether the host was rebooted (in check mode, whether it would be).
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds from the reboot until the host answered with a new boot id.
  returned: success
  type: int
  sample: 64
'''

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: lw_status
short_description: Write the Lightwhale persistence status file and the one-line summary
version_added: 0.1.0
description:
  - Writes C(<root>/run/lightwhale/persistence.json), which says what mode the host is in (V(persistent),
    V(degraded), V(volatile)), on which devices and profiles, which overlays are mounted, where Docker's data root
    is, the warnings of the boot and why it failed, if it did. Returns the same document and the one summary line
    an operator reads on the console.
  - M(lightwhale.persistence.lw_datafs) and M(lightwhale.persistence.lw_overlay) record their own parts of the file
    (O(lightwhale.persistence.lw_datafs#module:record_status=true)), as the role P(lightwhale.persistence.boot#role) has
    them do. This module records what else there is to say, as the part C(boot) of the file's C(steps) - the role
    runs it only when a step failed in a way the module could not record itself. A field given here wins over what
    the modules recorded; a field not given keeps it. Failures and warnings add up.
  - The overlays are not taken on trust - a real run reports as mounted only the paths where
    C(/proc/self/mountinfo) shows an overlay, and lists the others in C(overlays_missing).
  - The file is replaced atomically and only when something other than its C(time) differs, so a run that finds
    the host in the same state writes nothing and reports C(changed=false); C(time) then says since when the host
    has been in this state.
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - Root privileges (the file is written under C(/run/lightwhale)).
attributes:
  check_mode:
    support: full
    details: Writes nothing; returns the document a real run would write, with the overlays in O(overlays) taken as
      mounted (the prediction of the steps before it).
  diff_mode:
    support: full
    details: Shows the status file before and after.
  platform:
    platforms: posix
options:
  mode:
    description:
      - The mode the host is in, as M(lightwhale.persistence.lw_datafs) returned it.
      - Omitted, the mode lw_datafs recorded, or V(volatile) when nothing is recorded.
    type: str
    choices: [persistent, degraded, volatile]
  failure:
    description:
      - Why the host is not in the state its disks call for, for example a data filesystem that could not be
        mounted. Omitted or empty when the boot went as it should.
    type: str
  label:
    description: The data filesystem's label.
    type: str
  uuid:
    description: The data filesystem's UUID.
    type: str
  devices:
    description: The data filesystem's member devices present.
    type: list
    elements: str
  missing:
    description: Members missing (a degraded RAID1), as M(lightwhale.persistence.lw_datafs) names them.
    type: list
    elements: str
  data_profile:
    description: The data block-group profile.
    type: str
  metadata_profile:
    description: The metadata block-group profile.
    type: str
  created:
    description:
      - Whether this run created the data filesystem.
      - Once a status file under C(/run) (which a reboot empties) says this boot created the filesystem with this
        UUID, later runs keep saying so, so that running the boot again changes nothing.
    type: bool
  swap_devices:
    description: The swap areas active.
    type: list
    elements: str
  overlays:
    description:
      - The directories that should have an overlay, as absolute paths inside O(root).
      - Omitted, the paths lw_overlay recorded, or C([/etc, /var, /home]) when nothing is recorded.
    type: list
    elements: path
  docker_data_root:
    description: Docker's data root as configured, as seen inside O(root); omitted when Docker is not configured.
    type: str
  warnings:
    description: Warnings to add to those the boot's modules recorded, one line each.
    type: list
    elements: str
seealso:
  - module: lightwhale.persistence.lw_datafs
  - module: lightwhale.persistence.lw_overlay
extends_documentation_fragment: [ansible.builtin.action_common_attributes, lightwhale.persistence.common]
'''

EXAMPLES = r'''
- name: Record a persistent RAID1 host
  lightwhale.persistence.lw_status:
    mode: persistent
    label: lightwhale-data
    devices: [/dev/sdb2, /dev/sdc2]
    data_profile: raid1
    metadata_profile: raid1
    swap_devices: [/dev/sdb1, /dev/sdc1]
    docker_data_root: /mnt/lightwhale-data/lightwhale-state/docker
  register: status

- name: The line for the console
  ansible.builtin.debug:
    msg: "{{ status.summary }}"

- name: Add a failure that no module could record (what the boot role does in its rescue)
  lightwhale.persistence.lw_status:
    failure: "Step 7: the module was killed"
'''

RETURN = r'''
summary:
  description: The one line for the console (also in the file as C(summary)).
  returned: always
  type: str
  sample: "lightwhale-persistence: persistent raid1/raid1 on /dev/sdb2,/dev/sdc2; swap /dev/sdb1,/dev/sdc1;
    overlays /etc /var /home; docker data-root /mnt/lightwhale-data/lightwhale-state/docker"
ok:
  description: Whether the host is in the state its disks call for (no failure, every overlay mounted).
  returned: always
  type: bool
status:
  description: The document written (as it would be, in check mode); the format is described in the collection's
    docs/boot-sequence.md.
  returned: always
  type: dict
  sample: {version: 1, time: '2026-11-30T06:12:09Z', mode: persistent, ok: true, failure: null,
           steps: {datafs: {mode: persistent}, overlay: {overlays: [/etc, /var, /home]}}}
path:
  description: Where the file is, on the host (under O(root)).
  returned: always
  type: str
  sample: /run/lightwhale/persistence.json
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status


def main():
    _module.finish(AnsibleModule(argument_spec=dict(
        root=dict(type='path', default='/'),
        mode=dict(type='str', choices=list(_status.MODES)),
        failure=dict(type='str'),
        label=dict(type='str'),
        uuid=dict(type='str'),
        devices=dict(type='list', elements='str'),
        missing=dict(type='list', elements='str'),
        data_profile=dict(type='str'),
        metadata_profile=dict(type='str'),
        created=dict(type='bool'),
        swap_devices=dict(type='list', elements='str'),
        overlays=dict(type='list', elements='path'),
        docker_data_root=dict(type='str'),
        warnings=dict(type='list', elements='str'),
    ), supports_check_mode=True), _status.execute)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: docker_data_root
short_description: Put Docker's data root on the Lightwhale data filesystem (merged into daemon.json)
version_added: 0.1.0
description:
  - Sets C(data-root) in Docker's C(daemon.json) to O(data_root) and creates that directory, so images, containers,
    volumes and network state live on the data filesystem, not under the C(/var) overlay.
  - The file is merged, never replaced wholesale - every other key and the order of keys are kept. It is rewritten
    (atomically, through a temporary file and a rename, keeping its owner and mode) only when C(data-root) differs
    or O(storage_driver) is to be added;
    a new file is root-owned 0644. Run it after the C(/etc) overlay is mounted, so the file lands in the overlay's
    upper layer and survives a reboot.
  - A C(daemon.json) that is not a JSON object (invalid JSON, not UTF-8, a list...) is an error and is left alone.
  - The data root directory is created root-owned with mode 0710, as dockerd makes it. An existing one is left as
    it is (dockerd with C(userns-remap) changes its group). Its parent must exist - it is the state directory on
    the mounted data filesystem - otherwise nothing is written.
  - No symbolic link is followed to the file or the directories; one found there is an error.
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - Root privileges.
attributes:
  check_mode:
    support: full
    details: Reads the file and the directories only; reports the same RV(actions) and C(changed) a real run would.
  diff_mode:
    support: full
    details: Shows C(daemon.json) before and after.
  platform:
    platforms: posix
options:
  data_root:
    description:
      - Docker's data root as seen inside O(root); this is the value written into the file.
    type: path
    default: /mnt/lightwhale-data/lightwhale-state/docker
  config:
    description:
      - Docker's daemon configuration file, as seen inside O(root). Missing directories above it are created
        root-owned 0755.
    type: path
    default: /etc/docker/daemon.json
  storage_driver:
    description:
      - The C(storage-driver) to add when the file sets none. Docker's own choice on btrfs is its C(btrfs) driver,
        which makes a nested subvolume per image layer - snapshots and rollback of the state
        (M(lightwhale.persistence.lw_snapshot)) refuse a state that holds them.
      - Never added when the file sets a driver already (the operator's choice), nor when Docker already keeps layers
        with its btrfs driver under O(data_root) (a C(btrfs) directory there) - switching would hide its images and
        containers; a warning says so.
      - Empty - leave the choice to Docker.
    type: str
    default: overlay2
notes:
  - dockerd reads C(daemon.json) when it starts; restart it to apply a change. At boot the module runs before dockerd.
  - When the file is rewritten its JSON is re-indented (two spaces); the values are kept exactly.
seealso:
  - module: lightwhale.persistence.lw_overlay
  - name: Docker daemon configuration file
    description: The keys of daemon.json, data-root among them.
    link: https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file
extends_documentation_fragment: [ansible.builtin.action_common_attributes, lightwhale.persistence.common,
  lightwhale.persistence.common.timeout]
'''

EXAMPLES = r'''
- name: Docker's data root on the data filesystem (after the /etc overlay is mounted)
  lightwhale.persistence.docker_data_root:

- name: In a sandbox root
  lightwhale.persistence.docker_data_root:
    root: /srv/sandbox
  register: docker

- name: Say what changed
  ansible.builtin.debug:
    msg: "data-root was {{ docker.previous_data_root }}, now {{ docker.data_root }}"
'''

RETURN = r'''
actions:
  description: What was done, or would be in check mode, one line per step.
  returned: always
  type: list
  elements: str
  sample: ["/etc/docker/daemon.json: add data-root = /mnt/lightwhale-data/lightwhale-state/docker (2 other key(s) kept)"]
data_root:
  description: The data root written in the file (as seen inside O(root)).
  returned: always
  type: str
  sample: /mnt/lightwhale-data/lightwhale-state/docker
previous_data_root:
  description: The value of C(data-root) found in the file before the run; null when the file or the key was missing.
  returned: always
  type: raw
  sample: /var/lib/docker
config:
  description: The configuration file's path on the host (under O(root)).
  returned: always
  type: str
  sample: /etc/docker/daemon.json
directory:
  description: The data root directory's path on the host (under O(root)).
  returned: always
  type: str
  sample: /mnt/lightwhale-data/lightwhale-state/docker
'''


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _docker
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module


def main():
    _module.finish(AnsibleModule(argument_spec=dict(
        root=dict(type='path', default='/'),
        data_root=dict(type='path', default=_layout.DOCKER_DATA_ROOT),
        config=dict(type='path', default=_layout.DOCKER_CONFIG),
        timeout=dict(type='int', default=30),
        storage_driver=dict(type='str', default=_docker.DEFAULT_STORAGE_DRIVER),
    ), supports_check_mode=True), _docker.execute)


if __name__ == '__main__':
    main()

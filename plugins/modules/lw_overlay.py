#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: lw_overlay
short_description: Mount writable overlays over the immutable image's directories (Lightwhale boot step 7)
version_added: 0.1.0
description:
  - For each directory in O(paths), in order, makes the image's read-only directory writable with an overlay whose
    writes land on the data filesystem, so they survive a reboot.
  - "Each directory C(<dir>) gets three layers, all taken under O(root): the lower layer C(<lower_base>/<dir>),
    a bind mount of the image's C(<dir>), made private and read-only; the upper layer C(<upper_base>/<dir>), where
    every change lands; and overlayfs's work directory C(<work_base>/<dir>). Then an overlay of these is mounted on
    C(<dir>)."
  - Missing upper, work and lower directories are created. Directories above them are root-owned 0755; the
    upper directory itself gets the owner and mode of the image's directory, because the overlay's top directory
    shows those of its upper layer. No symbolic link is ever followed on the way to any of them; one found there
    is refused.
  - Idempotent by what the kernel reports in C(/proc/self/mountinfo), never by fstab or option strings given
    before. An overlay already mounted on C(<dir>) with exactly these lower, upper and work directories, and a bind
    of the image's C(<dir>) (same device number and root) on the lower directory are left alone; nothing is ever
    stacked twice.
  - Refused, naming the path, before anything is mounted or created for any path - an overlay on C(<dir>) with
    other layers, a mount on the lower directory that is not the bind of C(<dir>), submounts under C(<dir>) (the
    bind would not carry them and the overlay would hide them), a C(<dir>) that does not exist or is a symbolic
    link, and layer paths with characters overlayfs options cannot carry (comma, colon, backslash, control
    characters).
  - With O(state=unmounted) the overlays are unmounted in reverse order, then the lower binds, also in reverse
    order. The directories and the upper layers' contents are kept.
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - C(mount) and C(umount) (util-linux or BusyBox) and a kernel with overlayfs.
  - Root privileges.
attributes:
  check_mode:
    support: full
    details: Reads mountinfo and the directories only; reports the same RV(actions) and C(changed) a real run would.
  diff_mode:
    support: full
    details: Shows the mount table lines of each affected lower and target directory, before and after.
  platform:
    platforms: posix
options:
  paths:
    description:
      - The image's directories to put an overlay on, as absolute paths inside O(root), mounted in this order.
      - A path must exist in the image as a directory and must not be a symbolic link. Paths must not be nested in
        one another, nor hold or lie inside one of the three bases.
    type: list
    elements: path
    default: [/etc, /var, /home]
  state:
    description:
      - V(mounted) mounts what is missing of each path's bind and overlay.
      - V(unmounted) takes down the overlays this module would mount (same layers), then their lower binds, in
        reverse order. An overlay with submounts is refused, not lazily unmounted.
    type: str
    choices: [mounted, unmounted]
    default: mounted
  lower_base:
    description:
      - Where the lower binds are mounted, as seen inside O(root). It belongs on a filesystem that does not
        survive a reboot, like C(/run).
    type: path
    default: /run/lightwhale/overlay/lower
  upper_base:
    description:
      - Where the upper directories live, as seen inside O(root), on the data filesystem.
    type: path
    default: /mnt/lightwhale-data/lightwhale-state/overlay/upper
  work_base:
    description:
      - Where overlayfs's work directories live, as seen inside O(root). Must be on the same filesystem as
        O(upper_base).
    type: path
    default: /mnt/lightwhale-data/lightwhale-state/overlay/work
  docker:
    description:
      - With O(state=mounted), once the overlays are mounted, set Docker's C(data-root) to
        C(/mnt/lightwhale-data/lightwhale-state/docker) in C(/etc/docker/daemon.json) and create that directory, as
        M(lightwhale.persistence.docker_data_root) does with its defaults. The file is read and written through the
        C(/etc) overlay, so the change lands in its upper layer; every other key is kept, and the file is rewritten
        only when C(data-root) differs.
      - Needs C(/etc) in O(paths); without it a warning says that Docker's data root is not set, and nothing is
        written into the image.
      - "In check mode, with the C(/etc) overlay still to be mounted, the file is read where the overlay will show
        it from: its upper layer, else the image."
    type: bool
    default: false
  record_status:
    description:
      - With O(state=mounted), record this run's part of the status file C(<root>/run/lightwhale/persistence.json)
        (see M(lightwhale.persistence.lw_status)) - the overlays wanted (the file says which of them the kernel
        shows mounted), Docker's data root when O(docker) set it, the warnings and the failure - on success and on
        failure alike. The file is written only when what it says changes, and C(changed) says so.
      - The role P(lightwhale.persistence.boot#role) sets it, so that the everyday boot needs no separate status step.
    type: bool
    default: false
notes:
  - The lower bind is made private before the overlay is mounted, so that on a host whose root mount is shared
    the overlay does not propagate onto its own lower layer; then it is remounted read-only, because overlayfs
    must not see its lower layer change under it.
  - The upper layer must be on a filesystem overlayfs accepts as upper (btrfs, ext4, xfs, tmpfs; not another
    overlay).
extends_documentation_fragment: [ansible.builtin.action_common_attributes, lightwhale.persistence.common,
  lightwhale.persistence.common.timeout]
'''

EXAMPLES = r'''
- name: Make /etc, /var and /home writable and persistent (boot step 7)
  lightwhale.persistence.lw_overlay:

- name: Only /etc and /home, in that order
  lightwhale.persistence.lw_overlay:
    paths: [/etc, /home]

- name: Overlays in a sandbox root
  lightwhale.persistence.lw_overlay:
    root: /srv/sandbox
  register: overlay

- name: Show where /etc's changes land
  ansible.builtin.debug:
    msg: "{{ overlay.overlays[0].upper }}"

- name: Take the overlays down (the upper layers keep their contents)
  lightwhale.persistence.lw_overlay:
    state: unmounted
'''

RETURN = r'''
overlays:
  description: One entry per path, in the order of O(paths), as found after the run (as predicted in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The directory as seen inside O(root).
      type: str
      sample: /etc
    target:
      description: Where the overlay is mounted.
      type: str
      sample: /etc
    lower:
      description: The lower layer, the read-only bind of the image's directory.
      type: str
      sample: /run/lightwhale/overlay/lower/etc
    upper:
      description: The upper layer, where changes land.
      type: str
      sample: /mnt/lightwhale-data/lightwhale-state/overlay/upper/etc
    work:
      description: The overlay's work directory.
      type: str
      sample: /mnt/lightwhale-data/lightwhale-state/overlay/work/etc
    mounted:
      description: Whether the overlay is mounted on RV(overlays[].target).
      type: bool
      sample: true
actions:
  description: What was done, or would be in check mode, one line per step.
  returned: always
  type: list
  elements: str
  sample: ["/etc: bind-mount /etc on /run/lightwhale/overlay/lower/etc",
           "/etc: make /run/lightwhale/overlay/lower/etc private and read-only"]
docker:
  description: Docker's data root as set by O(docker), and where; absent when O(docker) is off or there is no C(/etc).
  returned: with O(docker=true), once the file was read
  type: dict
  contains:
    data_root:
      description: The data root, as seen inside O(root).
      type: str
      sample: /mnt/lightwhale-data/lightwhale-state/docker
    previous_data_root:
      description: What C(data-root) was before (null when unset).
      type: str
    config:
      description: The file, on the host (under O(root)).
      type: str
      sample: /etc/docker/daemon.json
    directory:
      description: The data root directory, on the host (under O(root)).
      type: str
status:
  description: The status document as recorded (as it would be, in check mode); see M(lightwhale.persistence.lw_status).
  returned: with O(record_status=true) and O(state=mounted)
  type: dict
  sample: {version: 1, mode: persistent, ok: true, overlays: [/etc, /var, /home], overlays_missing: []}
problems:
  description: Every reason the run was refused; nothing was mounted, unmounted or created.
  returned: failure
  type: list
  elements: str
  sample: ["/etc is already an overlay with other layers (lowerdir=/ro, upperdir=/rw, workdir=/wk): not ours, left alone"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay_run


def main():
    _module.finish(AnsibleModule(argument_spec=dict(
        lower_base=dict(type='path', default=_layout.OVERLAY_LOWER_BASE),
        upper_base=dict(type='path', default=_layout.OVERLAY_UPPER_BASE),
        work_base=dict(type='path', default=_layout.OVERLAY_WORK_BASE),
        paths=dict(type='list', elements='path', default=list(_layout.OVERLAY_PATHS)),
        state=dict(type='str', choices=['mounted', 'unmounted'], default='mounted'),
        root=dict(type='path', default='/'),
        timeout=dict(type='int', default=30),
        docker=dict(type='bool', default=False),
        record_status=dict(type='bool', default=False),
    ), supports_check_mode=True), _overlay_run.execute)


if __name__ == '__main__':
    main()

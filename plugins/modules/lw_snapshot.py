#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: lw_snapshot
short_description: Snapshots of the Lightwhale host's state, and rollback or factory reset at the next boot
version_added: 0.1.0
description:
  - Keeps read-only snapshots of the host's state - the subvolume C(@lightwhale-state) that holds the upper layers
    of the C(/etc), C(/var) and C(/home) overlays and Docker's data root - in C(@lightwhale-state-snapshots/<name>),
    each with its time, description, kind and C(important) flag kept beside it in
    C(@lightwhale-state-snapshots/.meta/<name>.json).
  - A rollback or a factory reset is only requested here. The next boot carries it out before the state is
    mounted (M(lightwhale.persistence.lw_datafs) does, in the boot role), never under mounted overlays - reboot the
    host to apply it. The state it replaces is kept as a snapshot (kind C(kept)) unless O(keep_current=false).
  - C(@lightwhale-data), mounted at C(/mnt/lightwhale-data), is never snapshotted or rolled back - data that must
    survive a rollback belongs there.
  - Needs the data filesystem mounted (a persistent or degraded host). On a volatile host it fails with a clear
    error and writes nothing.
  - Each run mounts the filesystem's top level on a temporary directory under C(<root>/run/lightwhale/) and
    unmounts it before it ends. Real runs hold the lock C(<root>/run/lightwhale/persistence.lock).
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - btrfs-progs (C(btrfs)), util-linux (C(mount), C(umount))
  - Root privileges.
attributes:
  check_mode:
    support: full
    details: Writes nothing and reports the same RV(actions), C(changed), RV(snapshots) and RV(pending) a real run
      would. To read the snapshots it mounts the top level read-only for the length of the run.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) takes a read-only snapshot of the state as O(name) (default - the UTC time, for example
        C(20261206T101500Z), so every run without O(name) takes a new one). When O(name) exists already, only its
        O(description) and O(important) are brought to what is given.
      - V(absent) deletes snapshot O(name), committed, so a crash cannot bring it back. An important snapshot is
        deleted too (the flag protects from O(state=pruned) only); the target of a pending rollback is not.
      - V(pruned) deletes, one at a time, the snapshots beyond the newest O(keep) that are older than O(min_age),
        among the O(kinds) given; never an important one and never the target of a pending rollback.
      - V(rolled_back) requests a rollback to snapshot O(name) at the next boot.
      - V(reset) requests a factory reset at the next boot, of what O(reset) says.
      - V(cancelled) cancels the pending rollback or reset, if there is one.
      - Every state returns the snapshots and the pending request.
    type: str
    choices: [present, absent, pruned, rolled_back, reset, cancelled]
    default: present
  name:
    description:
      - The snapshot's name - letters, digits and C(. _ + @ -), not starting with C(.), at most 100 characters.
      - Needed by O(state=absent) and O(state=rolled_back).
    type: str
  description:
    description:
      - With O(state=present), what the snapshot is for, kept beside it. Not given - a new snapshot gets an empty
        one, an existing one keeps its own.
    type: str
  important:
    description:
      - With O(state=present), protect the snapshot from O(state=pruned) and from the boot's retention. Not given -
        a new snapshot is not important, an existing one keeps its flag.
    type: bool
  keep:
    description: With O(state=pruned), how many of the newest snapshots (of O(kinds)) to keep whatever their age.
    type: int
    default: 10
  min_age:
    description:
      - With O(state=pruned), delete only snapshots older than this - whole seconds, or a number with the unit
        V(s), V(m), V(h), V(d) or V(w) (V(7d)). V(0) - any age.
    type: str
    default: '0'
  kinds:
    description:
      - With O(state=pruned), the kinds of snapshots retention looks at - V(manual) (taken by this module),
        V(boot) (taken at boot, see O(lightwhale.persistence.lw_datafs#module:boot_snapshots)), V(kept) (the state
        a rollback or reset replaced). Not given - all.
    type: list
    elements: str
    choices: [manual, boot, kept]
  reset:
    description:
      - With O(state=reset), V(state) gives the host a fresh empty state at the next boot (the images, containers,
        volumes and every change to C(/etc), C(/var), C(/home) are gone; the old state kept as a snapshot unless
        O(keep_current=false)); C(@lightwhale-data) stays as it is.
      - V(all) wipes the data filesystem's disks at the next boot - the signatures of its magic partitions, then
        the partition tables and the header area - and the host comes up volatile. Needs O(confirm_uuid). It is not
        a secure erase - the data blocks stay on the disks until overwritten.
    type: str
    choices: [state, all]
    default: state
  confirm_uuid:
    description: With O(reset=all), the UUID of the data filesystem, as confirmation (RV(uuid) of any run says it).
    type: str
  keep_current:
    description:
      - With O(state=rolled_back) or O(reset=state), keep the state that is replaced as a read-only snapshot named
        C(before-rollback-<UTC time>) or C(before-reset-<UTC time>) (kind C(kept)). V(false) drops it.
    type: bool
    default: true
notes:
  - Snapshots and rollback refuse, naming them, when the state holds nested subvolumes - Docker's C(btrfs)
    storage driver makes one per image layer, which a snapshot would hold as empty directories. Docker's data root
    is in the state, so with another storage driver images, containers and volumes are in every snapshot and go
    back with a rollback.
  - No quota groups are used (they stall hosts with many snapshots), so the space a snapshot holds is not reported.
seealso:
  - module: lightwhale.persistence.lw_datafs
  - module: lightwhale.persistence.persistence_info
extends_documentation_fragment: [ansible.builtin.action_common_attributes, lightwhale.persistence.common,
  lightwhale.persistence.common.timeout]
'''

EXAMPLES = r'''
- name: Keep the state before an upgrade of the stacks
  lightwhale.persistence.lw_snapshot:
    name: before-upgrade
    description: before the upgrade to the 2027.1 stacks
    important: true

- name: Keep the ten newest manual snapshots, and any younger than a week
  lightwhale.persistence.lw_snapshot:
    state: pruned
    kinds: [manual]
    keep: 10
    min_age: 7d

- name: Go back to the state before the upgrade at the next boot
  lightwhale.persistence.lw_snapshot:
    state: rolled_back
    name: before-upgrade

- name: Reboot to carry it out
  ansible.builtin.reboot:

- name: Give the host a fresh empty state at the next boot
  lightwhale.persistence.lw_snapshot:
    state: reset
    reset: state
'''

RETURN = r'''
snapshots:
  description: Every snapshot after the run (as it would be, in check mode), oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The snapshot's name (C(@lightwhale-state-snapshots/<name>)).
      type: str
    time:
      description: When it was taken (UTC, ISO 8601); empty when nothing was kept beside it.
      type: str
    description:
      description: What it is for.
      type: str
    important:
      description: Whether retention leaves it alone.
      type: bool
    kind:
      description: V(manual), V(boot) or V(kept).
      type: str
    pending:
      description: Whether the pending rollback goes to it.
      type: bool
  sample: [{name: before-upgrade, time: '2026-12-06T10:15:00Z', description: before the upgrade, important: true,
            kind: manual, pending: false}]
pending:
  description: The rollback or reset the next boot carries out (after this run), or null.
  returned: always
  type: dict
  contains:
    action:
      description: V(rollback) or V(reset).
      type: str
    target:
      description: The snapshot a rollback goes to.
      type: str
    scope:
      description: What a reset resets - V(state) or V(all).
      type: str
    kept:
      description: The name the replaced state is kept under, or null when it is dropped.
      type: str
    description:
      description: The request in words.
      type: str
  sample: {action: rollback, target: before-upgrade, kept: before-rollback-20261206T101500Z,
           description: 'roll back to before-upgrade, keeping the state in use as snapshot before-rollback-20261206T101500Z'}
name:
  description: The snapshot this run concerned (O(state=present) - the one taken or found), or null.
  returned: always
  type: str
uuid:
  description: The UUID of the data filesystem (what O(confirm_uuid) takes).
  returned: always
  type: str
actions:
  description: What was done (would be done, in check mode), in order.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot_run


def main():
    _module.finish(AnsibleModule(argument_spec=dict(
        root=dict(type='path', default='/'),
        timeout=dict(type='int', default=30),
        state=dict(type='str', default='present',
                   choices=['present', 'absent', 'pruned', 'rolled_back', 'reset', 'cancelled']),
        name=dict(type='str'),
        description=dict(type='str'),
        important=dict(type='bool'),
        keep=dict(type='int', default=10),
        min_age=dict(type='str', default='0'),
        kinds=dict(type='list', elements='str', choices=['manual', 'boot', 'kept']),
        reset=dict(type='str', default='state', choices=['state', 'all']),
        confirm_uuid=dict(type='str'),
        keep_current=dict(type='bool', default=True),
    ), supports_check_mode=True), _snapshot_run.execute)


if __name__ == '__main__':
    main()

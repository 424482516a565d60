#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: lw_datafs
short_description: Find or create the Lightwhale data filesystem, and mount it or a volatile tmpfs
version_added: 0.1.0
description:
  - Boot steps 1, 4, 5 and 6 of Lightwhale persistence. Finds the btrfs labelled C(lightwhale-data) by probing the
    candidate disks and their partitions (no udev, no C(/dev/disk/by-label)). When there is none, creates it from
    the magic partitions (GPT partitions named C(lightwhale-data) and C(lightwhale-swap), laid out by
    M(lightwhale.persistence.magic_disk)), then mounts it, or a tmpfs when there is no data filesystem at all.
  - "Creation: C(mkswap -L lightwhale-swap) on the magic swap partitions; one btrfs over all magic data partitions,
    data C(single) and metadata C(dup) for one, data C(raid1) and metadata C(raid1), C(raid1c3), C(raid1c4) for 2, 3,
    4 or more; subvolumes C(@lightwhale-data), C(@lightwhale-state), C(@lightwhale-state-snapshots) at the top level;
    the label C(lightwhale-data) last. The label is the commit point: a labelled filesystem is never formatted, and
    an unlabelled btrfs on magic data partitions is an interrupted creation, which is redone."
  - "Mounting: subvolume C(@lightwhale-data) at C(<root>/mnt/lightwhale-data) and C(@lightwhale-state) at
    C(<root>/mnt/lightwhale-data/lightwhale-state). Idempotent by what the kernel says is mounted
    (C(/proc/self/mountinfo) and C(/sys/fs/btrfs)), never by option strings. A RAID1 member missing: mounted with
    C(degraded), RV(mode=degraded) and a warning naming it."
  - "A data filesystem that is found but cannot be used (damaged superblock, mount refused, two filesystems with the
    label) is never replaced silently: with O(state=mounted) the module mounts the tmpfs so the host still boots,
    returns RV(mode=volatile) and the reason in RV(failure), and fails."
  - "Grow and replace (O(state=mounted), a data filesystem found): a disk that carries the magic header is laid out
    as on a first boot (GPT, swap and data partitions, C(noswap) honoured) and its data partition joins the mounted
    filesystem - C(btrfs device add), or, while a member is missing, C(btrfs replace) of the missing member (the
    copy runs in the background, and the kernel resumes it at the next mount). The header stays the only consent: a
    disk without it is never touched, and one that cannot be used (in use, read-only, too small, a member itself) is
    named in RV(unusable_disks), a warning and the status file, and nothing is written to it."
  - "Background conversion: when the chunks of the mounted filesystem are not all of the profiles its member count
    calls for (after a disk joined, or the single-copy chunks a degraded period left), the module starts a soft
    C(btrfs balance) with convert filters in the background (its own session; log
    C(<root>/run/lightwhale/conversion.log)) and returns at once. A soft conversion touches only the chunks not yet
    converted; one cut by a reboot is resumed by the kernel at the next mount, and the next run starts it again
    while chunks are left. Nothing converts while a member is missing. RV(conversion) says how far it is."
  - "Legacy data filesystem: a filesystem labelled C(lightwhale-data) that is not btrfs (Lightwhale 2.x made it with
    C(mkfs.ext4 -L lightwhale-data); ext4, ext3, ext2, xfs or any other type libblkid reports with that label) is the
    host's data too. It is never formatted and never hidden behind a tmpfs: O(state=mounted) mounts it as it is
    (whole, no subvolumes) at C(<root>/mnt/lightwhale-data), creates the state directory C(lightwhale-state) on it as
    a plain directory (root, 0755) when it is missing, and activates the swap areas labelled C(lightwhale-swap) next
    to it (on the same disk, or in the same LVM volume group). RV(mode=persistent), RV(legacy=true), and a warning
    that it has no subvolumes, no RAID and no snapshots or rollback. O(state=present) creates nothing on such a host.
    A btrfs and a legacy filesystem both labelled C(lightwhale-data), or two legacy ones, are the failure of several
    labelled filesystems."
  - "LVM: before it looks for the data filesystem, the module activates the volume groups that hold inactive logical
    volumes (C(vgchange -ay), told to make the C(/dev/mapper) nodes itself since there is no udev), where C(vgchange)
    is installed and O(activate_lvm) is true. It never creates or changes a volume group or logical volume. Active
    device-mapper devices (logical volumes among them) are probed read-only for the C(lightwhale-data) label, so a
    data filesystem on a logical volume is found and mounted; they are never candidates for anything that writes. An
    activation that fails is a warning, not a failure."
  - Real runs hold the lock C(<root>/run/lightwhale/persistence.lock) from the first probe to the last write, so two
    runs at once never both format. The temporary top-level mount of a creation lives in C(<root>/run/lightwhale/).
  - "Before it mounts the state of an existing data filesystem (O(state=mounted)), the module carries out what is due
    then and only then: a rollback or factory reset that M(lightwhale.persistence.lw_snapshot) requested (read from
    C(<root>/mnt/lightwhale-data/.lightwhale-persistence/request.json) once C(@lightwhale-data) is mounted), the
    kernel command line's rollback word (C(lightwhale.rollback) - to the newest boot snapshot - or
    C(lightwhale.rollback=<name>); carried out once, not again while the word stays), and the boot snapshot
    (O(boot_snapshots)). A request that cannot be carried out stays pending and is reported in RV(state_change) and
    as a warning; the state is then mounted as it is."
author:
  - lightwhale.persistence developers (@lightwhale)
requirements:
  - util-linux (C(wipefs), C(partx), C(sfdisk), C(mount), C(umount), C(mkswap), C(swapon), C(swapoff))
  - btrfs-progs (C(mkfs.btrfs), C(btrfs))
  - A kernel with btrfs (raid1c3 and raid1c4 need Linux 5.5 or later).
  - Root privileges.
attributes:
  check_mode:
    support: full
    details:
      - Probes only and reports the same RV(actions) and C(changed) a real run would. It tells the kernel of nothing;
        a partition the kernel does not know yet is reported in RV(actions) (tell the kernel the partitions) and is
        not probed. Whether the background conversion starts is known only once the filesystem is mounted; on a
        filesystem not mounted yet, check mode does not predict it (it does when disks join).
      - It activates no volume group; the activation is reported in RV(actions), and the logical volumes it would
        activate are not probed.
      - On a legacy data filesystem that is not mounted yet it cannot look inside, so it reports the state directory
        as created when missing.
  diff_mode:
    support: full
    details: Shows the data filesystem, the two mount points and the swap areas before and after.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) finds the data filesystem, or creates it from the magic partitions, and formats blank magic swap
        partitions on its disks. Mounts nothing.
      - V(mounted) does what V(present) does, then mounts the two subvolumes (or the tmpfs when there is no data
        filesystem) and activates swap.
      - V(unmounted) deactivates the magic swap partitions and unmounts the state subvolume, then the data subvolume
        or the tmpfs. It formats nothing and leaves anything it did not mount alone (a clear error).
    type: str
    choices: [present, mounted, unmounted]
    default: mounted
  swap:
    description:
      - Whether the magic swap partitions on the data filesystem's disks are formatted (when blank) and active.
      - With V(false), O(state=mounted) deactivates them when they are active.
      - The word C(noswap) on the kernel command line turns swap off, whatever this says.
    type: bool
    default: true
  mount_options:
    description:
      - Extra mount options for both btrfs subvolume mounts, for example V(noatime) or V(compress=zstd).
      - Only options safe to change from one boot to the next are allowed - V(noatime), V(relatime), V(nodiratime),
        V(lazytime), V(nolazytime), V(autodefrag), V(noautodefrag), V(discard), V(discard=sync), V(discard=async),
        V(nodiscard), V(ssd), V(nossd), V(flushoncommit), V(noflushoncommit), C(compress) and C(compress-force) with
        no value or V(zlib[:1-9]), V(lzo), V(zstd[:1-15]), V(no), and C(commit=1) to C(commit=300). Any other option
        fails the module, which names it and says why, before anything is written.
      - They apply when the module mounts, which a boot does every time; a mount already in place is not remounted to
        match them. They are returned in RV(mount_options) and recorded in the status file, whose summary line shows
        them.
      - C(subvol) and C(subvolid) are set by the module. C(degraded) is added when a member is missing.
    type: list
    elements: str
    default: []
  replace_tmpfs:
    description:
      - With O(state=mounted), when the data filesystem is there (or is created by this run) and the data mount point
        holds an empty tmpfs - nothing in it but an empty state directory, nothing mounted below it, as the volatile
        tmpfs of an earlier step of the same boot is - unmount the tmpfs and mount the data filesystem in its place,
        in one locked run.
      - The boot role sets it on its first-boot path, so that two boots at once never unmount each other's mounts.
      - A tmpfs that holds anything, or has mounts below it (the overlays of a volatile boot), is never replaced; the
        run fails and says so, as it does without this option.
    type: bool
    default: false
  boot_snapshots:
    description:
      - With O(state=mounted), when this run mounts the state of an existing data filesystem, first take a read-only
        snapshot of it named C(boot-<UTC time>) in C(@lightwhale-state-snapshots) - the state the last boot left, to
        return to - and delete the oldest boot snapshots beyond this many. V(0) takes none.
      - A state that holds nested subvolumes gets no boot snapshot (a warning names them).
    type: int
    default: 0
  activate_lvm:
    description:
      - Before looking for the data filesystem, activate the LVM volume groups that hold inactive logical volumes, so
        that a data filesystem on a logical volume is found. Only where C(vgchange) and C(lvs) are installed; only
        activation (no volume group or logical volume is created or changed). C(changed) only when a logical volume
        was activated or the missing device nodes of active ones were made (C(vgscan --mknodes); without udev).
      - With V(false), only logical volumes already active are found.
      - Not done with O(state=unmounted).
    type: bool
    default: true
  record_status:
    description:
      - With O(state=mounted), record what this run found and did - the mode and why, the devices, profiles, swap
        areas, whether it created the filesystem, its warnings, its failure - as the part C(datafs) of the status
        file C(<root>/run/lightwhale/persistence.json) (see M(lightwhale.persistence.lw_status)), on success and on
        failure alike. The file is written only when what it says changes, and C(changed) says so.
      - A part C(boot) that the role recorded for an earlier run is dropped, since this run starts a new record.
      - The role P(lightwhale.persistence.boot#role) sets it, so that the everyday boot needs no separate status step.
    type: bool
    default: false
notes:
  - A legacy data filesystem is mounted only with the options of O(mount_options) that every filesystem knows
    (V(noatime), V(relatime), V(nodiratime), V(lazytime), V(nolazytime)); the others are named in a warning.
  - Missing members are named by their btrfs device id (the name C(btrfs replace) takes), because a device that is
    gone has no path.
  - Profiles and subvolumes are read through a mount of the filesystem in this mount namespace (the data mount, or the
    temporary one of a creation). With O(state=present) or O(state=unmounted) on a filesystem that is not mounted they
    are null and empty.
  - A magic data partition beyond the filesystem's members that is not blank (it holds a filesystem, say) is reported
    with a warning and left untouched; write the magic header on its disk to have it join.
seealso:
  - module: lightwhale.persistence.magic_disk
extends_documentation_fragment: [ansible.builtin.action_common_attributes, lightwhale.persistence.common,
  lightwhale.persistence.common.timeout, lightwhale.persistence.common.devices,
  lightwhale.persistence.common.kernel_cmdline]
'''

EXAMPLES = r'''
- name: Find or create the data filesystem and mount it (boot steps 1, 4, 5, 6), scanning the host
  lightwhale.persistence.lw_datafs:
    state: mounted
  register: datafs

- name: Say what the host is running on
  ansible.builtin.debug:
    msg: "{{ datafs.mode }} on {{ datafs.devices | join(', ') or 'tmpfs' }}"

- name: Create the data filesystem on listed disks only, without mounting it
  lightwhale.persistence.lw_datafs:
    devices: [/dev/disk/by-id/virtio-extra1, /dev/disk/by-id/virtio-extra2]
    state: present

- name: Mount with compression and no access times, without swap
  lightwhale.persistence.lw_datafs:
    mount_options: [noatime, compress=zstd]
    swap: false

- name: Take it all down for maintenance
  lightwhale.persistence.lw_datafs:
    state: unmounted
'''

RETURN = r'''
joined:
  description:
    - The data partitions of magic disks that joined the data filesystem in this run (in check mode, that would join).
  returned: success
  type: list
  elements: str
  sample: [/dev/sdc2]
unusable_disks:
  description:
    - Disks that carry the magic header but cannot be used, each with the reason; nothing was written to them. Also
      reported as warnings and recorded in the status file.
  returned: success
  type: list
  elements: dict
  contains:
    device:
      description: The whole disk.
      type: str
    reason:
      description: Why it cannot be used (in use, read-only, too small for the layout, a member itself).
      type: str
  sample: [{device: /dev/sdd, reason: "carries the magic header but cannot be used: in use: mounted at /media/usb"}]
conversion:
  description:
    - The background conversion of the data filesystem's profiles, or null when every chunk has the profiles its
      member count calls for and nothing runs.
  returned: success
  type: dict
  contains:
    state:
      description:
        - V(converting) (the member count changed), V(restoring redundancy) (chunks a degraded period left with one
          copy), V(replacing) (a missing member is being replaced), or V(pending) (chunks left and no job runs; the
          next run starts it).
      type: str
    target:
      description: The data and metadata profiles the chunks are converted to, as C(data/metadata).
      type: str
      sample: raid1/raid1
    profiles:
      description: The profiles the chunks have now, per chunk type (C(data), C(metadata), C(system)).
      type: dict
      sample: {data: [raid1, single], metadata: [raid1], system: [raid1]}
    progress:
      description: The kernel's progress line (C(btrfs balance status) or C(btrfs replace status)), C(started) just
        after the start, or null.
      type: str
      sample: 5 out of about 9 chunks balanced (6 considered), 44% left
mount_options:
  description:
    - The extra options asked for (O(mount_options)), which the data filesystem is mounted with when this module mounts
      it - at every boot; a mount already in place keeps its options until the next boot. Empty when the host is
      volatile.
  returned: success
  type: list
  elements: str
  sample: [noatime, compress=zstd]
mode:
  description:
    - V(persistent) (the data filesystem, all members present), V(degraded) (mounted or found with members missing) or
      V(volatile) (no data filesystem, or one that cannot be used; with O(state=mounted) a tmpfs is mounted).
    - With O(state=mounted), the mode the host is in after the run; otherwise, the mode the disks call for.
  returned: always
  type: str
  sample: persistent
label:
  description: The filesystem label, C(lightwhale-data), or null when there is no data filesystem.
  returned: always
  type: str
  sample: lightwhale-data
uuid:
  description: The data filesystem's UUID; null when there is none, or in check mode before its creation.
  returned: always
  type: str
  sample: 0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21
devices:
  description: The member devices present (or those the new filesystem will have, in check mode), by device id.
  returned: always
  type: list
  elements: str
  sample: [/dev/sdb2, /dev/sdc2]
missing:
  description: Members missing, by btrfs device id (V(devid 2)), or a count when their ids cannot be told.
  returned: always
  type: list
  elements: str
  sample: [devid 2]
num_devices:
  description: How many devices the data filesystem has, present or not; 0 when there is none.
  returned: always
  type: int
  sample: 2
data_profile:
  description: The data block-group profile (lower case; several are joined with a comma), or null when not read.
  returned: always
  type: str
  sample: raid1
metadata_profile:
  description: The metadata block-group profile, as RV(data_profile).
  returned: always
  type: str
  sample: raid1
subvolumes:
  description: The subvolumes of the data filesystem, by path from its top level.
  returned: always
  type: list
  elements: str
  sample: ['@lightwhale-data', '@lightwhale-state', '@lightwhale-state-snapshots']
mounts:
  description:
    - What is mounted at the two mount points after the run (predicted in check mode), each with C(target),
      C(source), C(fstype), C(root) (the subvolume path, V(/) for the tmpfs) and C(uuid); real runs add C(options).
  returned: always
  type: list
  elements: dict
  sample: [{target: /mnt/lightwhale-data, source: /dev/sdb2, fstype: btrfs, root: /@lightwhale-data}]
swap_devices:
  description:
    - Magic swap partitions active after the run (predicted in check mode), and on a legacy data filesystem the swap
      areas labelled C(lightwhale-swap) next to it.
  returned: always
  type: list
  elements: str
  sample: [/dev/sdb1, /dev/sdc1]
swap:
  description: Whether swap is on for this run, after the kernel command line's C(noswap).
  returned: always
  type: bool
magic_partitions:
  description: Partitions named C(lightwhale-swap) and C(lightwhale-data) on the candidates, as probed; C(swap) and C(data),
    each a list of partition device paths.
  returned: always
  type: dict
  sample: {swap: [/dev/sdb1], data: [/dev/sdb2]}
created:
  description: Whether this run created the data filesystem (would, in check mode).
  returned: always
  type: bool
actions:
  description: What was done, or would be in check mode, one line per step.
  returned: always
  type: list
  elements: str
  sample: ["create a btrfs (data raid1, metadata raid1) without a label over /dev/sdb2, /dev/sdc2",
           "label the filesystem lightwhale-data (the commit point)"]
failure:
  description:
    - Why the data filesystem could not be used (not C(failed), which Ansible reserves). The task fails; with
      O(state=mounted) the tmpfs is mounted so that the host still boots, and RV(mode) is V(volatile) - unless the
      data filesystem was mounted already, which stays - RV(mode) says V(persistent) or V(degraded), with its
      members, profiles and subvolumes.
    - A failed run returns every key documented as returned always; what it could not read is null or empty
      (RV(mode) is null when the run was refused before it looked at the host, for example a bad option).
  returned: failure
  type: str
status:
  description: The status document as recorded (as it would be, in check mode); see M(lightwhale.persistence.lw_status).
  returned: with O(record_status=true) and O(state=mounted)
  type: dict
  sample: {version: 1, mode: persistent, ok: false, overlays_missing: [/etc, /var, /home]}
state_change:
  description:
    - What this run did to the state before mounting it - C(rolled back to <name>), C(reset the state (a fresh empty
      state)), C(factory reset - ...) - or C(NOT carried out - <why>) for a request that failed; null when nothing.
  returned: always
  type: str
  sample: rolled back to before-upgrade
boot_snapshot:
  description: The name of the boot snapshot this run took (O(boot_snapshots)), or null.
  returned: always
  type: str
  sample: boot-20261206T063012Z
pending:
  description: The rollback or reset waiting for the next boot, in words, or null.
  returned: always
  type: str
  sample: roll back to before-upgrade, keeping the state in use as snapshot before-rollback-20261206T101500Z
lvm_activated:
  description:
    - The logical volumes (C(vg/lv)) this run activated before looking for the data filesystem (O(activate_lvm)); empty
      when none, and in check mode (RV(actions) says what would be activated). Also kept in the status file, under
      C(steps.datafs.lvm_activated), for the rest of the boot.
  returned: success
  type: list
  elements: str
  sample: [vg0/lightwhale]
legacy:
  description:
    - Whether the data filesystem is a legacy one - labelled C(lightwhale-data) but not btrfs (the ext4 of Lightwhale
      2.x) - mounted as it is, without subvolumes, RAID or snapshots.
  returned: always
  type: bool
  sample: false
fstype:
  description: The data filesystem's type (V(btrfs), or that of a legacy one, such as V(ext4)); null when there is none.
  returned: always
  type: str
  sample: btrfs
refused:
  description: Magic data partitions that could not be formatted, each with C(device) and C(reason); nothing written.
  returned: failure
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module


def main():
    _module.finish(AnsibleModule(argument_spec=dict(
        state=dict(type='str', choices=['present', 'mounted', 'unmounted'], default='mounted'),
        devices=dict(type='list', elements='path', default=[]),
        swap=dict(type='bool', default=True),
        kernel_cmdline=dict(type='str'),
        mount_options=dict(type='list', elements='str', default=[]),
        root=dict(type='path', default='/'),
        timeout=dict(type='int', default=30),
        replace_tmpfs=dict(type='bool', default=False),
        boot_snapshots=dict(type='int', default=0),
        record_status=dict(type='bool', default=False),
        activate_lvm=dict(type='bool', default=True),
    ), supports_check_mode=True), _datafs.execute)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every write this collection makes to a block device or to the kernel's view of it, in one file so that a
review sees them all: headers, signatures, partition tables, filesystems and swap areas; the kernel's
partitions (partx), btrfs member registration, mounts, unmounts, swapon and swapoff.

Only plan actions (_plan) call these, so check mode predicts each, the crash checkpoints surround each,
and Plan.done records each. A unit test fails when another file of the core runs a writing command.
Callers decide whether a write is allowed (magic header present, or an explicit force); these functions
only write, flush, and open devices exclusively so a device that became busy meanwhile is refused by the kernel.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import errno
import os

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, ProbeError


def _pwrite(path, offset, data, exclusive=True):
    try:
        fd = os.open(path, os.O_WRONLY | (os.O_EXCL if exclusive else 0))
    except OSError as exc:
        raise CommandError('%s: cannot open for writing: %s' % (path, exc), device=path)
    try:
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
        os.fsync(fd)
    except OSError as exc:
        raise CommandError('%s: write of %d bytes at offset %d failed: %s' % (path, len(data), offset, exc),
                           device=path)
    finally:
        os.close(fd)


def write_header(path):
    """Write the magic header as users do with echo | dd: the 27 bytes and a newline, at byte 0."""
    _pwrite(path, 0, _layout.MAGIC + b'\n')


def zero(path, offset, length):
    _pwrite(path, offset, b'\0' * length)


def wipe_header_in_use(path):
    """Zero the MBR boot-code area of a disk whose partitions are in use (a member that joined, its swap on): those
    bytes lie outside every partition, so the exclusive open the other writes take is not needed here."""
    _pwrite(path, 0, b'\0' * _layout.BOOT_CODE_SIZE, exclusive=False)


def wipe_signatures(runner, path):
    """Erase every signature libblkid knows on C(path) (both GPT copies, PMBR, filesystems, RAID, LVM, LUKS)."""
    runner.run('wipefs', ['--all', '--quiet', path], device=path)


def write_partition_table(runner, path, script):
    """Write a new partition table from an sfdisk script. The kernel is told separately (partx), not here."""
    runner.run('sfdisk', ['--quiet', '--wipe', 'always', '--wipe-partitions', 'always', '--no-reread',
                          '--no-tell-kernel', '--lock', path], data=script, device=path)


def make_swap(runner, path, label):
    """Format C(path) as a swap area labelled C(label) (mkswap opens it exclusively and wipes old signatures)."""
    runner.run('mkswap', ['--label', label, path], device=path)


def make_btrfs(runner, paths, data_profile, metadata_profile):
    """Create one btrfs over C(paths), without a label (the label is set last, as the commit point).

    --force: a creation that was interrupted may have left an unlabelled btrfs there; the caller has
    checked that nothing else is.
    """
    runner.run('mkfs.btrfs', ['--force', '--data', data_profile, '--metadata', metadata_profile] + list(paths),
               device=', '.join(paths))


def create_subvolume(runner, path):
    """Create the subvolume C(path) inside a mounted btrfs. The caller verifies it (btrfs-progs#730)."""
    runner.run('btrfs', ['subvolume', 'create', path], device=path)


def snapshot_subvolume(runner, source, target, read_only):
    """Snapshot subvolume C(source) as C(target) (same filesystem); the caller verifies it (btrfs-progs#730)."""
    if read_only:
        runner.run('btrfs', ['subvolume', 'snapshot', '-r', source, target], device=target)
    else:
        runner.run('btrfs', ['subvolume', 'snapshot', source, target], device=target)


def delete_subvolume(runner, path):
    """Delete subvolume C(path) and wait for the transaction to commit, so a crash cannot bring it back."""
    runner.run('btrfs', ['subvolume', 'delete', '--commit-after', path], device=path)


def set_read_only(runner, path, read_only):
    """Make subvolume C(path) read-only or writable."""
    runner.run('btrfs', ['property', 'set', '-ts', path, 'ro', 'true' if read_only else 'false'], device=path)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first, second):
    """Swap the names C(first) and C(second) in one step (renameat2 RENAME_EXCHANGE). False when the kernel or the C
    library cannot (the caller renames through a third name); CommandError on any other failure."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    names = [os.fsencode(first), os.fsencode(second)]
    if renameat2(_AT_FDCWD, names[0], _AT_FDCWD, names[1], _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):
        return False
    raise CommandError('cannot exchange %s and %s: %s' % (first, second, os.strerror(code)), device=first)


def rename(source, target):
    """Rename C(source) to C(target) on one filesystem; refuses to replace an existing C(target)."""
    if os.path.lexists(target):
        raise CommandError('cannot rename %s to %s: the target exists' % (source, target), device=target)
    try:
        os.rename(source, target)
    except OSError as exc:
        raise CommandError('cannot rename %s to %s: %s' % (source, target, exc.strerror or exc), device=source)


def label_btrfs(runner, path, label):
    """Set the label of the (unmounted) btrfs that C(path) belongs to, on every member's superblocks."""
    runner.run('btrfs', ['filesystem', 'label', path, label], device=path)


def forget_partitions(runner, path):
    """Make the kernel forget every partition of disk C(path) (its table was wiped)."""
    runner.run('partx', ['--delete', path], device=path)


def sync_partitions(runner, path, nodes, timeout, partitions=None):
    """Make the kernel's partitions of disk C(path) match the table on the disk, and wait for the nodes.

    No udev here: partx tells the kernel. Partitions that moved are deleted and added again (C(partx --update)
    leaves moved ones out and still exits 0). C(nodes) must all be ready afterwards. C(partitions), when the caller
    has just read the table, saves reading it again.
    """
    if partitions is None:
        partitions = _blockdev.partition_table(runner, path)['partitions']
    missing = [node for node in nodes if node not in [part['device'] for part in partitions]]
    if missing:
        raise ProbeError('%s: the partition table on the disk has no %s' % (path, ', '.join(missing)), device=path)
    if _blockdev.partitions_match(path, partitions):
        return
    if _blockdev.kernel_partitions(os.path.basename(path)):
        forget_partitions(runner, path)
    if partitions:
        runner.run('partx', ['--add', path], device=path)
    _blockdev.wait_partitions(path, partitions, timeout)


def scan_btrfs(runner, paths):
    """Register the members of a multi-device btrfs with the kernel (no udev here), so a mount finds them all."""
    runner.run('btrfs', ['device', 'scan'] + list(paths), device=', '.join(paths))


def mount(runner, source, target, fstype, options, device=None):
    """Mount C(source) on C(target); errors name C(device) (default: the source)."""
    args = ['-t', fstype]
    if options:
        args += ['-o', ','.join(options)]
    runner.run('mount', args + [source, target], device=device or source)


def bind(runner, source, target):
    """Bind C(source) on C(target), read-only at once where mount can (util-linux remounts the new bind read-only in
    the same run; secure_bind sees to it where it did not)."""
    runner.run('mount', ['--bind', '-o', 'ro', source, target], device=source)


def secure_bind(runner, target):
    """Make the bind on C(target) private, then read-only (private first: on a shared mount, what is mounted on its
    source later would propagate onto the bind) - each only when mountinfo shows it is not so yet."""
    mount = _mountinfo.top_mount(_mountinfo.read_mounts(), target)
    if mount is None or mount.propagation:
        runner.run('mount', ['--make-private', target], device=target)
    if mount is None or 'ro' not in mount.options:
        runner.run('mount', ['-o', 'remount,bind,ro', target], device=target)


def umount(runner, target):
    runner.run('umount', [target], device=target)


def swapon(runner, path):
    runner.run('swapon', [path], device=path)


def swapoff(runner, path):
    runner.run('swapoff', [path], device=path)


# Starts the command given after the log path and the heading line in a session of its own, detached (stdin
# /dev/null, output to the log), and prints its process id: run_command returns once this shell has exited.
_SPAWN = 'log=$1; printf "%s\\n" "$2" >> "$log"; shift 2; setsid "$@" < /dev/null >> "$log" 2>&1 & echo $!'


def spawn_detached(runner, argv, log_path, heading):
    """Start C(argv) in its own session, detached from this run (stdin /dev/null, output appended to C(log_path) after
    the line C(heading)): it outlives the module. Returns its process id."""
    _rc, out, _err = runner.run('sh', ['-c', _SPAWN, 'lightwhale-spawn', log_path, heading] + list(argv),
                                device=log_path)
    try:
        return int(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise CommandError('could not start %s: no process id in %r' % (argv[0], out), device=log_path)


def device_add(runner, node, mountpoint):
    """Add C(node) to the btrfs mounted at C(mountpoint) (online; no discard of the whole device first)."""
    runner.run('btrfs', ['device', 'add', '--nodiscard', node, mountpoint], device=node)


def replace_start(runner, devid, node, mountpoint):
    """Start the replace of member C(devid) by C(node); btrfs-progs runs the copy in the background."""
    runner.run('btrfs', ['replace', 'start', str(devid), node, mountpoint], device=node)


def balance_cancel(runner, mountpoint):
    """Cancel the balance of the btrfs mounted at C(mountpoint), running or paused (the chunks it converted stay
    converted). Exit 1: it had ended already."""
    runner.run('btrfs', ['balance', 'cancel', mountpoint], ok=(0, 1))


def activate_volume_groups(runner, groups, config):
    """Activate every logical volume of the volume groups C(groups) (vgchange -ay; nothing else about them changes)."""
    runner.run('vgchange', ['--activate', 'y', '--config', config] + list(groups), device=', '.join(groups))


def make_lvm_nodes(runner, config):
    """Make the /dev/mapper nodes and /dev/<vg>/<lv> links of the active logical volumes (no udev here)."""
    runner.run('vgscan', ['--mknodes', '--config', config])

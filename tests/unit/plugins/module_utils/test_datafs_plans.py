# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data filesystem's plans (_datafs_mount, _datafs_create) on synthetic decisions and mountinfo, in a sandbox
root: no disk, no mount, no command; planning writes nothing, and a plan is applied only where a test says so (with
the writes recorded, not made).

The same plans run for real on loop devices in tests/integration/test_lw_datafs.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_create
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_find
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_mount
from ansible_collections.lightwhale.persistence.plugins.module_utils._blockdev import BlockDevice
from ansible_collections.lightwhale.persistence.plugins.module_utils._candidates import Disk
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import MountConflict, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._mountinfo import parse_mountinfo_line

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'
OTHER = '11111111-2222-3333-4444-555555555555'
# The kernel's member lists (_btrfs.mounted_members): device name -> fsid.
MEMBERS = {'lwtest0p2': FSID, 'lwtest1p2': FSID, 'other0p2': OTHER}
SWAP = '/dev/lwtest0p1'


def probed(path, role='data'):
    return _datafs_find.Probed(path, None, dict(device=path, name='lightwhale-' + role), [])


def decision(count=1, new=False, missing=(), swap=False, mkswap=False):
    """A Decision on the data filesystem over /dev/lwtestNp2 (found, or C(new) to create), with its swap partition.
    C(missing): the device ids missing, or None for one member missing whose id cannot be told."""
    made = _datafs_find.Decision()
    members = [probed('/dev/lwtest%dp2' % index) for index in range(count)]
    num_devices = count + (len(missing) if missing is not None else 1)
    made.fs = _datafs_find.Filesystem(None if new else FSID, members, num_devices, missing if missing is None else list(missing),
                                      new=new, profiles=_btrfs.profiles_for(count) if new else (None, None))
    made.create = new
    made.swap = [probed(SWAP, 'swap')] if swap else []
    made.mkswap = list(made.swap) if mkswap else []
    return made


class Sandbox:
    """A root under tmp_path, a Context on it, mountinfo lines for its targets, and the writes recorded."""

    def __init__(self, root, runner, writes):
        self.root = root
        self.runner = runner
        self.writes = writes
        self.applied = False
        self.ctx = self.context()

    def context(self, swap=True, replace_tmpfs=False):
        self.ctx = _datafs.Context(self.runner, self.root, swap, ['noatime'], 5, replace_tmpfs=replace_tmpfs)
        return self.ctx

    def mount(self, mount_id, where, fstype='btrfs', root='/', source='/dev/lwtest0p2', parent=1):
        """A mountinfo line; C(where) is 'data', 'state' or a path under the root."""
        targets = self.ctx.targets
        target = dict(data=targets.data, state=targets.state).get(where) or os.path.join(targets.root, where)
        return parse_mountinfo_line('%d %d 0:%d %s %s rw - %s %s rw' % (mount_id, parent, mount_id, root, target, fstype, source))

    def persistent(self):
        """The two subvolume mounts, the state one on the data one."""
        return [self.mount(40, 'data', root='/@lightwhale-data'), self.mount(41, 'state', root='/@lightwhale-state', parent=40)]

    def tmpfs(self):
        return self.mount(50, 'data', fstype='tmpfs', source='tmpfs')

    def data_dir(self, *names):
        """Create the data mount point (and C(names) as directories in it)."""
        os.makedirs(self.ctx.targets.data)
        for name in names:
            os.makedirs(os.path.join(self.ctx.targets.data, name))
        return self.ctx.targets.data

    def planned(self, planner, *args):
        planned = _datafs_mount.Planned()
        planner(self.ctx, *(args + (planned, MEMBERS)))
        return planned


@pytest.fixture
def box(tmp_path, monkeypatch, refusing_runner, recorded_writes):
    monkeypatch.setattr(_blockdev, 'resolve', lambda given: BlockDevice(os.path.basename(given), given, None))
    sandbox = Sandbox(str(tmp_path), refusing_runner, recorded_writes)
    yield sandbox
    assert sandbox.applied or recorded_writes == [], 'planning wrote: %r' % recorded_writes


def steps(planned):
    assert planned.plan.done == []
    return [action.step for action in planned.plan.actions]


def mounted(box, made, mounts, swaps=()):
    return box.planned(_datafs_mount.plan_mounted, made, mounts, list(swaps))


# ---------------------------------------------------------------------------------------------- plan_mounted


def test_nothing_mounted_mounts_data_then_state_then_swap(box):
    planned = mounted(box, decision(swap=True), [])
    targets = box.ctx.targets
    # The state step (a pending rollback or reset, boot snapshots) runs between the two mounts of a real run.
    assert steps(planned) == ['mount-data', 'state-change', 'mount-state', 'swapon']
    assert planned.plan.describe() == [
        '%s: mount subvolume @lightwhale-data of the data filesystem %s' % (targets.data, FSID),
        'carry out what is due before the state is mounted',
        '%s: mount subvolume @lightwhale-state of the data filesystem %s' % (targets.state, FSID),
        '%s: activate swap' % SWAP]
    assert planned.mounts == {targets.data: ('btrfs', '/@lightwhale-data'), targets.state: ('btrfs', '/@lightwhale-state')}
    assert planned.swap_on == [SWAP] and planned.creation is None


def test_everything_already_mounted_plans_nothing(box):
    assert steps(mounted(box, decision(swap=True), box.persistent(), swaps=[SWAP])) == []


def test_only_the_missing_state_mount_is_planned(box):
    assert steps(mounted(box, decision(), box.persistent()[:1])) == ['state-change', 'mount-state']


def root_fs(box):
    """The filesystem the sandbox root lives on, so that the mount tree above the targets is known."""
    return parse_mountinfo_line('1 0 254:0 / / rw - ext4 /dev/vda rw')


def test_a_state_mount_the_data_mount_would_hide_is_mounted_again(box):
    state = box.mount(41, 'state', root='/@lightwhale-state', parent=1)
    assert steps(mounted(box, decision(), [root_fs(box), state])) == ['mount-data', 'state-change', 'mount-state']


def test_a_state_mount_hidden_by_a_later_data_mount_is_not_taken_for_mounted(box):
    mounts = [root_fs(box), box.mount(41, 'state', root='/@lightwhale-state', parent=1),
              box.mount(40, 'data', root='/@lightwhale-data', parent=1)]
    assert steps(mounted(box, decision(), mounts)) == ['state-change', 'mount-state']


@pytest.mark.parametrize('new', [False, True])
@pytest.mark.parametrize('where, fstype, root, source, words', [
    ('data', 'ext4', '/', '/dev/vdb', 'ext4 /dev/vdb (root /) is mounted there, not subvolume @lightwhale-data'),
    ('data', 'btrfs', '/', '/dev/other0p2', 'subvolume / of filesystem %s is mounted there' % OTHER),
    ('state', 'btrfs', '/@lightwhale-state', '/dev/other0p2', 'subvolume /@lightwhale-state of filesystem %s is mounted there' % OTHER),
])
def test_a_conflicting_mount_is_refused_before_anything_is_planned(box, new, where, fstype, root, source, words):
    planned = _datafs_mount.Planned()
    with pytest.raises(MountConflict) as caught:
        _datafs_mount.plan_mounted(box.ctx, decision(new=new, swap=True, mkswap=True), [box.mount(60, where, fstype, root, source)],
                                   [], planned, MEMBERS)
    assert words in caught.value.message and caught.value.device == getattr(box.ctx.targets, where)
    assert steps(planned) == [] and planned.creation is None


def test_a_tmpfs_over_a_found_filesystem_is_a_volatile_conflict(box):
    box.data_dir()
    with pytest.raises(MountConflict) as caught:
        mounted(box, decision(), [box.tmpfs()])
    assert caught.value.details['mode'] == 'volatile' and 'a tmpfs is mounted (volatile mode)' in caught.value.message


def test_replace_tmpfs_unmounts_the_empty_tmpfs_before_the_mounts(box):
    box.context(replace_tmpfs=True)
    box.data_dir('lightwhale-state')
    planned = mounted(box, decision(), [box.tmpfs()])
    assert steps(planned) == ['umount-tmpfs', 'mount-data', 'state-change', 'mount-state']
    assert planned.plan.describe()[0] == '%s: unmount the empty volatile tmpfs (replace_tmpfs)' % box.ctx.targets.data


def test_replace_tmpfs_never_replaces_a_tmpfs_that_holds_files(box):
    box.context(replace_tmpfs=True)
    with open(os.path.join(box.data_dir(), 'notes'), 'w'):
        pass
    with pytest.raises(MountConflict, match='volatile mode'):
        mounted(box, decision(), [box.tmpfs()])


def test_a_new_filesystem_is_created_then_mounted(box):
    made = decision(count=2, new=True, swap=True, mkswap=True)
    planned = mounted(box, made, [])
    assert steps(planned) == ['mkswap', 'mkfs', 'mount-top', 'subvolume', 'subvolume', 'subvolume', 'umount-top', 'label',
                              'mount-data', 'mount-state', 'swapon']
    described = planned.plan.describe()
    assert described[0] == '%s: format as swap, label lightwhale-swap' % SWAP
    assert described[1] == 'create a btrfs (data raid1, metadata raid1) without a label over /dev/lwtest0p2, /dev/lwtest1p2'
    assert described[3:6] == ['create and verify subvolume @lightwhale-data', 'create and verify subvolume @lightwhale-state',
                              'create and verify subvolume @lightwhale-state-snapshots']
    assert described[7] == 'label the filesystem lightwhale-data (the commit point)'
    assert described[8].endswith('mount subvolume @lightwhale-data of the new data filesystem')
    assert planned.creation is not None and planned.creation.fs is made.fs


def test_a_new_filesystem_replaces_an_empty_tmpfs_after_its_label(box):
    box.context(replace_tmpfs=True)
    box.data_dir()
    planned = mounted(box, decision(new=True), [box.tmpfs()])
    assert steps(planned)[-4:] == ['label', 'umount-tmpfs', 'mount-data', 'mount-state']


def test_a_tmpfs_that_holds_files_is_a_plain_conflict_for_a_new_filesystem(box):
    box.context(replace_tmpfs=True)
    box.data_dir('docker')
    with pytest.raises(MountConflict, match=r'tmpfs \(volatile\) is mounted there, not subvolume @lightwhale-data of '
                                            r'the data filesystem \(new\)'):
        mounted(box, decision(new=True), [box.tmpfs()])


@pytest.mark.parametrize('missing, words', [([2], 'devid 2 (of 2)'), (None, '1 of 2 members (device ids unknown)')])
def test_a_degraded_filesystem_is_mounted_degraded(box, missing, words):
    planned = mounted(box, decision(missing=missing), [])
    data = box.ctx.targets.data
    assert all(action.description.endswith(' degraded (missing %s)' % words) for action in planned.plan.actions
               if action.step.startswith('mount-'))
    box.applied = True
    planned.plan.actions[0].func()
    # The first mount of a run names the members (device=), so that the kernel knows them without a scan.
    assert box.writes == [('make_dirs', box.ctx.targets.root, '/mnt/lightwhale-data'),
                          ('mount', '/dev/lwtest0p2', data, 'btrfs',
                           ['subvol=/@lightwhale-data', 'degraded', 'noatime', 'device=/dev/lwtest0p2'])]
    assert box.ctx.mounted == [data]
    planned.plan.actions[2].func()
    assert box.writes[-1] == ('mount', '/dev/lwtest0p2', box.ctx.targets.state, 'btrfs',
                              ['subvol=/@lightwhale-state', 'degraded', 'noatime'])


def test_without_a_filesystem_the_volatile_tmpfs_is_mounted(box):
    planned = mounted(box, _datafs_find.Decision(), [])
    assert steps(planned) == ['mount-tmpfs'] and planned.mounts == {box.ctx.targets.data: ('tmpfs', '/')}


def test_a_link_at_the_mount_point_is_refused_before_anything_is_planned(box):
    os.makedirs(os.path.join(box.root, 'mnt'))
    os.symlink('/etc', box.ctx.targets.data)
    planned = _datafs_mount.Planned()
    with pytest.raises(PersistenceError, match='symbolic link'):
        _datafs_mount.plan_mounted(box.ctx, decision(new=True, swap=True, mkswap=True), [], [], planned, MEMBERS)
    assert steps(planned) == []


# ---------------------------------------------------------------------------------------------- plan_volatile


def test_volatile_mounts_a_tmpfs_with_the_state_directory(box):
    planned = box.planned(_datafs_mount.plan_volatile, [])
    assert planned.plan.describe() == ['%s: mount a tmpfs (mode 0755, volatile) with the state directory %s in it' % (
        box.ctx.targets.data, box.ctx.targets.state)]


@pytest.mark.parametrize('dirs, expected', [((), ['mkdir-state']), (('lightwhale-state',), [])])
def test_volatile_over_its_own_tmpfs_only_creates_the_state_directory(box, dirs, expected):
    box.data_dir(*dirs)
    assert steps(box.planned(_datafs_mount.plan_volatile, [box.tmpfs()])) == expected


@pytest.mark.parametrize('where', ['data', 'state'])
def test_volatile_refuses_a_foreign_mount(box, where):
    mounts = [box.tmpfs(), box.mount(60, where, 'ext4', source='/dev/vdb', parent=50)]
    with pytest.raises(MountConflict, match='ext4 /dev/vdb'):
        box.planned(_datafs_mount.plan_volatile, mounts)


# ---------------------------------------------------------------------------------------------- plan_swap


@pytest.mark.parametrize('wanted, swaps, expected', [
    (True, [], ['swapon']), (True, [SWAP], []), (False, [SWAP], ['swapoff']), (False, [], [])])
def test_swap_is_switched_only_when_it_differs(box, wanted, swaps, expected):
    box.context(swap=wanted)
    planned = _datafs_mount.Planned()
    _datafs_mount.plan_swap(box.ctx, decision(swap=True), swaps, planned)
    assert steps(planned) == expected
    assert planned.swap_on == ([SWAP] if wanted else [])


# ---------------------------------------------------------------------------------------------- plan_unmounted


def unmounted(box, mounts, swaps=()):
    found = _datafs_find.Survey([])
    found.probed.append(probed(SWAP, 'swap'))
    return box.planned(_datafs_mount.plan_unmounted, found, mounts, list(swaps))


def test_unmounting_goes_swap_state_then_data(box):
    planned = unmounted(box, box.persistent(), swaps=[SWAP])
    targets = box.ctx.targets
    assert steps(planned) == ['swapoff', 'umount-state', 'umount-data']
    assert planned.plan.describe() == ['%s: deactivate swap' % SWAP, '%s: unmount' % targets.state,
                                       '%s: unmount the data subvolume' % targets.data]


def test_unmounting_the_volatile_tmpfs(box):
    planned = unmounted(box, [box.tmpfs()])
    assert planned.plan.describe() == ['%s: unmount the tmpfs' % box.ctx.targets.data]


def test_nothing_mounted_nothing_to_unmount(box):
    assert steps(unmounted(box, [])) == []


@pytest.mark.parametrize('which', [0, 1])
def test_unmounting_refuses_a_foreign_mount(box, which):
    mounts = box.persistent()
    mounts[which] = box.mount(mounts[which].mount_id, ['data', 'state'][which], 'ext4', source='/dev/vdb',
                              parent=mounts[which].parent_id)
    with pytest.raises(MountConflict, match='ext4 /dev/vdb .* is mounted there, not a @lightwhale-'):
        unmounted(box, mounts, swaps=[SWAP])


# ---------------------------------------------------------------------------------------------- plan_fallback


def test_fallback_undoes_a_data_mount_without_its_state_then_mounts_the_tmpfs(box):
    box.ctx.mounted.append(box.ctx.targets.data)
    planned = _datafs_mount.plan_fallback(box.ctx, box.persistent()[:1], MEMBERS)
    assert steps(planned) == ['umount-data', 'mount-tmpfs']
    assert planned.mounts == {box.ctx.targets.data: ('tmpfs', '/')}


def test_fallback_on_a_free_mount_point_mounts_the_tmpfs(box):
    assert steps(_datafs_mount.plan_fallback(box.ctx, [], MEMBERS)) == ['mount-tmpfs']


@pytest.mark.parametrize('ours, count', [(False, 1), (True, 2)])
def test_fallback_leaves_a_mount_point_that_holds_something(box, ours, count):
    if ours:
        box.ctx.mounted.append(box.ctx.targets.data)
    assert steps(_datafs_mount.plan_fallback(box.ctx, box.persistent()[:count], MEMBERS)) == []
    assert steps(_datafs_mount.plan_fallback(box.ctx, [box.tmpfs()], MEMBERS)) == []


# ---------------------------------------------------------------------------------------------- empty_tmpfs


def test_an_empty_tmpfs_or_one_with_an_empty_state_directory_is_replaceable(box):
    data = box.data_dir()
    assert _datafs_mount.empty_tmpfs(box.ctx, box.tmpfs(), [box.tmpfs()])
    os.mkdir(os.path.join(data, 'lightwhale-state'))
    assert _datafs_mount.empty_tmpfs(box.ctx, box.tmpfs(), [box.tmpfs()])


@pytest.mark.parametrize('path, link', [
    ('lightwhale-state/file', False), ('file', False), ('lightwhale-state', False), ('lightwhale-state', True)])
def test_a_tmpfs_holding_anything_is_not_replaceable(box, path, link):
    target = os.path.join(box.data_dir(*(['lightwhale-state'] if '/' in path else [])), path)
    if link:
        # To an empty directory elsewhere: only the link itself tells it is not the tmpfs's own state directory.
        os.mkdir(os.path.join(box.root, 'empty'))
        os.symlink(os.path.join(box.root, 'empty'), target)
    else:
        with open(target, 'w'):
            pass
    assert not _datafs_mount.empty_tmpfs(box.ctx, box.tmpfs(), [box.tmpfs()])


def test_a_tmpfs_with_a_submount_or_no_tmpfs_is_not_replaceable(box):
    box.data_dir()
    submount = box.mount(51, 'mnt/lightwhale-data/sub', 'ext4', source='/dev/vdb', parent=50)
    assert not _datafs_mount.empty_tmpfs(box.ctx, box.tmpfs(), [box.tmpfs(), submount])
    assert not _datafs_mount.empty_tmpfs(box.ctx, box.persistent()[0], box.persistent())
    assert not _datafs_mount.empty_tmpfs(box.ctx, None, [])


# ---------------------------------------------------------------------------------------------- _datafs_create


def test_present_on_a_found_filesystem_only_formats_blank_swap(box):
    planned = _datafs_mount.Planned()
    _datafs_create.plan_present(box.ctx, decision(swap=True, mkswap=True), planned)
    assert steps(planned) == ['mkswap'] and planned.creation is None


def test_cleanup_undoes_an_interrupted_creation_in_one_action(box):
    leftover = os.path.join(box.ctx.targets.run_dir, 'datafs-top-x1')
    os.makedirs(leftover)
    stale = box.mount(60, 'run/lightwhale/datafs-top-abc', root='/')
    plan = _datafs_create.plan_cleanup(box.ctx, [stale, box.tmpfs()])
    assert [action.step for action in plan.actions] == ['cleanup'] and plan.done == []
    assert plan.describe() == ['undo what an interrupted creation left: unmount %s, remove %s' % (stale.target, leftover)]
    assert _datafs_create.plan_cleanup(box.ctx, [box.tmpfs()]).describe() == [
        'undo what an interrupted creation left: remove %s' % leftover]
    os.rmdir(leftover)
    assert len(_datafs_create.plan_cleanup(box.ctx, [box.tmpfs()])) == 0


def test_only_a_disk_held_by_nothing_but_a_leftover_mount_counts_as_free(box, monkeypatch):
    monkeypatch.setattr(_btrfs, 'mounted_members', lambda: dict(MEMBERS))
    monkeypatch.setattr(_blockdev, 'kernel_partitions', lambda name: [name + 'p1', name + 'p2'])
    disks = []
    for name, usage in (('lwtest0', ['busy: exclusive open refused']), ('lwtest1', ['mounted at /srv']),
                        ('other0', ['busy: exclusive open refused']), ('lwtest9', [])):
        disks.append(Disk(BlockDevice(name, '/dev/' + name, None)))
        disks[-1].usage = usage
    stale = box.mount(60, 'run/lightwhale/datafs-top-abc')
    assert _datafs_create.busy_by_leftovers(box.ctx, [stale], disks) == set(['/dev/lwtest0'])
    assert _datafs_create.busy_by_leftovers(box.ctx, [], disks) == set()

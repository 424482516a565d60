# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data filesystem's decisions on surveys made of fixtures: find, create, refuse, damaged, swap.

The same decisions are exercised for real on loop devices in tests/integration/test_lw_datafs.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_create
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_find
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._blockdev import BlockDevice
from ansible_collections.lightwhale.persistence.plugins.module_utils._candidates import Disk
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._mountinfo import parse_mountinfo_line

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'
OTHER = '11111111-2222-3333-4444-555555555555'


def superblock(fsid=FSID, label='lightwhale-data', devid=1, num_devices=1, magic=_btrfs.MAGIC, csum_ok=True):
    return _btrfs.Superblock(magic=magic, csum_ok=csum_ok, csum_type=0, fsid=fsid, label=label, devid=devid,
                             dev_uuid=OTHER, num_devices=num_devices, generation=7, bytenr=65536)


def btrfs(label='lightwhale-data', fsid=FSID):
    return dict(type='btrfs', offset=65600, label=label, uuid=fsid)


class Builder:
    """A survey of fake disks, each with an optional swap partition 1 and a data partition 2."""

    def __init__(self):
        self.found = _datafs_find.Survey([])

    def disk(self, name, data_sigs=(), data_sb=None, swap_sigs=None, usage=(), data_name='lightwhale-data'):
        disk = Disk(BlockDevice(name, '/dev/' + name, (7, 0)))
        disk.usage = list(usage)
        self.found.disks.append(disk)
        self.found.probed.append(_datafs_find.Probed(disk.path, disk, None, [dict(type='gpt', offset=512)]))
        if swap_sigs is not None:
            part = dict(device=disk.path + 'p1', number=1, name='lightwhale-swap')
            self.found.probed.append(_datafs_find.Probed(part['device'], disk, part, list(swap_sigs)))
        part = dict(device=disk.path + 'p2', number=2, name=data_name)
        self.found.probed.append(_datafs_find.Probed(part['device'], disk, part, list(data_sigs), data_sb))
        return disk


def test_blank_magic_partitions_are_created_with_the_profile_rule():
    build = Builder()
    for index in range(3):
        build.disk('loop%d' % index, swap_sigs=[])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.failure is None and decision.create
    assert decision.fs.new and decision.fs.paths == ['/dev/loop0p2', '/dev/loop1p2', '/dev/loop2p2']
    assert decision.fs.profiles == ('raid1', 'raid1c3')
    assert [probed.path for probed in decision.mkswap] == ['/dev/loop0p1', '/dev/loop1p1', '/dev/loop2p1']
    assert decision.warnings == []


def test_swap_off_formats_no_swap():
    build = Builder()
    build.disk('loop0', swap_sigs=[])
    decision = _datafs_find.decide(build.found, swap=False)
    assert decision.create and decision.mkswap == [] and decision.swap == []


def test_an_unlabelled_btrfs_is_an_interrupted_creation():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs(label=None)], data_sb=superblock(label='', num_devices=2))
    build.disk('loop1', data_sigs=[btrfs(label='')], data_sb=superblock(label='', devid=2, num_devices=2))
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.create and decision.fs.profiles == ('raid1', 'raid1')


def test_an_unfinished_mkfs_is_redone():
    build = Builder()
    build.disk('loop0', data_sb=superblock(label='', magic=_btrfs.MAGIC_TEMPORARY))
    assert _datafs_find.decide(build.found, swap=True).create


def test_a_labelled_filesystem_is_found_and_never_formatted():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock(devid=1, num_devices=2),
               swap_sigs=[dict(type='swap', label='lightwhale-swap')])
    build.disk('loop1', data_sigs=[btrfs()], data_sb=superblock(devid=2, num_devices=2), swap_sigs=[])
    decision = _datafs_find.decide(build.found, swap=True)
    assert not decision.create and decision.failure is None
    assert decision.fs.uuid == FSID and decision.fs.paths == ['/dev/loop0p2', '/dev/loop1p2']
    assert decision.fs.missing == [] and not decision.fs.degraded
    # A labelled swap is used as it is; a blank one on a member disk is formatted.
    assert [probed.path for probed in decision.swap] == ['/dev/loop0p1', '/dev/loop1p1']
    assert [probed.path for probed in decision.mkswap] == ['/dev/loop1p1']


def test_members_sorted_by_devid_and_missing_named():
    build = Builder()
    build.disk('loop5', data_sigs=[btrfs()], data_sb=superblock(devid=3, num_devices=3))
    build.disk('loop6', data_sigs=[btrfs()], data_sb=superblock(devid=1, num_devices=3))
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs.paths == ['/dev/loop6p2', '/dev/loop5p2']
    assert decision.fs.missing == [2] and decision.fs.degraded
    assert decision.fs.describe_missing() == 'devid 2 (of 3)'


def test_extra_magic_partitions_are_reported_not_joined():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock())
    build.disk('loop1', swap_sigs=[])
    decision = _datafs_find.decide(build.found, swap=True)
    assert not decision.create and decision.fs.paths == ['/dev/loop0p2']
    assert len(decision.warnings) == 1 and '/dev/loop1p2' in decision.warnings[0]
    # The newcomer's swap partition is not ours to format either.
    assert decision.mkswap == []


def test_two_labelled_filesystems_are_a_failure():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock())
    build.disk('loop1', data_sigs=[btrfs(fsid=OTHER)], data_sb=superblock(fsid=OTHER))
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs is None and not decision.create
    assert 'several filesystems' in decision.failure and FSID in decision.failure and OTHER in decision.failure


def test_a_cloned_member_is_a_failure():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock(devid=1, num_devices=2))
    build.disk('loop1', data_sigs=[btrfs()], data_sb=superblock(devid=1, num_devices=2))
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs is None and 'devid 1 on /dev/loop0p2 and /dev/loop1p2' in decision.failure


@pytest.mark.parametrize('sigs', [
    [btrfs()],        # an older libblkid: it reports the label, the checksum says otherwise
    [],               # a newer libblkid verifies the checksum and reports nothing
])
def test_a_damaged_superblock_is_never_taken_for_a_blank_partition(sigs):
    build = Builder()
    build.disk('loop0', data_sigs=sigs, data_sb=superblock(csum_ok=False), swap_sigs=[])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs is None and not decision.create and decision.mkswap == []
    assert 'damaged' in decision.failure and 'checksum mismatch' in decision.failure
    assert 'btrfs rescue super-recover /dev/loop0p2' in decision.failure


def test_a_damaged_member_of_a_raid1_counts_as_missing():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock(devid=1, num_devices=2))
    build.disk('loop1', data_sigs=[btrfs()], data_sb=superblock(devid=2, num_devices=2, csum_ok=False))
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.failure is None and decision.fs.paths == ['/dev/loop0p2'] and decision.fs.missing == [2]
    assert any('/dev/loop1p2' in warning and 'counted as missing' in warning for warning in decision.warnings)


@pytest.mark.parametrize('sigs, sb, words', [
    ([dict(type='ext4', label='x')], None, 'ext4'),
    ([btrfs(label='not-lightwhale')], superblock(label='not-lightwhale'), 'not-lightwhale'),
    ([dict(type='crypto_LUKS')], None, 'crypto_LUKS'),
    ([btrfs(label=None), dict(type='xfs')], None, 'xfs'),
    ([], superblock(label='somebody', csum_ok=False), 'libblkid rejects'),
])
def test_foreign_content_on_a_magic_partition_is_refused(sigs, sb, words):
    build = Builder()
    build.disk('loop0', data_sigs=sigs, data_sb=sb)
    build.disk('loop1')
    decision = _datafs_find.decide(build.found, swap=True)
    assert not decision.create and decision.fs is None
    assert [item['device'] for item in decision.refused] == ['/dev/loop0p2']
    assert words in decision.failure


def test_a_busy_disk_is_refused_unless_only_a_leftover_holds_it():
    build = Builder()
    disk = build.disk('loop0', usage=['busy: the kernel refuses an exclusive open'])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.refused and 'in use' in decision.failure
    assert _datafs_find.decide(build.found, swap=True, busy_ok=set([disk.path])).create


def test_no_magic_partition_means_volatile_without_failure():
    build = Builder()
    build.disk('loop0', data_name='something-else', data_sigs=[dict(type='ext4')])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs is None and decision.failure is None and not decision.create


def test_a_foreign_swap_partition_is_left_alone():
    build = Builder()
    build.disk('loop0', swap_sigs=[dict(type='ext4')])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.create and decision.mkswap == [] and decision.swap == []
    assert 'left untouched' in decision.warnings[0]


@given(st.lists(st.tuples(st.sampled_from(['blank', 'unlabelled', 'labelled', 'damaged', 'ext4']),
                          st.booleans()), min_size=1, max_size=5))
def test_decisions_never_format_what_is_not_ours(disks):
    """Whatever the partitions hold: create only when every magic data partition is blank or unlabelled btrfs
    and none carries the label; never both a found filesystem and a creation."""
    build = Builder()
    for index, (kind, busy) in enumerate(disks):
        sigs, sb = {
            'blank': ([], None),
            'unlabelled': ([btrfs(label=None)], superblock(label='')),
            'labelled': ([btrfs()], superblock(devid=index + 1, num_devices=len(disks))),
            'damaged': ([], superblock(csum_ok=False)),
            'ext4': ([dict(type='ext4')], None),
        }[kind]
        build.disk('loop%d' % index, data_sigs=sigs, data_sb=sb, usage=['busy'] if busy else [])
    decision = _datafs_find.decide(build.found, swap=True)
    kinds = [kind for kind, _busy in disks]
    if decision.create:
        assert set(kinds) <= set(['blank', 'unlabelled']) and not any(busy for _kind, busy in disks)
        assert decision.fs.profiles == _btrfs.profiles_for(len(disks))
    if 'labelled' in kinds:
        assert not decision.create
        assert decision.fs is not None and decision.failure is None
    elif 'damaged' in kinds:
        assert decision.fs is None and 'damaged' in decision.failure
    assert not (decision.create and decision.failure)


MOUNTS = [parse_mountinfo_line(line) for line in (
    '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n',
    '40 22 0:41 /@lightwhale-data /sandbox/mnt/lightwhale-data rw - btrfs /dev/loop0p2 rw,subvolid=256\n',
    '41 40 0:41 /@lightwhale-state /sandbox/mnt/lightwhale-data/lightwhale-state rw - btrfs /dev/loop0p2 rw\n',
    '50 22 0:52 / /sandbox/mnt/lightwhale-data rw - tmpfs tmpfs rw,mode=755\n',
    '60 22 0:41 / /sandbox/run/lightwhale/datafs-top-abc123 rw - btrfs /dev/loop0p2 rw,subvolid=5\n',
    '61 22 0:41 / /sandbox/run/lightwhale/other rw - btrfs /dev/loop0p2 rw,subvolid=5\n',
)]


def test_the_visible_mount_is_the_last_one_mounted_there():
    assert _mountinfo.top_mount(MOUNTS, '/sandbox/mnt/lightwhale-data').fstype == 'tmpfs'
    assert _mountinfo.top_mount(MOUNTS[:3], '/sandbox/mnt/lightwhale-data').root == '/@lightwhale-data'
    assert _mountinfo.top_mount(MOUNTS, '/elsewhere') is None


def test_leftover_temporary_mounts_are_recognised_by_name(tmp_path):
    targets = _datafs.Targets('/sandbox')
    stale, dirs = _datafs_create.leftovers(targets, MOUNTS)
    assert [mount.target for mount in stale] == ['/sandbox/run/lightwhale/datafs-top-abc123']
    assert dirs == []
    run_dir = tmp_path / 'run' / 'lightwhale'
    (run_dir / 'datafs-top-x1').mkdir(parents=True)
    (run_dir / 'persistence.lock').write_text('')
    assert _datafs_create.leftovers(_datafs.Targets(str(tmp_path)), [])[1] == [str(run_dir / 'datafs-top-x1')]


def test_mounts_of_unknown_devices_are_never_ours():
    mount = MOUNTS[1]
    assert _mountinfo.fsid_of(mount, {}) is None
    assert _mountinfo.fsid_of(MOUNTS[3], {'tmpfs': FSID}) is None
    assert not _mountinfo.is_subvolume_mount(mount, '@lightwhale-data', None, {})
    assert not _mountinfo.is_subvolume_mount(MOUNTS[3], '@lightwhale-data', FSID, {'loop0p2': FSID})
    assert 'tmpfs' in _mountinfo.describe_mount(MOUNTS[3], {})
    assert _mountinfo.describe_mount(None, {}) == 'not mounted'


def test_mount_dirs_refuse_links_and_files(tmp_path):
    root = str(tmp_path)
    assert _mount.missing_dirs(root, '/mnt/lightwhale-data') == [
        os.path.join(root, 'mnt'), os.path.join(root, 'mnt', 'lightwhale-data')]
    (tmp_path / 'mnt').mkdir()
    os.symlink('/etc', str(tmp_path / 'mnt' / 'lightwhale-data'))
    with pytest.raises(PersistenceError, match='symbolic link'):
        _mount.missing_dirs(root, '/mnt/lightwhale-data')
    os.unlink(str(tmp_path / 'mnt' / 'lightwhale-data'))
    (tmp_path / 'mnt' / 'lightwhale-data').write_text('')
    with pytest.raises(PersistenceError, match='not a directory'):
        _mount.missing_dirs(root, '/mnt/lightwhale-data/lightwhale-state')


@pytest.mark.skipif(os.geteuid() != 0, reason='creates root-owned directories')
def test_make_dirs_creates_root_owned_0755(tmp_path):
    old = os.umask(0o077)
    try:
        created = _mount.make_dirs(str(tmp_path), '/mnt/lightwhale-data/lightwhale-state')
    finally:
        os.umask(old)
    assert len(created) == 3
    for path in created:
        info = os.stat(path)
        assert oct(info.st_mode & 0o7777) == oct(0o755) and (info.st_uid, info.st_gid) == (0, 0)
    assert _mount.make_dirs(str(tmp_path), '/mnt/lightwhale-data/lightwhale-state') == []


def test_magic_partitions_on_a_read_only_disk_are_refused_before_any_write():
    # Found by tests/integration/reliability/test_bad_input.py: mkfs.btrfs used to run and fail with an I/O error.
    build = Builder()
    disk = build.disk('loop0', swap_sigs=[])
    disk.read_only = True
    decision = _datafs_find.decide(build.found, swap=True)
    assert not decision.create and decision.mkswap == []
    assert decision.failure == 'cannot create the data filesystem: /dev/loop0p2 is on the read-only disk /dev/loop0'


def test_a_blank_swap_partition_on_a_read_only_member_disk_is_left_alone():
    build = Builder()
    disk = build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock(), swap_sigs=[])
    disk.read_only = True
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.failure is None and decision.mkswap == [] and decision.swap == []
    assert decision.warnings == ['magic swap partition /dev/loop0p1 is on the read-only disk /dev/loop0: not formatted']


def test_no_creation_while_a_magic_disk_still_waits_for_its_layout():
    """A first boot killed between two disks: loop0 laid out, loop1 still only has the header. Formatting loop0 alone
    would leave loop1 out for good; magic_disk lays it out first, then one filesystem goes over both."""
    build = Builder()
    build.disk('loop0', swap_sigs=[])
    pending = Disk(BlockDevice('loop1', '/dev/loop1', (7, 1)))
    pending.magic = True
    build.found.disks.append(pending)
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs is None and not decision.create and decision.failure is None and decision.mkswap == []
    pending.magic = False
    assert _datafs_find.decide(build.found, swap=True).create


@pytest.mark.parametrize('count, profiles', [
    (1, ('single', 'dup')), (2, ('raid1', 'raid1')), (3, ('raid1', 'raid1c3')), (4, ('raid1', 'raid1c4')), (5, ('raid1', 'raid1c4'))])
def test_a_new_filesystem_takes_the_profile_of_its_device_count(count, profiles):
    build = Builder()
    for index in range(count):
        build.disk('loop%d' % index)
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.create and decision.fs.profiles == profiles and len(decision.fs.paths) == count


@pytest.mark.parametrize('sb, words', [
    (None, 'superblock not readable'),
    (superblock(fsid=OTHER), 'superblock fsid %s differs from what libblkid reports (%s)' % (OTHER, FSID)),
])
def test_a_label_the_superblock_does_not_confirm_is_damage_not_a_blank(sb, words):
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=sb, swap_sigs=[])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs is None and not decision.create and decision.mkswap == []
    assert words in decision.failure and 'damaged' in decision.failure


def test_a_damaged_superblock_of_another_filesystem_is_left_untouched():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock())
    build.disk('loop1', data_sigs=[btrfs(fsid=OTHER)], data_sb=superblock(fsid=OTHER, csum_ok=False))
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.failure is None and decision.fs.paths == ['/dev/loop0p2'] and not decision.fs.degraded
    assert decision.warnings == ['/dev/loop1p2: holds a damaged lightwhale-data superblock of another filesystem '
                                 '(superblock checksum mismatch (crc32c)): left untouched']


def test_members_whose_device_ids_cannot_be_placed_make_the_missing_unknown():
    build = Builder()
    build.disk('loop0', data_sigs=[btrfs()], data_sb=superblock(devid=5, num_devices=2))
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs.missing is None and decision.fs.degraded
    assert decision.fs.describe_missing() == '1 of 2 members (device ids unknown)'

# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The legacy data filesystem (labelled lightwhale-data, not btrfs) and LVM activation, on synthetic surveys, lvs
output, a fake sysfs tree and a fake module: decisions, parsers, the activation plan, the status line.

The same paths run for real on loop devices in tests/integration/test_legacy.py and, with LVM, in the VM scenario
legacy (extensions/molecule/legacy).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_find
from ansible_collections.lightwhale.persistence.plugins.module_utils import _lvm
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount_options
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status
from ansible_collections.lightwhale.persistence.plugins.module_utils._blockdev import BlockDevice
from ansible_collections.lightwhale.persistence.plugins.module_utils._candidates import Disk
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'
EXT_UUID = 'c1b9d5a2-7e3f-4a51-9d2c-1f0e8b7a6d54'


def ext4(label='lightwhale-data', uuid=EXT_UUID, kind='ext4'):
    return dict(type=kind, offset=1080, label=label, uuid=uuid)


def swap_sig(label='lightwhale-swap'):
    return dict(type='swap', offset=4086, label=label, uuid=None)


class Builder:
    def __init__(self):
        self.found = _datafs_find.Survey([])

    def disk(self, name, whole=(), parts=()):
        """A disk with C(whole) signatures and partitions C(parts): (number, GPT name, signatures)."""
        disk = Disk(BlockDevice(name, '/dev/' + name, (7, 0)))
        self.found.disks.append(disk)
        self.found.probed.append(_datafs_find.Probed(disk.path, disk, None, list(whole)))
        for number, name_, sigs in parts:
            part = dict(device='%sp%d' % (disk.path, number), number=number, name=name_)
            self.found.probed.append(_datafs_find.Probed(part['device'], disk, part, list(sigs)))
        return disk

    def mapped(self, name, group, sigs):
        mapped = _lvm.Mapped(name, '/dev/mapper/' + name, group, ['vda'], 1 << 30)
        self.found.probed.append(_datafs_find.Probed(mapped.path, _datafs_find.MappedDisk(mapped), None, list(sigs)))


# ---------------------------------------------------------------------------------------------- decisions

@pytest.mark.parametrize('kind', ['ext4', 'ext3', 'ext2', 'xfs', 'f2fs'])
def test_a_labelled_filesystem_that_is_not_btrfs_is_the_legacy_data_filesystem(kind):
    build = Builder()
    build.disk('loop0', whole=[ext4(kind=kind)])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.failure is None and not decision.create and decision.mkswap == []
    fs = decision.fs
    assert fs.legacy and fs.fstype == kind and fs.uuid == EXT_UUID and fs.paths == ['/dev/loop0']
    assert not fs.new and not fs.degraded and fs.num_devices == 1


@pytest.mark.parametrize('sig', [dict(type='swap', label='lightwhale-data'), dict(type='crypto_LUKS', label='lightwhale-data'),
                                 dict(type='linux_raid_member', label='lightwhale-data'), ext4(label='lightwhale-dat')])
def test_what_is_not_a_labelled_filesystem_is_not_legacy(sig):
    build = Builder()
    build.disk('loop0', whole=[sig])
    assert _datafs_find.decide(build.found, swap=True).fs is None


def test_the_legacy_swap_is_the_labelled_swap_area_on_the_same_disk_whatever_its_name():
    build = Builder()
    build.disk('loop0', parts=[(1, 'swap', [swap_sig()]), (2, 'data', [ext4()]), (3, None, [swap_sig('other')])])
    build.disk('loop1', parts=[(1, 'lightwhale-swap', [swap_sig()])])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs.legacy and decision.fs.paths == ['/dev/loop0p2']
    assert [probed.path for probed in decision.swap] == ['/dev/loop0p1'] and decision.mkswap == []


def test_a_legacy_filesystem_on_a_logical_volume_takes_the_swap_of_its_volume_group():
    build = Builder()
    build.mapped('vg0-data', 'vg:A', [ext4()])
    build.mapped('vg0-swap', 'vg:A', [swap_sig()])
    build.mapped('vg1-swap', 'vg:B', [swap_sig()])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs.legacy and decision.fs.paths == ['/dev/mapper/vg0-data']
    assert [probed.path for probed in decision.swap] == ['/dev/mapper/vg0-swap']


def test_a_magic_partition_next_to_a_legacy_filesystem_is_never_formatted():
    build = Builder()
    build.disk('loop0', whole=[ext4()])
    build.disk('loop1', parts=[(1, 'lightwhale-swap', []), (2, 'lightwhale-data', [])])
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs.legacy and not decision.create and decision.mkswap == []
    assert any('/dev/loop1p2' in warning and 'left untouched' in warning for warning in decision.warnings)


@pytest.mark.parametrize('other', [
    [dict(type='btrfs', offset=65600, label='lightwhale-data', uuid=FSID)],
    [ext4(uuid='22222222-2222-2222-2222-222222222222')],
])
def test_a_legacy_and_another_labelled_filesystem_are_the_several_filesystems_failure(other):
    from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
    build = Builder()
    build.disk('loop0', whole=[ext4()])
    disk = build.disk('loop1')
    sb = None
    if other[0]['type'] == 'btrfs':
        sb = _btrfs.Superblock(magic=_btrfs.MAGIC, csum_ok=True, csum_type=0, fsid=FSID, label='lightwhale-data',
                               devid=1, dev_uuid=FSID, num_devices=1, generation=7, bytenr=65536)
    build.found.probed[-1] = _datafs_find.Probed(disk.path, disk, None, other, sb)
    decision = _datafs_find.decide(build.found, swap=True)
    assert decision.fs is None
    assert decision.failure.startswith('several filesystems are labelled lightwhale-data')
    assert '/dev/loop0' in decision.failure and '/dev/loop1' in decision.failure


def test_mapped_devices_are_probed_only_on_the_listed_disks():
    disks = [Disk(BlockDevice('loop3', '/dev/loop3', (7, 3)))]
    mine = _lvm.Mapped('dm-0', '/dev/mapper/a', 'vg:A', ['loop3'], 1)
    other = _lvm.Mapped('dm-1', '/dev/mapper/b', 'vg:B', ['sda'], 1)
    unknown = _lvm.Mapped('dm-2', '/dev/mapper/c', '/dev/mapper/c', [], 1)
    assert _datafs_find.mapped_for(disks, [mine, other, unknown], ['/dev/loop3']) == [mine]
    assert _datafs_find.mapped_for(disks, [mine, other, unknown], []) == [mine, other, unknown]


# ---------------------------------------------------------------------------------------------- LVM parsers

LVS = '''  vg0|data|-wi-a-----
  vg0|swap|-wi-------
  vg1|thin|twi---tz--
  vg1|skip|-wi------k
'''


def test_lvs_output_is_parsed_and_the_inactive_groups_named():
    volumes = _lvm.parse_lvs(LVS)
    assert [(v.name, v.active, v.skipped) for v in volumes] == [
        ('vg0/data', True, False), ('vg0/swap', False, False), ('vg1/thin', False, False), ('vg1/skip', False, True)]
    assert _lvm.inactive_groups(volumes) == {'vg0': ['swap'], 'vg1': ['thin']}
    assert _lvm.parse_lvs('') == [] and _lvm.parse_lvs('\n  \n') == []


@pytest.mark.parametrize('text', ['vg0 data -wi-a-----', 'vg0|data', '|data|-wi-a-----'])
def test_an_lvs_line_out_of_format_is_an_error(text):
    with pytest.raises(ValueError):
        _lvm.parse_lvs(text)


def test_newly_active_compares_before_and_after():
    before = _lvm.parse_lvs('vg0|a|-wi-------\nvg0|b|-wi-a-----\n')
    after = _lvm.parse_lvs('vg0|a|-wi-a-----\nvg0|b|-wi-a-----\nvg0|c|-wi-a-----\n')
    assert _lvm.newly_active(before, after) == ['vg0/a', 'vg0/c']
    assert _lvm.newly_active(after, after) == []


def test_mapper_names_double_their_dashes():
    assert _lvm.mapper_name('my-vg', 'lw-data') == 'my--vg-lw--data'


def test_the_volume_group_is_read_from_the_device_mapper_uuid():
    vg, lv = 'A' * 32, 'B' * 32
    assert _lvm.lvm_group('LVM-' + vg + lv) == 'vg:' + vg
    assert _lvm.lvm_group('LVM-' + vg + lv + '-real') == 'vg:' + vg
    assert _lvm.lvm_group('CRYPT-LUKS2-abc') is None and _lvm.lvm_group(None) is None


def write(path, text):
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'w') as handle:
        handle.write(text)


def test_mapped_devices_skip_held_read_only_and_empty_ones(tmp_path):
    sys_block = str(tmp_path / 'block')
    dev_mapper = str(tmp_path / 'mapper')
    os.makedirs(dev_mapper)
    uuid = 'LVM-' + 'A' * 32 + 'B' * 32
    for name, ro, size, holders, dm_name in (('dm-0', '0', '2048', [], 'vg0-data'), ('dm-1', '0', '2048', ['dm-2'], 'vg0-real'),
                                             ('dm-2', '1', '2048', [], 'vg0-snap'), ('dm-3', '0', '0', [], 'vg0-empty'),
                                             ('sda', '0', '2048', [], None)):
        base = os.path.join(sys_block, name)
        write(os.path.join(base, 'ro'), ro)
        write(os.path.join(base, 'size'), size)
        os.makedirs(os.path.join(base, 'holders'))
        os.makedirs(os.path.join(base, 'slaves'))
        for holder in holders:
            write(os.path.join(base, 'holders', holder), '')
        if dm_name:
            write(os.path.join(base, 'dm', 'name'), dm_name)
            write(os.path.join(base, 'dm', 'uuid'), uuid)
            write(os.path.join(base, 'dm', 'suspended'), '0')
    os.makedirs(os.path.join(sys_block, 'dm-0', 'slaves', 'sda'))
    write(os.path.join(dev_mapper, 'vg0-data'), '')
    found = _lvm.mapped_devices(sys_block, dev_mapper)
    assert [(item.name, item.path, item.group, item.disks, item.size) for item in found] == [
        ('dm-0', os.path.join(dev_mapper, 'vg0-data'), 'vg:' + 'A' * 32, ['sda'], 2048 * 512)]


# ---------------------------------------------------------------------------------------------- activation

class FakeModule:
    def __init__(self, tools=('vgchange', 'lvs', 'vgscan')):
        self.tools = tools

    def get_bin_path(self, tool, required=False):
        return '/sbin/' + tool if tool in self.tools else None


class FakeRunner:
    """lvs answers from a list (one answer a call); vgchange and vgscan are recorded, or fail."""

    def __init__(self, answers, fail=None):
        self.answers = list(answers)
        self.calls = []
        self.fail = fail

    def run(self, tool, args, data=None, ok=(0,), device=None):
        self.calls.append([tool] + list(args))
        if tool == self.fail:
            raise CommandError('%s failed (exit 5): no' % tool, cmd=[tool], rc=5)
        if tool == 'lvs':
            return 0, self.answers.pop(0), ''
        return 0, '', ''


def test_without_the_lvm_tools_or_when_off_nothing_is_planned_or_run():
    runner = FakeRunner([])
    assert not _lvm.plan_activation(FakeModule(tools=()), runner, True).plan
    assert not _lvm.plan_activation(FakeModule(), runner, False).plan
    assert runner.calls == []


def test_inactive_groups_are_activated_without_udev_and_the_new_volumes_recorded():
    runner = FakeRunner(['vg0|data|-wi-------\n', 'vg0|data|-wi-a-----\n'])
    activation = _lvm.plan_activation(FakeModule(), runner, True)
    assert activation.plan.describe() == ['activate the volume group(s) vg0 (inactive logical volumes vg0/data)']
    assert [call[0] for call in runner.calls] == ['lvs']
    _lvm.apply_activation(activation)
    assert activation.warnings == []
    assert activation.plan.done == ['activated the logical volume(s) vg0/data']
    vgchange = [call for call in runner.calls if call[0] == 'vgchange'][0]
    assert vgchange == ['vgchange', '--activate', 'y', '--config', _lvm.NO_UDEV, 'vg0']
    assert 'udev_sync = 0' in _lvm.NO_UDEV and 'udev_rules = 0' in _lvm.NO_UDEV


def test_all_active_with_their_nodes_plans_nothing(monkeypatch):
    monkeypatch.setattr(_lvm, 'missing_nodes', lambda volumes: [])
    runner = FakeRunner(['vg0|data|-wi-a-----\n'])
    activation = _lvm.plan_activation(FakeModule(), runner, True)
    assert not activation.plan and activation.warnings == []


def test_a_failing_vgchange_is_a_warning_and_nothing_recorded():
    runner = FakeRunner(['vg0|data|-wi-------\n'], fail='vgchange')
    activation = _lvm.plan_activation(FakeModule(), runner, True)
    _lvm.apply_activation(activation)
    assert activation.plan.done == []
    assert len(activation.warnings) == 1 and 'vgchange failed' in activation.warnings[0]


def test_a_vgchange_that_activates_nothing_is_a_warning_not_a_change():
    runner = FakeRunner(['vg0|data|-wi-------\n', 'vg0|data|-wi-------\n'])
    activation = _lvm.plan_activation(FakeModule(), runner, True)
    _lvm.apply_activation(activation)
    assert activation.plan.done == [] and 'activated no logical volume' in activation.warnings[0]


def test_a_failing_lvs_is_a_warning_and_nothing_is_planned():
    runner = FakeRunner([], fail='lvs')
    activation = _lvm.plan_activation(FakeModule(), runner, True)
    assert not activation.plan and 'cannot list the logical volumes' in activation.warnings[0]


# ---------------------------------------------------------------------------------------------- status, options

def test_the_status_line_says_persistent_legacy_and_the_type():
    status = _status.build('persistent', label='lightwhale-data', uuid=EXT_UUID, devices=['/dev/sdb1'],
                           swap_devices=['/dev/sdb2'], overlays=['/etc'], legacy=True, fstype='ext4',
                           mount_options=['noatime'])
    assert status['legacy'] is True and status['fstype'] == 'ext4'
    assert status['summary'].startswith('lightwhale-persistence: persistent legacy ext4 on /dev/sdb1 (noatime); '
                                        'swap /dev/sdb2; overlays /etc')
    assert list(status) == list(_status.KEYS)
    volatile = _status.build('volatile', legacy=True, fstype='ext4')
    assert volatile['legacy'] is False and volatile['fstype'] is None


def test_a_legacy_filesystem_keeps_only_the_generic_mount_options():
    assert _mount_options.for_legacy(['noatime', 'compress=zstd', 'lazytime', 'discard=async']) == (
        ['noatime', 'lazytime'], ['compress=zstd', 'discard=async'])


def test_pvs_output_names_the_physical_volumes_of_each_group():
    assert _lvm.parse_pvs('  /dev/sdb1|vg0\n  /dev/sdc|vg0\n  /dev/sdd|\n') == {'vg0': ['/dev/sdb1', '/dev/sdc']}
    with pytest.raises(ValueError):
        _lvm.parse_pvs('/dev/sdb1 vg0')


class ToolRunner(FakeRunner):
    """Answers each tool from its own list."""

    def __init__(self, answers):
        super(ToolRunner, self).__init__([])
        self.by_tool = dict((tool, list(texts)) for tool, texts in answers.items())

    def run(self, tool, args, data=None, ok=(0,), device=None):
        self.calls.append([tool] + list(args))
        return 0, self.by_tool[tool].pop(0) if tool in self.by_tool else '', ''


def test_with_listed_disks_only_the_groups_on_them_are_activated(monkeypatch):
    monkeypatch.setattr(_lvm, 'disk_of', os.path.basename)
    runner = ToolRunner({'lvs': ['mine|data|-wi-------\nforeign|data|-wi-------\nmixed|x|-wi-------\n'],
                         'pvs': ['/dev/loop3|mine\n/dev/sda|foreign\n/dev/loop3|mixed\n/dev/sdb|mixed\n']})
    activation = _lvm.plan_activation(FakeModule(), runner, True, disks={'loop3'})
    assert activation.plan.describe() == ['activate the volume group(s) mine (inactive logical volumes mine/data)']
    everything = _lvm.plan_activation(FakeModule(), ToolRunner({'lvs': ['mine|data|-wi-------\nforeign|d|-wi-------\n']}),
                                      True)
    assert everything.plan.describe() == [
        'activate the volume group(s) foreign, mine (inactive logical volumes foreign/d, mine/data)']

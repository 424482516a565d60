# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The magic header and layout plans (_magic) and the partition sync plan (_datafs_find.plan_sync) on synthetic
Disk reports: no disk is read, no command is run, nothing is written while planning.

The same plans run for real on loop devices in tests/integration.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_find
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _magic
from ansible_collections.lightwhale.persistence.plugins.module_utils._blockdev import BlockDevice
from ansible_collections.lightwhale.persistence.plugins.module_utils._candidates import Disk
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import DeviceError

GIB = _layout.GIB
MIB = _layout.MIB
HEADER = _layout.MAGIC + b'\n'


def disk(name, magic=False, size=8 * GIB, table=None, signatures=(), usage=(), read_only=False, skipped=None):
    """A Disk report as _candidates.inspect would make it."""
    report = Disk(BlockDevice(name, '/dev/' + name, None), skipped=skipped)
    report.size = size
    report.read_only = read_only
    report.magic = magic
    report.head = (HEADER if magic else b'') + b'\0' * (512 - len(HEADER))
    report.signatures = list(signatures)
    report.table = table
    report.usage = list(usage)
    return report


def layout_table(path, swap=True):
    """The table of our layout on disk C(path): swap partition 1 (1 GiB) and the data partition."""
    parts = []
    if swap:
        parts.append(dict(device=_magic.partition_node(path, 1), number=1, name=_layout.SWAP_PARTLABEL,
                          type=_layout.GPT_TYPE_LINUX_SWAP, start=MIB, size=GIB))
    parts.append(dict(device=_magic.partition_node(path, len(parts) + 1), number=len(parts) + 1,
                      name=_layout.DATA_PARTLABEL, type=_layout.GPT_TYPE_LINUX_FS, start=MIB + GIB, size=4 * GIB))
    return dict(label='gpt', id='X', partitions=parts)


class Kernel:
    """What the kernel and the disks' bytes are said to hold, for the read-only probes the planners make."""

    def __init__(self):
        self.partitions = {}
        self.data = {}
        self.matched = set()
        self.match_calls = []
        # Set by a test that applies its plan (with the writes recorded): the writes are then expected.
        self.applied = False

    def partitions_match(self, path, partitions):
        self.match_calls.append(path)
        return path in self.matched


@pytest.fixture
def kernel(monkeypatch, recorded_writes):
    state = Kernel()
    monkeypatch.setattr(_blockdev, 'kernel_partitions', lambda name: state.partitions.get(name, []))
    monkeypatch.setattr(_blockdev, 'read_bytes', lambda path, offset, length: state.data.get((path, offset), b'\0' * length))
    monkeypatch.setattr(_blockdev, 'partitions_match', state.partitions_match)
    yield state
    assert state.applied or recorded_writes == [], 'planning wrote: %r' % recorded_writes


def steps(plan):
    assert plan.done == []
    return [action.step for action in plan.actions]


# ---------------------------------------------------------------------------------------------- present


def test_present_skips_a_disk_that_already_carries_the_header(kernel, refusing_runner):
    plan = _magic.plan_present(refusing_runner, [disk('sdz', magic=True, usage=['mounted at /'])], force=False)
    assert steps(plan) == [] and plan.expected == {}


def test_present_writes_only_the_header_on_a_blank_disk(kernel, refusing_runner):
    plan = _magic.plan_present(refusing_runner, [disk('sdz')], force=False)
    assert steps(plan) == ['write-header']
    assert plan.describe() == ['/dev/sdz: write the magic header']
    assert plan.expected == {'/dev/sdz': 'magic header; no partition table'}


@pytest.mark.parametrize('force', [False, True])
def test_present_refuses_an_unfit_disk_even_with_force(kernel, refusing_runner, force):
    disks = [disk('sdy'), disk('sdz', read_only=True, usage=['mounted at /srv'])]
    with pytest.raises(DeviceError) as caught:
        _magic.plan_present(refusing_runner, disks, force=force)
    assert caught.value.details['refused'] == [dict(device='/dev/sdz', reason='read-only; in use: mounted at /srv')]


@pytest.mark.parametrize('name, signatures, table, kernel_parts, data, words', [
    ('sdz', [dict(type='ext4', offset=1080)], None, [], None, 'ext4 signature at offset 1080'),
    ('sdz', [dict(type='gpt', offset=512)], dict(label='gpt', partitions=[dict(device='/dev/sdz1')]), [], None,
     'gpt signature at offset 512, 1 partition(s)'),
    ('sdz', [], None, ['sdz1'], None, 'kernel partitions sdz1'),
    ('sdz', [], None, [], b'\0' * 10 + b'x' + b'\0' * (MIB - 11), 'unrecognised non-zero data at byte 10'),
])
def test_present_refuses_a_disk_that_holds_data_without_force(kernel, refusing_runner, name, signatures, table,
                                                              kernel_parts, data, words):
    kernel.partitions[name] = kernel_parts
    if data is not None:
        kernel.data[('/dev/' + name, 0)] = data
    with pytest.raises(DeviceError) as caught:
        _magic.plan_present(refusing_runner, [disk(name, signatures=signatures, table=table)], force=False)
    assert caught.value.message == '/dev/%s: holds %s; nothing written (force: true wipes it)' % (name, words)


def test_present_with_force_wipes_then_writes_the_header(kernel, refusing_runner, recorded_writes):
    kernel.partitions['sdz'] = ['sdz1']
    table = dict(label='gpt', partitions=[dict(device='/dev/sdz1', name='old', size=GIB)])
    plan = _magic.plan_present(refusing_runner, [disk('sdz', signatures=[dict(type='gpt', offset=512)], table=table)],
                               force=True)
    assert steps(plan) == ['wipe-signatures', 'write-header']
    assert plan.describe()[0] == '/dev/sdz: wipe gpt signature at offset 512, 1 partition(s)'
    # The old table goes: the diff says so rather than describing it.
    assert plan.expected == {'/dev/sdz': 'magic header; no partition table'}
    assert recorded_writes == []
    kernel.applied = True
    plan.apply()
    assert recorded_writes == [('wipe_signatures', '/dev/sdz'), ('zero', '/dev/sdz', 0, MIB),
                               ('zero', '/dev/sdz', 8 * GIB - MIB, MIB), ('forget_partitions', '/dev/sdz'),
                               ('write_header', '/dev/sdz')]


# ---------------------------------------------------------------------------------------------- absent


@pytest.mark.parametrize('head, length', [(HEADER, 28), (_layout.MAGIC + b'x', 27)])
def test_absent_zeroes_the_header_and_its_newline(kernel, head, length):
    magic = disk('sdz', magic=True, table=layout_table('/dev/sdz'))
    magic.head = head + b'\0' * (512 - len(head))
    plan = _magic.plan_absent([magic, disk('sdy')])
    assert steps(plan) == ['remove-header']
    assert plan.describe() == ['/dev/sdz: remove the magic header (%d bytes at byte 0)' % length]
    assert plan.expected == {'/dev/sdz': 'gpt: lightwhale-swap 1 GiB, lightwhale-data 4 GiB'}


def test_absent_refuses_a_magic_disk_in_use(kernel):
    with pytest.raises(DeviceError, match='/dev/sdz: in use: swap'):
        _magic.plan_absent([disk('sdz', magic=True, usage=['swap'])])


# ---------------------------------------------------------------------------------------------- partitioned


def partitioned(runner, disks, swap=True, size=None):
    plan, predicted = _magic.plan_partitioned(runner, disks, swap, size, 2 * GIB, 5)
    return plan, predicted


def test_a_new_layout_clears_writes_syncs_wipes_then_drops_the_header(kernel, refusing_runner):
    plan, predicted = partitioned(refusing_runner, [disk('loop3', magic=True)])
    assert steps(plan) == ['clear-partitions', 'write-gpt', 'sync-partitions', 'wipe-partitions', 'wipe-header']
    assert predicted == {'/dev/loop3': [('swap', '/dev/loop3p1'), ('data', '/dev/loop3p2')]}
    # Automatic swap: min(RAM 2 GiB, 4 GiB, disk / 8 = 1 GiB).
    assert plan.describe()[1] == '/dev/loop3: write gpt: lightwhale-swap 1 GiB, lightwhale-data 7.0 GiB'
    assert plan.describe()[2:] == [
        '/dev/loop3: tell the kernel the partitions /dev/loop3p1, /dev/loop3p2',
        '/dev/loop3: wipe old signatures inside /dev/loop3p1, /dev/loop3p2',
        '/dev/loop3: wipe the magic header (MBR boot-code area, 440 bytes)']
    assert plan.expected == {'/dev/loop3': 'gpt: lightwhale-swap 1 GiB, lightwhale-data 7.0 GiB'}


def test_a_layout_without_swap_has_one_data_partition(kernel, refusing_runner):
    _plan, predicted = partitioned(refusing_runner, [disk('sdz', magic=True)], swap=False)
    assert predicted == {'/dev/sdz': [('data', '/dev/sdz1')]}


def test_a_magic_disk_that_already_holds_the_layout_keeps_its_table(kernel, refusing_runner):
    """A run killed after the GPT write but before the header wipe: no second GPT, the partition UUIDs stay."""
    laid_out = disk('sdz', magic=True, table=layout_table('/dev/sdz'))
    plan, predicted = partitioned(refusing_runner, [laid_out])
    assert steps(plan) == ['sync-partitions', 'wipe-partitions', 'wipe-header']
    assert predicted == {'/dev/sdz': [('swap', '/dev/sdz1'), ('data', '/dev/sdz2')]}
    assert plan.expected == {'/dev/sdz': 'gpt: lightwhale-swap 1 GiB, lightwhale-data 4 GiB'}


def test_a_disk_too_small_for_the_layout_is_refused_and_nothing_planned(kernel, refusing_runner):
    with pytest.raises(DeviceError) as caught:
        partitioned(refusing_runner, [disk('sdy', magic=True), disk('sdz', magic=True, size=200 * MIB)])
    assert [item['device'] for item in caught.value.details['refused']] == ['/dev/sdz']
    assert 'too small for the layout' in caught.value.message


def test_an_unfit_magic_disk_is_refused(kernel, refusing_runner):
    with pytest.raises(DeviceError, match='/dev/sdz: read-only'):
        partitioned(refusing_runner, [disk('sdz', magic=True, read_only=True)])


def test_a_disk_laid_out_earlier_that_the_kernel_does_not_know_is_synced(kernel, refusing_runner):
    plan, predicted = partitioned(refusing_runner, [disk('sdz', table=layout_table('/dev/sdz'))])
    assert steps(plan) == ['sync-partitions'] and predicted == {}
    assert plan.describe() == ['/dev/sdz: tell the kernel the partitions /dev/sdz1, /dev/sdz2']
    assert kernel.match_calls == ['/dev/sdz']


def test_non_magic_disks_that_need_no_sync_get_no_action(kernel, refusing_runner):
    kernel.matched.add('/dev/sdw')
    disks = [disk('sdw', table=layout_table('/dev/sdw')),
             disk('sdx', table=layout_table('/dev/sdx'), usage=['mounted at /mnt']),
             disk('sdy', table=dict(label='gpt', partitions=[dict(device='/dev/sdy1', name='other')])),
             disk('sdz', skipped='read-only')]
    plan, predicted = partitioned(refusing_runner, disks)
    assert steps(plan) == [] and predicted == {}


# ---------------------------------------------------------------------------------------------- plan_sync


def test_plan_sync_tells_the_kernel_only_of_tables_it_does_not_match(kernel, refusing_runner):
    kernel.matched.add('/dev/sdw')
    other = dict(label='dos', partitions=[dict(device='/dev/sdv1', start=MIB, size=GIB)])
    disks = [disk('sdv', table=other),
             disk('sdw', table=layout_table('/dev/sdw')),
             disk('sdx', table=layout_table('/dev/sdx'), usage=['busy']),
             disk('sdy'),
             disk('sdz', skipped='optical drive')]
    plan = _datafs_find.plan_sync(refusing_runner, disks, 5)
    assert steps(plan) == ['sync-partitions']
    assert plan.describe() == ['/dev/sdv: tell the kernel the partitions /dev/sdv1']
    # A disk in use, skipped or without partitions is never even compared.
    assert kernel.match_calls == ['/dev/sdv', '/dev/sdw']

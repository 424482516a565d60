# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _partitioning
from ansible_collections.lightwhale.persistence.plugins.module_utils._magic import partition_node

MIB = 2 ** 20
GIB = 2 ** 30
SWAP = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F'
LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4'


def _part(name, kind, start):
    return dict(name=name, type=kind, start=start, size=MIB, device='/dev/x%d' % start)


@pytest.mark.parametrize('disk, mem, swap', [
    (600 * MIB, 8 * GIB, 75 * MIB),      # disk/8
    (100 * GIB, 8 * GIB, 4 * GIB),       # capped at 4 GiB
    (100 * GIB, 1 * GIB, 1 * GIB),       # RAM
    (601 * MIB, 8 * GIB, 75 * MIB),      # rounded down to a MiB
])
def test_auto_swap_size_rule(disk, mem, swap):
    assert _partitioning.auto_swap_size(disk, mem) == swap


def test_layout_fills_the_disk_aligned():
    layout, reason = _partitioning.plan_layout(600 * MIB, True, None, 8 * GIB)
    assert reason is None
    assert layout.swap_size == 75 * MIB
    assert layout.data_start == 76 * MIB
    assert layout.data_size == 600 * MIB - 76 * MIB - MIB
    assert layout.regions() == [(MIB, 'swap'), (76 * MIB, 'data')]
    assert layout.sfdisk_script() == (
        'label: gpt\n'
        'start=2048, size=153600, type=%s, name="lightwhale-swap"\n'
        'start=155648, size=%d, type=%s, name="lightwhale-data"\n' % (SWAP, layout.data_size // 512, LINUX))
    assert layout.describe() == 'gpt: lightwhale-swap 75 MiB, lightwhale-data 523 MiB'


def test_layout_without_swap_and_explicit_size():
    layout, _reason = _partitioning.plan_layout(600 * MIB, False, None, 8 * GIB)
    assert layout.swap_size == 0
    assert layout.regions() == [(MIB, 'data')]
    assert 'lightwhale-swap' not in layout.sfdisk_script()
    layout, _reason = _partitioning.plan_layout(600 * MIB, True, 64 * MIB + 5, 8 * GIB)
    assert layout.swap_size == 64 * MIB


def test_too_small_disk_names_sizes():
    layout, reason = _partitioning.plan_layout(100 * MIB, True, None, 8 * GIB)
    assert layout is None
    assert reason.startswith('too small for the layout: 100 MiB, needs at least')


@given(st.integers(min_value=0, max_value=2 ** 44), st.booleans(), st.integers(min_value=GIB // 4, max_value=64 * GIB))
def test_layout_always_fits_and_aligns(disk, swap, mem):
    layout, reason = _partitioning.plan_layout(disk, swap, None, mem)
    if layout is None:
        assert disk < _partitioning.required_size(_partitioning.auto_swap_size(disk, mem) if swap else 0)
        return
    assert layout.data_start % MIB == 0 and layout.data_size % MIB == 0
    assert layout.data_size >= 256 * MIB
    assert layout.data_start + layout.data_size <= disk - 33 * 512


def test_is_lightwhale_layout():
    swap = _part('lightwhale-swap', SWAP, 1)
    data = _part('lightwhale-data', LINUX, 2)
    assert _partitioning.is_lightwhale_layout(dict(label='gpt', partitions=[swap, data]))
    assert _partitioning.is_lightwhale_layout(dict(label='gpt', partitions=[data]))
    assert not _partitioning.is_lightwhale_layout(dict(label='dos', partitions=[swap, data]))
    assert not _partitioning.is_lightwhale_layout(dict(label='gpt', partitions=[data, _part('lightwhale-swap', SWAP, 3)]))
    assert not _partitioning.is_lightwhale_layout(dict(label='gpt', partitions=[swap, data, _part('x', LINUX, 3)]))
    assert not _partitioning.is_lightwhale_layout(dict(label='gpt', partitions=[_part('lightwhale-data', SWAP, 1)]))
    assert not _partitioning.is_lightwhale_layout(dict(label='gpt', partitions=[]))
    assert not _partitioning.is_lightwhale_layout(None)


def test_magic_partitions_by_name():
    table = dict(label='gpt', partitions=[_part('lightwhale-swap', SWAP, 1), _part('other', LINUX, 2),
                                          _part('lightwhale-data', SWAP, 3)])
    found = _partitioning.magic_partitions(table)
    assert [part['device'] for part in found['swap']] == ['/dev/x1']
    assert [part['device'] for part in found['data']] == ['/dev/x3']
    assert _partitioning.magic_partitions(None) == dict(swap=[], data=[])


@pytest.mark.parametrize('disk, number, node', [
    ('/dev/sda', 1, '/dev/sda1'), ('/dev/loop0', 2, '/dev/loop0p2'), ('/dev/nvme0n1', 1, '/dev/nvme0n1p1'),
    ('/dev/mmcblk0', 2, '/dev/mmcblk0p2'), ('/dev/vdb', 2, '/dev/vdb2'),
])
def test_partition_node_names(disk, number, node):
    assert partition_node(disk, number) == node


def test_describe_table():
    assert _partitioning.describe_table(None) == 'no partition table'
    assert _partitioning.describe_table(dict(label='gpt', partitions=[])) == 'gpt: no partitions'


def test_read_mem_total(tmp_path):
    path = tmp_path / 'meminfo'
    path.write_text(u'MemFree: 1 kB\nMemTotal:       24576000 kB\n')
    assert _partitioning.read_mem_total(str(path)) == 24576000 * 1024
    path.write_text(u'MemFree: 1 kB\n')
    with pytest.raises(ValueError):
        _partitioning.read_mem_total(str(path))

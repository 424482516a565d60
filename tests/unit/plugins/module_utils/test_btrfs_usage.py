# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The btrfs core's read-only views for persistence_info: 'btrfs filesystem usage -b' and /sys/fs/btrfs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import ProbeError

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'

# btrfs-progs 6.2, two 300 MiB loop devices, data and metadata RAID1 (tabs as the tool prints them).
USAGE_RAID1 = (
    'Overall:\n'
    '    Device size:\t\t         629145600\n'
    '    Device allocated:\t\t         218103808\n'
    '    Device unallocated:\t\t         411041792\n'
    '    Device missing:\t\t                 0\n'
    '    Device slack:\t\t                 0\n'
    '    Used:\t\t\t            294912\n'
    '    Free (estimated):\t\t         272629760\t(min: 272629760)\n'
    '    Free (statfs, df):\t\t         271581184\n'
    '    Data ratio:\t\t\t              2.00\n'
    '    Metadata ratio:\t\t              2.00\n'
    '    Global reserve:\t\t           5767168\t(used: 0)\n'
    '    Multiple profiles:\t\t                no\n'
    '\n'
    'Data,RAID1: Size:67108864, Used:0 (0.00%)\n'
    '   /dev/loop1\t  67108864\n'
    '   /dev/loop2\t  67108864\n'
    '\n'
    'Metadata,RAID1: Size:33554432, Used:131072 (0.39%)\n'
    '   /dev/loop1\t  33554432\n'
    '   /dev/loop2\t  33554432\n'
    '\n'
    'Unallocated:\n'
    '   /dev/loop1\t 205520896\n'
    '   /dev/loop2\t 205520896\n')

# An older btrfs-progs: no slack, no statfs line, no 'Multiple profiles'.
USAGE_OLD = (
    'Overall:\n'
    '    Device size:\t\t 273678336\n'
    '    Device allocated:\t\t  92274688\n'
    '    Device unallocated:\t\t 181403648\n'
    '    Device missing:\t\t 273678336\n'
    '    Used:\t\t\t    393216\n'
    '    Free (estimated):\t\t 189792256\t(min: 99090432)\n'
    '    Data ratio:\t\t\t      1.00\n'
    '    Metadata ratio:\t\t      2.00\n'
    '    Global reserve:\t\t   5767168\t(used: 0)\n'
    '\n'
    'Data,single: Size:8388608, Used:0\n')


def test_usage_of_a_raid1_filesystem():
    usage = _btrfs.parse_filesystem_usage(USAGE_RAID1)
    assert usage == dict(
        device_size=629145600, device_allocated=218103808, device_unallocated=411041792, device_missing=0,
        device_slack=0, used=294912, free_estimated=272629760, free_estimated_min=272629760,
        free_statfs_df=271581184, data_ratio=2.0, metadata_ratio=2.0, global_reserve=5767168,
        global_reserve_used=0, multiple_profiles=False)


def test_usage_of_an_older_btrfs_progs():
    usage = _btrfs.parse_filesystem_usage(USAGE_OLD)
    assert usage['device_missing'] == 273678336 and usage['free_estimated_min'] == 99090432
    assert 'device_slack' not in usage and 'multiple_profiles' not in usage


@pytest.mark.parametrize('text', ['', 'ERROR: not a btrfs filesystem\n', 'Overall:\n    Used: 5\n'])
def test_usage_that_cannot_be_read_is_an_error(text):
    with pytest.raises(ProbeError):
        _btrfs.parse_filesystem_usage(text)


@given(st.dictionaries(st.sampled_from(['Device size', 'Used', 'Device missing', 'Free (statfs, df)']),
                       st.integers(min_value=0, max_value=2 ** 62), min_size=1))
def test_usage_numbers_survive_the_parser(values):
    values = dict(values, **{'Device size': values.get('Device size', 1)})
    text = 'Overall:\n' + ''.join('    %s:\t\t %d\n' % item for item in values.items()) + '\nData,single: Size:1\n'
    usage = _btrfs.parse_filesystem_usage(text)
    for key, value in values.items():
        assert usage[_btrfs._usage_key(key)] == value


def test_kernel_view_of_a_mounted_filesystem(tmp_path):
    fs = tmp_path / FSID
    (fs / 'devices').mkdir(parents=True)
    for name in ('loop3p2', 'loop1p2'):
        (fs / 'devices' / name).write_text(u'')
    (fs / 'label').write_text(u'lightwhale-data\n')
    for devid in ('1', '2', '3'):
        (fs / 'devinfo' / devid).mkdir(parents=True)
    assert _btrfs.kernel_label(FSID, str(tmp_path)) == 'lightwhale-data'
    assert _btrfs.kernel_devices(FSID, str(tmp_path)) == ['loop1p2', 'loop3p2']
    assert _btrfs.kernel_devids(FSID, str(tmp_path)) == [1, 2, 3]


def test_kernel_view_of_a_filesystem_not_mounted(tmp_path):
    assert _btrfs.kernel_label(FSID, str(tmp_path)) is None
    assert _btrfs.kernel_devices(FSID, str(tmp_path)) is None
    assert _btrfs.kernel_devids(FSID, str(tmp_path)) is None

# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The btrfs core: profile rule, superblock parser (on superblocks written by mkfs.btrfs 6.2), output parsers."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import os
import shutil
import struct
import uuid
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import ProbeError

# The primary superblocks (4096 bytes at 64 KiB) of 'mkfs.btrfs -L lightwhale-data -d single -m dup' on one
# image, and of the second of two images after 'mkfs.btrfs -d raid1 -m raid1' (no label), btrfs-progs 6.2.
SINGLE = zlib.decompress(base64.b64decode(
    'eNpjbT4awIAH3LXPbokS95w8a1rDItX3Lk8YGBjB4oxQ+Xgnj6C04HhfNpiGA5cgUg4BjNhNPCAEkWcCUzB9cMUCIDkoBrIbkdTA'
    'ADOUdmRGEmREt4ChgRVuIAzjBcu25ix7+NkhY8c003cdt1fkoHs9JzM9o6Q8IzEnVTclsSSRYRSMMABNYsA8AEvbDWCSCU2FEgqf'
    'EZz0mIA0IolC9KMnOIT8Bazy9LBgFIyCUTAKRsEoGAWooAFSa7Ki1bII/kVUvgOa+gNofAc09WhNY0Zy3QltgsObzdCmOBta7c+G'
    'y50O6Ppp5E6GQJTmPKyJDuc3BKDyHdDUO6DLC2LvCRxgpNCdkPBhgdsDcSec3xCIykd3J0MAmjyt3DkKRgGJAACxP22M'))
RAID1_DEVID2 = zlib.decompress(base64.b64decode(
    'eNrj59Cfz4AH/Nl/7VVam0fLXpe+U/IHfiUxMDCCxRmh8vFOHkFpwfG+bDANBy5BpBwCGLGb2KAKkWcCUzB9TDBpAZAcFAPZjUhq'
    'YIAZSjsyIwnCDWA4IAS1iA1uIAzjBQ/cWCL12l1VZ1cErmN08JfH9PooGNEAmqCfMDDA0nYDWtKDCAuh8BnBSY8JSCMyBES/79JP'
    '109s9vo/uXG5pGDa5W0IcwSwJkh6WDAKRsEoGAWjYBSMArSW6wVwrcqKVssi+BdR+Q5o6g+g8R3Q1KM1jZnIdSe0CQ5vNkOb4ohm'
    '9AU0eXR3oeunkTsZAlGa87BWCZzfEIDKd0BT74AuL4jSNYH3BA4woomTCiDhwwK3B+JOOL8hEJWP7k6GADR5dHdCwxPqTqbRnDYK'
    '6AUAtFBaEg=='))

DF_RAID1 = '''Data, RAID1: total=67108864, used=0
System, RAID1: total=8388608, used=16384
Metadata, RAID1: total=46727168, used=131072
GlobalReserve, single: total=5767168, used=16384
'''
DF_HUMAN = '''Data, single: total=8.00MiB, used=0.00B
System, DUP: total=8.00MiB, used=16.00KiB
Metadata, DUP: total=51.19MiB, used=128.00KiB
GlobalReserve, single: total=5.50MiB, used=0.00B
'''
# After a degraded read-write mount wrote data: chunks of two profiles.
DF_MIXED = '''Data, single: total=268435456, used=1048576
Data, RAID1: total=67108864, used=0
System, RAID1: total=8388608, used=16384
Metadata, RAID1C3: total=46727168, used=180224
GlobalReserve, single: total=5767168, used=0
'''
DF_MIXED_BG = '''Data+Metadata, single: total=8388608, used=28672
System, single: total=4194304, used=4096
GlobalReserve, single: total=5767168, used=0
'''
SUBVOLUMES = '''ID 256 gen 8 top level 5 path @lightwhale-data
ID 257 gen 8 top level 5 path @lightwhale-state
ID 258 gen 8 top level 5 path @lightwhale-state-snapshots
ID 259 gen 12 top level 257 path @lightwhale-state/with space
'''


@pytest.mark.parametrize('count, profiles', [
    (1, ('single', 'dup')), (2, ('raid1', 'raid1')), (3, ('raid1', 'raid1c3')),
    (4, ('raid1', 'raid1c4')), (5, ('raid1', 'raid1c4')), (12, ('raid1', 'raid1c4')),
])
def test_profile_rule(count, profiles):
    assert _btrfs.profiles_for(count) == profiles


def test_profile_rule_needs_a_device():
    with pytest.raises(ValueError):
        _btrfs.profiles_for(0)


def test_crc32c_check_value():
    # The check value of CRC-32C (Castagnoli) for the ASCII digits 1 to 9.
    assert _btrfs.crc32c(b'123456789') == 0xE3069283
    assert _btrfs.crc32c(b'') == 0


def test_real_single_device_superblock():
    sb = _btrfs.parse_superblock(SINGLE)
    assert sb.is_btrfs and sb.valid and sb.csum_ok is True and sb.problem() is None
    assert sb.fsid == 'dd3f6b84-5a17-4993-9a96-80a225ef44e4'
    assert sb.label == 'lightwhale-data'
    assert (sb.devid, sb.num_devices, sb.generation, sb.bytenr) == (1, 1, 6, 65536)
    assert sb.dev_uuid == 'a6b56ca6-e1f3-4068-b896-35ee88dba86c'
    assert sb.to_dict()['magic'] == '_BHRfS_M'


def test_real_second_member_of_a_raid1_superblock():
    sb = _btrfs.parse_superblock(RAID1_DEVID2)
    assert sb.valid and sb.label == ''
    assert sb.fsid == 'fcbfd6ea-6686-4884-bd44-8eca1fc0fa62'
    assert (sb.devid, sb.num_devices) == (2, 2)
    assert sb.dev_uuid == 'e0460459-2e87-4525-9b78-51ae01404f1f'


@pytest.mark.parametrize('offset', [32, 80, 299, 4095])
def test_any_damaged_byte_fails_the_checksum_but_keeps_the_magic(offset):
    data = bytearray(SINGLE)
    data[offset] ^= 0xFF
    sb = _btrfs.parse_superblock(bytes(data))
    assert sb.is_btrfs and sb.csum_ok is False and not sb.valid
    assert 'checksum mismatch' in sb.problem()


def test_damaged_checksum_field():
    data = bytearray(SINGLE)
    data[0] ^= 1
    assert _btrfs.parse_superblock(bytes(data)).csum_ok is False


def test_unfinished_mkfs_and_zeros():
    data = bytearray(SINGLE)
    data[64:72] = _btrfs.MAGIC_TEMPORARY
    sb = _btrfs.parse_superblock(bytes(data))
    assert not sb.is_btrfs and 'unfinished' in sb.problem()
    zeros = _btrfs.parse_superblock(bytes(4096))
    assert not zeros.is_btrfs and zeros.label == '' and zeros.problem() == 'no btrfs magic'


def test_short_superblock_is_an_error():
    with pytest.raises(ValueError):
        _btrfs.parse_superblock(SINGLE[:4095])


def _superblock(fsid, label, devid, num_devices, csum_type=0):
    data = bytearray(4096)
    data[32:48] = fsid.bytes
    struct.pack_into('<Q', data, 48, 65536)
    data[64:72] = _btrfs.MAGIC
    struct.pack_into('<Q', data, 136, num_devices)
    struct.pack_into('<H', data, 196, csum_type)
    struct.pack_into('<Q', data, 201, devid)
    encoded = label.encode('utf-8')[:255]
    data[299:299 + len(encoded)] = encoded
    checksum = _btrfs.superblock_checksum(csum_type, data)
    if checksum is not None:
        data[:len(checksum)] = checksum
    return bytes(data), encoded.decode('utf-8', 'replace')


# The CRC is pure Python; under coverage tracing one example can take longer than the default deadline.
@settings(deadline=None)
@given(st.uuids(), st.text(alphabet=st.sampled_from(list(u'abcdefghijklmnopqrstuvwxyz0123456789-_ .\u00e4\u03bb\u6f22')),
                           max_size=60),
       st.integers(min_value=1, max_value=2 ** 64 - 1), st.integers(min_value=0, max_value=2 ** 64 - 1),
       st.sampled_from([0, 2, 3]))
def test_superblock_round_trip(fsid, label, devid, num_devices, csum_type):
    data, expected_label = _superblock(fsid, label, devid, num_devices, csum_type)
    sb = _btrfs.parse_superblock(data)
    assert sb.valid and sb.csum_ok is True
    assert sb.fsid == str(fsid) and sb.devid == devid and sb.num_devices == num_devices
    assert sb.label == expected_label


def test_xxhash_superblocks_are_not_judged():
    data, _label = _superblock(uuid.uuid4(), 'x', 1, 1, csum_type=1)
    sb = _btrfs.parse_superblock(data)
    assert sb.csum_ok is None and sb.valid


@settings(deadline=None)
@given(st.binary(max_size=600), st.sampled_from([bytes(4096), SINGLE]))
def test_superblock_parser_never_raises_on_content(head, base):
    # Every field parsed lies in the first 555 bytes: random heads over a zero and a real superblock.
    data = head + base[len(head):]
    sb = _btrfs.parse_superblock(data)
    assert sb.is_btrfs == (data[64:72] == _btrfs.MAGIC)


def test_read_superblock_of_a_file(tmp_path):
    image = tmp_path / 'image'
    image.write_bytes(bytes(65536) + SINGLE + bytes(8192))
    assert _btrfs.read_superblock(str(image), 65536 + 4096 + 8192).label == 'lightwhale-data'
    assert _btrfs.read_superblock(str(image), 65536) is None


@pytest.mark.parametrize('text, data, metadata', [
    (DF_RAID1, 'raid1', 'raid1'), (DF_HUMAN, 'single', 'dup'), (DF_MIXED, 'single,raid1', 'raid1c3'),
    (DF_MIXED_BG, 'single', 'single'),
])
def test_filesystem_df(text, data, metadata):
    assert _btrfs.profiles_of(_btrfs.parse_filesystem_df(text)) == (data, metadata)


def test_filesystem_df_keeps_every_type():
    df = _btrfs.parse_filesystem_df('WARNING: something\n' + DF_RAID1)
    assert df == {'Data': ['raid1'], 'System': ['raid1'], 'Metadata': ['raid1'], 'GlobalReserve': ['single']}


@pytest.mark.parametrize('text', ['', 'ERROR: not a btrfs filesystem\n', 'System, RAID1: total=1, used=1\n'])
def test_filesystem_df_without_data_is_an_error(text):
    with pytest.raises(ProbeError):
        _btrfs.parse_filesystem_df(text)


@given(st.text(max_size=300))
def test_filesystem_df_raises_only_probe_errors(text):
    try:
        _btrfs.parse_filesystem_df(text)
    except ProbeError:
        pass


def test_subvolume_list():
    found = _btrfs.parse_subvolume_list(SUBVOLUMES)
    assert [item['path'] for item in found] == [
        '@lightwhale-data', '@lightwhale-state', '@lightwhale-state-snapshots', '@lightwhale-state/with space']
    assert found[0] == dict(id=256, gen=8, top_level=5, path='@lightwhale-data')
    assert found[3]['top_level'] == 257
    assert _btrfs.parse_subvolume_list('') == []


def test_subvolume_list_refuses_what_it_cannot_read():
    with pytest.raises(ProbeError):
        _btrfs.parse_subvolume_list('ID x gen 8 top level 5 path a\n')


@pytest.mark.parametrize('num, present, missing', [
    (1, [1], []), (2, [1], [2]), (2, [2], [1]), (3, [1, 3], [2]), (4, [], [1, 2, 3, 4]),
    (2, [1, 5], None), (2, [3], None),
])
def test_missing_devids(num, present, missing):
    assert _btrfs.missing_devids(num, present) == missing


def _sysfs(tmp_path, fsid, devices, missing=()):
    base = tmp_path / 'btrfs'
    (base / 'features').mkdir(parents=True, exist_ok=True)
    (base / fsid / 'devices').mkdir(parents=True)
    for devid, name in enumerate(devices, 1):
        (base / fsid / 'devices' / name).mkdir()
        info = base / fsid / 'devinfo' / str(devid)
        info.mkdir(parents=True)
        (info / 'missing').write_text('1\n' if devid in missing else '0\n')
    return str(base)


def test_kernel_views_of_mounted_filesystems(tmp_path):
    base = _sysfs(tmp_path, 'aaaa', ['loop1p2', 'loop2p2'], missing=[2])
    _sysfs(tmp_path, 'bbbb', ['sdb'])
    assert _btrfs.mounted_members(base) == {'loop1p2': 'aaaa', 'loop2p2': 'aaaa', 'sdb': 'bbbb'}
    assert _btrfs.kernel_missing('aaaa', base) == [2]
    assert _btrfs.kernel_missing('bbbb', base) == []
    assert _btrfs.kernel_missing('cccc', base) is None
    assert _btrfs.mounted_members(os.path.join(base, 'absent')) == {}


def test_member_count_counts_missing_members_but_not_a_replace_target(tmp_path):
    base = _sysfs(tmp_path, 'aaaa', ['loop1p2', 'loop2p2'], missing=[2])
    assert _btrfs.member_count('aaaa', base) == 2
    (tmp_path / 'btrfs' / 'aaaa' / 'devinfo' / '0').mkdir()  # the target of a running replace
    (tmp_path / 'btrfs' / 'aaaa' / 'devinfo' / '0' / 'missing').write_text('0\n')
    assert _btrfs.member_count('aaaa', base) == 2
    assert _btrfs.member_count('cccc', base) == 0


def test_filesystem_unmounted_while_members_are_listed(tmp_path, monkeypatch):
    """Another process unmounts a filesystem just before its devices are listed: it is not mounted, not an error."""
    base = _sysfs(tmp_path, 'aaaa', ['loop1p2'])
    _sysfs(tmp_path, 'bbbb', ['loop5p2'])
    listdir = os.listdir

    def unmount_then_listdir(path):
        if path == os.path.join(base, 'bbbb', 'devices'):
            shutil.rmtree(os.path.join(base, 'bbbb'))
        return listdir(path)

    monkeypatch.setattr(os, 'listdir', unmount_then_listdir)
    assert _btrfs.mounted_members(base) == {'loop1p2': 'aaaa'}


def test_is_subvolume_of_plain_directories(tmp_path):
    assert not _btrfs.is_subvolume(str(tmp_path / 'absent'))
    (tmp_path / 'dir').mkdir()
    assert _btrfs.is_subvolume(str(tmp_path / 'dir')) == (os.lstat(str(tmp_path / 'dir')).st_ino == 256)


def _allocation(root, fsid, layout):
    for kind, names in layout.items():
        for name in names:
            (root / fsid / 'allocation' / kind / name).mkdir(parents=True)
        (root / fsid / 'allocation' / kind / 'total_bytes').parent.mkdir(parents=True, exist_ok=True)
        (root / fsid / 'allocation' / kind / 'total_bytes').write_text('0\n')


def test_profiles_from_sysfs(tmp_path):
    _allocation(tmp_path, 'f1', dict(data=['raid1'], metadata=['raid1'], system=['raid1']))
    assert _btrfs.profiles_from_sysfs('f1', str(tmp_path)) == ('raid1', 'raid1')
    # A conversion under way: both profiles, in a stable order.
    _allocation(tmp_path, 'f2', dict(data=['single', 'raid1'], metadata=['raid1c3', 'dup']))
    assert _btrfs.profiles_from_sysfs('f2', str(tmp_path)) == ('raid1,single', 'dup,raid1c3')


def test_profiles_from_sysfs_does_not_tell_unmounted_or_mixed_filesystems(tmp_path):
    assert _btrfs.profiles_from_sysfs('absent', str(tmp_path)) is None
    assert _btrfs.profiles_from_sysfs(None, str(tmp_path)) is None
    _allocation(tmp_path, 'mixed', dict(mixed=['single'], system=['single']))
    assert _btrfs.profiles_from_sysfs('mixed', str(tmp_path)) is None

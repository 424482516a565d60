# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import DeviceError, ProbeError

MAGIC = b'lightwhale-please-format-me'

SFDISK_JSON = json.dumps({'partitiontable': {
    'label': 'gpt', 'id': 'B0F55D33-100F-7643-A1AD-1EC78BFD4939', 'device': '/dev/loop0', 'unit': 'sectors',
    'firstlba': 2048, 'lastlba': 1228766, 'sectorsize': 512, 'partitions': [
        {'node': '/dev/loop0p1', 'start': 2048, 'size': 131072, 'type': '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
         'uuid': '7959ADEF-B918-F346-9F5C-E2511449AF64', 'name': 'lightwhale-swap'},
        {'node': '/dev/loop0p2', 'start': 133120, 'size': 1093632, 'type': '0fc63daf-8483-4772-8e79-3d69d8477de4',
         'uuid': 'D861FFE6-E774-A44B-A7E4-6BCCC8F78672', 'name': 'lightwhale-data'}]}})


@pytest.mark.parametrize('head, expected', [
    (MAGIC, True), (MAGIC + b'\n', True), (MAGIC + b'\0' * 485, True), (MAGIC + b'junk', True),
    (b' ' + MAGIC, False), (MAGIC[:-1], False), (MAGIC.upper(), False), (b'', False),
    (MAGIC.decode('ascii').encode('utf-16-le'), False), (b'\0' + MAGIC, False),
])
def test_has_magic_is_an_exact_prefix_match(head, expected):
    assert _blockdev.has_magic(head) is expected


@given(st.binary(max_size=600))
def test_has_magic_only_when_the_first_27_bytes_match(head):
    assert _blockdev.has_magic(head) == (head[:27] == MAGIC)


@given(st.binary(max_size=600))
def test_has_magic_after_any_suffix(suffix):
    assert _blockdev.has_magic(MAGIC + suffix)


def test_parse_sfdisk_json():
    table = _blockdev.parse_sfdisk_json(SFDISK_JSON)
    assert table['label'] == 'gpt'
    swap, data = table['partitions']
    assert swap == dict(device='/dev/loop0p1', number=1, name='lightwhale-swap',
                        type='0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', uuid='7959ADEF-B918-F346-9F5C-E2511449AF64',
                        start=2048 * 512, size=131072 * 512)
    assert data['type'] == '0FC63DAF-8483-4772-8E79-3D69D8477DE4'
    assert data['number'] == 2


@pytest.mark.parametrize('text', ['', '{', '{}', '{"partitiontable": {"partitions": [{"node": "/dev/x1"}]}}'])
def test_parse_sfdisk_json_failure_is_a_probe_error(text):
    with pytest.raises(ProbeError):
        _blockdev.parse_sfdisk_json(text, '/dev/x')


def test_parse_wipefs_json():
    text = json.dumps({'signatures': [
        {'device': 'loop1', 'offset': '0x438', 'type': 'ext4', 'uuid': 'u', 'label': None},
        {'device': 'loop1', 'offset': '0x1fe', 'type': 'PMBR', 'uuid': None, 'label': None}]})
    assert _blockdev.parse_wipefs_json(text) == [
        dict(type='ext4', offset=1080, label=None, uuid='u'), dict(type='PMBR', offset=510, label=None, uuid=None)]
    assert _blockdev.parse_wipefs_json('') == []
    assert _blockdev.parse_wipefs_json('{"signatures": []}') == []


@pytest.mark.parametrize('text', ['{', '[1]', '{"signatures": [{"offset": "zz"}]}'])
def test_parse_wipefs_json_failure_is_a_probe_error(text):
    with pytest.raises(ProbeError):
        _blockdev.parse_wipefs_json(text, '/dev/x')


def test_parse_wipefs_json_of_several_devices():
    text = json.dumps({'signatures': [
        {'device': 'loop1p2', 'offset': '0x10040', 'type': 'btrfs', 'uuid': 'u', 'label': 'lightwhale-data'},
        {'device': 'loop1p1', 'offset': '0xff6', 'type': 'swap', 'uuid': 's', 'label': 'lightwhale-swap'}]})
    found = _blockdev.parse_wipefs_json_of(text, ['/dev/loop1p1', '/dev/loop1p2', '/dev/loop2p1'])
    assert found == {'/dev/loop1p1': [dict(type='swap', offset=4086, label='lightwhale-swap', uuid='s')],
                     '/dev/loop1p2': [dict(type='btrfs', offset=65600, label='lightwhale-data', uuid='u')],
                     '/dev/loop2p1': []}
    assert _blockdev.parse_wipefs_json_of('', ['/dev/a', '/dev/b']) == {'/dev/a': [], '/dev/b': []}


@pytest.mark.parametrize('text, paths, needle', [
    ('{"signatures": [{"device": "sdz1", "offset": "0x0"}]}', ['/dev/sda1', '/dev/sdb1'], "'sdz1', which was not"),
    ('{"signatures": [{"device": "sda1", "offset": "zz"}]}', ['/dev/sda1', '/dev/sdb1'], 'cannot parse'),
    ('[1]', ['/dev/sda1', '/dev/sdb1'], 'cannot parse'),
    ('{}', ['/dev/sda1', '/dev/mapper/sda1'], 'the same name'),
])
def test_parse_wipefs_json_of_refuses_what_it_cannot_place(text, paths, needle):
    with pytest.raises(ProbeError, match=needle):
        _blockdev.parse_wipefs_json_of(text, paths)


@pytest.mark.parametrize('name', ['sda', 'sdaa', 'vdb', 'xvdc', 'hda', 'nvme0n1', 'nvme12n3', 'mmcblk0'])
def test_scan_takes_whole_disks(name):
    assert _blockdev.scan_exclusion(name) is None


@pytest.mark.parametrize('name, reason', [
    ('loop0', 'loop device'), ('ram0', 'RAM disk'), ('zram0', 'compressed RAM disk'), ('dm-0', 'device-mapper'),
    ('md127', 'md RAID'), ('sr0', 'optical'), ('nbd0', 'network block'), ('mmcblk0boot0', 'not a kind'),
    ('nvme0c0n1', 'not a kind'), ('sda1', 'not a kind'),
])
def test_scan_excludes_other_kinds(name, reason):
    assert reason in _blockdev.scan_exclusion(name)


def test_resolve_errors_name_the_path(tmp_path):
    with pytest.raises(DeviceError) as err:
        _blockdev.resolve(str(tmp_path / 'nope'))
    assert 'nope: does not exist' in err.value.message
    regular = tmp_path / 'file'
    regular.write_text(u'x')
    with pytest.raises(DeviceError) as err:
        _blockdev.resolve(str(regular))
    assert 'not a block device' in err.value.message
    with pytest.raises(DeviceError) as err:
        _blockdev.resolve('dev/sda')
    assert 'not an absolute path' in err.value.message


def test_read_bytes_short_read_is_a_probe_error(tmp_path):
    path = tmp_path / 'small'
    path.write_bytes(b'abc')
    assert _blockdev.read_bytes(str(path), 1, 2) == b'bc'
    with pytest.raises(ProbeError):
        _blockdev.read_bytes(str(path), 0, 10)
    with pytest.raises(ProbeError):
        _blockdev.read_bytes(str(tmp_path / 'missing'), 0, 1)

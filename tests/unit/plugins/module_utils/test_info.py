# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""persistence_info's pure parts: the mode, what makes a disk empty, by-id links, the status file, the summary.

The whole module runs for real on loop devices in tests/integration/test_persistence_info.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import struct

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _info
from ansible_collections.lightwhale.persistence.plugins.module_utils._blockdev import BlockDevice
from ansible_collections.lightwhale.persistence.plugins.module_utils._candidates import Disk
from ansible_collections.lightwhale.persistence.plugins.module_utils._mountinfo import parse_mountinfo_line

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'
MIB = 1024 * 1024


def mount(fstype, root='/', target='/mnt/lightwhale-data', source='/dev/sdb2'):
    return parse_mountinfo_line('30 25 0:41 %s %s rw,relatime shared:1 - %s %s rw\n' % (root, target, fstype, source))


@pytest.mark.parametrize('fstype, root, fsid, label, kind', [
    (None, None, None, None, 'none'),
    ('tmpfs', '/', None, None, 'tmpfs'),
    ('btrfs', '/@lightwhale-data', FSID, 'lightwhale-data', 'datafs'),
    ('btrfs', '/@lightwhale-state', FSID, 'lightwhale-data', 'other'),
    ('btrfs', '/@lightwhale-data', FSID, 'another-label', 'other'),
    ('btrfs', '/@lightwhale-data', None, None, 'other'),
    ('ext4', '/', None, None, 'other'),
])
def test_what_is_mounted_at_the_data_mount_point(fstype, root, fsid, label, kind):
    found = mount(fstype, root) if fstype else None
    assert _info.data_mount_kind(found, fsid, label) == kind


@pytest.mark.parametrize('kind, missing, mode', [
    ('datafs', [], 'persistent'),
    ('datafs', ['devid 2'], 'degraded'),
    ('tmpfs', [], 'volatile'),
    ('none', [], 'none-yet'),
    ('other', [], 'none-yet'),
])
def test_the_mode(kind, missing, mode):
    assert _info.mode_of(kind, missing) == mode
    assert mode in _info.MODES


class FakeDevice:
    """What _magic.contents reads of a disk: its kernel partitions and its bytes."""

    def __init__(self, monkeypatch, data=None, size=8 * MIB, kernel_parts=()):
        self.data = data or {}
        self.size = size
        self.reads = []
        monkeypatch.setattr(_blockdev, 'kernel_partitions', lambda name: list(kernel_parts))
        monkeypatch.setattr(_blockdev, 'read_bytes', self.read)

    def read(self, path, offset, length):
        self.reads.append((offset, length))
        out = bytearray(length)
        for at, chunk in self.data.items():
            for index, byte in enumerate(bytearray(chunk)):
                if offset <= at + index < offset + length:
                    out[at + index - offset] = byte
        return bytes(out)

    def disk(self, **values):
        disk = Disk(BlockDevice('sdx', '/dev/sdx', (8, 0)))
        disk.size = self.size
        disk.read_only = False
        for key, value in values.items():
            setattr(disk, key, value)
        return disk


def test_a_blank_disk_is_empty_after_reading_its_first_and_last_mib(monkeypatch):
    fake = FakeDevice(monkeypatch)
    assert _info.classify(fake.disk()) == (True, [])
    assert sorted(fake.reads) == [(0, MIB), (fake.size - MIB, MIB)]


@pytest.mark.parametrize('values, kernel_parts, data, word', [
    (dict(skipped='loop device (taken only when listed in devices)'), (), {}, 'loop device'),
    (dict(magic=True), (), {}, 'magic header'),
    (dict(read_only=True), (), {}, 'read-only'),
    (dict(usage=['/dev/sdx1 is mounted at /srv']), (), {}, 'mounted'),
    (dict(usage=['held by dm-0']), (), {}, 'held by dm-0'),
    (dict(signatures=[dict(type='ext4', offset=1080)]), (), {}, 'ext4 signature'),
    (dict(table=dict(label='gpt', partitions=[dict(device='/dev/sdx1')]),
          signatures=[dict(type='gpt', offset=512)]), (), {}, 'partition'),
    (dict(), ('sdx1',), {}, 'kernel partitions sdx1'),
    (dict(), (), {4096: b'\x01'}, 'non-zero data at byte 4096'),
    (dict(), (), {8 * MIB - 1: b'\xff'}, 'non-zero data at byte %d' % (8 * MIB - 1)),
])
def test_a_disk_that_holds_anything_is_not_empty(monkeypatch, values, kernel_parts, data, word):
    fake = FakeDevice(monkeypatch, data=data, kernel_parts=kernel_parts)
    empty, reasons = _info.classify(fake.disk(**values))
    assert not empty
    assert any(word in reason for reason in reasons), reasons


def test_a_disk_in_use_is_not_read(monkeypatch):
    fake = FakeDevice(monkeypatch)
    _info.classify(fake.disk(usage=['/dev/sdx is an active swap area']))
    assert fake.reads == []


def test_by_id_links(tmp_path):
    (tmp_path / 'dev').mkdir()
    for name in ('sdb', 'sdc'):
        (tmp_path / 'dev' / name).write_text(u'')
    by_id = tmp_path / 'by-id'
    by_id.mkdir()
    os.symlink('../dev/sdb', str(by_id / 'virtio-data1'))
    os.symlink('../dev/sdb', str(by_id / 'wwn-0x5000'))
    os.symlink('../dev/sdc', str(by_id / 'virtio-data2'))
    (by_id / 'not-a-link').write_text(u'')
    os.symlink('../../etc/passwd', str(by_id / 'elsewhere'))
    links = _info.by_id_links(str(by_id), str(tmp_path / 'dev'))
    assert links == {'sdb': [str(by_id / 'virtio-data1'), str(by_id / 'wwn-0x5000')], 'sdc': [str(by_id / 'virtio-data2')]}
    # Links into another directory than /dev are not disks.
    assert _info.by_id_links(str(by_id)) == {}


def test_by_id_links_without_udev(tmp_path):
    assert _info.by_id_links(str(tmp_path / 'absent')) == {}


def test_by_id_links_into_dev():
    links = _info.by_id_links('/dev/disk/by-id')
    for name, paths in links.items():
        assert all(os.path.realpath(path) == '/dev/' + name for path in paths)


def test_model_of(tmp_path):
    (tmp_path / 'sdb' / 'device').mkdir(parents=True)
    (tmp_path / 'sdb' / 'device' / 'model').write_text(u'QEMU HARDDISK   \n')
    assert _info.model_of('sdb', str(tmp_path)) == 'QEMU HARDDISK'
    assert _info.model_of('vdb', str(tmp_path)) is None


def test_read_status(tmp_path):
    assert _info.read_status(str(tmp_path)) == (None, None)
    run = tmp_path / 'run' / 'lightwhale'
    run.mkdir(parents=True)
    (run / 'persistence.json').write_text(u'{"mode": "persistent", "ok": true}\n')
    assert _info.read_status(str(tmp_path)) == (dict(mode='persistent', ok=True), None)
    (run / 'persistence.json').write_text(u'{"mode": ')
    status, problem = _info.read_status(str(tmp_path))
    assert status is None and 'not JSON' in problem
    (run / 'persistence.json').write_text(u'[1, 2]')
    status, problem = _info.read_status(str(tmp_path))
    assert status is None and 'not an object' in problem


def test_kernel_filesystem_from_sysfs(tmp_path):
    fs = tmp_path / FSID
    (fs / 'devices').mkdir(parents=True)
    (fs / 'devices' / 'sdb2').write_text(u'')
    for devid, missing in ((1, '0'), (2, '1')):
        (fs / 'devinfo' / str(devid)).mkdir(parents=True)
        (fs / 'devinfo' / str(devid) / 'missing').write_text(missing + u'\n')
    found = _info.kernel_filesystem(FSID, 'lightwhale-data', str(tmp_path))
    assert found == dict(label='lightwhale-data', uuid=FSID, mounted=True, members=['/dev/sdb2'],
                         missing=['devid 2'], num_devices=2)


def _member(dev, name, devid):
    """A file holding a btrfs superblock of device id C(devid) at 64 KiB, as a member's device node would."""
    data = bytearray(4096)
    data[64:72] = _btrfs.MAGIC
    struct.pack_into('<Q', data, 201, devid)
    with open(str(dev / name), 'wb') as handle:
        handle.seek(65536)
        handle.write(bytes(data))


def test_members_are_listed_in_device_id_order_not_by_name(tmp_path):
    # sysfs lists loop20p2 before loop2p2; the filesystem's first device is loop2p2.
    _member(tmp_path, 'loop2p2', 1)
    _member(tmp_path, 'loop20p2', 2)
    (tmp_path / 'gone').write_bytes(b'')
    assert _info.by_devid(['gone', 'loop20p2', 'loop2p2'], str(tmp_path)) == ['loop2p2', 'loop20p2', 'gone']


def result(mode='persistent', fs=True, **values):
    out = dict(mode=mode, swap=dict(active=True, devices=['/dev/sdb1']),
               overlays=[dict(path='/etc', mounted=True), dict(path='/var', mounted=False)],
               magic_disks=[], empty_disks=[], problems=[], filesystem=None)
    if fs:
        out['filesystem'] = dict(label='lightwhale-data', uuid=FSID, mounted=True, members=['/dev/sdb2', '/dev/sdc2'],
                                 missing=[], num_devices=2, data_profile='raid1', metadata_profile='raid1',
                                 size=10 * 1024 ** 3, free=9 * 1024 ** 3)
    out.update(values)
    return out


def test_summary_of_a_persistent_host():
    line = _info.summary(result())
    assert line == ('persistent; raid1/raid1 on /dev/sdb2,/dev/sdc2 (2 of 2 members), 9 GiB free of 10 GiB; '
                    'swap /dev/sdb1; overlays /etc; 0 empty disk(s)')


def test_summary_of_a_degraded_host():
    values = result('degraded')
    values['filesystem'].update(members=['/dev/sdb2'], missing=['devid 2'])
    assert 'missing devid 2' in _info.summary(values) and '(1 of 2 members' in _info.summary(values)


def test_summary_of_a_host_waiting_for_its_reboot():
    line = _info.summary(result('none-yet', fs=False, magic_disks=['/dev/sdb', '/dev/sdc'],
                                swap=dict(active=False, devices=[]), problems=['x']))
    assert line.startswith('none-yet; swap off;')
    assert '2 magic disk(s) waiting for the next boot: /dev/sdb,/dev/sdc' in line
    assert line.endswith('1 problem(s)')


def test_summary_of_a_filesystem_not_mounted():
    values = result('none-yet')
    values['filesystem'].update(mounted=False, size=None, free=None, data_profile=None, metadata_profile=None)
    assert '?/? on /dev/sdb2,/dev/sdc2 (2 of 2 members), not mounted' in _info.summary(values)


def test_empty_fact_keeps_what_the_selector_reads():
    fact = dict(device='/dev/sdb', given='/dev/disk/by-id/x', name='sdb', size=1, ids=['/dev/disk/by-id/x'],
                model=None, partitions=[], signatures=[])
    assert _info.empty_fact(fact) == dict(device='/dev/sdb', given='/dev/disk/by-id/x', name='sdb', size=1,
                                          ids=['/dev/disk/by-id/x'], model=None)


def test_status_document_round_trip(tmp_path):
    run = tmp_path / 'run' / 'lightwhale'
    run.mkdir(parents=True)
    document = dict(version=1, mode='degraded', missing=['devid 2'], warnings=[u'caf\u00e9'])
    (run / 'persistence.json').write_bytes(json.dumps(document).encode('utf-8'))
    assert _info.read_status(str(tmp_path)) == (document, None)

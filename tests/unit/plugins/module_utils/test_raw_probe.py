# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hosts without Python: the shell probe's output read on the controller, and the marking script's verdicts.

The scripts run for real on loop devices (under dash and BusyBox) in tests/integration/test_enable_raw.py, and on a
VM without Python in the scenario rawhost; here their output is built by hand, to reach every branch.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re
import subprocess

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_mark
from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_probe
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, DeviceError, ProbeError

MIB = 1024 * 1024
SIZE = 8 * 1024 * MIB
ZEROS = ['0000000 ' + ' '.join(['00'] * 16), '*', '%07d' % MIB]
FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'
MOUNT_ROOT = '20 1 0:20 / / ro,relatime shared:1 - ext4 /dev/vda rw'


def edge_dump(first_nonzero=None, length=MIB):
    if first_nonzero is None:
        return ['0000000 ' + ' '.join(['00'] * 16), '*', '%07d' % length]
    line = first_nonzero // 16 * 16
    values = ['00'] * 16
    values[first_nonzero - line] = '2a'
    if line == 0:
        return ['0000000 ' + ' '.join(values), '%07d' % 16]
    return ['0000000 ' + ' '.join(['00'] * 16), '*', '%07d ' % line + ' '.join(values)]


def disk_section(name='vdb', given=None, head='00' * 512, size=SIZE, first=None, last=None, kparts=(), holders='',
                 dev='254:16', ro='0', model=''):
    lines = ['::lw:: disk %s' % (given or '/dev/' + name), 'name ' + name, 'dev ' + dev, 'size %d' % (size // 512),
             'ro ' + ro, 'model ' + model, 'holders ' + holders]
    lines += ['kpart %s %s' % part for part in kparts]
    lines += ['head ' + head, '::lw:: edge 0'] + edge_dump(first)
    lines += ['::lw:: edge %d' % (size - MIB)] + edge_dump(last)
    lines += ['::lw:: sfdisk ' + name, 'sfdisk: no table', '::lw:: sfdisk-rc %s 1' % name]
    return lines


def output(disks=(), mounts=(MOUNT_ROOT,), swaps=(), btrfs=(), status='', wipefs=None, wipefs_rc=0, end=True):
    lines = ['::lw:: probe 1', '::lw:: mountinfo'] + list(mounts)
    lines += ['::lw:: swaps', 'Filename Type Size Used Priority'] + list(swaps)
    for fsid, values in btrfs:
        lines += ['::lw:: btrfs ' + fsid] + ['%s %s' % item for item in values.items()]
    lines += ['::lw:: status', status, '::lw:: byid', '/dev/disk/by-id/virtio-lwd1 /dev/vdb']
    for disk in disks:
        lines += disk
    lines += ['::lw:: wipefs', json.dumps({'signatures': wipefs or []}), '::lw:: wipefs-rc %d' % wipefs_rc]
    if end:
        lines.append('::lw:: end')
    return '\n'.join(lines) + '\n'


def facts(text, root='/', scan_skipped=None):
    return _raw_probe.facts(_raw_probe.Probe(text), root, scan_skipped)


def test_a_blank_disk_is_empty_and_named_by_its_links():
    result = facts(output([disk_section(model='QEMU HARDDISK')]))
    assert result['mode'] == 'none-yet' and result['probe'] == 'raw'
    assert result['empty_disks'] == [dict(device='/dev/vdb', given='/dev/vdb', name='vdb', size=SIZE,
                                          ids=['/dev/disk/by-id/virtio-lwd1'], model='QEMU HARDDISK')]
    assert result['summary'] == 'none-yet; swap off; overlays none; 1 empty disk(s)'


@pytest.mark.parametrize('change, reason', [
    (dict(first=513), 'holds unrecognised non-zero data at byte 513'),
    (dict(last=7), 'holds unrecognised non-zero data at byte %d' % (SIZE - MIB + 7)),
    (dict(kparts=[('vdb1', '254:17')]), 'holds kernel partitions vdb1'),
    (dict(ro='1'), 'read-only'),
    (dict(holders='dm-0'), 'in use: held by dm-0'),
])
def test_what_makes_a_disk_not_empty(change, reason):
    disk = facts(output([disk_section(**change)]))['disks'][0]
    assert disk['empty'] is False and disk['reasons'] == [reason]


def test_signatures_a_mount_and_a_swap_area_are_seen():
    wipefs = [dict(device='vdb', offset='0x438', type='ext4', uuid='u', label=None)]
    result = facts(output([disk_section()], wipefs=wipefs))
    assert result['disks'][0]['reasons'] == ['holds ext4 signature at offset 1080']
    mounted = facts(output([disk_section(kparts=[('vdb1', '254:17')])],
                           mounts=(MOUNT_ROOT, '30 20 254:17 / /srv rw - ext4 /dev/vdb1 rw')))
    assert mounted['disks'][0]['reasons'] == ['in use: /dev/vdb1 is mounted at /srv']
    swapped = facts(output([disk_section(kparts=[('vdb1', '254:17')])], swaps=('/dev/vdb1 partition 10 0 -2',)))
    assert swapped['disks'][0]['reasons'] == ['in use: /dev/vdb1 is an active swap area']


def test_the_magic_header_makes_a_disk_wait():
    head = b'lightwhale-please-format-me\n'.hex() + '00' * (512 - 28)
    result = facts(output([disk_section(head=head, first=0)]))
    assert result['magic_disks'] == ['/dev/vdb'] and result['empty_disks'] == []
    assert 'waiting for the next boot: /dev/vdb' in result['summary']


def test_a_mounted_data_filesystem_makes_the_host_persistent_or_degraded():
    data = '40 20 0:45 /@lightwhale-data /mnt/lightwhale-data rw - btrfs /dev/vdb2 rw'
    values = dict(label='lightwhale-data', devices='vdb2 vdc2', devids='1 2', missing='', data='raid1',
                  metadata='raid1')
    result = facts(output(mounts=(MOUNT_ROOT, data), btrfs=[(FSID, values)]))
    assert result['mode'] == 'persistent'
    fs = result['filesystem']
    assert (fs['members'], fs['num_devices'], fs['data_profile'], fs['uuid']) == (
        ['/dev/vdb2', '/dev/vdc2'], 2, 'raid1', FSID)
    degraded = facts(output(mounts=(MOUNT_ROOT, data), btrfs=[(FSID, dict(values, devices='vdb2', missing=' 2'))]))
    assert degraded['mode'] == 'degraded' and degraded['filesystem']['missing'] == ['devid 2']
    volatile = facts(output(mounts=(MOUNT_ROOT, '41 20 0:46 / /mnt/lightwhale-data rw - tmpfs tmpfs rw')))
    assert volatile['mode'] == 'volatile'
    other = facts(output(mounts=(MOUNT_ROOT, '41 20 8:1 / /mnt/lightwhale-data rw - ext4 /dev/sda1 rw')))
    assert other['mode'] == 'none-yet' and 'not the data filesystem' in other['problems'][0]


def test_the_data_mount_point_is_taken_under_the_root():
    tmpfs = '41 20 0:46 / /srv/box/mnt/lightwhale-data rw - tmpfs tmpfs rw'
    assert facts(output(mounts=(MOUNT_ROOT, tmpfs)), root='/srv/box')['mode'] == 'volatile'
    assert facts(output(mounts=(MOUNT_ROOT, tmpfs)), root='/')['mode'] == 'none-yet'


def test_an_unmounted_data_filesystem_is_found_by_its_label():
    wipefs = [dict(device='vdb2', offset='0x10040', type='btrfs', uuid=FSID, label='lightwhale-data')]
    result = facts(output([disk_section(kparts=[('vdb1', '254:17'), ('vdb2', '254:18')])], wipefs=wipefs))
    assert result['filesystem']['members'] == ['/dev/vdb2'] and result['filesystem']['mounted'] is False


def test_the_status_file_is_read_and_checked():
    assert facts(output(status='{"mode": "none-yet"}'))['status'] == {'mode': 'none-yet'}
    assert 'not JSON' in facts(output(status='{'))['problems'][0]
    assert 'says volatile' in facts(output(status='{"mode": "volatile"}'))['problems'][0]


@pytest.mark.parametrize('section, error, text', [
    ('::lw:: disk /dev/nope\nerror missing', DeviceError, '/dev/nope: does not exist'),
    ('::lw:: disk /etc/passwd\nerror not-block', DeviceError, '/etc/passwd: not a block device'),
    ('::lw:: disk relative\nerror missing', DeviceError, 'relative: not an absolute path'),
    ('::lw:: disk /dev/vdb1\nname vdb1\ndev 254:17\npartition', DeviceError, '/dev/vdb1: /dev/vdb1 is a partition'),
])
def test_a_listed_path_that_is_not_a_whole_disk_is_named(section, error, text):
    with pytest.raises(error, match=text):
        facts(output([section.split('\n')]))


@pytest.mark.parametrize('text, needle', [
    (output(end=False), 'cut short'),
    ('garbage\n' + output(), 'before its first section'),
    (output().replace('probe 1', 'probe 2'), 'probe version'),
    (output([disk_section()], wipefs_rc=127), 'wipefs is not on the host'),
    (output([disk_section()], wipefs_rc=1), 'wipefs failed'),
    (output([disk_section(head='00' * 100)]), 'short read of the first sector'),
    (output([disk_section()]).replace('\n*\n%07d\n' % MIB, '\n*\n%07d\n' % 4096, 1), 'read 4096 of %d bytes' % MIB),
    (output([disk_section()]).replace('0000000 00', '0000000 zz', 1), 'od printed'),
])
def test_an_output_that_cannot_be_trusted_fails(text, needle):
    with pytest.raises(ProbeError, match=needle):
        facts(text)


def test_a_partition_table_is_read_from_sfdisk_only_when_wipefs_sees_one():
    table = {'partitiontable': {'label': 'gpt', 'id': 'X', 'sectorsize': 512, 'partitions': [
        {'node': '/dev/vdb1', 'start': 2048, 'size': 4096, 'type': '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
         'uuid': 'a', 'name': 'lightwhale-swap'}]}}
    section = disk_section()
    index = section.index('sfdisk: no table')
    section[index:index + 2] = [json.dumps(table), '::lw:: sfdisk-rc vdb 0']
    wipefs = [dict(device='vdb', offset='0x200', type='gpt', uuid=None, label=None)]
    result = facts(output([section], wipefs=wipefs))
    assert result['magic_partitions'] == dict(swap=['/dev/vdb1'], data=[])
    with pytest.raises(ProbeError, match='sfdisk cannot read the partition table'):
        facts(output([disk_section()], wipefs=wipefs))


def test_the_host_scan_passes_over_other_kinds_and_read_only_disks():
    probe, skipped = _raw_probe.scan_plan(['loop0', 'sr0', 'vdb', 'vdc'])
    assert probe == ['/dev/vdb', '/dev/vdc'] and sorted(skipped) == ['loop0', 'sr0']
    text = output([disk_section(), disk_section('vdc', dev='254:32', ro='1')])
    result = facts(text, scan_skipped=skipped)
    assert [(disk['device'], disk['skipped']) for disk in result['disks']] == [
        ('/dev/loop0', skipped['loop0']), ('/dev/sr0', skipped['sr0']), ('/dev/vdb', None), ('/dev/vdc', 'read-only')]
    assert [disk['device'] for disk in result['empty_disks']] == ['/dev/vdb']
    assert _raw_probe.listed_names('::lw:: names\nvdb\nsr0\n::lw:: end\n') == ['vdb', 'sr0']
    with pytest.raises(ProbeError):
        _raw_probe.listed_names('::lw:: end\n')


@pytest.mark.parametrize('dump, length, expected', [
    (ZEROS, MIB, None),
    (edge_dump(0), MIB, 0),
    (edge_dump(37), MIB, 37),
    (edge_dump(MIB - 1), MIB, MIB - 1),
])
def test_first_nonzero_reads_od(dump, length, expected):
    assert _raw_probe.first_nonzero(dump, length) == expected


def test_the_command_line_quotes_every_word():
    words = ["it's", 'two words', '$HOME', '"', '\\']
    command = _raw_probe.shell_command('printf "%s|" "$@"', words)
    assert subprocess.check_output(command, shell=True).decode() == '|'.join(words) + '|'


@pytest.mark.parametrize('text, outcome', [('::lw:: written\n::lw:: end\n', 'written'),
                                           ('::lw:: already\n::lw:: end\n', 'already')])
def test_the_marking_script_outcomes(text, outcome):
    assert _raw_mark.outcome('/dev/vdb', text) == outcome


@pytest.mark.parametrize('text, error, needle', [
    ('::lw:: refused holds a signature since the probe: ext4\n::lw:: end\n', DeviceError,
     '/dev/vdb: holds a signature since the probe: ext4; nothing written'),
    ('::lw:: failed cannot write the header\n::lw:: end\n', CommandError, '/dev/vdb: cannot write the header'),
    ('::lw:: written\n', ProbeError, 'cut short'),
    ('::lw:: what\n::lw:: end\n', CommandError, 'printed'),
])
def test_the_marking_script_refusals_and_failures(text, error, needle):
    with pytest.raises(error, match=needle):
        _raw_mark.outcome('/dev/vdb', text)


def test_the_marking_command_carries_the_header_and_the_choice():
    command = _raw_mark.command('/dev/vdb', True)
    assert command.endswith("'/dev/vdb' 'wipe' 'lightwhale-please-format-me'")
    assert _raw_mark.command('/dev/vdb', False).endswith("'/dev/vdb' 'blank' 'lightwhale-please-format-me'")


@pytest.mark.parametrize('text, needle', [
    (output().replace('::lw:: swaps\n', ''), 'lacks or repeats the section(s) swaps'),
    (output().replace('::lw:: status\n', '::lw:: status\n::lw:: status\n'), 'lacks or repeats the section(s) status'),
    (output(mounts=()), 'could not read /proc/self/mountinfo'),
    (output().replace('::lw:: byid\n', '::lw:: edge 0\n::lw:: byid\n'), "section 'edge' before any disk"),
    (output([disk_section()]).replace('::lw:: sfdisk-rc vdb 1', '::lw:: sfdisk-rc vdb x'), 'the exit of sfdisk'),
    (output([disk_section(kparts=[('vdb1', '254:17')])]).replace('kpart vdb1 254:17', 'kpart vdb1'), 'printed'),
])
def test_an_output_with_sections_missing_or_out_of_place_fails(text, needle):
    with pytest.raises(ProbeError, match=re.escape(needle)):
        facts(text)


def test_every_member_of_a_mounted_btrfs_is_in_use():
    data = '40 20 0:45 /@lightwhale-data /mnt/lightwhale-data rw - btrfs /dev/vdb2 rw'
    values = dict(label='lightwhale-data', devices='vdb2 vdc2', devids='1 2', missing='', data='raid1',
                  metadata='raid1')
    text = output([disk_section(kparts=[('vdb2', '254:18')]),
                   disk_section('vdc', dev='254:32', kparts=[('vdc2', '254:34')])],
                  mounts=(MOUNT_ROOT, data), btrfs=[(FSID, values)])
    disks = facts(text)['disks']
    assert disks[0]['in_use'] == ['/dev/vdb2 is mounted at /mnt/lightwhale-data']
    assert disks[1]['in_use'] == ['/dev/vdc2 is a member of the mounted btrfs %s' % FSID]


def test_a_disk_listed_twice_is_probed_once():
    again = ['::lw:: disk /dev/disk/by-id/virtio-lwd1', 'name vdb', 'dev 254:16', 'again']
    result = facts(output([disk_section(), again]))
    assert [disk['device'] for disk in result['disks']] == ['/dev/vdb']


def test_a_drive_without_a_medium():
    empty = disk_section('sr0', dev='11:0', size=0)
    with pytest.raises(ProbeError, match='/dev/sr0: no medium'):
        facts(output([empty]))
    probe, skipped = _raw_probe.scan_plan(['vdb', 'sdx'])
    result = facts(output([disk_section(), disk_section('sdx', dev='8:0', size=0)]), scan_skipped=skipped)
    assert [(disk['device'], disk['skipped']) for disk in result['disks']] == [
        ('/dev/sdx', 'no medium (size 0)'), ('/dev/vdb', None)]


def test_a_mounted_legacy_data_filesystem_makes_the_host_persistent_legacy():
    legacy = '41 20 254:17 / /mnt/lightwhale-data rw - ext4 /dev/vdb1 rw'
    wipefs = [dict(device='vdb1', offset='0x438', type='ext4', uuid=FSID, label='lightwhale-data')]
    result = facts(output([disk_section(kparts=[('vdb1', '254:17')])], mounts=(MOUNT_ROOT, legacy), wipefs=wipefs))
    assert result['mode'] == 'persistent' and result['legacy'] is True, result
    fs = result['filesystem']
    assert (fs['legacy'], fs['fstype'], fs['members'], fs['uuid']) == (True, 'ext4', ['/dev/vdb1'], FSID)
    assert 'legacy ext4 on /dev/vdb1' in result['summary'] and result['problems'] == []

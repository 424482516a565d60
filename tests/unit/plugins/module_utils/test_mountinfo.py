# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo

MOUNTINFO = (
    '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n'
    '35 22 0:31 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755\n'
    '40 22 259:1 /@lightwhale-data /mnt/lightwhale-data rw,noatime shared:5 - btrfs /dev/sdb2 rw,subvolid=256\n'
    '41 40 259:1 /@lightwhale-state /mnt/lightwhale-data/lightwhale-state rw - btrfs /dev/sdb2 rw,subvolid=257\n'
    '42 22 0:40 / /etc rw master:3 - overlay overlay rw,lowerdir=/run/lightwhale/overlay/lower/etc\n'
    '43 22 254:0 /srv/my\\040dir /mnt/with\\040space rw - ext4 /dev/vda rw\n'
)


def test_parse_mountinfo_fields(tmp_path):
    path = tmp_path / 'mountinfo'
    path.write_text(MOUNTINFO)
    mounts = _mountinfo.read_mounts(str(path))
    assert [mount.target for mount in mounts] == [
        '/', '/run', '/mnt/lightwhale-data', '/mnt/lightwhale-data/lightwhale-state', '/etc', '/mnt/with space']
    data = mounts[2]
    assert data.devno == (259, 1)
    assert data.root == '/@lightwhale-data'
    assert data.fstype == 'btrfs'
    assert data.source == '/dev/sdb2'
    assert 'subvolid=256' in data.super_options
    assert mounts[4].options == ['rw']
    assert mounts[4].propagation == ['master:3']
    assert mounts[1].propagation == []
    assert mounts[5].root == '/srv/my dir'
    assert mounts[0].to_dict()['mount_id'] == 22


def test_mountinfo_line_without_optional_fields():
    mount = _mountinfo.parse_mountinfo_line('35 22 0:31 / /run rw - tmpfs tmpfs rw')
    assert (mount.fstype, mount.source, mount.super_options) == ('tmpfs', 'tmpfs', ['rw'])


@pytest.mark.parametrize('line', ['', 'garbage', '1 2 3:4 / /x rw tmpfs tmpfs rw', '1 2 3:4 / - tmpfs'])
def test_malformed_mountinfo_line_is_an_error(line):
    with pytest.raises(ValueError):
        _mountinfo.parse_mountinfo_line(line)


def test_parse_swaps():
    text = ('Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n'
            '/dev/sdb1                               partition\t1048572\t\t0\t\t-2\n'
            '/swap\\040file                           file\t\t1024\t\t0\t\t-3\n')
    assert _mountinfo.parse_swaps(text) == ['/dev/sdb1', '/swap file']
    assert _mountinfo.parse_swaps('Filename Type Size Used Priority\n') == []


def test_reads_this_hosts_mountinfo():
    mounts = _mountinfo.read_mounts()
    assert any(mount.target == '/' for mount in mounts)


def _escape(text):
    return ''.join('\\%03o' % ord(char) if char in ' \t\n\\' else char for char in text)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1).map(lambda text: '/' + text))
def test_escaped_paths_round_trip(path):
    line = '1 0 8:1 / %s rw - ext4 /dev/sda1 rw' % _escape(path)
    assert _mountinfo.parse_mountinfo_line(line).target == path


# ---------------------------------------------------------------------------------------------- fixture mountinfo texts

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'
MEMBERS = {'lwtest0p2': FSID}
ROOT = '22 1 254:0 / / rw - ext4 /dev/vda rw'


def _read(tmp_path, monkeypatch, *lines):
    """Mounts read from a fixture file; sources under /dev resolve to their base name (as the kernel's members)."""
    monkeypatch.setattr(_blockdev, 'resolve', lambda given: _blockdev.BlockDevice(given.rsplit('/', 1)[-1], given, None))
    path = tmp_path / 'mountinfo'
    path.write_text(''.join(line + '\n' for line in (ROOT,) + lines))
    return _mountinfo.read_mounts(str(path))


STACK = (
    '61 60 0:41 /@lightwhale-data /mnt/x rw - btrfs /dev/lwtest0p2 rw,subvolid=256',
    '60 22 254:16 / /mnt/x rw - ext4 /dev/vdb rw',
    '72 61 0:52 / /mnt/x rw,nosuid - tmpfs tmpfs rw,mode=755',
)


@pytest.mark.parametrize('order', [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_the_top_of_a_stack_follows_parent_ids_not_line_order(tmp_path, monkeypatch, order):
    mounts = _read(tmp_path, monkeypatch, *[STACK[index] for index in order])
    assert sorted(mount.mount_id for mount in _mountinfo.stack_at(mounts, '/mnt/x')) == [60, 61, 72]
    top = _mountinfo.top_mount(mounts, '/mnt/x')
    assert top.mount_id == 72 and _mountinfo.describe_mount(top, MEMBERS) == 'tmpfs (volatile)'
    assert _mountinfo.mount_result(top, MEMBERS) == dict(target='/mnt/x', source='tmpfs', fstype='tmpfs', root='/', uuid=None,
                                                         options=['rw', 'nosuid', 'mode=755'])
    # Without the tmpfs, the btrfs mounted on the ext4 is on top, wherever it is listed.
    under = _mountinfo.top_mount([mount for mount in mounts if mount.mount_id != 72], '/mnt/x')
    assert _mountinfo.describe_mount(under, MEMBERS) == 'btrfs /dev/lwtest0p2 subvolume /@lightwhale-data of filesystem %s' % FSID


def test_a_stack_whose_parents_do_not_tell_shows_the_last_listed(tmp_path, monkeypatch):
    mounts = _read(tmp_path, monkeypatch, '60 22 254:16 / /mnt/x rw - ext4 /dev/vdb rw', '61 22 254:17 / /mnt/x rw - ext4 /dev/vdc rw')
    assert _mountinfo.top_mount(mounts, '/mnt/x').source == '/dev/vdc'
    assert _mountinfo.top_of([]) is None


BINDS = (
    '30 22 254:16 / /srv rw - ext4 /dev/vdb rw',
    '31 22 254:16 /data /mnt/a rw - ext4 /dev/vdb rw',
    '32 22 254:16 /data /mnt/b ro - ext4 /dev/vdb rw',
)


def test_a_bind_mount_is_the_same_device_and_root_at_another_target(tmp_path, monkeypatch):
    mounts = _read(tmp_path, monkeypatch, *BINDS)
    one, two = _mountinfo.top_mount(mounts, '/mnt/a'), _mountinfo.top_mount(mounts, '/mnt/b')
    assert (one.devno, one.root) == (two.devno, two.root) == ((254, 16), '/data')
    assert _mountinfo.describe_mount(two, MEMBERS) == 'ext4 /dev/vdb (root /data)'
    assert _mountinfo.mount_result(two, MEMBERS)['options'] == ['ro', 'rw']


@pytest.mark.parametrize('path, ignore, mount_id, root', [
    ('/srv/data/sub', (), 30, '/data/sub'),
    ('/srv', (), 30, '/'),
    ('/mnt/a', (), 31, '/data'),
    ('/mnt/a/x/y', (), 31, '/data/x/y'),
    ('/mnt/a/x', (31,), 22, '/mnt/a/x'),
    ('/srvx', (), 22, '/srvx'),
])
def test_providing_gives_the_root_a_bind_of_a_path_gets(tmp_path, monkeypatch, path, ignore, mount_id, root):
    mount, got = _mountinfo.providing(_read(tmp_path, monkeypatch, *BINDS), path, ignore)
    assert (mount.mount_id, got) == (mount_id, root)


def test_providing_without_any_holder(tmp_path, monkeypatch):
    assert _mountinfo.providing(_read(tmp_path, monkeypatch, *BINDS), '/mnt/a', ignore=(22, 31)) == (None, None)


def test_one_subvolume_mounted_at_two_targets_is_that_subvolume_at_both(tmp_path, monkeypatch):
    mounts = _read(tmp_path, monkeypatch,
                   '40 22 0:41 /@lightwhale-data /mnt/lightwhale-data rw,noatime - btrfs /dev/lwtest0p2 rw,subvolid=256',
                   '45 22 0:41 /@lightwhale-data /srv/again rw - btrfs /dev/lwtest0p2 rw,subvolid=256')
    first, again = _mountinfo.top_mount(mounts, '/mnt/lightwhale-data'), _mountinfo.top_mount(mounts, '/srv/again')
    for mount in (first, again):
        assert _mountinfo.is_subvolume_mount(mount, '@lightwhale-data', FSID, MEMBERS)
        assert not _mountinfo.is_subvolume_mount(mount, '@lightwhale-state', FSID, MEMBERS)
    assert _mountinfo.fsid_of(first, MEMBERS) == _mountinfo.fsid_of(again, MEMBERS) == FSID
    assert _mountinfo.mount_result(again, MEMBERS) == dict(target='/srv/again', source='/dev/lwtest0p2', fstype='btrfs',
                                                           root='/@lightwhale-data', uuid=FSID, options=['rw', 'subvolid=256'])


def test_escaped_targets_and_sources_compare_unescaped(tmp_path, monkeypatch):
    escaped = '/mnt/a\\040b\\011c\\012d\\134e'
    mounts = _read(tmp_path, monkeypatch, '50 22 254:16 /my\\040dir %s rw - ext4 /dev/disk/by-label/my\\040disk rw' % escaped)
    target = '/mnt/a b\tc\nd\\e'
    mount = _mountinfo.top_mount(mounts, target)
    assert (mount.root, mount.source) == ('/my dir', '/dev/disk/by-label/my disk')
    assert _mountinfo.top_mount(mounts, escaped) is None
    assert _mountinfo.below(mounts, '/mnt') == [target]
    assert _mountinfo.providing(mounts, target + '/x y') == (mount, '/my dir/x y')
    assert _mountinfo.describe_mount(mount, MEMBERS) == 'ext4 /dev/disk/by-label/my disk (root /my dir)'
    assert _mountinfo.mount_result(mount, MEMBERS)['target'] == target


def test_an_escaped_backslash_before_digits_stays_a_backslash():
    assert _mountinfo.unescape('/a\\134040b') == '/a\\040b'
    assert _mountinfo.unescape('/a\\9b\\04') == '/a\\9b\\04'


def test_below_finds_submounts_and_not_prefix_siblings(tmp_path, monkeypatch):
    mounts = _read(tmp_path, monkeypatch,
                   '60 22 254:16 / /var rw - ext4 /dev/vdc rw',
                   '61 60 0:45 /@docker /var/lib/docker rw - btrfs /dev/lwtest0p2 rw',
                   '62 22 254:17 / /variant rw - ext4 /dev/vdd rw',
                   '63 60 0:46 / /var/lib rw - tmpfs tmpfs rw')
    assert _mountinfo.below(mounts, '/var') == ['/var/lib/docker', '/var/lib']
    assert _mountinfo.below(mounts, '/variant') == [] and _mountinfo.below(mounts, '/var/lib/docker') == []
    assert _mountinfo.top_mount(mounts, '/var/li') is None
    # The tmpfs on /var/lib came after the subvolume on /var/lib/docker and hides it.
    assert _mountinfo.top_mount(mounts, '/var/lib/docker') is None
    assert _mountinfo.describe_mount(_mountinfo.top_mount(mounts, '/var/lib'), MEMBERS) == 'tmpfs (volatile)'
    assert _mountinfo.mount_result(_mountinfo.top_mount(mounts, '/variant'), MEMBERS)['source'] == '/dev/vdd'


def test_a_mount_over_a_parent_hides_the_mounts_below_it(tmp_path, monkeypatch):
    mounts = _read(tmp_path, monkeypatch,
                   '60 22 254:16 / /var rw - ext4 /dev/vdc rw',
                   '61 60 0:45 /@docker /var/lib/docker rw - btrfs /dev/lwtest0p2 rw',
                   '64 61 0:47 / /var/lib/docker/tmp rw - tmpfs tmpfs rw')
    assert _mountinfo.describe_mount(_mountinfo.top_mount(mounts, '/var/lib/docker'), MEMBERS) == (
        'btrfs /dev/lwtest0p2 subvolume /@docker of filesystem %s' % FSID)
    assert _mountinfo.top_mount(mounts, '/var/lib/docker/tmp').fstype == 'tmpfs'
    hidden = mounts + [_mountinfo.parse_mountinfo_line('65 22 0:48 / /var rw - tmpfs tmpfs rw')]
    assert _mountinfo.top_mount(hidden, '/var').fstype == 'tmpfs'
    assert _mountinfo.top_mount(hidden, '/var/lib/docker') is None and _mountinfo.top_mount(hidden, '/var/lib/docker/tmp') is None

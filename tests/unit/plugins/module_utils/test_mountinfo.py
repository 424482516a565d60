# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

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

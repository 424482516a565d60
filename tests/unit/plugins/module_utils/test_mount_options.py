# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data filesystem's extra mount options: which are allowed, why the others are not, and the status line."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount_options
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError


@pytest.mark.parametrize('option', [
    'noatime', 'relatime', 'nodiratime', 'lazytime', 'nolazytime', 'autodefrag', 'noautodefrag', 'discard',
    'discard=async', 'discard=sync', 'nodiscard', 'ssd', 'nossd', 'flushoncommit', 'noflushoncommit', 'compress',
    'compress=zstd', 'compress=zstd:1', 'compress=zstd:15', 'compress=zlib:9', 'compress=lzo', 'compress=no',
    'compress-force=zstd:3', 'commit=1', 'commit=300', ' noatime ',
])
def test_allowed(option):
    assert _mount_options.check([option]) == [option.strip()]


@pytest.mark.parametrize('option, reason', [
    ('subvol=/x', 'the subvolume is set by the module'),
    ('subvolid=5', 'the subvolume is set by the module'),
    ('degraded', 'added by the module when a member is missing'),
    ('ro', 'mounted read-write'),
    ('nodatacow', 'turns off checksums'),
    ('space_cache=v1', 'free-space cache'),
    ('device=/dev/sdb', 'the members are named by the module'),
    ('usebackuproot', 'recovery option'),
    ('compress=zstd:16', 'the value must be'),
    ('compress=zstd:0', 'the value must be'),
    ('compress=lzo:3', 'the value must be'),
    ('commit=301', 'seconds, 1 to 300'),
    ('commit=', 'seconds, 1 to 300'),
    ('commit=-1', 'seconds, 1 to 300'),
    ('discard=later', 'sync or async'),
    ('noatime,compress=zstd', 'one option per item'),
    ('', 'one option per item'),
    ('noatime=1', 'not one of the options safe to change at each boot'),
    ('user_xattr', 'not one of the options safe to change at each boot'),
])
def test_refused_with_the_option_and_the_reason(option, reason):
    with pytest.raises(PersistenceError) as caught:
        _mount_options.check(['noatime', option])
    assert repr(option) in caught.value.message and reason in caught.value.message
    assert 'Allowed: noatime, relatime' in caught.value.message


def test_the_status_line_shows_the_options_of_a_persistent_host():
    status = _status.build('persistent', label='lightwhale-data', uuid='u', devices=['/dev/sdb2'], data_profile='single',
                           metadata_profile='dup', mount_options=['noatime', 'compress=zstd'])
    assert status['mount_options'] == ['noatime', 'compress=zstd']
    assert 'persistent single/dup on /dev/sdb2 (noatime,compress=zstd);' in status['summary']
    volatile = _status.build('volatile', mount_options=['noatime'])
    assert volatile['mount_options'] == [] and 'noatime' not in volatile['summary']

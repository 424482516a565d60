# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status

DOCKER = '/mnt/lightwhale-data/lightwhale-state/docker'


def persistent(**changes):
    args = dict(mode='persistent', label='lightwhale-data', uuid='0b0c', devices=['/dev/sdb2', '/dev/sdc2'],
                data_profile='raid1', metadata_profile='raid1', swap_devices=['/dev/sdb1', '/dev/sdc1'],
                overlays=['/etc', '/var', '/home'], docker_data_root=DOCKER)
    args.update(changes)
    return _status.build(**args)


def test_summary_of_a_persistent_host():
    status = persistent()
    assert status['summary'] == ('lightwhale-persistence: persistent raid1/raid1 on /dev/sdb2,/dev/sdc2; '
                                 'swap /dev/sdb1,/dev/sdc1; overlays /etc /var /home; docker data-root ' + DOCKER)
    assert status['ok'] is True and status['failure'] is None
    assert list(status) == list(_status.KEYS)


def test_summary_of_a_new_degraded_host_with_warnings():
    status = persistent(mode='degraded', devices=['/dev/sdb2'], missing=['devid 2'], created=True,
                        warnings=['a\nb', 'a b', '', 'other'])
    assert status['warnings'] == ['a b', 'other']
    assert status['summary'].startswith('lightwhale-persistence: DEGRADED raid1/raid1 on /dev/sdb2, MISSING devid 2 '
                                        '(created at this boot); ')
    assert status['summary'].endswith('; 2 warning(s) in /run/lightwhale/persistence.json')
    assert status['ok'] is True


def test_volatile_drops_the_filesystem_and_puts_the_failure_first():
    status = _status.build('volatile', failure='mount refused:\n  bad superblock', label='lightwhale-data',
                           uuid='0b0c', devices=['/dev/sdb2'], data_profile='single', overlays=['/etc'])
    assert (status['uuid'], status['devices'], status['data_profile']) == (None, [], None)
    assert status['failure'] == 'mount refused: bad superblock' and status['ok'] is False
    assert status['summary'] == ('lightwhale-persistence: FAILED: mount refused: bad superblock; volatile (tmpfs: '
                                 'nothing written survives a reboot); swap off; overlays /etc; docker data-root not set')


def test_overlays_missing_are_not_ok():
    status = persistent(overlays=['/etc'], overlays_missing=['/var', '/home'])
    assert status['ok'] is False and status['failure'] is None
    assert 'overlays /etc (NOT mounted: /var /home)' in status['summary']


@given(st.text())
def test_the_summary_is_one_line(failure):
    summary = persistent(failure=failure, warnings=[failure])['summary']
    assert '\n' not in summary and '\r' not in summary and summary.startswith(_status.PREFIX)


def test_same_ignores_only_the_time():
    first = _status.stamp(persistent(), now=0)
    assert first['time'] == '1970-01-01T00:00:00Z'
    assert _status.same(first, _status.stamp(persistent(), now=99))
    assert not _status.same(first, persistent(swap_devices=[]))
    assert not _status.same(None, first)


def test_render_and_parse_round_trip():
    status = _status.stamp(persistent())
    text = _status.render(status)
    assert text.endswith('}\n')
    assert _status.parse(text.encode('utf-8')) == json.loads(text)
    assert _status.parse(b'not json') is None and _status.parse(b'[1]') is None and _status.parse(b'\xff') is None


def test_created_earlier_is_kept_for_the_same_filesystem():
    old = _status.stamp(persistent(created=True))
    assert _status.created_earlier(old, persistent())
    assert not _status.created_earlier(old, persistent(uuid='other'))
    assert not _status.created_earlier(old, persistent(created=True))
    assert not _status.created_earlier(None, persistent())
    assert not _status.created_earlier(old, _status.build('volatile'))


def test_mounted_overlays_reads_the_visible_mount(tmp_path):
    root = str(tmp_path)
    lines = [
        '22 1 254:0 / / rw - ext4 /dev/vda rw',
        '30 22 0:40 / %s/etc rw - overlay overlay rw,lowerdir=/x' % root,
        '31 22 254:0 /var %s/var rw - ext4 /dev/vda rw' % root,
        '32 22 0:41 / %s/home rw - overlay overlay rw,lowerdir=/y' % root,
        '33 32 0:42 / %s/home rw - tmpfs tmpfs rw' % root,
    ]
    path = tmp_path / 'mountinfo'
    path.write_text('\n'.join(lines) + '\n')
    mounts = _mountinfo.read_mounts(str(path))
    assert _status.mounted_overlays(mounts, root, ['/etc', '/var', '/home', '/srv']) == ['/etc']
    assert _status.mounted_overlays(mounts, root + '/', ['/etc/']) == ['/etc/']


@given(st.text())
def test_render_keeps_the_layout_the_boot_hook_reads(text):
    """lightwhale-persistence-boot reads '  "summary": "...",' and '  "ok": true,' with sed: one line each."""
    status = _status.stamp(persistent(failure=text))
    lines = _status.render(status).splitlines()
    summaries = [line for line in lines if line.startswith('  "summary": "')]
    assert len(summaries) == 1 and summaries[0].endswith('",')
    assert json.loads(summaries[0][len('  "summary": '):-1]) == status['summary']
    assert ('  "ok": true,' in lines) is status['ok'] and ('  "ok": false,' in lines) is not status['ok']

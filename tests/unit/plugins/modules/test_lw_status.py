# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lw_status on a temporary root: check mode writes nothing, a real run writes once, and what it reports.

The boot as a whole (and the status file it leaves) is tested in tests/integration/test_boot.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.lightwhale.persistence.plugins.modules import lw_status

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason='writes a root-owned file')


def test_check_mode_writes_nothing_and_takes_the_overlays_as_predicted(run_module, tmp_path):
    result = run_module(lw_status, dict(root=str(tmp_path), mode='volatile', _ansible_check_mode=True, _ansible_diff=True))
    assert result['changed'] and result['ok']
    assert result['status']['overlays'] == ['/etc', '/var', '/home']
    assert result['summary'].startswith('lightwhale-persistence: volatile')
    assert '"mode": "volatile"' in result['diff']['after'] and result['diff']['before'] == ''
    assert os.listdir(str(tmp_path)) == []


@ROOT_ONLY
def test_a_real_run_writes_once_and_reports_overlays_the_kernel_does_not_show(run_module, tmp_path):
    args = dict(root=str(tmp_path), mode='persistent', devices=['/dev/sdb2'], data_profile='single',
                metadata_profile='dup', failure='', warnings=['w', 'w'])
    first = run_module(lw_status, args)
    assert first['changed'] and not first['ok']
    assert first['status']['overlays'] == [] and first['status']['overlays_missing'] == ['/etc', '/var', '/home']
    assert first['status']['warnings'] == ['w'] and first['status']['failure'] is None
    path = tmp_path / 'run' / 'lightwhale' / 'persistence.json'
    written = json.loads(path.read_text())
    assert written == first['status'] and first['path'] == str(path)
    assert oct(path.stat().st_mode & 0o777) == '0o644'
    again = run_module(lw_status, args)
    assert not again['changed'] and again['status'] == written


@ROOT_ONLY
def test_created_stays_true_for_the_rest_of_the_boot(run_module, tmp_path):
    args = dict(root=str(tmp_path), mode='persistent', uuid='0b0c', overlays=[], created=True)
    assert run_module(lw_status, args)['status']['created']
    again = run_module(lw_status, dict(args, created=False))
    assert not again['changed'] and again['status']['created']


@pytest.mark.parametrize('args, message', [
    (dict(mode='sleeping'), 'mode'),
    (dict(mode='volatile', overlays=['etc']), "overlay path 'etc' is not an absolute path"),
])
def test_refusals(run_module, tmp_path, args, message):
    result = run_module(lw_status, dict(args, root=str(tmp_path)))
    assert result['failed'] and message in result['msg']
    assert os.listdir(str(tmp_path)) == []


def test_missing_root(run_module, tmp_path):
    result = run_module(lw_status, dict(root=str(tmp_path / 'nowhere'), mode='volatile'))
    assert result['failed'] and 'does not exist' in result['msg']


def write_status(root, **parts):
    """A status file as lw_datafs and lw_overlay would have left it: only its parts matter to a new record."""
    directory = os.path.join(str(root), 'run', 'lightwhale')
    os.makedirs(directory)
    with open(os.path.join(directory, 'persistence.json'), 'w') as fh:
        json.dump(dict(version=1, steps=parts), fh)


@ROOT_ONLY
def test_a_failure_alone_keeps_what_the_modules_recorded(run_module, tmp_path):
    write_status(tmp_path, datafs=dict(mode='persistent', label='lightwhale-data', uuid='0b0c', devices=['/dev/sdb2'],
                                       data_profile='single', metadata_profile='dup', warnings=['datafs says']),
                 overlay=dict(overlays=[], docker_data_root='/mnt/lightwhale-data/lightwhale-state/docker',
                              failure='overlay broke', warnings=['overlay says']))
    result = run_module(lw_status, dict(root=str(tmp_path), failure='Step 7: overlay broke', warnings=['role says']))
    status = result['status']
    assert result['changed'] and not result['ok']
    assert status['mode'] == 'persistent' and status['devices'] == ['/dev/sdb2'] and status['uuid'] == '0b0c'
    # The role's note repeats the module's own failure: it is said once.
    assert status['failure'] == 'overlay broke'
    assert status['warnings'] == ['datafs says', 'overlay says', 'role says']
    assert status['overlays'] == [] and status['docker_data_root'] == '/mnt/lightwhale-data/lightwhale-state/docker'
    assert status['steps']['boot'] == dict(failure='Step 7: overlay broke', warnings=['role says'])
    assert status['summary'].startswith('lightwhale-persistence: FAILED: overlay broke; persistent single/dup')


@ROOT_ONLY
def test_given_fields_win_over_the_recorded_ones(run_module, tmp_path):
    write_status(tmp_path, datafs=dict(mode='persistent', devices=['/dev/sdb2'], swap_devices=['/dev/sdb1']))
    status = run_module(lw_status, dict(root=str(tmp_path), mode='degraded', missing=['devid 2'], overlays=[]))['status']
    assert (status['mode'], status['devices'], status['missing']) == ('degraded', ['/dev/sdb2'], ['devid 2'])
    assert status['swap_devices'] == ['/dev/sdb1'] and status['ok']


@ROOT_ONLY
def test_nothing_recorded_and_nothing_given_is_volatile_without_overlays(run_module, tmp_path):
    status = run_module(lw_status, dict(root=str(tmp_path), failure='the boot died'))['status']
    assert status['mode'] == 'volatile' and status['failure'] == 'the boot died'
    assert status['overlays_missing'] == ['/etc', '/var', '/home'] and not status['ok']

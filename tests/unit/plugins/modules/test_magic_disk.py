# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument handling of magic_disk: refusals that happen before any device is touched.

Device behaviour is tested for real on loop devices in tests/integration.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.lightwhale.persistence.plugins.modules import magic_disk


def _run(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            magic_disk.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('state', ['present', 'absent'])
def test_marking_needs_listed_devices(capsys, state):
    result = _run(capsys, dict(state=state))
    assert result['failed']
    assert 'state=%s needs devices' % state in result['msg']


@pytest.mark.parametrize('size, reason', [('lots', 'is not a size'), ('512K', 'less than 1 MiB'), ('3X', 'unknown unit')])
def test_bad_swap_size(capsys, size, reason):
    result = _run(capsys, dict(state='partitioned', swap_size=size, devices=['/dev/null']))
    assert result['failed']
    assert reason in result['msg']


def test_listed_path_that_does_not_exist(capsys, tmp_path):
    missing = str(tmp_path / 'disk')
    result = _run(capsys, dict(state='present', devices=[missing], root=str(tmp_path), kernel_cmdline=''))
    assert result['failed']
    assert result['msg'] == '%s: does not exist' % missing
    assert result['device'] == missing
    assert not (tmp_path / 'disk').exists()


def test_listed_path_that_is_not_a_block_device(capsys, tmp_path):
    result = _run(capsys, dict(state='partitioned', devices=['/dev/null'], root=str(tmp_path), kernel_cmdline=''))
    assert result['failed']
    assert result['msg'] == '/dev/null: not a block device'


def test_unknown_state_is_refused(capsys):
    result = _run(capsys, dict(state='formatted', devices=['/dev/null']))
    assert result['failed']
    assert 'state' in result['msg']

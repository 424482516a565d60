# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument handling of magic_disk: refusals that happen before any device is touched.

Device behaviour is tested for real on loop devices in tests/integration.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.lightwhale.persistence.plugins.modules import magic_disk


@pytest.mark.parametrize('state', ['present', 'absent'])
def test_marking_needs_listed_devices(run_module, state):
    result = run_module(magic_disk, dict(state=state))
    assert result['failed']
    assert 'state=%s needs devices' % state in result['msg']


@pytest.mark.parametrize('size, reason', [('lots', 'is not a size'), ('512K', 'less than 1 MiB'), ('3X', 'unknown unit')])
def test_bad_swap_size(run_module, size, reason):
    result = run_module(magic_disk, dict(state='partitioned', swap_size=size, devices=['/dev/null']))
    assert result['failed']
    assert reason in result['msg']


def test_listed_path_that_does_not_exist(run_module, tmp_path):
    missing = str(tmp_path / 'disk')
    result = run_module(magic_disk, dict(state='present', devices=[missing], root=str(tmp_path), kernel_cmdline=''))
    assert result['failed']
    assert result['msg'] == '%s: does not exist' % missing
    assert result['device'] == missing
    assert not (tmp_path / 'disk').exists()


def test_listed_path_that_is_not_a_block_device(run_module, tmp_path):
    result = run_module(magic_disk, dict(state='partitioned', devices=['/dev/null'], root=str(tmp_path), kernel_cmdline=''))
    assert result['failed']
    assert result['msg'] == '/dev/null: not a block device'


def test_unknown_state_is_refused(run_module):
    result = run_module(magic_disk, dict(state='formatted', devices=['/dev/null']))
    assert result['failed']
    assert 'state' in result['msg']

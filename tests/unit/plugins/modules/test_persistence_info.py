# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument handling of persistence_info: what fails before any disk is read, and never as a change.

Reports on real loop devices are tested in tests/integration/test_persistence_info.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.lightwhale.persistence.plugins.modules import persistence_info


def test_a_root_that_does_not_exist(run_module, tmp_path):
    result = run_module(persistence_info, dict(root=str(tmp_path / 'absent')))
    assert result['failed'] and 'does not exist' in result['msg'] and result['changed'] is False


@pytest.mark.parametrize('name, word', [('absent', 'does not exist'), ('file', 'not a block device')])
def test_devices_that_are_not_disks(run_module, tmp_path, name, word):
    (tmp_path / 'file').write_text(u'')
    result = run_module(persistence_info, dict(root=str(tmp_path), devices=[str(tmp_path / name)]))
    assert result['failed'] and word in result['msg'] and result['changed'] is False


def test_a_relative_device_path(run_module, tmp_path):
    result = run_module(persistence_info, dict(root=str(tmp_path), devices=['sdb']))
    assert result['failed'] and 'sdb' in result['msg']


def test_overlay_paths_are_checked(run_module, tmp_path):
    result = run_module(persistence_info, dict(root=str(tmp_path), devices=[], overlays=['/etc', '/etc/ssh']))
    assert result['failed'] and 'nested' in result['msg'] and result['changed'] is False


def test_unknown_option(run_module):
    result = run_module(persistence_info, dict(state='present'))
    assert result['failed'] and 'state' in result['msg']

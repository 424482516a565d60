# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument handling of lw_datafs: refusals that happen before any device is probed.

Device behaviour is tested for real on loop devices in tests/integration/test_lw_datafs.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.lightwhale.persistence.plugins.modules import lw_datafs


@pytest.mark.parametrize('option', ['subvol=/x', 'subvolid=5', ' subvol = x', ''])
def test_the_module_owns_the_subvolume_options(run_module, option):
    result = run_module(lw_datafs, dict(mount_options=['noatime', option], kernel_cmdline='quiet'))
    assert result['failed'] and 'mount_options' in result['msg']


def test_negative_timeout(run_module):
    result = run_module(lw_datafs, dict(timeout=-1, kernel_cmdline='quiet'))
    assert result['failed'] and 'timeout' in result['msg']


def test_unknown_state(run_module):
    result = run_module(lw_datafs, dict(state='formatted'))
    assert result['failed'] and 'state' in result['msg']


def test_check_mode_with_a_root_that_does_not_exist(run_module, tmp_path):
    result = run_module(lw_datafs, dict(root=str(tmp_path / 'absent'), kernel_cmdline='quiet', _ansible_check_mode=True))
    assert result['failed'] and 'does not exist' in result['msg'] and not result['changed']

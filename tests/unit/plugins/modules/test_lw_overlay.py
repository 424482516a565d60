# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lw_overlay runs that mount nothing: refusals before anything is touched, and check mode.

Real mounts are tested in tests/integration/test_lw_overlay.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.lightwhale.persistence.plugins.modules import lw_overlay


@pytest.fixture
def image(tmp_path):
    for name in ('etc', 'var', 'home'):
        (tmp_path / name).mkdir()
    return str(tmp_path)


@pytest.mark.parametrize('args, message', [
    (dict(paths=['etc']), "path 'etc' is not an absolute path"),
    (dict(paths=['/etc', '/etc']), 'path /etc is listed twice'),
    (dict(upper_base='/mnt/x', work_base='/mnt/x/work'), 'upper_base /mnt/x and work_base /mnt/x/work overlap'),
    (dict(timeout=-1), 'timeout must not be negative'),
    (dict(state='mounted-twice'), 'state'),
])
def test_refused_before_anything_is_touched(run_module, file_tree, image, args, message):
    before = file_tree(image)
    result = run_module(lw_overlay, dict(args, root=image))
    assert result['failed']
    assert message in result['msg']
    assert file_tree(image) == before


def test_missing_root(run_module, tmp_path):
    result = run_module(lw_overlay, dict(root=str(tmp_path / 'nowhere')))
    assert result['failed']
    assert result['msg'] == 'root %s does not exist or is not a directory' % (tmp_path / 'nowhere')


def test_check_mode_plans_and_writes_nothing(run_module, file_tree, image):
    before = file_tree(image)
    result = run_module(lw_overlay, dict(root=image, _ansible_check_mode=True, _ansible_diff=True))
    assert not result.get('failed'), result
    assert result['changed']
    assert [action.split(': ')[0] for action in result['actions']] == ['/etc'] * 6 + ['/var'] * 6 + ['/home'] * 6
    assert [entry['mounted'] for entry in result['overlays']] == [True] * 3
    assert result['overlays'][2]['upper'] == image + '/mnt/lightwhale-data/lightwhale-state/overlay/upper/home'
    assert result['diff']['before'] == ''
    assert '%s/etc overlay lowerdir=%s/run/lightwhale/overlay/lower/etc' % (image, image) in result['diff']['after']
    assert file_tree(image) == before


def test_unmounted_when_nothing_is_mounted(run_module, image):
    result = run_module(lw_overlay, dict(root=image, state='unmounted', _ansible_check_mode=True))
    assert not result['changed']
    assert result['actions'] == []
    assert [entry['mounted'] for entry in result['overlays']] == [False] * 3

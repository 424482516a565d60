# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docker_data_root on a temporary root: check mode, a real run, refusals before anything is written.

Through the /etc overlay on a real boot: tests/integration/test_boot.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.lightwhale.persistence.plugins.modules import docker_data_root

DATA_ROOT = '/mnt/lightwhale-data/lightwhale-state/docker'
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason='writes root-owned files')


@pytest.fixture
def root(tmp_path):
    (tmp_path / 'etc' / 'docker').mkdir(parents=True)
    (tmp_path / 'etc' / 'docker' / 'daemon.json').write_text('{"log-driver": "journald"}\n')
    (tmp_path / 'mnt' / 'lightwhale-data' / 'lightwhale-state').mkdir(parents=True)
    return str(tmp_path)


def test_check_mode_predicts_and_writes_nothing(run_module, file_tree, root):
    before = file_tree(root)
    result = run_module(docker_data_root, dict(root=root, _ansible_check_mode=True, _ansible_diff=True))
    assert result['changed'] and len(result['actions']) == 2
    assert result['previous_data_root'] is None and result['data_root'] == DATA_ROOT
    assert json.loads(result['diff']['after']) == {'log-driver': 'journald', 'data-root': DATA_ROOT,
                                                   'storage-driver': 'overlay2'}
    assert result['diff']['before'] == '{"log-driver": "journald"}\n'
    assert file_tree(root) == before


@ROOT_ONLY
def test_a_real_run_then_nothing_to_do(run_module, root):
    first = run_module(docker_data_root, dict(root=root))
    assert first['changed']
    with open(os.path.join(root, 'etc/docker/daemon.json')) as handle:
        assert json.load(handle) == {'log-driver': 'journald', 'data-root': DATA_ROOT, 'storage-driver': 'overlay2'}
    again = run_module(docker_data_root, dict(root=root))
    assert not again['changed'] and again['actions'] == [] and again['previous_data_root'] == DATA_ROOT


@pytest.mark.parametrize('args, message', [
    (dict(data_root='docker'), "data_root 'docker' is not an absolute path"),
    (dict(config='/etc/../daemon.json'), 'must not contain ..'),
    (dict(timeout=-1), 'timeout must not be negative'),
])
def test_refusals_write_nothing(run_module, file_tree, root, args, message):
    before = file_tree(root)
    result = run_module(docker_data_root, dict(args, root=root))
    assert result['failed'] and message in result['msg']
    assert file_tree(root) == before


def test_a_missing_state_directory_is_an_error(run_module, tmp_path):
    (tmp_path / 'etc').mkdir()
    result = run_module(docker_data_root, dict(root=str(tmp_path), _ansible_check_mode=True))
    assert result['failed'] and 'not mounted' in result['msg']

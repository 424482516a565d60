# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat
from collections import OrderedDict

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _docker
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

DATA_ROOT = '/mnt/lightwhale-data/lightwhale-state/docker'
CONFIG = '/etc/docker/daemon.json'


@pytest.fixture
def root(tmp_path):
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'mnt/lightwhale-data/lightwhale-state').mkdir(parents=True)
    return str(tmp_path)


def write(root, text, mode=0o644):
    path = os.path.join(root, 'etc/docker/daemon.json')
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'w') as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize('path, message', [
    ('', 'not an absolute path'), ('docker', 'not an absolute path'), ('/a/../b', 'must not contain ..'),
    ('/', 'must not be /'), ('//', 'must not be /'),
    ('/var/lib/d\nx', 'control character'), ('/var/lib/\tdocker', 'control character'),
])
def test_check_path_refuses(path, message):
    with pytest.raises(PersistenceError, match=message):
        _docker.check_path('data_root', path)


def test_check_path_normalises():
    assert _docker.check_path('config', '//etc//docker/./daemon.json') == '/etc/docker/daemon.json'


@pytest.mark.parametrize('text, message', [
    ('{"a": 1,', 'not valid JSON'), ('[]', 'holds a JSON list'), ('"x"', 'holds a JSON str'),
])
def test_parse_refuses_what_is_not_an_object(text, message):
    with pytest.raises(PersistenceError, match=message):
        _docker.parse_config(text.encode(), '/etc/docker/daemon.json')


def test_parse_refuses_other_encodings():
    with pytest.raises(PersistenceError, match='not UTF-8'):
        _docker.parse_config(b'{"a": "\xff"}', '/etc/docker/daemon.json')


def test_parse_empty_is_no_settings():
    assert _docker.parse_config(b'  \n', 'x') == OrderedDict()


@given(st.dictionaries(st.text(), st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                                               lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner))))
def test_merge_keeps_every_other_key_and_its_order(config):
    ordered = OrderedDict(config)
    merged = _docker.merge(ordered, DATA_ROOT)
    assert merged['data-root'] == DATA_ROOT
    others = [key for key in ordered if key != 'data-root']
    assert [key for key in merged if key != 'data-root'] == others
    assert all(merged[key] == ordered[key] for key in others)
    assert _docker.parse_config(_docker.render(merged).encode('utf-8'), 'x') == merged


def test_plan_a_new_file_and_directory(root):
    found = _docker.plan(root, CONFIG, DATA_ROOT)
    assert found.previous is None and found.before == ''
    assert [action.step for action in found.plan.actions] == ['mkdir-config', 'write-config', 'mkdir-data-root']
    found.plan.apply()
    with open(os.path.join(root, 'etc/docker/daemon.json')) as handle:
        assert json.load(handle) == {'data-root': DATA_ROOT, 'storage-driver': 'overlay2'}
    info = os.stat(os.path.join(root, DATA_ROOT.lstrip('/')))
    assert stat.S_IMODE(info.st_mode) == 0o710
    assert stat.S_IMODE(os.stat(os.path.join(root, 'etc/docker')).st_mode) == 0o755
    assert not _docker.plan(root, CONFIG, DATA_ROOT).plan


def test_plan_merges_and_keeps_the_mode(root):
    path = write(root, '{"log-driver": "journald", "data-root": "/var/lib/docker", "graph": "/old"}', 0o600)
    found = _docker.plan(root, CONFIG, DATA_ROOT)
    assert found.previous == '/var/lib/docker'
    assert found.plan.describe() == ['%s: set data-root = %s, was /var/lib/docker, storage-driver = overlay2 (2 other '
                                     'key(s) kept)' % (path, DATA_ROOT),
                                     '%s/%s: create the data root (root, 0710)' % (root, DATA_ROOT.lstrip('/'))]
    assert any("'graph'" in warning for warning in found.warnings)
    found.plan.apply()
    with open(path) as handle:
        assert list(json.load(handle, object_pairs_hook=OrderedDict).items()) == [
            ('log-driver', 'journald'), ('data-root', DATA_ROOT), ('graph', '/old'), ('storage-driver', 'overlay2')]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(os.path.dirname(path))) == ['daemon.json'], 'a temporary file was left behind'


def test_plan_leaves_a_right_file_alone(root):
    path = write(root, '{"data-root":"%s","storage-driver":"vfs"}' % DATA_ROOT)
    os.mkdir(os.path.join(root, DATA_ROOT.lstrip('/')), 0o750)
    found = _docker.plan(root, CONFIG, DATA_ROOT)
    assert not found.plan and found.after == found.before
    assert stat.S_IMODE(os.stat(os.path.join(root, DATA_ROOT.lstrip('/'))).st_mode) == 0o750
    with open(path) as handle:
        assert handle.read() == '{"data-root":"%s","storage-driver":"vfs"}' % DATA_ROOT


def test_the_storage_driver_is_added_once_when_none_is_set(root):
    path = write(root, '{"data-root":"%s"}' % DATA_ROOT)
    os.mkdir(os.path.join(root, DATA_ROOT.lstrip('/')), 0o710)
    found = _docker.plan(root, CONFIG, DATA_ROOT)
    assert found.plan.describe() == ['%s: add storage-driver = overlay2 (1 other key(s) kept)' % path]
    found.plan.apply()
    assert not _docker.plan(root, CONFIG, DATA_ROOT).plan
    assert not _docker.plan(root, CONFIG, DATA_ROOT, storage_driver='').plan


def test_no_storage_driver_where_docker_keeps_layers_with_btrfs_already(root):
    path = write(root, '{"data-root":"%s"}' % DATA_ROOT)
    os.makedirs(os.path.join(root, DATA_ROOT.lstrip('/'), 'btrfs', 'subvolumes'))
    found = _docker.plan(root, CONFIG, DATA_ROOT)
    assert not found.plan
    assert any('btrfs storage driver' in warning and 'refuse' in warning for warning in found.warnings)
    with open(path) as handle:
        assert handle.read() == '{"data-root":"%s"}' % DATA_ROOT


def test_plan_needs_the_state_directory(tmp_path):
    (tmp_path / 'etc').mkdir()
    with pytest.raises(PersistenceError, match='is not mounted'):
        _docker.plan(str(tmp_path), CONFIG, DATA_ROOT)


def test_plan_refuses_links(root):
    os.makedirs(os.path.join(root, 'elsewhere'))
    os.symlink(os.path.join(root, 'elsewhere'), os.path.join(root, 'etc/docker'))
    with pytest.raises(PersistenceError, match='symbolic link'):
        _docker.plan(root, CONFIG, DATA_ROOT)
    os.unlink(os.path.join(root, 'etc/docker'))
    os.makedirs(os.path.join(root, 'etc/docker'))
    os.symlink('/etc/passwd', os.path.join(root, 'etc/docker/daemon.json'))
    with pytest.raises(PersistenceError, match='symbolic link'):
        _docker.plan(root, CONFIG, DATA_ROOT)
    os.symlink(os.path.join(root, 'elsewhere'), os.path.join(root, DATA_ROOT.lstrip('/')))
    os.unlink(os.path.join(root, 'etc/docker/daemon.json'))
    with pytest.raises(PersistenceError, match='symbolic link'):
        _docker.plan(root, CONFIG, DATA_ROOT)

# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import LockTimeout, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._lock import persistence_lock, run_lock, sandbox_path


def test_lock_lives_under_root_run(tmp_path):
    with persistence_lock(str(tmp_path), 1) as path:
        assert path == str(tmp_path / 'run' / 'lightwhale' / 'persistence.lock')
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(str(tmp_path / 'run' / 'lightwhale')).st_mode) == 0o755


def test_second_holder_waits_then_times_out(tmp_path):
    with persistence_lock(str(tmp_path), 1) as path:
        with pytest.raises(LockTimeout) as err:
            with persistence_lock(str(tmp_path), 0.3):
                pass
        assert path in err.value.message
    # Released: taken again at once.
    with persistence_lock(str(tmp_path), 0):
        pass


def test_planted_symlink_is_not_followed(tmp_path):
    victim = tmp_path / 'victim'
    victim.write_text(u'keep')
    (tmp_path / 'run' / 'lightwhale').mkdir(parents=True)
    (tmp_path / 'run' / 'lightwhale' / 'persistence.lock').symlink_to(victim)
    with pytest.raises(PersistenceError):
        with persistence_lock(str(tmp_path), 1):
            pass
    assert victim.read_text() == u'keep'


def test_symlinked_run_dir_is_refused(tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'lightwhale').symlink_to(elsewhere)
    with pytest.raises(PersistenceError) as err:
        with persistence_lock(str(tmp_path), 1):
            pass
    assert 'symbolic link' in err.value.message
    assert list(elsewhere.iterdir()) == []


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(PersistenceError) as err:
        with persistence_lock(str(tmp_path / 'absent'), 1):
            pass
    assert 'does not exist' in err.value.message


def test_sandbox_path():
    assert sandbox_path('/', '/run/lightwhale') == '/run/lightwhale'
    assert sandbox_path('/tmp/sb', '/run/lightwhale') == '/tmp/sb/run/lightwhale'


def test_run_lock_in_check_mode_writes_nothing(tmp_path):
    with run_lock(str(tmp_path), 1, True):
        pass
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PersistenceError):
        with run_lock(str(tmp_path / 'absent'), 1, True):
            pass
    with run_lock(str(tmp_path), 1, False) as path:
        assert path.endswith('persistence.lock')

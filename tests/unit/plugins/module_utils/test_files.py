# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError


def test_read_missing_file_is_none(tmp_path):
    assert _files.read_file(str(tmp_path / 'nothing')) is None


def test_read_refuses_links_and_directories(tmp_path):
    (tmp_path / 'target').write_text('x')
    os.symlink(str(tmp_path / 'target'), str(tmp_path / 'link'))
    with pytest.raises(PersistenceError, match='symbolic link'):
        _files.read_file(str(tmp_path / 'link'))
    with pytest.raises(PersistenceError, match='not a regular file'):
        _files.read_file(str(tmp_path))


def test_write_replaces_atomically_with_owner_and_mode(tmp_path):
    path = str(tmp_path / 'file')
    _files.write_file(path, b'one', 0o600, os.getuid(), os.getgid())
    info = _files.read_file(path)
    assert (info.data, info.mode) == (b'one', 0o600)
    os.symlink(path, str(tmp_path / 'link'))
    _files.write_file(str(tmp_path / 'link'), b'two', 0o644, os.getuid(), os.getgid())
    # The link itself was replaced; its target kept its contents.
    assert stat.S_ISREG(os.lstat(str(tmp_path / 'link')).st_mode)
    assert _files.read_file(path).data == b'one'
    assert sorted(os.listdir(str(tmp_path))) == ['file', 'link']


def test_write_into_a_missing_directory_fails_cleanly(tmp_path):
    with pytest.raises(PersistenceError, match='cannot write'):
        _files.write_file(str(tmp_path / 'no' / 'file'), b'x', 0o644, os.getuid(), os.getgid())

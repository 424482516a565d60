# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small regular files (daemon.json, the status file): read whole, replaced atomically, never through a link.

A reader of the file sees the old or the new contents, never a half-written file: the new contents go to a
temporary file in the same directory, which is flushed and renamed over the old one. rename() replaces a
symbolic link itself, never its target; reading refuses one (O_NOFOLLOW), so a link planted where a file
belongs is an error, not a way to write somewhere else.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat
import tempfile

from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError


class FileInfo:
    """What read_file found: the contents and the owner and mode to keep when the file is replaced."""

    __slots__ = ('data', 'mode', 'uid', 'gid')

    def __init__(self, data, mode, uid, gid):
        self.data = data
        self.mode = mode
        self.uid = uid
        self.gid = gid


def read_file(path):
    """The regular file at C(path) as a FileInfo, or None when there is none. A link or a non-file is an error."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP:
            raise PersistenceError('%s is a symbolic link: not followed' % path)
        raise PersistenceError('cannot read %s: %s' % (path, exc.strerror or exc))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PersistenceError('%s is not a regular file' % path)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as exc:
        raise PersistenceError('cannot read %s: %s' % (path, exc.strerror or exc))
    finally:
        os.close(fd)
    return FileInfo(b''.join(chunks), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)


def write_file(path, data, mode, uid=0, gid=0):
    """Replace C(path) with C(data) (bytes) atomically, owned by C(uid):C(gid) with C(mode)."""
    directory = os.path.dirname(path)
    try:
        fd, temporary = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    except OSError as exc:
        raise PersistenceError('cannot write %s: %s' % (path, exc.strerror or exc))
    try:
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise PersistenceError('cannot write %s: %s' % (path, exc.strerror or exc))
    _sync_directory(directory)


def _sync_directory(directory):
    """Flush the rename itself (best effort: some filesystems refuse fsync on a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

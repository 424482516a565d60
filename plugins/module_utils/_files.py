# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small regular files (daemon.json, the status file) and the directories that hold them, never through a link.

Directories under a root (mount points, the state directory, overlay layers, Docker's data root) are checked with
lstat and created one component at a time with mkdir + open(O_NOFOLLOW) relative to the parent's descriptor, so a
symbolic link planted anywhere on the way is refused, never followed, even if it appears between the check and the
creation. A new directory is made 0700 and only then given its owner and mode.

A reader of the file sees the old or the new contents, never a half-written file: the new contents go to a
temporary file in the same directory, which is flushed and renamed over the old one. rename() replaces a
symbolic link itself, never its target; reading refuses one (O_NOFOLLOW), so a link planted where a file
belongs is an error, not a way to write somewhere else.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import posixpath
import stat
import tempfile
from collections import namedtuple

from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError


DIR_MODE = 0o755


def _components(root, path):
    names = [name for name in posixpath.relpath(path, root).split('/') if name not in ('', '.')]
    if names[:1] == ['..']:
        raise PersistenceError('%s is not under %s' % (path, root))
    return names


def missing_dirs(root, path):
    """The directories from C(root) down to C(path) (a host path under C(root)) that do not exist, outermost first.

    Raises PersistenceError for a symbolic link (never followed) or a non-directory among those that exist.
    """
    missing = []
    current = root
    for name in _components(root, path):
        current = posixpath.join(current, name)
        if missing:
            missing.append(current)
            continue
        try:
            info = os.lstat(current)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                missing.append(current)
                continue
            raise PersistenceError('cannot inspect %s: %s' % (current, exc.strerror))
        if stat.S_ISLNK(info.st_mode):
            raise PersistenceError('%s is a symbolic link: refusing to follow it (for %s)' % (current, path))
        if not stat.S_ISDIR(info.st_mode):
            raise PersistenceError('%s is not a directory (for %s)' % (current, path))
    return missing


def make_dirs(root, path, mode=DIR_MODE, owner=(0, 0)):
    """Create the missing directories from C(root) down to C(path) (a host path under C(root)), following no
    symbolic link (openat, O_NOFOLLOW).

    Directories created above C(path) are root-owned 0755; C(path) itself, if created, gets C(mode) and C(owner).
    Existing directories are left as they are. Returns the directories created.
    """
    created = []
    names = _components(root, path)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise PersistenceError('cannot open %s: %s' % (root, exc.strerror))
    current = root
    try:
        for index, name in enumerate(names):
            current = posixpath.join(current, name)
            made = False
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
                made = True
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise PersistenceError('cannot create %s: %s' % (current, exc.strerror))
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    if os.path.islink(current):
                        raise PersistenceError('%s is a symbolic link: refusing to follow it (for %s)' % (current, path))
                    raise PersistenceError('%s is not a directory (for %s)' % (current, path))
                raise PersistenceError('cannot open %s: %s' % (current, exc.strerror))
            os.close(fd)
            fd = child
            if made:
                last = index == len(names) - 1
                uid, gid = owner if last else (0, 0)
                try:
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, mode if last else DIR_MODE)
                except OSError as exc:
                    raise PersistenceError('cannot set the owner and mode of %s: %s' % (current, exc.strerror))
                created.append(current)
    finally:
        os.close(fd)
    return created


# What read_file found: the contents and the owner and mode to keep when the file is replaced.
FileInfo = namedtuple('FileInfo', ('data', 'mode', 'uid', 'gid'))


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


def remove_file(path):
    """Remove the file C(path) and flush its directory, so the removal survives a crash. False when there was none."""
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise PersistenceError('cannot remove %s: %s' % (path, exc.strerror or exc))
    _sync_directory(os.path.dirname(path))
    return True


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

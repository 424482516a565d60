# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One writer at a time: the boot hook and an operator never both format (an flock under <root>/run/lightwhale)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import time
from contextlib import contextmanager

from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import LockTimeout, PersistenceError


def sandbox_path(root, path):
    """C(path) (absolute, as seen inside the sandbox) under C(root) on the host."""
    return os.path.join(root, path.lstrip('/'))


@contextmanager
def persistence_lock(root, timeout):
    """Hold the persistence lock; wait up to C(timeout) seconds for another holder, then raise LockTimeout."""
    if not os.path.isdir(root):
        raise PersistenceError('root %s does not exist or is not a directory' % root)
    run_dir = sandbox_path(root, _layout.RUN_DIR)
    lock_path = sandbox_path(root, _layout.LOCK_FILE)
    try:
        if not os.path.isdir(run_dir):
            os.makedirs(run_dir, 0o755)
        if os.path.islink(run_dir):
            raise PersistenceError('%s is a symbolic link; refusing to put the lock through it' % run_dir)
        # O_NOFOLLOW: a symlink planted as the lock file is refused, never followed.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise PersistenceError('cannot open the lock %s: %s' % (lock_path, exc))
    try:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise PersistenceError('cannot take the lock %s: %s' % (lock_path, exc))
                if time.time() > deadline:
                    raise LockTimeout('another run has held %s for more than %ss' % (lock_path, timeout))
                time.sleep(0.1)
        yield lock_path
    finally:
        os.close(fd)


@contextmanager
def _root_checked(root):
    if not os.path.isdir(root):
        raise PersistenceError('root %s does not exist or is not a directory' % root)
    yield None


def run_lock(root, timeout, check_mode):
    """The persistence lock around a real run. Check mode writes nothing, so it takes no lock (creating the
    lock file would be a write) and only checks that C(root) exists."""
    if check_mode:
        return _root_checked(root)
    return persistence_lock(root, timeout)

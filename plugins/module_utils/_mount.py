# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The mount-point directories under a root (the mounts themselves are writes in _writes).

What is mounted is read from mountinfo (_mountinfo). Directories are created
root-owned with an explicit mode, one component at a time, and no symbolic link is followed: a
mount point that is a link is refused, because mountinfo would then show another path than the one
asked for.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.lightwhale.persistence.plugins.module_utils import _files

DIR_MODE = 0o755


def under(root, path):
    """C(path) (absolute, as seen inside C(root)) on the host."""
    return os.path.join(root, path.lstrip('/'))


def missing_dirs(root, path):
    """The directories make_dirs would create for C(path) (as seen inside C(root)), outermost first; raises on a
    link (never followed) or a non-directory (_files.missing_dirs)."""
    return _files.missing_dirs(root, under(root, path))


def make_dirs(root, path, mode=DIR_MODE):
    """Create the missing directories of C(path) (as seen inside C(root)): root-owned, 0755 above C(path), C(mode)
    for C(path) itself, no link followed (_files.make_dirs). Returns those created."""
    return _files.make_dirs(root, under(root, path), mode)

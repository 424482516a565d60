# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The plans of boot step 7: create the layers' directories, bind the image's directory read-only, mount the overlay
(or take them down, in reverse order), and read back what the kernel says is mounted.

Every path is checked before anything is planned; a refusal names each problem and nothing is written.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import os
import posixpath
import stat

from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._overlay import DIR_MODE, is_read_only, special_char
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan


def _existing_ancestor(path):
    while not os.path.lexists(path):
        path = posixpath.dirname(path)
    return path


def _mount_actions(plan, runner, state):
    layers = state.layers
    bind = functools.partial(_writes.bind, runner, layers.target, layers.lower)
    secure = functools.partial(_writes.secure_bind, runner, layers.lower)
    overlay = functools.partial(_writes.mount, runner, 'overlay', layers.target, 'overlay', [layers.options()],
                                device=layers.target)
    if state.bind is None:
        plan.add('overlay-bind', layers.path, 'bind-mount %s on %s' % (layers.target, layers.lower), bind)
    if state.bind is None or not is_read_only(state.bind):
        plan.add('overlay-secure', layers.path, 'make %s private and read-only' % layers.lower, secure)
    if state.overlay is None:
        plan.add('overlay-mount', layers.path, 'mount overlay on %s (%s)' % (layers.target, layers.options()),
                 overlay)


def _dir_actions(plan, root, state, problems):
    layers = state.layers
    try:
        image = os.stat(layers.target)
    except OSError as exc:
        problems.append('cannot inspect %s: %s' % (layers.target, exc.strerror))
        return
    # The overlay's root directory shows the upper directory's owner and mode: give it the image's.
    wanted = ((layers.lower, DIR_MODE, (0, 0)),
              (layers.upper, stat.S_IMODE(image.st_mode), (image.st_uid, image.st_gid)),
              (layers.work, DIR_MODE, (0, 0)))
    for path, mode, owner in wanted:
        try:
            missing = _files.missing_dirs(root, path)
        except PersistenceError as exc:
            problems.append(exc.message)
            continue
        if missing:
            plan.add('overlay-mkdir', layers.path, 'create %s (owner %d:%d, mode %04o)' % (path, owner[0], owner[1], mode),
                     lambda path=path, mode=mode, owner=owner: _files.make_dirs(root, path, mode, owner))
    upper, work = _existing_ancestor(layers.upper), _existing_ancestor(layers.work)
    if os.lstat(upper).st_dev != os.lstat(work).st_dev:
        problems.append('%s and %s are on different filesystems: overlayfs needs upper and work on one'
                        % (layers.upper, layers.work))


def _refuse(problems):
    if len(problems) == 1:
        message = problems[0]
    else:
        message = '%d problems, nothing changed: %s' % (len(problems), '; '.join(problems))
    return PersistenceError(message, problems=problems)


def check_target(root, layers):
    """Problem with the image's directory C(layers.target) (missing, a symlink, not a directory), or None."""
    try:
        missing = _files.missing_dirs(root, layers.target)
    except PersistenceError as exc:
        return exc.message
    if missing:
        return '%s does not exist (the image has no %s)' % (missing[0], layers.path)
    for char_path in (layers.lower, layers.upper, layers.work):
        what = special_char(char_path)
        if what:
            return '%s holds %s, which overlayfs mount options cannot carry: refused' % (char_path, what)
    return None


def plan_mounted(runner, root, states):
    """The plan that mounts every path's layers, in order; (plan, warnings). Raises before any write if any path
    cannot be mounted (every problem named)."""
    plan = Plan()
    problems = []
    warnings = []
    for state in states:
        layers = state.layers
        problem = check_target(root, layers)
        if problem:
            problems.append(problem)
            continue
        if state.problems:
            problems.extend(state.problems)
            continue
        if state.overlay is not None:
            if state.bind is None:
                warnings.append('%s: the overlay is mounted but its lower bind %s is not (the overlay keeps '
                                'working; it is not re-created under a mounted overlay)' % (layers.target, layers.lower))
            elif not is_read_only(state.bind):
                _mount_actions(plan, runner, state)
            continue
        if state.submounts:
            problems.append('%s has submounts (%s) that the bind would not carry and the overlay would hide: '
                            'refused' % (layers.target, ', '.join(state.submounts)))
            continue
        _dir_actions(plan, root, state, problems)
        _mount_actions(plan, runner, state)
    if problems:
        raise _refuse(problems)
    for state in states:
        if any(action.device == state.layers.path for action in plan.actions):
            plan.expected[state.layers.path] = state.predicted_table(True)
    return plan, warnings


def plan_unmounted(runner, states):
    """The plan that takes the overlays down, then the binds, both in reverse order. Raises before any write if
    any of them cannot be taken down (every problem named)."""
    plan = Plan()
    problems = []
    for state in reversed(states):
        layers = state.layers
        if state.problems:
            problems.extend(state.problems)
            continue
        if state.overlay is None:
            continue
        if state.submounts:
            # umount would fail busy half-way through; a lazy unmount would hide it. Refused up front.
            problems.append('%s has submounts (%s) on its overlay: unmount them first'
                            % (layers.target, ', '.join(state.submounts)))
            continue
        plan.add('overlay-umount', layers.path, 'unmount overlay %s' % layers.target,
                 functools.partial(_writes.umount, runner, layers.target))
    for state in reversed(states):
        layers = state.layers
        if state.bind is not None and not state.problems:
            plan.add('overlay-unbind', layers.path, 'unmount bind %s' % layers.lower,
                     functools.partial(_writes.umount, runner, layers.lower))
    if problems:
        raise _refuse(problems)
    for state in states:
        if any(action.device == state.layers.path for action in plan.actions):
            plan.expected[state.layers.path] = state.predicted_table(False)
    return plan


def verify(states, mounted, touched):
    """Re-read state after applying: the kernel, not the tools' exit codes, says what is mounted.

    C(touched) lists the paths the plan acted on; with C(mounted) their binds must be there and read-only.
    """
    for state in states:
        layers = state.layers
        if mounted:
            if state.problems:
                raise CommandError('after mounting: %s' % '; '.join(state.problems), device=layers.target)
            if state.overlay is None:
                raise CommandError('%s: the overlay is not in mountinfo after mounting it' % layers.target,
                                   device=layers.target)
            if layers.path in touched and (state.bind is None or not is_read_only(state.bind)):
                raise CommandError('%s: the lower bind is not there read-only after mounting it' % layers.lower,
                                   device=layers.lower)
        elif state.overlay is not None or state.bind is not None:
            raise CommandError('%s: still mounted after unmounting it' % layers.target, device=layers.target)

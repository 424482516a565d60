# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every module's main() shares: the timeout check, the lock, and the exit (the result, or the error)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._lock import run_lock


def warn(module, notes, text):
    """A warning of this run: to Ansible, and kept in C(notes) for the status file."""
    module.warn(text)
    notes.append(text)


def lock(module, root=None):
    """The persistence lock of a real run under C(root) (default: the root option); check mode takes none."""
    return run_lock(module.params['root'] if root is None else root, module.params['timeout'], module.check_mode)


def finish(module, work, on_error=None):
    """Run C(work)(module) and exit with its result. A PersistenceError fails the module with its message, the device
    it names and its details, plus what C(on_error)(error) adds."""
    timeout = module.params.get('timeout')
    if timeout is not None and timeout < 0:
        module.fail_json(msg='timeout must not be negative, got %d' % timeout)
    error = None
    try:
        result = work(module)
    except PersistenceError as exc:
        error = exc
    if error is None:
        module.exit_json(**result)
    # Outside the except block: an expected failure is a message, not a traceback.
    details = error.result()
    if on_error is not None:
        details.update(on_error(error))
    details.setdefault('msg', error.message)
    module.fail_json(**details)

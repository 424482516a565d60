# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The boot's status as its last recording step returned it, for the role's summary line and exit decision.

Every step of the boot records its part of the status file and returns the whole document; the last one that ran
holds the boot's outcome. A step skipped, or one that died before recording, returns none and is passed over.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

NOTHING_RECORDED = 'lightwhale-persistence: FAILED: no step of the boot recorded the status'


def boot_status(steps):
    """The last status document in C(steps), in the order the steps ran: each a status document, a registered result
    that holds one as C(status), or null (the step did not run, or died before recording). When there is none, a
    status that says so (C(ok) false)."""
    if not isinstance(steps, (list, tuple)):
        raise AnsibleFilterError('boot_status: expects a list of status documents or registered results, got %s'
                                 % type(steps).__name__)
    for step in reversed(steps):
        if isinstance(step, Mapping) and isinstance(step.get('status'), Mapping):
            step = step['status']
        if isinstance(step, Mapping) and 'summary' in step and 'ok' in step:
            return dict(step)
    return dict(ok=False, mode=None, failure='no step of the boot recorded the status', summary=NOTHING_RECORDED)


class FilterModule(object):
    """lightwhale.persistence filters."""

    def filters(self):
        return {'boot_status': boot_status}

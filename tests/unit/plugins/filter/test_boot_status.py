# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter boot_status: the status of the last step that returned one."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.lightwhale.persistence.plugins.filter.boot_status import FilterModule, boot_status


def test_the_last_status_wins_and_steps_without_one_are_passed_over():
    found = dict(ok=False, summary='datafs')
    overlay = dict(ok=False, summary='overlay failed')
    assert boot_status([found, None, overlay, None])['summary'] == 'overlay failed'
    assert boot_status([found, None])['summary'] == 'datafs'


def test_registered_results_are_taken_by_their_status():
    found = dict(changed=True, status=dict(ok=True, summary='datafs'))
    skipped = dict(changed=False, skipped=True, skip_reason='Conditional result was False')
    assert boot_status([found, skipped, {}]) == dict(ok=True, summary='datafs')


def test_no_status_at_all_is_not_ok_and_says_so():
    status = boot_status([None, {}, dict(failed=True, msg='MODULE FAILURE'), 'text'])
    assert status['ok'] is False and 'no step of the boot recorded the status' in status['summary']


def test_a_list_is_required():
    with pytest.raises(AnsibleFilterError, match='list'):
        boot_status(dict(status={}))
    assert FilterModule().filters()['boot_status'] is boot_status

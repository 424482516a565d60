# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a filesystem's chunk profiles protect at least as much as expected (filter profiles_meet).

The enable role verifies real hosts with it in tests/integration/test_grow.py and test_enable.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.lightwhale.persistence.plugins.filter.profiles_meet import FilterModule, profiles_meet


def fs(data, metadata):
    return dict(data_profile=data, metadata_profile=metadata)


@pytest.mark.parametrize('data, metadata, expected, meets', [
    ('raid1', 'raid1', 'raid1/raid1', True),
    ('raid1c3', 'raid1c3', 'raid1/raid1', True),          # stronger, an operator's choice
    ('raid1', 'raid1c4', 'raid1/raid1c3', True),
    ('raid1', 'raid1', 'raid1/raid1c3', False),           # metadata one copy short
    ('raid1,single', 'raid1', 'raid1/raid1', False),      # chunks left by a degraded period
    ('raid1c3,raid1', 'raid1c3', 'raid1/raid1c3', True),  # every profile meets
    ('single', 'dup', 'raid1/raid1', False),              # a conversion not begun
    ('dup', 'dup', 'single/dup', True),
    ('single', 'single', 'single/dup', False),
    ('raid0', 'raid1', 'single/raid1', True),
    ('RAID1', 'Raid1', 'raid1/raid1', True),
    (None, 'raid1', 'raid1/raid1', False),                # no profile seen
    ('', '', 'single/dup', False),
    ('mixed', 'raid1', 'raid1/raid1', False),             # a name it does not know
])
def test_profiles_meet(data, metadata, expected, meets):
    assert profiles_meet(fs(data, metadata), expected) is meets


def test_a_filesystem_without_profiles_meets_nothing():
    assert profiles_meet({}, 'single/dup') is False


@pytest.mark.parametrize('filesystem, expected, words', [
    (None, 'raid1/raid1', 'the input must be the filesystem'),
    ('raid1', 'raid1/raid1', 'the input must be the filesystem'),
    (fs('raid1', 'raid1'), None, 'expected must be "data/metadata"'),
    (fs('raid1', 'raid1'), 'raid1', 'expected must be "data/metadata"'),
    (fs('raid1', 'raid1'), 'raid1/raid1/raid1', 'expected must be "data/metadata"'),
    (fs('raid1', 'raid1'), 'raid1/raid7', 'unknown profile raid7'),
    (fs(['raid1'], 'raid1'), 'raid1/raid1', 'data_profile must be a string'),
])
def test_bad_input_is_refused_with_the_reason(filesystem, expected, words):
    with pytest.raises(AnsibleFilterError, match=words):
        profiles_meet(filesystem, expected)


def test_the_filter_is_registered():
    assert FilterModule().filters() == {'profiles_meet': profiles_meet}

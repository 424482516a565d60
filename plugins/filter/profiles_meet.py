# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether the chunk profiles of a data filesystem protect at least as much as expected.

The enable role verifies a host with it: chunks that protect less than the member count calls for (a conversion not
done, single-copy chunks of a degraded period) fail the host; a stronger profile an operator chose passes, as the
boot keeps it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.lightwhale.persistence.plugins.module_utils._btrfs import PROTECTION


def _names(value, what):
    if value is None or value == '':
        return []
    if not isinstance(value, str):
        raise AnsibleFilterError('profiles_meet: %s must be a string of profile names, got %r' % (what, value))
    return [name.strip().lower() for name in value.split(',') if name.strip()]


def profiles_meet(filesystem, expected):
    """True when every data and metadata profile of C(filesystem) (persistence_info's filesystem: data_profile,
    metadata_profile, several joined by a comma) protects at least as much as C(expected) (V(data/metadata))."""
    if not isinstance(filesystem, Mapping):
        raise AnsibleFilterError('profiles_meet: the input must be the filesystem of persistence_info, got %r'
                                 % (filesystem,))
    if not isinstance(expected, str) or expected.count('/') != 1:
        raise AnsibleFilterError('profiles_meet: expected must be "data/metadata", for example "raid1/raid1", '
                                 'got %r' % (expected,))
    wanted = [name.strip().lower() for name in expected.split('/')]
    unknown = [name for name in wanted if name not in PROTECTION]
    if unknown:
        raise AnsibleFilterError('profiles_meet: unknown profile %s in %r (known: %s)' % (
            ', '.join(unknown), expected, ', '.join(sorted(PROTECTION))))
    for key, target in zip(('data_profile', 'metadata_profile'), wanted):
        names = _names(filesystem.get(key), key)
        # No profile seen (not mounted, or not btrfs) or one unknown: not what was expected.
        if not names or any(PROTECTION.get(name, (-1, 0)) < PROTECTION[target] for name in names):
            return False
    return True


class FilterModule(object):
    """lightwhale.persistence filters."""

    def filters(self):
        return {'profiles_meet': profiles_meet}

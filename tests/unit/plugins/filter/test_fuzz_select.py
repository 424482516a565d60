# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property test (fuzzing) of the enable role's selector parser: any value raises only AnsibleFilterError
with a message naming the variable (a controller-side filter, so it lives here and not under module_utils)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from hypothesis import example, given, settings, strategies as st

from ansible.errors import AnsibleFilterError

from ansible_collections.lightwhale.persistence.plugins.filter.enable_plan import parse_select

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=20)
KEYS = st.sampled_from(['count', 'min_size', 'max_size', 'patterns', 'exclude'])


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.dictionaries(KEYS, JSON, max_size=5)))
@example([{'count': 1}])  # found by this test: a ValueError from dict(), now a clear refusal
@example(-6.3e16)  # and a TypeError
def test_enable_plan_selector_raises_only_filter_errors(select):
    try:
        parsed = parse_select(select)
    except AnsibleFilterError as exc:
        assert 'lightwhale_persistence_select' in str(exc)
    else:
        assert set(parsed) == {'count', 'min_size', 'max_size', 'patterns', 'exclude'}

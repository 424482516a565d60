# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils._units import human, parse_size


@pytest.mark.parametrize('text, expected', [
    ('0', 0), ('512', 512), ('1K', 1024), ('64M', 64 * 2 ** 20), ('64MiB', 64 * 2 ** 20), ('2g', 2 * 2 ** 30),
    ('2 GiB', 2 * 2 ** 30), ('1T', 2 ** 40), ('10B', 10), (' 7mb ', 7 * 2 ** 20),
])
def test_parse_size_accepts_iec_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize('text', ['', 'M', '1.5G', '-1M', '12X', 'auto', '1 2M', '0x10'])
def test_parse_size_rejects_with_reason(text):
    with pytest.raises(ValueError) as err:
        parse_size(text)
    assert repr(text)[1:-1] in str(err.value) or text.strip() in str(err.value)


@pytest.mark.parametrize('size, text', [
    (0, '0 B'), (1023, '1023 B'), (1024, '1 KiB'), (64 * 2 ** 20, '64 MiB'), (int(1.5 * 2 ** 30), '1.5 GiB'),
])
def test_human(size, text):
    assert human(size) == text


@given(st.integers(min_value=0, max_value=2 ** 20), st.sampled_from(['', 'K', 'M', 'G', 'KiB', 'MiB', 'GiB']))
def test_parse_size_is_exact_for_whole_numbers(number, unit):
    factor = {'': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3}[unit[:1]]
    assert parse_size('%d%s' % (number, unit)) == number * factor


@given(st.text(max_size=12))
def test_parse_size_never_raises_other_than_value_error(text):
    try:
        assert parse_size(text) >= 0
    except ValueError:
        pass

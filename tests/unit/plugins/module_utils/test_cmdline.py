# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils._cmdline import has_flag, read_cmdline, split_words, swap_wanted


@pytest.mark.parametrize('cmdline, words', [
    ('', []),
    ('quiet noswap\n', ['quiet', 'noswap']),
    ('root=/dev/ram0  console=ttyS0', ['root=/dev/ram0', 'console=ttyS0']),
    ('a="b c" noswap', ['a=b c', 'noswap']),
    ('"quoted word"', ['quoted word']),
    ('x=""', ['x=']),
])
def test_split_words(cmdline, words):
    assert split_words(cmdline) == words


@pytest.mark.parametrize('cmdline, expected', [
    ('quiet noswap', True),
    ('noswap', True),
    ('quiet', False),
    ('noswap=1', False),
    ('nonoswap', False),
    ('opt="noswap"', False),
    ('init="/bin/sh noswap"', False),
])
def test_has_flag_takes_only_the_bare_word(cmdline, expected):
    assert has_flag(cmdline, 'noswap') is expected


def test_read_cmdline(tmp_path):
    path = tmp_path / 'cmdline'
    path.write_text(u'console=ttyS0 noswap\n')
    assert has_flag(read_cmdline(str(path)), 'noswap')


_WORD = st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='"'), min_size=1).filter(
    lambda word: not any(char.isspace() for char in word))


@given(st.lists(_WORD, max_size=8))
def test_split_words_round_trips_unquoted_words(words):
    assert split_words(' '.join(words)) == words


@pytest.mark.parametrize('swap, cmdline, wanted', [
    (True, 'quiet', True), (True, 'quiet noswap', False), (False, 'quiet', False), (False, 'noswap', False),
])
def test_swap_wanted(swap, cmdline, wanted):
    assert swap_wanted(swap, cmdline) is wanted


def test_swap_wanted_reads_the_kernel_command_line_by_default():
    assert swap_wanted(True) is not has_flag(read_cmdline(), 'noswap')

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kernel command line: the words an operator can set at boot (noswap)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

PROC_CMDLINE = '/proc/cmdline'


def split_words(cmdline):
    """Split a kernel command line the way the kernel does: on white space, double quotes group."""
    words = []
    current = []
    in_word = False
    quoted = False
    for char in cmdline:
        if char == '"':
            quoted = not quoted
            in_word = True
        elif char.isspace() and not quoted:
            if in_word:
                words.append(''.join(current))
            current = []
            in_word = False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append(''.join(current))
    return words


def has_flag(cmdline, flag):
    """True when the bare word C(flag) (no value) stands on the command line."""
    return flag in split_words(cmdline)


def read_cmdline(path=PROC_CMDLINE):
    with open(path) as handle:
        return handle.read()


def swap_wanted(swap, cmdline=None):
    """The C(swap) option, turned off by the word C(noswap) on the kernel command line (read when C(cmdline) is None)."""
    if cmdline is None:
        cmdline = read_cmdline()
    return bool(swap) and not has_flag(cmdline, 'noswap')

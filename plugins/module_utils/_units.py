# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Byte sizes: parse what an operator writes (IEC units), print what a human reads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

_FACTORS = {
    '': 1, 'B': 1,
    'K': 1024, 'KB': 1024, 'KIB': 1024,
    'M': 1024 ** 2, 'MB': 1024 ** 2, 'MIB': 1024 ** 2,
    'G': 1024 ** 3, 'GB': 1024 ** 3, 'GIB': 1024 ** 3,
    'T': 1024 ** 4, 'TB': 1024 ** 4, 'TIB': 1024 ** 4,
}
_SIZE_RE = re.compile(r'^\s*(\d+)\s*([A-Za-z]*)\s*$')


def parse_size(text):
    """Return the number of bytes in C(text), a whole number with an optional IEC unit (K, M, G, T; all powers of 1024).

    Raises ValueError with the reason for anything else.
    """
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ValueError('%r is not a size: write a whole number with an optional unit, such as 512M or 2GiB' % (text,))
    unit = match.group(2).upper()
    if unit not in _FACTORS:
        raise ValueError('%r has an unknown unit %r: use K, M, G or T (powers of 1024)' % (text, match.group(2)))
    return int(match.group(1)) * _FACTORS[unit]


def human(size):
    """Format a byte count the way operators read it: 64 MiB, 1.5 GiB."""
    size = int(size)
    for unit, factor in (('TiB', 1024 ** 4), ('GiB', 1024 ** 3), ('MiB', 1024 ** 2), ('KiB', 1024)):
        if size >= factor:
            value = size / factor
            if value == int(value):
                return '%d %s' % (value, unit)
            return '%.1f %s' % (value, unit)
    return '%d B' % size

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The enable role's decision for one host, from what persistence_info saw: leave it alone, or which disks to mark.

Pure: reads the module's result and the host's variables, returns a plan. The selector takes only disks that
persistence_info reports empty (no header, no signature, no partition, no holder, not in use, not read-only, zero
first and last MiB), so it never picks a disk that holds data; force is honoured only with an explicit list.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.lightwhale.persistence.plugins.module_utils._btrfs import profiles_for
from ansible_collections.lightwhale.persistence.plugins.module_utils._partitioning import required_size
from ansible_collections.lightwhale.persistence.plugins.module_utils._units import human, parse_size

SELECT_KEYS = ('count', 'min_size', 'max_size', 'patterns', 'exclude')
DEFAULT_MIN_SIZE = '1GiB'
_DIGITS = re.compile(r'(\d+)')


def natural_key(text):
    """The kernel's order of disk names: sdb < sdz < sdaa, nvme2n1 < nvme10n1 (numbers compare as numbers, and a
    shorter run of letters comes first)."""
    return [(0, int(part), '') if part.isdigit() else (1, len(part), part) for part in _DIGITS.split(text or '') if part]


def _size(value, what):
    if value is None or value == '':
        return None
    if isinstance(value, bool):
        raise AnsibleFilterError('lightwhale_persistence_select.%s: %r is not a size' % (what, value))
    if isinstance(value, int):
        return value
    try:
        return parse_size(value)
    except ValueError as exc:
        raise AnsibleFilterError('lightwhale_persistence_select.%s: %s' % (what, exc))


def _globs(value, what):
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise AnsibleFilterError('lightwhale_persistence_select.%s: a list of glob patterns, got %r' % (what, value))
    return list(value)


def parse_select(select):
    """The selector with its defaults: dict(count (int or None for all), min_size, max_size, patterns, exclude)."""
    if select is not None and not isinstance(select, Mapping):
        raise AnsibleFilterError('lightwhale_persistence_select: a dictionary (count, min_size, max_size, patterns, '
                                 'exclude), got %r' % (select,))
    select = dict(select or {})
    unknown = sorted(set(select) - set(SELECT_KEYS))
    if unknown:
        raise AnsibleFilterError('lightwhale_persistence_select: unknown key(s) %s; the keys are %s' % (
            ', '.join(unknown), ', '.join(SELECT_KEYS)))
    count = select.get('count', 1)
    # Only ASCII digits: str.isdigit() also takes characters int() refuses (superscripts, a control character that
    # str.strip() removes).
    if isinstance(count, str) and re.match(r'^[ \t\r\n]*[0-9]+[ \t\r\n]*$', count):
        count = int(count)
    if count == 'all' or count is None:
        count = None
    elif isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise AnsibleFilterError('lightwhale_persistence_select.count: a whole number of at least 1, or "all"; got %r'
                                 % (count,))
    min_size = _size(select.get('min_size', DEFAULT_MIN_SIZE), 'min_size') or 0
    max_size = _size(select.get('max_size'), 'max_size')
    if max_size is not None and max_size < min_size:
        raise AnsibleFilterError('lightwhale_persistence_select: max_size %s is less than min_size %s' % (
            human(max_size), human(min_size)))
    return dict(count=count, min_size=min_size, max_size=max_size, patterns=_globs(select.get('patterns'), 'patterns'),
                exclude=_globs(select.get('exclude'), 'exclude'))


def names_of(disk):
    """Every name a pattern may match: the device path, the path as listed, the kernel name, by-id links, model."""
    names = [disk.get('device'), disk.get('given'), disk.get('name'), disk.get('model')] + list(disk.get('ids') or [])
    return [name for name in names if name]


def _matching(patterns, names):
    for pattern in patterns:
        for name in names:
            if fnmatch.fnmatchcase(name, pattern):
                return pattern
    return None


def choose(disks, selector, taken=()):
    """(eligible, passed_over): the disks the selector may take, in natural order of their kernel names, and
    (device, reason) for every other candidate. Only disks reported empty are ever eligible."""
    eligible, passed = [], []
    for disk in sorted(disks, key=lambda item: natural_key(item.get('name') or item.get('device'))):
        device = disk.get('device')
        if device in taken:
            continue
        names = names_of(disk)
        excluded = _matching(selector['exclude'], names)
        size = disk.get('size') or 0
        if excluded:
            reason = 'excluded (%s)' % excluded
        elif selector['patterns'] and not _matching(selector['patterns'], names):
            reason = 'matches none of the patterns %s' % ', '.join(selector['patterns'])
        elif not disk.get('empty'):
            reason = 'not empty: %s' % '; '.join(disk.get('reasons') or ['not reported empty'])
        elif size < selector['min_size']:
            reason = 'smaller (%s) than min_size %s' % (human(size), human(selector['min_size']))
        elif selector['max_size'] is not None and size > selector['max_size']:
            reason = 'larger (%s) than max_size %s' % (human(size), human(selector['max_size']))
        else:
            eligible.append(device)
            continue
        passed.append(dict(device=device, reason=reason))
    return eligible, passed


def _find(disks, entry):
    for disk in disks:
        if entry in (disk.get('device'), disk.get('given')) or entry in (disk.get('ids') or []):
            return disk
    return None


def _profile(count):
    if count < 1:
        return None
    return '%s/%s' % profiles_for(count)


def _plan(**values):
    plan = dict(action=None, how=None, mark=[], waiting=[], pending=[], expected_members=0, expected_profile=None,
                passed_over=[], problem=None, message=None)
    plan.update(values)
    return plan


def _expect(plan, count):
    plan['expected_members'] = count
    plan['expected_profile'] = _profile(count)
    return plan


def enable_plan(info, disks=None, select=None, force=False):
    """The plan for one host: see plugins/filter/enable_plan.yml."""
    if not isinstance(info, dict) or 'mode' not in info or 'disks' not in info:
        raise AnsibleFilterError('enable_plan: the input is not a result of lightwhale.persistence.persistence_info')
    disks = [str(item) for item in (disks or [])]
    candidates = info.get('disks') or []
    waiting = list(info.get('magic_disks') or [])
    fs = info.get('filesystem')
    pending = [] if fs else list((info.get('magic_partitions') or {}).get('data') or [])

    if fs and disks and info['mode'] in ('persistent', 'degraded'):
        return _grow(info, fs, disks, candidates, waiting)
    if fs:
        how = 'persistent' if info['mode'] in ('persistent', 'degraded') else 'found'
        message = '%s: data filesystem %s, %s/%s, %d of %d members%s - left alone' % (
            info['mode'] if how == 'persistent' else 'data filesystem found but not mounted',
            fs.get('uuid'), fs.get('data_profile') or '?', fs.get('metadata_profile') or '?',
            len(fs.get('members') or []), fs.get('num_devices') or 0,
            ', missing %s' % ', '.join(fs['missing']) if fs.get('missing') else '')
        plan = _plan(action='leave', how=how, waiting=waiting, message=message)
        # What the member count calls for: a host whose chunks have other profiles fails the verification.
        return _expect(plan, fs.get('num_devices') or 0)
    if info.get('failure'):
        return _plan(action='fail', problem='the data filesystem on the disks cannot be used, nothing marked: %s'
                     % info['failure'])

    notes = []
    if disks:
        seen, mark, already = set(), [], []
        for entry, key, disk in _listed(candidates, disks):
            seen.add(key)
            if disk is not None and disk.get('magic'):
                already.append(entry)
            else:
                mark.append(entry)
        if select:
            notes.append('the explicit list wins over lightwhale_persistence_select')
        members = len(seen | set(waiting)) + len(pending)
        plan = _plan(action='mark' if mark else 'wait', how='explicit', mark=mark, waiting=waiting, pending=pending)
        _expect(plan, members)
        plan['message'] = _describe(plan, force, notes)
        return plan
    if not select:
        return _plan(action='fail', waiting=waiting, pending=pending,
                     problem='no disks chosen: set lightwhale_persistence_disks (a list per host) or '
                             'lightwhale_persistence_select (a selector over the empty disks)')
    selector = parse_select(select)
    if force:
        notes.append('force ignored: the selector takes only empty disks')
    eligible, passed = choose(candidates, selector, taken=set(waiting))
    have = len(waiting) + len(pending)
    if selector['count'] is None:
        mark = eligible
    else:
        mark = eligible[:max(selector['count'] - have, 0)]
        if have + len(eligible) < selector['count']:
            return _plan(action='fail', how='selector', waiting=waiting, pending=pending, passed_over=passed,
                         problem='the selector wants %d disk(s), but %d empty disk(s) match%s; nothing marked. '
                                 'Passed over: %s' % (
                                     selector['count'], len(eligible),
                                     ' and %d wait(s) for the next boot' % have if have else '',
                                     '; '.join('%s %s' % (item['device'], item['reason']) for item in passed) or 'none'))
    if not mark and not have:
        return _plan(action='fail', how='selector', passed_over=passed,
                     problem='the selector matches no empty disk; nothing marked. Passed over: %s' % (
                         '; '.join('%s %s' % (item['device'], item['reason']) for item in passed) or 'none'))
    plan = _plan(action='mark' if mark else 'wait', how='selector', mark=mark, waiting=waiting, pending=pending,
                 passed_over=passed)
    _expect(plan, have + len(mark))
    plan['message'] = _describe(plan, False, notes)
    return plan


def _listed(candidates, disks):
    """(entry, key, disk) once per disk of the explicit list: the entry as listed, the device it resolves to (the
    entry itself when it is not among the candidates), its candidate or None. A disk listed twice (by name and by
    id) comes once, as first listed."""
    seen = set()
    for entry in disks:
        disk = _find(candidates, entry)
        key = disk.get('device') if disk else entry
        if key not in seen:
            seen.add(key)
            yield entry, key, disk


def _grow(info, fs, disks, candidates, waiting):
    """A persistent host and an explicit list: the listed disks that are not members join it at once."""
    members = set(fs.get('members') or [])
    mark, joining, marked, small = [], [], set(), []
    for entry, key, disk in _listed(candidates, disks):
        parts = set(part.get('device') for part in (disk or {}).get('partitions') or [])
        if disk is not None and (key in members or parts & members):
            continue
        if disk is not None and disk.get('size') is not None and disk['size'] < required_size(0):
            small.append('%s (%s)' % (entry, human(disk['size'])))
            continue
        joining.append(key)
        if disk is None or not disk.get('magic'):
            mark.append(entry)
            marked.add(key)
    if small:
        return _plan(action='fail', how='explicit', problem='too small to join the data filesystem %s, nothing marked: '
                     '%s - a disk needs at least %s (the data partition and the GPT, without swap)' % (
                         fs.get('uuid'), ', '.join(small), human(required_size(0))))
    joining.extend(path for path in waiting if path not in joining)
    if not joining:
        plan = _plan(action='leave', how='persistent', message='%s: every listed disk is a member of the data '
                     'filesystem %s - left alone' % (info['mode'], fs.get('uuid')))
        return _expect(plan, fs.get('num_devices') or 0)
    present = len(fs.get('members') or [])
    count = max(fs.get('num_devices') or 0, present + len(joining))
    plan = _plan(action='grow', how='explicit', mark=mark, waiting=[path for path in joining if path not in marked])
    _expect(plan, count)
    plan['message'] = '%s%s join the data filesystem %s now: %d member(s), %s after the background conversion' % (
        'mark %s; ' % ', '.join(mark) if mark else '', ', '.join(mark + plan['waiting']), fs.get('uuid'), count,
        plan['expected_profile'])
    return plan


def _describe(plan, force, notes):
    parts = []
    if plan['mark']:
        parts.append('mark %s%s' % (', '.join(plan['mark']), ' (force: old signatures wiped)' if force else ''))
    if plan['waiting']:
        parts.append('already carrying the header: %s' % ', '.join(plan['waiting']))
    if plan['pending']:
        parts.append('magic data partitions waiting: %s' % ', '.join(plan['pending']))
    parts.append('persistent after the next boot with %d member(s), %s' % (
        plan['expected_members'], plan['expected_profile']))
    return '; '.join(parts + notes)


class FilterModule(object):
    """lightwhale.persistence filters."""

    def filters(self):
        return {'enable_plan': enable_plan}

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The waves and the failure budget of a fleet playbook (enable, rollback), from every host's variables.

Ansible reads a play's serial and max_fail_percentage before it looks at any host, so a reboot set in group_vars
or host_vars used to go unseen there: one wave of every host, with a budget of 100. The playbooks run this filter
first, over the variables of every host of the play, and take the waves it returns: a canary, then waves, with a
budget of 0, whenever a host may reboot. What one play cannot honour (waves that differ between hosts, waves that
reboot every host at once) is refused before any host is touched.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

REBOOT = 'lightwhale_persistence_reboot'
SERIAL = 'lightwhale_persistence_serial'
MAX_FAIL = 'lightwhale_persistence_max_fail_percentage'
GATHERED = 'lightwhale_persistence_rollout_vars'
# A canary, then a tenth of the hosts at a time.
REBOOT_SERIAL = [1, '10%']
REBOOT_MAX_FAIL = 0
# Nothing reboots: every host in one wave, and every host tried (each failed host reported).
PLAIN_SERIAL = '100%'
PLAIN_MAX_FAIL = 100
_PERCENT = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*%\s*$')
_NUMBER = re.compile(r'^\s*(\d+)\s*$')


class Refusal(Exception):
    pass


def _one_step(value):
    """A serial step -> (kind, number): ('hosts', N) or ('percent', P); Refusal if it is neither."""
    if isinstance(value, bool):
        raise Refusal(value)
    if isinstance(value, int) and value >= 0:
        return 'hosts', value
    if isinstance(value, str):
        match = _NUMBER.match(value)
        if match:
            return 'hosts', int(match.group(1))
        match = _PERCENT.match(value)
        if match and 0 < float(match.group(1)) <= 100:
            return 'percent', float(match.group(1))
    raise Refusal(value)


def parse_serial(value):
    """The play's serial as a list of steps; Refusal when it is not a number, a percentage or a list of them."""
    steps = value if isinstance(value, (list, tuple)) else [value]
    if not steps:
        raise Refusal(value)
    return [_one_step(step) for step in steps]


def waves(serial, count):
    """The sizes of the waves Ansible makes of COUNT hosts with this serial (the last step repeats)."""
    steps = parse_serial(serial)
    sizes, left, index = [], count, 0
    while left > 0:
        kind, number = steps[index]
        size = int(number) if kind == 'hosts' else int(count * number / 100.0) or 1
        if size <= 0:  # serial 0: every host at once
            size = left
        size = min(size, left)
        sizes.append(size)
        left -= size
        index = min(index + 1, len(steps) - 1)
    return sizes


def _max_fail(value):
    if isinstance(value, bool):
        raise Refusal(value)
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise Refusal(value)
    if not isinstance(number, (int, float)) or not 0 <= number <= 100:
        raise Refusal(value)
    return int(number) if number == int(number) else number


def _reboots(value, host):
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise AnsibleFilterError('%s: %s=%r is not a boolean' % (host, REBOOT, value))


def _one_value(hosts, variables, name):
    """The one value all hosts give NAME (None when none sets it); Refusal text when hosts disagree."""
    given = [(host, variables[host][name]) for host in hosts if variables[host].get(name) is not None]
    if not given:
        return None
    values = []
    for dummy, value in given:
        if value not in values:
            values.append(value)
    if len(values) > 1 or len(given) < len(hosts):
        unset = [host for host in hosts if variables[host].get(name) is None]
        shown = ', '.join('%s: %r' % (host, value) for host, value in given[:4])
        raise Refusal('%s differs between the hosts (%s%s%s), but one play has one value: set it once, with -e '
                      '(or the AWX job\'s extra variables) or in group_vars/all'
                      % (name, shown, ', ...' if len(given) > 4 else '',
                         '; not set for %s' % ', '.join(unset[:4]) if unset else ''))
    return values[0]


def rollout_plan(hosts, hostvars):
    """The plan: serial, max_fail_percentage, waves, rebooting hosts, message, and problem ('' when none)."""
    hosts = list(hosts or [])
    variables = {}
    for host in hosts:
        if host not in hostvars:
            raise AnsibleFilterError('rollout_plan: no variables for host %r' % host)
        own = hostvars[host]
        # The playbooks gather the three in each host's own context first, where play variables count too.
        own = own[GATHERED] if GATHERED in own else own
        variables[host] = dict((name, own[name]) for name in (REBOOT, SERIAL, MAX_FAIL)
                               if name in own and own[name] is not None)
    rebooting = [host for host in hosts if _reboots(variables[host].get(REBOOT, False), host)]
    plan = dict(hosts=len(hosts), rebooting=rebooting, serial=PLAIN_SERIAL, max_fail_percentage=PLAIN_MAX_FAIL,
                waves=[], problem='', message='')
    try:
        serial = _one_value(hosts, variables, SERIAL)
        max_fail = _one_value(hosts, variables, MAX_FAIL)
    except Refusal as exc:
        plan['problem'] = str(exc)
        return plan
    if serial is not None:
        try:
            parse_serial(serial)
        except Refusal:
            plan['problem'] = ('%s=%r is not a number of hosts, a percentage or a list of them (for example '
                               '[1, "10%%"]: one host, then a tenth of the hosts at a time)' % (SERIAL, serial))
            return plan
    if max_fail is not None:
        try:
            max_fail = _max_fail(max_fail)
        except Refusal:
            plan['problem'] = '%s=%r is not a percentage from 0 to 100' % (MAX_FAIL, max_fail)
            return plan
    if rebooting:
        plan['serial'] = REBOOT_SERIAL if serial is None else serial
        plan['max_fail_percentage'] = REBOOT_MAX_FAIL if max_fail is None else max_fail
    else:
        plan['serial'] = PLAIN_SERIAL if serial is None else serial
        plan['max_fail_percentage'] = PLAIN_MAX_FAIL if max_fail is None else max_fail
    plan['waves'] = waves(plan['serial'], len(hosts))
    if len(rebooting) > 1:
        start = 0
        for size in plan['waves']:
            wave = hosts[start:start + size]
            start += size
            if all(host in wave for host in rebooting):
                plan['problem'] = ('%s=%r would reboot all %d hosts that may reboot (%s) in one wave: leave it unset '
                                   'for a canary then waves of a tenth of the hosts, or set waves, for example '
                                   '-e \'{"%s": [1, "10%%"]}\''
                                   % (SERIAL, plan['serial'], len(rebooting), ', '.join(rebooting[:4])
                                      + (', ...' if len(rebooting) > 4 else ''), SERIAL))
                return plan
    plan['message'] = _message(plan)
    return plan


def _message(plan):
    shown = plan['waves'][:6]
    sizes = ', '.join(str(size) for size in shown) + (', ...' if len(plan['waves']) > len(shown) else '')
    budget = plan['max_fail_percentage']
    stop = ('the first failed host stops the rollout' if budget == 0
            else 'every host is tried' if budget >= 100
            else 'more than %s%% failed hosts in a wave stops the rollout' % budget)
    return ('%d host(s), %d may reboot: %d wave(s) of %s host(s); %s'
            % (plan['hosts'], len(plan['rebooting']), len(plan['waves']), sizes, stop))


class FilterModule(object):
    """lightwhale.persistence filters."""

    def filters(self):
        return {'rollout_plan': rollout_plan}

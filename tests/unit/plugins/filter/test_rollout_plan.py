# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet playbooks' waves and failure budget (filter rollout_plan), from host variables made up here.

The playbooks run it on real inventories in tests/integration/test_enable.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.lightwhale.persistence.plugins.filter.rollout_plan import (
    FilterModule, rollout_plan, waves)

REBOOT = 'lightwhale_persistence_reboot'
SERIAL = 'lightwhale_persistence_serial'
MAX_FAIL = 'lightwhale_persistence_max_fail_percentage'


def fleet(count, everyone=None, **per_host):
    """COUNT hosts h01.. with the variables EVERYONE (as from -e or group_vars/all) and PER_HOST ones."""
    hosts = ['h%02d' % index for index in range(1, count + 1)]
    hostvars = dict((host, dict(everyone or {}, **per_host.get(host, {}))) for host in hosts)
    return hosts, hostvars


@pytest.mark.parametrize('serial, count, sizes', [
    ([1, '10%'], 1, [1]),
    ([1, '10%'], 3, [1, 1, 1]),
    ([1, '10%'], 40, [1] + [4] * 9 + [3]),
    ('100%', 7, [7]),
    (0, 5, [5]),
    (2, 5, [2, 2, 1]),
    ('3', 5, [3, 2]),
    ([1, 2, '50%'], 10, [1, 2, 5, 2]),
    ('33%', 10, [3, 3, 3, 1]),
])
def test_waves_as_ansible_makes_them(serial, count, sizes):
    assert waves(serial, count) == sizes


def test_nothing_reboots_one_wave_every_host_tried():
    plan = rollout_plan(*fleet(12))
    assert (plan['serial'], plan['max_fail_percentage'], plan['waves']) == ('100%', 100, [12])
    assert plan['problem'] == '' and plan['rebooting'] == []
    assert plan['message'] == '12 host(s), 0 may reboot: 1 wave(s) of 12 host(s); every host is tried'


@pytest.mark.parametrize('where', ['extra vars', 'group_vars', 'some host_vars'])
def test_a_reboot_from_anywhere_gives_a_canary_then_waves_and_no_budget(where):
    if where == 'some host_vars':
        hosts, hostvars = fleet(20, h05={REBOOT: True}, h17={REBOOT: 'yes'})
    else:
        hosts, hostvars = fleet(20, {REBOOT: True if where == 'extra vars' else 'true'})
    plan = rollout_plan(hosts, hostvars)
    assert plan['problem'] == ''
    assert (plan['serial'], plan['max_fail_percentage']) == ([1, '10%'], 0)
    assert plan['waves'] == [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]
    assert plan['rebooting'] == (['h05', 'h17'] if where == 'some host_vars' else hosts)
    assert plan['message'].endswith('the first failed host stops the rollout')


def test_explicit_values_win_when_every_host_has_them():
    plan = rollout_plan(*fleet(10, {REBOOT: True, SERIAL: [2, '50%'], MAX_FAIL: '20'}))
    assert (plan['serial'], plan['max_fail_percentage'], plan['waves'], plan['problem']) == \
        ([2, '50%'], 20, [2, 5, 3], '')
    assert 'more than 20% failed hosts in a wave stops the rollout' in plan['message']


@pytest.mark.parametrize('variables, needle', [
    ({'h02': {SERIAL: 1}}, 'lightwhale_persistence_serial differs between the hosts (h02: 1; not set for h01, h03'),
    ({'h01': {MAX_FAIL: 0}, 'h02': {MAX_FAIL: 0}, 'h03': {MAX_FAIL: 50}},
     'lightwhale_persistence_max_fail_percentage differs between the hosts (h01: 0, h02: 0, h03: 50)'),
])
def test_values_that_differ_between_hosts_are_refused(variables, needle):
    plan = rollout_plan(*fleet(3, {REBOOT: True}, **variables))
    assert needle in plan['problem'] and 'set it once, with -e' in plan['problem']


@pytest.mark.parametrize('serial', ['100%', 0, 5, [5], ['100%']])
def test_waves_that_reboot_every_host_at_once_are_refused(serial):
    plan = rollout_plan(*fleet(5, {REBOOT: True, SERIAL: serial}))
    assert 'would reboot all 5 hosts that may reboot (h01, h02, h03, h04, ...) in one wave' in plan['problem']
    assert "-e '{\"lightwhale_persistence_serial\": [1, \"10%\"]}'" in plan['problem']


def test_one_rebooting_host_may_share_a_wave():
    plan = rollout_plan(*fleet(5, {SERIAL: '100%'}, h03={REBOOT: True}))
    assert plan['problem'] == '' and plan['waves'] == [5] and plan['max_fail_percentage'] == 0


def test_two_rebooting_hosts_in_different_waves_pass():
    plan = rollout_plan(*fleet(6, {SERIAL: 3}, h01={REBOOT: True}, h06={REBOOT: True}))
    assert plan['problem'] == '' and plan['waves'] == [3, 3]


@pytest.mark.parametrize('name, value, needle', [
    (SERIAL, 'fast', "lightwhale_persistence_serial='fast' is not a number of hosts"),
    (SERIAL, [], 'lightwhale_persistence_serial=[] is not'),
    (SERIAL, '0%', "lightwhale_persistence_serial='0%' is not"),
    (SERIAL, '150%', "lightwhale_persistence_serial='150%' is not"),
    (SERIAL, True, 'lightwhale_persistence_serial=True is not'),
    (SERIAL, -1, 'lightwhale_persistence_serial=-1 is not'),
    (MAX_FAIL, 101, 'lightwhale_persistence_max_fail_percentage=101 is not a percentage from 0 to 100'),
    (MAX_FAIL, 'none', "lightwhale_persistence_max_fail_percentage='none' is not"),
    (MAX_FAIL, -5, 'lightwhale_persistence_max_fail_percentage=-5 is not'),
])
def test_values_that_are_not_a_serial_or_a_percentage_are_refused(name, value, needle):
    plan = rollout_plan(*fleet(3, {name: value}))
    assert needle in plan['problem']


def test_the_variables_gathered_in_each_hosts_context_win_and_null_is_unset():
    gathered = {REBOOT: True, SERIAL: None, MAX_FAIL: None}
    hosts, hostvars = fleet(3, {REBOOT: False, SERIAL: '100%'})
    for host in hosts:
        hostvars[host]['lightwhale_persistence_rollout_vars'] = gathered
    plan = rollout_plan(hosts, hostvars)
    assert (plan['serial'], plan['max_fail_percentage'], plan['rebooting'], plan['problem']) == \
        ([1, '10%'], 0, hosts, '')


def test_a_reboot_that_is_not_a_boolean_is_an_error():
    with pytest.raises(AnsibleFilterError, match=r"h02: lightwhale_persistence_reboot='maybe' is not a boolean"):
        rollout_plan(*fleet(3, h02={REBOOT: 'maybe'}))


def test_a_host_without_variables_is_an_error():
    with pytest.raises(AnsibleFilterError, match='no variables for host'):
        rollout_plan(['h01', 'ghost'], {'h01': {}})


def test_registered():
    assert FilterModule().filters()['rollout_plan'] is rollout_plan

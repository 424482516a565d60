# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The enable role's decision (filter enable_plan) on persistence_info results made of fixtures.

The role carries the same decisions out on loop devices in tests/integration/test_enable.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible.errors import AnsibleFilterError

from ansible_collections.lightwhale.persistence.plugins.filter.enable_plan import (
    FilterModule, enable_plan, natural_key, parse_select)

GIB = 1024 ** 3
FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'


def disk(name, size=10 * GIB, empty=True, reasons=None, magic=False, ids=(), model=None):
    return dict(device='/dev/' + name, given='/dev/' + name, name=name, size=size, empty=empty, magic=magic,
                reasons=list(reasons or ([] if empty else ['holds ext4 signature at offset 1080'])), ids=list(ids),
                model=model)


def info(disks, mode='none-yet', filesystem=None, failure=None, pending=()):
    return dict(mode=mode, filesystem=filesystem, failure=failure, disks=disks,
                magic_disks=[item['device'] for item in disks if item.get('magic')],
                magic_partitions=dict(data=list(pending), swap=[]),
                empty_disks=[item for item in disks if item['empty']])


def test_the_filter_is_registered():
    assert FilterModule().filters() == {'enable_plan': enable_plan}


def test_a_persistent_host_is_left_alone_with_a_selector():
    fs = dict(uuid=FSID, members=['/dev/sdb2', '/dev/sdc2'], missing=[], num_devices=2, data_profile='raid1',
              metadata_profile='raid1')
    plan = enable_plan(info([disk('sdd')], mode='persistent', filesystem=fs), select={'count': 3})
    assert plan['action'] == 'leave' and plan['mark'] == [] and plan['how'] == 'persistent'
    assert plan['expected_members'] == 2 and plan['expected_profile'] == 'raid1/raid1'
    assert 'left alone' in plan['message']


def test_a_persistent_host_grows_onto_the_listed_disks():
    fs = dict(uuid=FSID, members=['/dev/sdb2'], missing=[], num_devices=1, data_profile='single',
              metadata_profile='dup')
    plan = enable_plan(info([disk('sdc'), disk('sdd', magic=True, empty=False)], mode='persistent', filesystem=fs),
                       disks=['/dev/sdc', '/dev/sdd'])
    assert plan['action'] == 'grow' and plan['mark'] == ['/dev/sdc'] and plan['waiting'] == ['/dev/sdd']
    assert plan['expected_members'] == 3 and plan['expected_profile'] == 'raid1/raid1c3'
    assert 'join the data filesystem' in plan['message']


def test_a_degraded_host_replaces_the_missing_member_with_a_listed_disk():
    fs = dict(uuid=FSID, members=['/dev/sdb2'], missing=['devid 2'], num_devices=2, data_profile='raid1',
              metadata_profile='raid1')
    plan = enable_plan(info([disk('sdd')], mode='degraded', filesystem=fs), disks=['/dev/sdd'])
    assert plan['action'] == 'grow' and plan['mark'] == ['/dev/sdd']
    assert plan['expected_members'] == 2 and plan['expected_profile'] == 'raid1/raid1'


def test_a_listed_disk_too_small_to_join_fails_the_plan_and_nothing_is_marked():
    fs = dict(uuid=FSID, members=['/dev/sdb2'], missing=[], num_devices=1, data_profile='single',
              metadata_profile='dup')
    plan = enable_plan(info([disk('sdc'), disk('sdd', size=200 * 1024 ** 2)], mode='persistent', filesystem=fs),
                       disks=['/dev/sdc', '/dev/sdd'])
    assert plan['action'] == 'fail' and plan['mark'] == [], plan
    assert '/dev/sdd (200 MiB)' in plan['problem'] and 'too small' in plan['problem'] and FSID in plan['problem']


def test_a_disk_listed_by_its_id_is_marked_once_and_not_also_waiting():
    fs = dict(uuid=FSID, members=['/dev/vdb2'], missing=[], num_devices=1, data_profile='single',
              metadata_profile='dup')
    plan = enable_plan(info([disk('vdc', ids=['/dev/disk/by-id/virtio-lwd2'])], mode='persistent', filesystem=fs),
                       disks=['/dev/disk/by-id/virtio-lwd2'])
    assert plan['mark'] == ['/dev/disk/by-id/virtio-lwd2'] and plan['waiting'] == [], plan
    assert plan['expected_members'] == 2 and '/dev/vdc' not in plan['message'], plan


def test_a_listed_member_is_not_marked_again():
    fs = dict(uuid=FSID, members=['/dev/sdb2'], missing=[], num_devices=1, data_profile='single',
              metadata_profile='dup')
    member = dict(disk('sdb', empty=False), partitions=[dict(device='/dev/sdb1'), dict(device='/dev/sdb2')])
    plan = enable_plan(info([member], mode='persistent', filesystem=fs), disks=['/dev/sdb'])
    assert plan['action'] == 'leave' and plan['mark'] == [] and 'every listed disk is a member' in plan['message']
    assert plan['expected_profile'] == 'single/dup'


def test_mixed_profiles_are_not_what_the_member_count_calls_for():
    fs = dict(uuid=FSID, members=['/dev/sdb2', '/dev/sdc2'], missing=[], num_devices=2, data_profile='raid1,single',
              metadata_profile='raid1')
    plan = enable_plan(info([], mode='persistent', filesystem=fs), select={'count': 2})
    assert plan['expected_profile'] == 'raid1/raid1'


def test_a_degraded_host_is_left_alone_and_says_what_is_missing():
    fs = dict(uuid=FSID, members=['/dev/sdb2'], missing=['devid 2'], num_devices=2, data_profile='raid1',
              metadata_profile='raid1')
    plan = enable_plan(info([disk('sdd')], mode='degraded', filesystem=fs), select={'count': 1})
    assert plan['action'] == 'leave' and 'missing devid 2' in plan['message'] and plan['expected_members'] == 2


def test_a_filesystem_found_but_not_mounted_is_left_alone():
    fs = dict(uuid=FSID, members=['/dev/sdb2'], missing=[], num_devices=1, data_profile=None, metadata_profile=None)
    plan = enable_plan(info([disk('sdc')], filesystem=fs), select={'count': 1})
    assert plan['action'] == 'leave' and plan['how'] == 'found' and 'not mounted' in plan['message']


def test_an_unusable_data_filesystem_fails_the_host():
    plan = enable_plan(info([disk('sdc')], failure='several filesystems are labelled lightwhale-data'),
                       select={'count': 1})
    assert plan['action'] == 'fail' and 'several filesystems' in plan['problem'] and plan['mark'] == []


def test_nothing_chosen_fails_the_host():
    plan = enable_plan(info([disk('sdb')]))
    assert plan['action'] == 'fail' and 'lightwhale_persistence_disks' in plan['problem']


def test_an_explicit_list_is_marked_as_given_even_a_disk_with_data():
    # magic_disk refuses it unless forced: the plan does not second-guess an explicit list.
    plan = enable_plan(info([disk('sdb'), disk('sdc', empty=False)]),
                       disks=['/dev/disk/by-id/virtio-a', '/dev/sdc'])
    assert plan['action'] == 'mark' and plan['how'] == 'explicit'
    assert plan['mark'] == ['/dev/disk/by-id/virtio-a', '/dev/sdc']
    assert plan['expected_members'] == 2 and plan['expected_profile'] == 'raid1/raid1'


def test_an_explicit_list_resolves_by_id_links_and_skips_disks_already_marked():
    disks = [disk('sdb', ids=['/dev/disk/by-id/virtio-a'], magic=True, empty=False, reasons=['magic']),
             disk('sdc', ids=['/dev/disk/by-id/virtio-b'])]
    plan = enable_plan(info(disks), disks=['/dev/disk/by-id/virtio-a', '/dev/disk/by-id/virtio-b', '/dev/sdc'])
    assert plan['mark'] == ['/dev/disk/by-id/virtio-b']
    assert plan['waiting'] == ['/dev/sdb'] and plan['expected_members'] == 2


def test_an_explicit_list_of_disks_already_marked_waits():
    disks = [disk('sdb', magic=True, empty=False)]
    plan = enable_plan(info(disks), disks=['/dev/sdb'])
    assert plan['action'] == 'wait' and plan['mark'] == [] and plan['expected_members'] == 1
    assert plan['expected_profile'] == 'single/dup'


def test_the_explicit_list_wins_over_the_selector():
    plan = enable_plan(info([disk('sdb'), disk('sdc')]), disks=['/dev/sdc'], select={'count': 2})
    assert plan['mark'] == ['/dev/sdc'] and 'wins' in plan['message']


def test_force_with_an_explicit_list_is_said():
    plan = enable_plan(info([disk('sdb', empty=False)]), disks=['/dev/sdb'], force=True)
    assert 'force' in plan['message']


def test_the_selector_takes_empty_disks_in_natural_order():
    disks = [disk('sdc'), disk('sdaa'), disk('sdb'), disk('sda', empty=False)]
    plan = enable_plan(info(disks), select={'count': 2})
    assert plan['action'] == 'mark' and plan['how'] == 'selector' and plan['mark'] == ['/dev/sdb', '/dev/sdc']
    passed = dict((item['device'], item['reason']) for item in plan['passed_over'])
    assert 'not empty' in passed['/dev/sda'] and '/dev/sdaa' not in passed


def test_the_selector_never_takes_a_disk_that_holds_data():
    disks = [disk('sdb', empty=False, reasons=['holds LUKS signature']), disk('sdc', empty=False)]
    plan = enable_plan(info(disks), select={'count': 'all', 'min_size': 0})
    assert plan['action'] == 'fail' and plan['mark'] == []
    assert 'LUKS' in plan['problem']


def test_the_selector_with_too_few_disks_marks_nothing():
    plan = enable_plan(info([disk('sdb'), disk('sdc', empty=False)]), select={'count': 2})
    assert plan['action'] == 'fail' and plan['mark'] == []
    assert 'wants 2 disk(s), but 1 empty disk(s) match' in plan['problem']


def test_the_selector_counts_disks_already_marked():
    disks = [disk('sdb', magic=True, empty=False), disk('sdc'), disk('sdd')]
    plan = enable_plan(info(disks), select={'count': 2})
    assert plan['mark'] == ['/dev/sdc'] and plan['waiting'] == ['/dev/sdb'] and plan['expected_members'] == 2
    plan = enable_plan(info(disks), select={'count': 1})
    assert plan['action'] == 'wait' and plan['mark'] == [] and plan['expected_members'] == 1


def test_the_selector_counts_pending_magic_partitions():
    plan = enable_plan(info([disk('sdc'), disk('sdd')], pending=['/dev/sdb2']), select={'count': 2})
    assert plan['mark'] == ['/dev/sdc'] and plan['pending'] == ['/dev/sdb2'] and plan['expected_members'] == 2


def test_the_selector_sizes():
    disks = [disk('sdb', size=512 * 1024 ** 2), disk('sdc', size=20 * GIB), disk('sdd', size=200 * GIB)]
    plan = enable_plan(info(disks), select={'count': 'all'})
    assert plan['mark'] == ['/dev/sdc', '/dev/sdd']
    plan = enable_plan(info(disks), select={'count': 'all', 'min_size': '256M', 'max_size': '100GiB'})
    assert plan['mark'] == ['/dev/sdb', '/dev/sdc']
    passed = dict((item['device'], item['reason']) for item in plan['passed_over'])
    assert passed == {'/dev/sdd': 'larger (200 GiB) than max_size 100 GiB'}


def test_the_selector_patterns_and_exclusions():
    disks = [disk('sdb', ids=['/dev/disk/by-id/ata-BOOT_1']), disk('sdc', model='Samsung SSD'),
             disk('nvme0n1', ids=['/dev/disk/by-id/nvme-data-1'])]
    plan = enable_plan(info(disks), select={'count': 'all', 'exclude': ['*BOOT*']})
    assert plan['mark'] == ['/dev/sdc', '/dev/nvme0n1']
    plan = enable_plan(info(disks), select={'count': 'all', 'patterns': ['Samsung*', '/dev/disk/by-id/nvme-*']})
    assert plan['mark'] == ['/dev/sdc', '/dev/nvme0n1']
    plan = enable_plan(info(disks), select={'count': 1, 'patterns': ['sd*'], 'exclude': ['/dev/sdb']})
    assert plan['mark'] == ['/dev/sdc']


def test_force_is_ignored_with_the_selector():
    plan = enable_plan(info([disk('sdb'), disk('sdc', empty=False)]), select={'count': 1}, force=True)
    assert plan['mark'] == ['/dev/sdb'] and 'force ignored' in plan['message']


@pytest.mark.parametrize('select, word', [
    ({'count': 0}, 'count'),
    ({'count': 'two'}, 'count'),
    ({'count': True}, 'count'),
    ({'count': '0\x1f'}, 'count'),
    ({'count': '\u00b2'}, 'count'),
    ({'min_size': '8 parsecs'}, 'min_size'),
    ({'min_size': '2G', 'max_size': '1G'}, 'max_size'),
    ({'patterns': [1]}, 'patterns'),
    ({'minsize': '1G'}, 'unknown key'),
])
def test_a_bad_selector_is_refused(select, word):
    with pytest.raises(AnsibleFilterError) as error:
        parse_select(select)
    assert word in str(error.value)


def test_selector_defaults():
    assert parse_select({}) == dict(count=1, min_size=GIB, max_size=None, patterns=[], exclude=[])
    assert parse_select({'count': '3', 'patterns': 'sd*'})['count'] == 3
    assert parse_select({'count': ' 2\n'})['count'] == 2
    assert parse_select({'count': 'all'})['count'] is None


def test_the_input_must_be_persistence_info():
    with pytest.raises(AnsibleFilterError):
        enable_plan({'changed': False}, select={'count': 1})


def test_natural_key():
    names = ['sdaa', 'nvme10n1', 'sdb', 'nvme2n1', 'sda', 'sdz', 'vdb']
    assert sorted(names, key=natural_key) == ['sda', 'sdb', 'sdz', 'vdb', 'nvme2n1', 'nvme10n1', 'sdaa']


DISKS = st.lists(
    st.builds(disk, name=st.sampled_from(['sd%s' % chr(97 + index) for index in range(12)]),
              size=st.integers(min_value=0, max_value=64 * GIB), empty=st.booleans(), magic=st.booleans()),
    max_size=8, unique_by=lambda item: item['name'])
SELECTS = st.fixed_dictionaries({}, optional={
    'count': st.one_of(st.integers(min_value=1, max_value=6), st.just('all')),
    'min_size': st.integers(min_value=0, max_value=32 * GIB),
    'exclude': st.lists(st.sampled_from(['sda', '/dev/sdb', '*c', 'sd[de]']), max_size=2),
    'patterns': st.lists(st.sampled_from(['sd*', '/dev/sd[a-f]', 'nomatch']), max_size=2)})


@given(DISKS, SELECTS)
def test_the_selector_only_ever_marks_empty_disks_without_the_header(disks, select):
    for item in disks:
        if item['magic']:
            item['empty'] = False
    plan = enable_plan(info(disks), select=select, force=True)
    by_device = dict((item['device'], item) for item in disks)
    for device in plan['mark']:
        assert by_device[device]['empty'] and not by_device[device]['magic']
    assert len(plan['mark']) == len(set(plan['mark']))
    if plan['action'] == 'fail':
        assert plan['mark'] == [] and plan['problem']
    elif isinstance(select.get('count', 1), int):
        assert plan['expected_members'] == max(select.get('count', 1), len(plan['waiting']))

# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The background conversion's pure parts: the profiles per chunk type from a sysfs tree, what is left to convert,
the kernel's exclusive operation, the job file, and the words of the summary line and the status."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import subprocess
import time

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _conversion
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'


class Runner:
    """The core's runner, without a module: runs the tool for real."""

    def run(self, tool, args, ok=(0,), device=None):
        proc = subprocess.run([tool] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                              universal_newlines=True)
        assert proc.returncode in ok, (tool, args, proc.stderr, device)
        return proc.returncode, proc.stdout, proc.stderr


def sysfs(tmp_path, profiles, operation=None):
    base = tmp_path / FSID
    for kind, names in profiles.items():
        for name in names:
            (base / 'allocation' / kind / name).mkdir(parents=True)
        (base / 'allocation' / kind / 'bytes_used').parent.mkdir(parents=True, exist_ok=True)
        (base / 'allocation' / kind / 'bytes_used').write_text('0\n')
    if operation is not None:
        (base / 'exclusive_operation').write_text(operation + '\n')
    return str(tmp_path)


def test_chunk_profiles_lists_only_profile_directories(tmp_path):
    root = sysfs(tmp_path, dict(data=['single', 'raid1'], metadata=['raid1'], system=['raid1']))
    wanted = dict(data=['raid1', 'single'], metadata=['raid1'], system=['raid1'])
    assert _conversion.chunk_profiles(FSID, root) == wanted


def test_chunk_profiles_of_a_filesystem_not_mounted_is_none(tmp_path):
    assert _conversion.chunk_profiles(FSID, str(tmp_path)) is None


@pytest.mark.parametrize('count, data, metadata', [(1, 'single', 'dup'), (2, 'raid1', 'raid1'),
                                                   (3, 'raid1', 'raid1c3'), (4, 'raid1', 'raid1c4'),
                                                   (7, 'raid1', 'raid1c4')])
def test_wanted_follows_the_member_count_and_system_follows_metadata(count, data, metadata):
    assert _conversion.wanted(count) == dict(data=data, metadata=metadata, system=metadata)


def test_stragglers_names_only_the_kinds_with_weaker_profiles():
    target = _conversion.wanted(2)
    assert _conversion.stragglers(dict(data=['raid1', 'single'], metadata=['raid1'], system=['raid1']), target) == \
        dict(data=['single'])
    assert _conversion.stragglers(dict(data=['single'], metadata=['dup'], system=['dup']), target) == \
        dict(data=['single'], metadata=['dup'], system=['dup'])
    assert _conversion.stragglers(dict(data=['raid1'], metadata=['raid1'], system=['raid1']), target) == {}


def test_a_stronger_profile_than_the_member_count_calls_for_is_not_a_straggler():
    """An operator's raid1c3 data on three members, or raid1c4 metadata: never converted down."""
    three = _conversion.wanted(3)
    assert _conversion.stragglers(dict(data=['raid1c3'], metadata=['raid1c4'], system=['raid1c3']), three) == {}
    assert _conversion.stragglers(dict(data=['raid1', 'raid1c3'], metadata=['raid1', 'raid1c3'],
                                       system=['raid1c3']), three) == dict(metadata=['raid1'])
    one = _conversion.wanted(1)
    assert _conversion.stragglers(dict(data=['dup'], metadata=['single', 'dup'], system=['dup']), one) == \
        dict(metadata=['single'])


@pytest.mark.parametrize('profile, weaker', [
    ('single', []), ('dup', ['raid0', 'single']), ('raid1', ['dup', 'raid0', 'single']),
    ('raid1c3', ['dup', 'raid0', 'raid1', 'raid10', 'raid5', 'single']),
    ('raid1c4', ['dup', 'raid0', 'raid1', 'raid10', 'raid1c3', 'raid5', 'raid6', 'single']),
])
def test_weaker_profiles(profile, weaker):
    assert _btrfs.weaker(profile) == weaker


def test_the_jobs_balance_touches_only_weaker_chunks():
    assert _conversion.balance_filters(_conversion.wanted(2)) == (
        'convert=raid1,soft,profiles=dup|raid0|single', 'convert=raid1,soft,profiles=dup|raid0|single')
    assert _conversion.balance_filters(_conversion.wanted(3)) == (
        'convert=raid1,soft,profiles=dup|raid0|single',
        'convert=raid1c3,soft,profiles=dup|raid0|raid1|raid10|raid5|single')
    # One member: nothing is weaker than single data; metadata goes to dup.
    assert _conversion.balance_filters(_conversion.wanted(1)) == ('', 'convert=dup,soft,profiles=raid0|single')


class StatusRunner:
    def run(self, tool, args, ok=(0,), device=None):
        return 0, 'Balance on /mnt is running\n3 out of about 9 chunks balanced (4 considered), 67% left\n', ''


def test_a_job_that_waited_for_a_replace_says_restoring_redundancy_once_the_replace_ended(monkeypatch):
    profiles = dict(data=['raid1', 'single'], metadata=['raid1'], system=['raid1'])
    monkeypatch.setattr(_conversion, 'chunk_profiles', lambda fsid: profiles)
    job = dict(fsid=FSID, why='replacing', alive=True)
    monkeypatch.setattr(_conversion, 'exclusive_operation', lambda fsid: 'device replace')
    assert _conversion.facts(StatusRunner(), FSID, '/mnt', '/run', 2, True, just_started=job)['state'] == 'replacing'
    monkeypatch.setattr(_conversion, 'exclusive_operation', lambda fsid: 'balance')
    facts = _conversion.facts(StatusRunner(), FSID, '/mnt', '/run', 2, False, just_started=job)
    assert facts['state'] == 'restoring redundancy' and facts['progress'].startswith('3 out of about 9'), facts


def test_exclusive_operation_reads_the_kernels_word(tmp_path):
    root = sysfs(tmp_path, dict(data=['raid1']), operation='device replace')
    assert _conversion.exclusive_operation(FSID, root) == 'device replace'
    assert _conversion.exclusive_operation('other', root) is None


def test_a_job_file_whose_process_is_gone_is_not_alive(tmp_path):
    (tmp_path / _conversion.JOB_FILE).write_text(json.dumps(dict(pid=2 ** 22 + 7, fsid=FSID, why='converting')))
    job = _conversion.read_job(str(tmp_path))
    assert job['why'] == 'converting' and job['alive'] is False
    (tmp_path / _conversion.JOB_FILE).write_text('not json')
    assert _conversion.read_job(str(tmp_path)) is None
    assert _conversion.read_job(str(tmp_path / 'missing')) is None


def test_a_job_is_alive_only_while_its_process_runs_with_its_fsid(tmp_path):
    job = _conversion.start_job(Runner(), str(tmp_path / 'run'), FSID, str(tmp_path), _conversion.wanted(2),
                                'converting')
    # The job waits for a filesystem that does not exist here, then its balance fails at once: it ends by itself.
    log = (tmp_path / 'run' / _conversion.LOG_FILE).read_text()
    assert log.startswith('20') and 'converting, to data raid1, metadata raid1' in log
    assert job['pid'] > 0 and job['target'] == 'raid1/raid1'
    deadline = time.time() + 30
    while _conversion.read_job(str(tmp_path / 'run'))['alive'] and time.time() < deadline:
        time.sleep(0.05)
    assert _conversion.read_job(str(tmp_path / 'run'))['alive'] is False


def test_a_job_between_two_programs_is_still_alive(tmp_path):
    # Its command line reads empty for a moment while the job's process execs (setsid, then sh): alive must not flip
    # to False and back; once False it stays False.
    for run in range(20):
        pid = _writes.spawn_detached(Runner(), ['sh', '-c', 'sleep 0.05; true', 'lightwhale-conversion', FSID],
                                     str(tmp_path / 'log'), 'run %d' % run)
        answers = []
        deadline = time.time() + 30
        while (not answers or answers[-1]) and time.time() < deadline:
            answers.append(_conversion._alive(pid, FSID))
        answers.extend(_conversion._alive(pid, FSID) for _poll in range(20))
        first_false = answers.index(False)
        assert first_false > 0 and not any(answers[first_false:]), (run, answers)


@pytest.mark.parametrize('conversion, words', [
    (None, None),
    (dict(state='converting', target='raid1/raid1', progress='started'), 'converting to raid1/raid1 (started)'),
    (dict(state='restoring redundancy', target='raid1/raid1c3', progress=None), 'restoring redundancy to raid1/raid1c3'),
    (dict(state='replacing', target='raid1/raid1', progress='45.2% done, 0 write errs, 0 uncorr. read errs'),
     'replacing a missing member (45.2% done, 0 write errs, 0 uncorr. read errs)'),
])
def test_describe(conversion, words):
    assert _conversion.describe(conversion) == words


def test_the_status_line_says_what_joined_what_converts_and_which_disk_is_not_used():
    conversion = dict(state='converting', target='raid1/raid1', progress='started',
                      profiles=dict(data=['single'], metadata=['dup'], system=['dup']))
    status = _status.build('persistent', label='lightwhale-data', uuid=FSID, devices=['/dev/sdb2', '/dev/sdc2'],
                           data_profile='single', metadata_profile='dup', joined=['/dev/sdc2'], conversion=conversion,
                           unusable_disks=[dict(device='/dev/sdd', reason='carries the magic header but is too small')])
    assert status['joined'] == ['/dev/sdc2'] and status['conversion'] == conversion
    assert ('persistent single/dup on /dev/sdb2,/dev/sdc2 (joined: /dev/sdc2); converting to raid1/raid1 '
            '(started); magic disk /dev/sdd not used: carries the magic header but is too small') in status['summary']
    volatile = _status.build('volatile', joined=['/dev/sdc2'], conversion=conversion,
                             unusable_disks=[dict(device='/dev/sdd', reason='in use')])
    assert volatile['joined'] == [] and volatile['conversion'] is None
    assert 'magic disk /dev/sdd not used: in use' in volatile['summary']

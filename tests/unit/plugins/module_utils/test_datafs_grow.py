# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A disk's join waits while the kernel runs an exclusive operation other than a balance: the kernel refuses a
device add or a replace then, and a replace cannot be paused. The kernel's word is replaced here (a replace that
stays running long enough cannot be held on loop devices); the joins themselves are proven in test_grow.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _conversion
from ansible_collections.lightwhale.persistence.plugins.module_utils import _datafs_grow
from ansible_collections.lightwhale.persistence.plugins.module_utils._datafs_mount import Planned

FSID = '0b0c0e4e-4c56-4ed3-9d0b-8a8f9c7d3e21'


@pytest.mark.parametrize('operation, waits', [
    (None, False), ('none', False), ('balance', False), ('balance paused', False),
    ('device replace', True), ('device remove', True), ('resize', True),
])
def test_a_join_waits_only_for_exclusive_operations_other_than_a_balance(monkeypatch, operation, waits):
    monkeypatch.setattr(_conversion, 'exclusive_operation', lambda fsid: operation)
    reason = _datafs_grow.busy(FSID)
    assert bool(reason) is waits
    if waits:
        assert operation in reason and FSID in reason and 'joins at the first boot or run after' in reason


def test_a_deferred_join_writes_nothing_and_says_why(monkeypatch):
    monkeypatch.setattr(_conversion, 'exclusive_operation', lambda fsid: 'device replace')
    planned = Planned()
    planned.joined.extend(['/dev/sdd2', '/dev/sde2'])
    planned.swap_on.extend(['/dev/sdd1'])
    gate = _datafs_grow.Gate(FSID, '/dev/sdd', planned)
    gate.nodes.extend(['/dev/sdd2', '/dev/sdd1'])
    called = []
    steps = [gate.first(lambda: called.append('gpt')), gate.then(lambda: called.append('add')),
             gate.then(lambda: called.append('swapon'))]
    assert [step() for step in steps] == [[], [], []]
    assert called == []
    assert planned.joined == ['/dev/sde2'] and planned.swap_on == []
    assert [item['device'] for item in planned.unusable] == ['/dev/sdd']
    assert 'device replace' in planned.unusable[0]['reason']


def test_a_join_goes_ahead_when_the_kernel_is_free(monkeypatch):
    monkeypatch.setattr(_conversion, 'exclusive_operation', lambda fsid: 'none')
    planned = Planned()
    gate = _datafs_grow.Gate(FSID, '/dev/sdd', planned)
    called = []
    gate.first(lambda: called.append('gpt'))()
    gate.then(lambda: called.append('add'))()
    assert called == ['gpt', 'add'] and planned.unusable == []


class Recorder:
    """A runner that records the commands and answers the replace status line."""

    def __init__(self, status='Never started'):
        self.calls, self.status = [], status

    def run(self, tool, args, ok=(0,), device=None):
        self.calls.append(' '.join([tool] + list(args[:2])))
        return 0, self.status + '\n', ''


def replace_ctx(runner):
    return type('Ctx', (), dict(runner=runner, timeout=5, targets=type('Targets', (), dict(data='/mnt/data'))))()


def test_a_replace_the_kernel_runs_at_once_needs_no_status_line_after_its_start(monkeypatch):
    monkeypatch.setattr(_datafs_grow._btrfs, 'kernel_missing', lambda fsid: [2])
    operations = iter(['none', 'device replace'])
    monkeypatch.setattr(_conversion, 'exclusive_operation', lambda fsid: next(operations))
    runner = Recorder()
    steps = _datafs_grow.replace(replace_ctx(runner), FSID, 2, '/dev/sdd2')
    assert 'devid 2' in steps[0]
    # The status line before the start (kernels without exclusive_operation compare with it); none in the wait.
    assert runner.calls == ['btrfs replace status', 'btrfs replace start']


def test_a_replace_on_a_kernel_without_exclusive_operation_is_told_by_its_status_line(monkeypatch):
    monkeypatch.setattr(_datafs_grow._btrfs, 'kernel_missing', lambda fsid: [2])
    monkeypatch.setattr(_conversion, 'exclusive_operation', lambda fsid: None)
    runner = Recorder()
    original = runner.run

    def run(tool, args, ok=(0,), device=None):
        if args[:2] == ['replace', 'start']:
            runner.status = '0.1% done, 0 write errs, 0 uncorr. read errs'
        return original(tool, args, ok, device)
    runner.run = run
    steps = _datafs_grow.replace(replace_ctx(runner), FSID, 2, '/dev/sdd2')
    assert 'devid 2' in steps[0]
    assert runner.calls == ['btrfs replace status', 'btrfs replace start', 'btrfs replace status']

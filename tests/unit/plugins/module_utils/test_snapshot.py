# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshot names, retention, the request file, the kernel command line word, and the exchange of the state with the
staged one when the kernel has no atomic exchange (real renames in a temporary directory)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot
from ansible_collections.lightwhale.persistence.plugins.module_utils import _snapshot_run
from ansible_collections.lightwhale.persistence.plugins.module_utils import _state_change
from ansible_collections.lightwhale.persistence.plugins.module_utils import _writes
from ansible_collections.lightwhale.persistence.plugins.module_utils._snapshot import Snapshot, SnapshotError

DAY = 86400
NOW = 1796000000


@pytest.mark.parametrize('name', ['good', 'before-upgrade', '2026.12.06_1', 'a+b@c', 'x' * 100, 'A0'])
def test_good_names(name):
    assert _snapshot.check_name(name) == name


@pytest.mark.parametrize('name, words', [
    ('', 'must not be empty'),
    ('a/b', 'must not contain /'),
    ('/abs', 'must not contain /'),
    ('.', 'must not start with .'),
    ('..', 'must not start with .'),
    ('.meta', 'must not start with .'),
    ('x' * 101, 'at most 100'),
    ('sp ace', 'only letters'),
    ('new\nline', 'only letters'),
    ('-dash', 'only letters'),
    (u'caf\u00e9', 'only letters'),
])
def test_bad_names(name, words):
    with pytest.raises(SnapshotError, match=words):
        _snapshot.check_name(name)


def test_utc_names_count_up_within_a_second():
    first = _snapshot.utc_name(NOW, set())
    assert first == '20261130T005320Z'
    assert _snapshot.utc_name(NOW, {first}) == first + '-2'
    assert _snapshot.utc_name(NOW, {first, first + '-2'}) == first + '-3'
    assert _snapshot.utc_name(NOW, set(), 'boot-') == 'boot-' + first
    assert _snapshot.parse_time(_snapshot.utc_time(NOW)) == NOW
    assert _snapshot.parse_time('') == 0 and _snapshot.parse_time('yesterday') == 0


def snap(name, age_days, kind='manual', important=False):
    return Snapshot(name, _snapshot.utc_time(NOW - age_days * DAY), '', important, kind)


def names(chosen):
    return [item.name for item in chosen]


def test_retention_keeps_the_newest_and_the_young_and_never_the_important_or_the_pending():
    snapshots = [snap('a', 30), snap('b', 20, important=True), snap('c', 10), snap('d', 5), snap('e', 1)]
    assert names(_snapshot.prune_choice(snapshots, 2, 0, NOW, set())) == ['a', 'c']
    assert names(_snapshot.prune_choice(snapshots, 2, 7 * DAY, NOW, set())) == ['a', 'c']
    assert names(_snapshot.prune_choice(snapshots, 0, 7 * DAY, NOW, set())) == ['a', 'c']
    assert names(_snapshot.prune_choice(snapshots, 0, 0, NOW, {'c'})) == ['a', 'd', 'e']
    assert names(_snapshot.prune_choice(snapshots, 10, 0, NOW, set())) == []
    mixed = snapshots + [snap('boot-1', 3, 'boot'), snap('boot-2', 2, 'boot'), snap('boot-3', 1, 'boot')]
    assert names(_snapshot.prune_choice(mixed, 1, 0, NOW, set(), kinds=('boot',))) == ['boot-1', 'boot-2']


def test_snapshots_taken_within_one_second_keep_their_order():
    second = _snapshot.utc_time(NOW)
    taken = [Snapshot('zz', second, '', False, 'manual', NOW + 0.1), Snapshot('aa', second, '', False, 'manual', NOW + 0.2),
             Snapshot('mm', second, '', False, 'manual', NOW + 0.3)]
    assert names(_snapshot.prune_choice(taken, 1, 0, NOW, set())) == ['zz', 'aa']
    assert [snap.name for snap in sorted(taken, key=_snapshot.age_order)] == ['zz', 'aa', 'mm']


@pytest.mark.parametrize('text, seconds', [('0', 0), ('90', 90), ('90s', 90), ('5m', 300), ('2h', 7200), ('7d', 604800),
                                           ('1w', 604800), (' 3 d ', 259200)])
def test_ages(text, seconds):
    assert _snapshot_run.parse_age(text) == seconds


@pytest.mark.parametrize('text', ['', '-1', '1y', '1.5d', 'd', '7 days'])
def test_bad_ages(text):
    with pytest.raises(SnapshotError, match='min_age'):
        _snapshot_run.parse_age(text)


@pytest.mark.parametrize('cmdline, word', [
    ('quiet', None),
    ('quiet lightwhale.rollback', ''),
    ('lightwhale.rollback=before-upgrade ro', 'before-upgrade'),
    ('lightwhale.rollbackx', None),
    ('"lightwhale.rollback=a b"', 'a b'),
])
def test_the_rollback_word(cmdline, word):
    assert _state_change.cmdline_rollback(cmdline) == word


def write_request(root, request):
    path = _snapshot.request_path(root)
    os.makedirs(os.path.dirname(path))
    with open(path, 'w') as handle:
        handle.write(request if isinstance(request, str) else json.dumps(request))
    return path


def test_the_request_round_trip(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'mnt', 'lightwhale-data'))
    assert _snapshot.read_request(root) is None
    request = dict(action='rollback', target='good', kept='before-rollback-x', by='lw_snapshot')
    _snapshot.write_request(root, request)
    assert _snapshot.read_request(root) == dict(request, version=1)
    assert oct(os.stat(os.path.dirname(_snapshot.request_path(root))).st_mode & 0o777) == oct(0o700)
    assert _snapshot.describe_request(request) == 'roll back to good, keeping the state in use as snapshot before-rollback-x'
    assert _snapshot.remove_request(root) is True and _snapshot.remove_request(root) is False


@pytest.mark.parametrize('content', ['{"action": "format"}', '{"action": "rollback"}', '{"action": "reset", "scope": "x"}',
                                     '[1]', 'not json'])
def test_a_request_we_did_not_write_is_refused(tmp_path, content):
    write_request(str(tmp_path), content)
    with pytest.raises(SnapshotError, match='left alone'):
        _snapshot.read_request(str(tmp_path))


@pytest.mark.parametrize('request_, words', [
    (dict(action='reset', scope='state', kept='k'), 'factory reset of the state (a fresh empty state), keeping'),
    (dict(action='reset', scope='state'), 'dropping the state in use'),
    (dict(action='reset', scope='all', uuid='u'), 'factory reset of the whole data filesystem u'),
])
def test_requests_in_words(request_, words):
    assert words in _snapshot.describe_request(request_)


class FakeTop:
    def __init__(self, base):
        self.state = os.path.join(base, '@lightwhale-state')
        self.new = os.path.join(base, '@lightwhale-state.new')
        self.old = os.path.join(base, '@lightwhale-state.old')


def make(path, content):
    os.mkdir(path)
    with open(os.path.join(path, 'id'), 'w') as handle:
        handle.write(content)


def content(path):
    with open(os.path.join(path, 'id')) as handle:
        return handle.read()


@pytest.mark.parametrize('exchange', [True, False])
def test_the_swap_exchanges_the_names(tmp_path, monkeypatch, exchange):
    top = FakeTop(str(tmp_path))
    make(top.state, 'old')
    make(top.new, 'new')
    if not exchange:
        monkeypatch.setattr(_writes, 'exchange', lambda first, second: False)
    _state_change._swap(top)
    assert content(top.state) == 'new' and content(top.new) == 'old' and not os.path.exists(top.old)


@pytest.mark.parametrize('cut', ['after-first-rename', 'after-second-rename'])
def test_a_swap_cut_between_the_fallback_renames_is_finished(tmp_path, monkeypatch, cut):
    """Without an atomic exchange: S -> O, N -> S, O -> N. Cut after either rename, the next run finishes it."""
    top = FakeTop(str(tmp_path))
    make(top.old, 'old')
    if cut == 'after-first-rename':
        make(top.new, 'new')
    else:
        make(top.state, 'new')
    monkeypatch.setattr(_writes, 'exchange', lambda first, second: pytest.fail('no exchange once O is there'))
    _state_change._swap(top)
    assert content(top.state) == 'new' and content(top.new) == 'old' and not os.path.exists(top.old)


def test_rename_never_replaces(tmp_path):
    make(str(tmp_path / 'a'), 'a')
    make(str(tmp_path / 'b'), 'b')
    with pytest.raises(Exception, match='the target exists'):
        _writes.rename(str(tmp_path / 'a'), str(tmp_path / 'b'))
    assert content(str(tmp_path / 'b')) == 'b'

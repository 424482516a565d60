# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property tests (fuzzing) for the parsers that had none: arbitrary input raises only the documented
error type, and what a generator can produce in the tool's own format reads back exactly.

The other parsers' property tests live next to their unit tests (test_blockdev, test_btrfs, test_btrfs_usage,
test_cmdline, test_mountinfo, test_overlay, test_units, test_docker, test_status, test_enable_plan).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import string

from hypothesis import assume, example, given, settings, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _blockdev
from ansible_collections.lightwhale.persistence.plugins.module_utils import _btrfs
from ansible_collections.lightwhale.persistence.plugins.module_utils import _cmdline
from ansible_collections.lightwhale.persistence.plugins.module_utils import _docker
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _magic
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError, ProbeError

MAGIC = _layout.MAGIC
# JSON values of any shape, a few levels deep: what a tool that changed its output format could print.
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=20)
# Dicts that look like the tool's output, with any values in the fields the parser reads.
FIELD_NAMES = st.sampled_from(['partitiontable', 'partitions', 'signatures', 'node', 'start', 'size', 'sectorsize',
                               'label', 'id', 'name', 'type', 'uuid', 'offset'])
SHAPED = st.recursive(JSON, lambda inner: st.dictionaries(FIELD_NAMES, inner, max_size=6) | st.lists(inner, max_size=3),
                      max_leaves=25)
PATH_CHARS = st.characters(blacklist_categories=('Cs',), blacklist_characters='\0')
# Mount paths: the characters the kernel escapes in mountinfo and /proc/swaps (space, tab, newline, backslash) and
# the shell's metacharacters.
MOUNT_PATHS = st.lists(st.text(alphabet=st.sampled_from(list(string.ascii_letters + string.digits + ' \t\n\\;$()`\'"&|*?-_.')),
                               min_size=1, max_size=12), min_size=1, max_size=4).map(lambda parts: '/' + '/'.join(parts))


# Arbitrary input: many examples. No property here has a timed assertion: a shared machine may be slow.
FUZZ = settings(max_examples=300, deadline=None)
ROUND_TRIP = settings(deadline=None)


def outcome(parse, error, *args):
    """(parse(*args), None), or (None, the exception) when it raised `error`: any other exception fails the test."""
    try:
        return parse(*args), None
    except error as exc:
        return None, exc


def kernel_escape(path):
    """What the kernel prints for a path in mountinfo and /proc/swaps (seq_file's mangle: space, tab, newline, \\)."""
    return ''.join('\\%03o' % ord(char) if char in ' \t\n\\' else char for char in path)


# ---------------------------------------------------------------------------------------------- wipefs / sfdisk

@FUZZ
@given(st.one_of(st.text(max_size=200), JSON.map(json.dumps), SHAPED.map(json.dumps)))
def test_wipefs_json_raises_only_probe_errors(text):
    found, error = outcome(_blockdev.parse_wipefs_json, ProbeError, text, '/dev/x')
    assert (isinstance(found, list) and all(set(sig) == {'type', 'offset', 'label', 'uuid'} for sig in found) if error is None
            else error.message.startswith('/dev/x: cannot parse wipefs output'))


@ROUND_TRIP
@given(st.lists(st.fixed_dictionaries({'type': st.sampled_from(['gpt', 'PMBR', 'btrfs', 'swap', 'ext4', 'crypto_LUKS']),
                                       'offset': st.integers(0, 1 << 40),
                                       'label': st.none() | st.text(max_size=16),
                                       'uuid': st.none() | st.uuids().map(str)}), max_size=5))
def test_wipefs_json_round_trips(signatures):
    text = json.dumps({'signatures': [dict(sig, offset=hex(sig['offset'])) for sig in signatures]})
    assert _blockdev.parse_wipefs_json(text) == signatures


@FUZZ
@given(st.one_of(st.text(max_size=200), JSON.map(json.dumps), SHAPED.map(json.dumps),
                 SHAPED.map(lambda value: json.dumps({'partitiontable': value}))))
@example('{"partitiontable": null}')  # found by this test: an AttributeError (a traceback), now a ProbeError
@example('{"partitiontable": []}')
def test_sfdisk_json_raises_only_probe_errors(text):
    table, error = outcome(_blockdev.parse_sfdisk_json, ProbeError, text, '/dev/x')
    assert (set(table) == {'label', 'id', 'partitions'} if error is None
            else error.message.startswith('/dev/x: cannot parse sfdisk output'))


PARTITION = st.fixed_dictionaries({
    'number': st.integers(1, 128), 'start': st.integers(0, 1 << 32), 'size': st.integers(1, 1 << 32),
    'name': st.text(max_size=36), 'type': st.uuids().map(str), 'uuid': st.uuids().map(str)})


@ROUND_TRIP
@given(st.lists(PARTITION, max_size=6, unique_by=lambda part: part['number']), st.sampled_from([512, 4096]))
def test_sfdisk_json_round_trips(parts, sector):
    entries = [dict(node='/dev/loop7p%d' % part['number'], start=part['start'], size=part['size'], name=part['name'],
                    type=part['type'], uuid=part['uuid']) for part in parts]
    text = json.dumps({'partitiontable': {'label': 'gpt', 'id': 'X', 'sectorsize': sector, 'partitions': entries}})
    table = _blockdev.parse_sfdisk_json(text)
    assert table['label'] == 'gpt'
    assert [(p['device'], p['number'], p['start'], p['size'], p['name'], p['type'], p['uuid'])
            for p in table['partitions']] == [
        ('/dev/loop7p%d' % part['number'], part['number'], part['start'] * sector, part['size'] * sector, part['name'],
         part['type'].upper(), part['uuid'].upper()) for part in parts]


# ---------------------------------------------------------------------------------------------- btrfs

@FUZZ
@given(st.text(max_size=300))
def test_subvolume_list_raises_only_probe_errors(text):
    found, error = outcome(_btrfs.parse_subvolume_list, ProbeError, text)
    assert (all(set(sub) == {'id', 'gen', 'top_level', 'path'} for sub in found) if error is None
            else 'cannot parse btrfs subvolume list line' in error.message)


SUBVOL_PATHS = st.text(alphabet=PATH_CHARS, min_size=1, max_size=30).filter(
    lambda path: path.strip() == path and '\n' not in path and '\r' not in path and not any(
        char in path for char in '\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'))


@ROUND_TRIP
@given(st.lists(st.tuples(st.integers(5, 1 << 40), st.integers(0, 1 << 40), st.integers(5, 1 << 40), SUBVOL_PATHS),
                max_size=6))
def test_subvolume_list_round_trips(subvolumes):
    text = ''.join('ID %d gen %d top level %d path %s\n' % sub for sub in subvolumes)
    assert _btrfs.parse_subvolume_list(text) == [dict(id=i, gen=g, top_level=t, path=p) for i, g, t, p in subvolumes]


@FUZZ
@given(st.text(max_size=400))
def test_filesystem_usage_never_raises_other_than_probe_errors(text):
    found, error = outcome(_btrfs.parse_filesystem_usage, ProbeError, text)
    assert error is not None or isinstance(found, dict)


@ROUND_TRIP
@given(st.integers(min_value=-3, max_value=64))
def test_profiles_for_follows_the_rule(count):
    if count < 1:
        profiles, error = outcome(_btrfs.profiles_for, (ValueError, PersistenceError), count)
        assert error is not None, 'profiles_for(%d) = %r' % (count, profiles)
        return
    data, metadata = _btrfs.profiles_for(count)
    assert (data, metadata) == {1: ('single', 'dup'), 2: ('raid1', 'raid1'), 3: ('raid1', 'raid1c3')}.get(
        count, ('raid1', 'raid1c4'))


# ---------------------------------------------------------------------------------------------- mountinfo, swaps

@FUZZ
@given(st.text(max_size=200))
def test_mountinfo_line_raises_only_value_error(line):
    mount, error = outcome(_mountinfo.parse_mountinfo_line, ValueError, line)
    assert error is not None or isinstance(mount.target, str) and isinstance(mount.super_options, list)


@ROUND_TRIP
@given(MOUNT_PATHS, MOUNT_PATHS, MOUNT_PATHS, st.sampled_from(['btrfs', 'overlay', 'tmpfs', 'ext4']),
       st.lists(st.sampled_from(['shared:1', 'master:2', 'propagate_from:3', 'unbindable']), max_size=3),
       st.integers(0, 4095), st.integers(0, 1 << 20))
def test_mountinfo_lines_with_escaped_paths_round_trip(root, target, source, fstype, propagation, major, minor):
    line = '36 25 %d:%d %s %s rw,relatime %s- %s %s rw,space_cache=v2,subvol=/x\n' % (
        major, minor, kernel_escape(root), kernel_escape(target), ''.join(tag + ' ' for tag in propagation), fstype,
        kernel_escape(source))
    mount = _mountinfo.parse_mountinfo_line(line)
    assert (mount.root, mount.target, mount.source, mount.fstype) == (root, target, source, fstype)
    assert (mount.major, mount.minor, mount.propagation) == (major, minor, propagation)
    assert mount.options == ['rw', 'relatime'] and mount.super_options == ['rw', 'space_cache=v2', 'subvol=/x']


@ROUND_TRIP
@given(st.lists(MOUNT_PATHS, max_size=5))
def test_proc_swaps_round_trips_escaped_names(paths):
    text = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' + ''.join(
        '%s\tpartition\t1048572\t0\t-2\n' % kernel_escape(path) for path in paths)
    assert _mountinfo.parse_swaps(text) == paths


@FUZZ
@given(st.text(max_size=300))
def test_proc_swaps_never_raises(text):
    assert all(isinstance(area, str) for area in _mountinfo.parse_swaps(text))


# ---------------------------------------------------------------------------------------------- kernel command line

WORDS = st.text(alphabet=st.sampled_from(list(string.ascii_letters + string.digits + '=.,:/_-')), min_size=1, max_size=12)


@FUZZ
@given(st.text(max_size=200))
def test_cmdline_never_raises_and_has_flag_is_word_membership(cmdline):
    words = _cmdline.split_words(cmdline)
    assert all(isinstance(word, str) for word in words)
    assert _cmdline.has_flag(cmdline, 'noswap') == ('noswap' in words)
    assert _cmdline.swap_wanted(True, cmdline) == ('noswap' not in words)
    assert _cmdline.swap_wanted(False, cmdline) is False


@ROUND_TRIP
@given(st.lists(WORDS, max_size=8), st.lists(st.text(alphabet=' \t\n', min_size=1, max_size=3), min_size=10, max_size=10),
       st.booleans())
def test_noswap_is_found_only_as_a_bare_word(words, spaces, quoted):
    noswap = '"noswap"' if quoted else 'noswap'
    line = spaces[0] + ''.join(word + spaces[i + 1] for i, word in enumerate(words + [noswap]))
    assert _cmdline.has_flag(line, 'noswap')
    # as a value, a prefix or inside a quoted word with a space, it is not the flag
    for other in ('noswap=1', 'xnoswap', 'noswapx', '"noswap x"', 'a=noswap'):
        line = ' '.join(word for word in words if word != 'noswap') + ' ' + other
        assert not _cmdline.has_flag(line, 'noswap'), line


# ---------------------------------------------------------------------------------------------- magic header

@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=512, max_size=512))
def test_random_first_sectors_never_match(sector):
    assert _blockdev.has_magic(sector) == sector.startswith(MAGIC)


@ROUND_TRIP
@given(st.binary(max_size=485), st.integers(0, 26), st.integers(0, 255))
def test_a_header_with_any_one_byte_changed_does_not_match(tail, index, value):
    assume(value != MAGIC[index])
    sector = bytearray(MAGIC + tail)
    sector[index] = value
    assert not _blockdev.has_magic(bytes(sector))
    assert _blockdev.has_magic(MAGIC + tail)


@ROUND_TRIP
@given(st.binary(max_size=2048))
def test_first_nonzero_finds_the_first_non_zero_byte(data):
    expected = next((index for index, byte in enumerate(bytearray(data)) if byte), None)
    assert _magic._first_nonzero(data) == expected


# ---------------------------------------------------------------------------------------------- daemon.json, status

@FUZZ
@given(st.one_of(st.binary(max_size=200), JSON.map(lambda value: json.dumps(value).encode('utf-8'))))
def test_daemon_json_raises_only_persistence_errors(data):
    config, error = outcome(_docker.parse_config, PersistenceError, data, '/etc/docker/daemon.json')
    assert isinstance(config, dict) if error is None else error.message.startswith('/etc/docker/daemon.json ')


@FUZZ
@given(st.one_of(st.binary(max_size=200), JSON.map(lambda value: json.dumps(value).encode('utf-8'))))
def test_status_parse_never_raises(data):
    status = _status.parse(data)
    assert status is None or isinstance(status, dict)

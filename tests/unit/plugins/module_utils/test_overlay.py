# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The overlay core's pure parts: option checks, layer paths, overlayfs escapes, mountinfo matching, the plans.

Real mounts are tested in tests/integration/test_lw_overlay.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
from hypothesis import given, strategies as st

from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay_plan
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

BASES = dict(lower_base=_layout.OVERLAY_LOWER_BASE, upper_base=_layout.OVERLAY_UPPER_BASE,
             work_base=_layout.OVERLAY_WORK_BASE)
ROOT = '/sb/root'
LOWER = ROOT + '/run/lightwhale/overlay/lower'
UPPER = ROOT + '/mnt/lightwhale-data/lightwhale-state/overlay/upper'
WORK = ROOT + '/mnt/lightwhale-data/lightwhale-state/overlay/work'

# The sandbox root lives on /dev/vda (254:0); the data filesystem is a btrfs subvolume.
BASE = (
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n'
    '35 27 0:31 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755\n'
    '40 27 0:45 /@lightwhale-data /sb/root/mnt/lightwhale-data rw,noatime - btrfs /dev/sdb2 rw,subvolid=256\n'
)
BIND_ETC = '50 27 254:0 /sb/root/etc /sb/root/run/lightwhale/overlay/lower/etc ro,relatime - ext4 /dev/vda rw\n'
OVERLAY_ETC = ('51 27 0:60 / /sb/root/etc rw,relatime - overlay overlay rw,lowerdir=%s/etc,upperdir=%s/etc,'
               'workdir=%s/etc,uuid=on\n' % (LOWER, UPPER, WORK))
# What this kernel (6.18) printed for: mount -t overlay -o 'lowerdir=/tmp/ovx/low a\,b\:c,...' (spaces, ',' and ':').
KERNEL_ESCAPED = ('87 84 0:40 / /tmp/ovx/mnt rw,relatime - overlay overlay rw,lowerdir=/tmp/ovx/low\\040a\\134\\054b'
                  '\\134:c,upperdir=/tmp/ovx/up/x,workdir=/tmp/ovx/w\\134\\054k,uuid=on\n')


def mounts(text):
    return [_mountinfo.parse_mountinfo_line(line) for line in text.splitlines() if line.strip()]


def layers(path='/etc', root=ROOT):
    return _overlay.layers_for(root, path, BASES)


# ---------------------------------------------------------------- options


def test_defaults_are_valid_and_kept_in_order():
    paths, bases = _overlay.validate_options(list(_layout.OVERLAY_PATHS), **BASES)
    assert paths == ['/etc', '/var', '/home']
    assert bases == BASES


@pytest.mark.parametrize('given_path, clean', [('/etc/', '/etc'), ('//etc', '/etc'), ('/srv/./data', '/srv/data'),
                                               ('/srv/my data', '/srv/my data')])
def test_paths_are_normalised(given_path, clean):
    assert _overlay.validate_options([given_path], **BASES)[0] == [clean]


@pytest.mark.parametrize('paths, message', [
    (['etc'], "path 'etc' is not an absolute path"),
    ([''], "path '' is not an absolute path"),
    (['/'], 'path / is the root directory itself'),
    (['/etc/../var'], "path /etc/../var contains '..'"),
    (['/etc', '/etc/'], 'path /etc is listed twice'),
    (['/var', '/var/lib'], 'paths /var and /var/lib are nested'),
    (['/var/lib', '/var'], 'paths /var/lib and /var are nested'),
    (['/run'], 'path /run overlaps lower_base /run/lightwhale/overlay/lower'),
    (['/mnt/lightwhale-data/lightwhale-state/overlay/upper/x'], 'overlaps upper_base'),
])
def test_bad_paths_are_refused(paths, message):
    with pytest.raises(PersistenceError) as exc:
        _overlay.validate_options(paths, **BASES)
    assert message in exc.value.message
    assert exc.value.details['problems']


def test_every_problem_is_named_at_once():
    with pytest.raises(PersistenceError) as exc:
        _overlay.validate_options(['etc', '/', '/home'], lower_base='/x', upper_base='/x/up', work_base='wk')
    problems = exc.value.details['problems']
    assert len(problems) == 4
    assert "work_base 'wk' is not an absolute path" in problems
    assert any('lower_base /x and upper_base /x/up overlap' in problem for problem in problems)


def test_etc_and_etcetera_are_not_nested():
    assert _overlay.validate_options(['/etc', '/etcetera'], **BASES)[0] == ['/etc', '/etcetera']


def test_root_must_be_an_existing_absolute_directory(tmp_path):
    assert _overlay.resolve_root(str(tmp_path)) == os.path.realpath(str(tmp_path))
    link = tmp_path / 'link'
    link.symlink_to(tmp_path)
    assert _overlay.resolve_root(str(link)) == os.path.realpath(str(tmp_path))
    for bad, message in (('sandbox', 'is not an absolute path'), (str(tmp_path / 'no'), 'does not exist')):
        with pytest.raises(PersistenceError) as exc:
            _overlay.resolve_root(bad)
        assert message in exc.value.message


def test_layer_paths_under_a_root():
    found = layers('/home')
    assert (found.target, found.lower, found.upper, found.work) == (
        ROOT + '/home', LOWER + '/home', UPPER + '/home', WORK + '/home')
    on_host = layers('/etc', root='/')
    assert (on_host.target, on_host.lower) == ('/etc', '/run/lightwhale/overlay/lower/etc')
    assert on_host.options() == ('lowerdir=/run/lightwhale/overlay/lower/etc,'
                                 'upperdir=/mnt/lightwhale-data/lightwhale-state/overlay/upper/etc,'
                                 'workdir=/mnt/lightwhale-data/lightwhale-state/overlay/work/etc')


# ---------------------------------------------------------------- overlayfs escapes

PATHS = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1).map(lambda text: '/' + text)


def kernel_shows(value):
    """What seq_show_option() prints for an option value: ',', space, tab, newline and backslash as octal."""
    return ''.join('\\%03o' % ord(char) if char in ', \t\n\\' else char for char in value)


@given(PATHS)
def test_special_characters_are_exactly_those_options_cannot_carry(path):
    what = _overlay.special_char(path)
    assert (what is None) == (not any(char in path for char in ',:\\'))
    if what is None:
        # Unescaped in an option string, the path stays one option and one layer.
        options = 'lowerdir=%s,upperdir=%s,workdir=%s' % (path, path, path)
        assert [option.partition('=')[2] for option in options.split(',')] == [path] * 3
        assert _overlay.split_lowerdir(path) == ([path], [])


@pytest.mark.parametrize('path, what', [('/a,b', 'a comma'), ('/a:b', 'a colon'), ('/a\\b', 'a backslash'),
                                        ('/a\nb', 'a control character'), ('/a\x7fb', 'a control character')])
def test_special_characters_are_named(path, what):
    assert _overlay.special_char(path) == what


def escape_layer(path):
    r"""C(path) escaped for a lowerdir option as a user writes it (',' ':' '\' preceded by '\')."""
    return ''.join('\\' + char if char in _overlay.SPECIAL else char for char in path)


@given(st.lists(PATHS, min_size=1, max_size=4), st.lists(PATHS, max_size=2))
def test_lowerdir_escapes_round_trip(lower, data):
    value = ':'.join(escape_layer(path) for path in lower)
    if data:
        value += '::' + '::'.join(escape_layer(path) for path in data)
    assert _overlay.split_lowerdir(value) == (lower, data)


@given(PATHS, PATHS, PATHS)
def test_overlay_layers_read_back_as_the_kernel_prints_them(lower, upper, work):
    line = '51 27 0:60 / /sb/root/etc rw - overlay overlay rw,lowerdir=%s,upperdir=%s,workdir=%s,uuid=on' % (
        kernel_shows(escape_layer(lower)), kernel_shows(escape_layer(upper)),
        kernel_shows(escape_layer(work)))
    found = _overlay.overlay_layers(_mountinfo.parse_mountinfo_line(line))
    assert found == dict(lower=[lower], data=[], upper=upper, work=work)


def test_overlay_layers_of_what_the_kernel_printed():
    found = _overlay.overlay_layers(mounts(KERNEL_ESCAPED)[0])
    assert found == dict(lower=['/tmp/ovx/low a,b:c'], data=[], upper='/tmp/ovx/up/x', work='/tmp/ovx/w,k')


def test_overlay_layers_from_the_new_mount_api_and_data_layers():
    line = ('60 27 0:61 / /x rw - overlay overlay rw,lowerdir+=/l1,lowerdir+=/l\\054two,datadir+=/d1,'
            'upperdir=/u,workdir=/w')
    found = _overlay.overlay_layers(mounts(line)[0])
    assert found == dict(lower=['/l1', '/l,two'], data=['/d1'], upper='/u', work='/w')
    assert _overlay.overlay_layers(mounts(BASE)[0]) is None
    assert _overlay.split_lowerdir('/a:/b::/c') == (['/a', '/b'], ['/c'])
    assert _overlay.unescape_option('trailing\\') == 'trailing'


# ---------------------------------------------------------------- matching mountinfo


def test_nothing_mounted_yet():
    state = _overlay.inspect(mounts(BASE), layers())
    assert (state.overlay, state.bind, state.problems, state.submounts) == (None, None, [], [])
    assert (state.base.target, state.base_root) == ('/', '/sb/root/etc')
    assert state.table() == ''


def test_our_overlay_and_bind_are_recognised():
    state = _overlay.inspect(mounts(BASE + BIND_ETC + OVERLAY_ETC), layers())
    assert state.overlay.mount_id == 51 and state.bind.mount_id == 50
    assert state.problems == []
    assert _overlay.is_read_only(state.bind)
    assert state.table() == (
        '/sb/root/run/lightwhale/overlay/lower/etc ext4 /dev/vda root=/sb/root/etc ro\n'
        '/sb/root/etc overlay lowerdir=%s/etc, upperdir=%s/etc, workdir=%s/etc rw\n' % (LOWER, UPPER, WORK))


def test_the_predicted_table_is_what_the_kernel_then_shows():
    before = _overlay.inspect(mounts(BASE), layers())
    after = _overlay.inspect(mounts(BASE + BIND_ETC + OVERLAY_ETC), layers())
    assert before.predicted_table(True) == after.table()
    assert after.predicted_table(False) == before.table() == ''


def test_a_bind_inside_a_subvolume_gets_the_subvolumes_root():
    state = _overlay.inspect(mounts(BASE), layers('/mnt/lightwhale-data/keep', root='/sb/root'))
    assert (state.base.mount_id, state.base_root) == (40, '/@lightwhale-data/keep')


def test_a_target_that_is_itself_a_mount_is_bound_as_is():
    text = BASE + '45 27 0:50 / /sb/root/var rw - ext4 /dev/vdb rw\n'
    state = _overlay.inspect(mounts(text), layers('/var'))
    assert (state.base.mount_id, state.base_root, state.problems) == (45, '/', [])


@pytest.mark.parametrize('extra, path, words', [
    ('60 27 0:61 / /sb/root/var rw - overlay overlay rw,lowerdir=/ro,upperdir=/rw,workdir=/wk\n', '/var',
     ['/sb/root/var is already an overlay with other layers (lowerdir=/ro, upperdir=/rw, workdir=/wk)']),
    # Our layers plus one more lower layer: not ours either.
    ('60 27 0:61 / /sb/root/etc rw - overlay overlay rw,lowerdir=%s/etc:/extra,upperdir=%s/etc,workdir=%s/etc\n'
     % (LOWER, UPPER, WORK), '/etc', ['already an overlay with other layers']),
    ('60 27 0:61 / /sb/root/etc rw - overlay overlay rw,lowerdir=%s/etc,upperdir=/elsewhere,workdir=%s/etc\n'
     % (LOWER, WORK), '/etc', ['upperdir=/elsewhere']),
    (BIND_ETC + OVERLAY_ETC + '70 51 0:70 / /sb/root/etc rw - tmpfs tmpfs rw\n', '/etc',
     ['/sb/root/etc: tmpfs tmpfs is mounted over its overlay']),
    ('60 27 0:70 / /sb/root/run/lightwhale/overlay/lower/etc rw - tmpfs tmpfs rw\n', '/etc',
     ['/sb/root/run/lightwhale/overlay/lower/etc is already a mount point (tmpfs tmpfs, root /), not the bind']),
    # A bind of another directory of the same filesystem: same device number, other root.
    ('60 27 254:0 /sb/root/var /sb/root/run/lightwhale/overlay/lower/etc ro - ext4 /dev/vda rw\n', '/etc',
     ['not the bind of /sb/root/etc']),
])
def test_what_is_not_ours_is_a_problem(extra, path, words):
    state = _overlay.inspect(mounts(BASE + extra), layers(path))
    assert state.overlay is None
    for word in words:
        assert word in ' '.join(state.problems)


def test_submounts_are_found_and_prefixes_are_not_submounts():
    text = BASE + '60 27 0:70 / /sb/root/var/cache rw - tmpfs tmpfs rw\n60 27 0:71 / /sb/root/variant rw - tmpfs t rw\n'
    assert _overlay.inspect(mounts(text), layers('/var')).submounts == ['/sb/root/var/cache']


def test_top_of_a_stack_follows_parents_not_line_order():
    stack = mounts('71 70 0:2 / /x rw - tmpfs b rw\n70 1 0:1 / /x rw - tmpfs a rw\n')
    assert _mountinfo.top_of(stack).source == 'b'
    assert _mountinfo.top_of([]) is None


# ---------------------------------------------------------------- plans, on a real directory tree


@pytest.fixture
def image(tmp_path):
    root = str(tmp_path / 'root')
    for name in ('etc', 'var', 'home', 'mnt/lightwhale-data/lightwhale-state'):
        os.makedirs(os.path.join(root, name))
    return root


def _mountinfo_for(root, extra=''):
    return mounts('27 1 254:0 / / rw - ext4 /dev/vda rw\n' + extra.replace('/sb/root', root))


def test_plan_mounted_from_nothing(image):
    states = [_overlay.inspect(_mountinfo_for(image), _overlay.layers_for(image, path, BASES))
              for path in ('/etc', '/home')]
    plan, warnings = _overlay_plan.plan_mounted(None, image, states)
    assert warnings == []
    steps = [action.step for action in plan.actions]
    assert steps == ['overlay-mkdir'] * 3 + ['overlay-bind', 'overlay-secure', 'overlay-mount'] + \
        ['overlay-mkdir'] * 3 + ['overlay-bind', 'overlay-secure', 'overlay-mount']
    assert [action.device for action in plan.actions] == ['/etc'] * 6 + ['/home'] * 6
    assert sorted(plan.expected) == ['/etc', '/home']
    assert not os.path.exists(os.path.join(image, 'run'))  # planning writes nothing


def test_plan_mounted_when_mounted_is_empty(image):
    mounted = _mountinfo_for(image, BIND_ETC + OVERLAY_ETC)
    state = _overlay.inspect(mounted, _overlay.layers_for(image, '/etc', BASES))
    plan, warnings = _overlay_plan.plan_mounted(None, image, [state])
    assert (len(plan), warnings) == (0, [])


def test_a_missing_bind_under_our_overlay_is_a_warning_not_a_new_bind(image):
    state = _overlay.inspect(_mountinfo_for(image, OVERLAY_ETC), _overlay.layers_for(image, '/etc', BASES))
    plan, warnings = _overlay_plan.plan_mounted(None, image, [state])
    assert len(plan) == 0
    assert 'its lower bind' in warnings[0]


def test_a_read_write_bind_is_only_secured(image):
    rw_bind = BIND_ETC.replace(' ro,relatime ', ' rw,relatime ')
    state = _overlay.inspect(_mountinfo_for(image, rw_bind + OVERLAY_ETC), _overlay.layers_for(image, '/etc', BASES))
    plan, _warnings = _overlay_plan.plan_mounted(None, image, [state])
    assert [action.step for action in plan.actions] == ['overlay-secure']


def test_plan_refuses_every_path_before_the_first_mount(image):
    os.symlink('/', os.path.join(image, 'mnt/lightwhale-data/lightwhale-state/overlay'))
    states = [_overlay.inspect(_mountinfo_for(image), _overlay.layers_for(image, path, BASES))
              for path in ('/etc', '/nope')]
    with pytest.raises(PersistenceError) as exc:
        _overlay_plan.plan_mounted(None, image, states)
    problems = exc.value.details['problems']
    assert len(problems) == 3
    assert exc.value.message.startswith('3 problems, nothing changed: ')
    assert any('overlay is a symbolic link: refusing to follow it' in problem for problem in problems)
    assert any('/nope does not exist (the image has no /nope)' in problem for problem in problems)


def test_plan_unmounted_reverses_overlays_then_binds(image):
    text = BIND_ETC + OVERLAY_ETC + BIND_ETC.replace('50 ', '52 ').replace('/etc', '/home') + \
        OVERLAY_ETC.replace('51 ', '53 ').replace('/etc', '/home')
    states = [_overlay.inspect(_mountinfo_for(image, text), _overlay.layers_for(image, path, BASES))
              for path in ('/etc', '/home')]
    plan = _overlay_plan.plan_unmounted(None, states)
    assert [(action.step, action.device) for action in plan.actions] == [
        ('overlay-umount', '/home'), ('overlay-umount', '/etc'), ('overlay-unbind', '/home'), ('overlay-unbind', '/etc')]
    assert plan.expected['/etc'] == ''


def test_plan_unmounted_refuses_submounts(image):
    text = BIND_ETC + OVERLAY_ETC + '60 51 0:70 / /sb/root/etc/ssh rw - tmpfs tmpfs rw\n'
    state = _overlay.inspect(_mountinfo_for(image, text), _overlay.layers_for(image, '/etc', BASES))
    with pytest.raises(PersistenceError) as exc:
        _overlay_plan.plan_unmounted(None, [state])
    assert 'has submounts (%s/etc/ssh) on its overlay: unmount them first' % image in exc.value.message


# ---------------------------------------------------------------- directories, without following links


def test_missing_dirs_lists_the_missing_directories(image):
    assert _files.missing_dirs(image, os.path.join(image, 'etc')) == []
    assert _files.missing_dirs(image, os.path.join(image, 'run/a/b')) == [
        os.path.join(image, 'run'), os.path.join(image, 'run/a'), os.path.join(image, 'run/a/b')]


def test_missing_dirs_refuses_links_and_files(image):
    os.symlink('etc', os.path.join(image, 'link'))
    open(os.path.join(image, 'file'), 'w').close()
    with pytest.raises(PersistenceError, match='link is a symbolic link: refusing to follow it'):
        _files.missing_dirs(image, os.path.join(image, 'link/x'))
    with pytest.raises(PersistenceError, match='file is not a directory'):
        _files.missing_dirs(image, os.path.join(image, 'file/x'))


@pytest.mark.skipif(os.geteuid() != 0, reason='creates root-owned directories')
def test_make_dirs_modes_owners_and_links(image):
    target = os.path.join(image, 'a/b/c')
    assert _files.make_dirs(image, target, 0o700, (1000, 1000)) == [
        os.path.join(image, 'a'), os.path.join(image, 'a/b'), target]
    modes = [(os.stat(path).st_mode & 0o7777, os.stat(path).st_uid) for path in (os.path.join(image, 'a'), target)]
    assert modes == [(0o755, 0), (0o700, 1000)]
    assert _files.make_dirs(image, target) == []  # existing directories are left as they are
    assert os.stat(target).st_mode & 0o7777 == 0o700
    outside = os.path.join(image, 'etc')
    os.symlink(outside, os.path.join(image, 'planted'))
    with pytest.raises(PersistenceError, match='planted is a symbolic link'):
        _files.make_dirs(image, os.path.join(image, 'planted/x'))
    assert os.listdir(outside) == []

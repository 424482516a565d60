# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Overlays over the image's directories (boot step 7): layer paths, what mountinfo says about them, the plan.

For each directory D of the image (D as seen inside the root R):

- lower: R<lower_base>/D, a private, read-only bind mount of the image's R/D;
- upper: R<upper_base>/D, where the overlay's writes land (on the data filesystem);
- work:  R<work_base>/D, overlayfs's work directory (on the same filesystem as upper);

and an overlay (lowerdir=lower, upperdir=upper, workdir=work) mounted on R/D.

Whether a layer is there is read from /proc/self/mountinfo only: the overlay by its mount point, fstype and
the lowerdir/upperdir/workdir super options the kernel reports; the bind by its mount point, device number and
root (the directory of the filesystem it shows), which must be those of the image's R/D.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath
import stat

from ansible_collections.lightwhale.persistence.plugins.module_utils import _files
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._lock import sandbox_path
from ansible_collections.lightwhale.persistence.plugins.module_utils._plan import Plan

# overlayfs's mount options separate options with ',' and lower layers with ':', and take '\' as their escape.
# mount(8) implementations (util-linux, BusyBox) split and rejoin options in their own ways, so a layer path
# holding one of these is refused rather than escaped.
SPECIAL = {',': 'a comma', ':': 'a colon', '\\': 'a backslash'}

DIR_MODE = 0o755


def special_char(path):
    """The name of the first character of C(path) that overlayfs options cannot carry as is, or None."""
    for char in path:
        if char in SPECIAL:
            return SPECIAL[char]
        if ord(char) < 32 or ord(char) == 127:
            return 'a control character'
    return None


def resolve_root(root):
    """The root directory with its symlinks resolved once (mountinfo reports resolved paths)."""
    if not root or not root.startswith('/'):
        raise PersistenceError('root %r is not an absolute path' % root)
    real = os.path.realpath(root)
    if not os.path.isdir(real):
        raise PersistenceError('root %s does not exist or is not a directory' % root)
    return real


def is_within(path, parent):
    """Whether C(path) is C(parent) or lies below it (both absolute and normalised)."""
    return parent == '/' or path == parent or path.startswith(parent + '/')


def normalize(path, what):
    """C(path) (absolute, as seen inside the root) normalised; PersistenceError naming C(what) when it is not usable."""
    if not isinstance(path, str) or not path.startswith('/'):
        raise PersistenceError('%s %r is not an absolute path' % (what, path))
    if '..' in path.split('/'):
        raise PersistenceError("%s %s contains '..'" % (what, path))
    clean = posixpath.normpath('/' + path.lstrip('/'))
    if clean == '/':
        raise PersistenceError('%s %s is the root directory itself' % (what, path))
    return clean


def validate_options(paths, lower_base, upper_base, work_base):
    """Check and normalise the module's paths and bases; return (paths, bases) or raise one PersistenceError.

    Refused: relative paths, '..', '/', a path listed twice or nested in another (the second bind would show
    the first overlay, not the image), a path that holds or lies in one of the bases, nested bases.
    """
    problems = []
    bases = {}
    for name, value in (('lower_base', lower_base), ('upper_base', upper_base), ('work_base', work_base)):
        try:
            bases[name] = normalize(value, name)
        except PersistenceError as exc:
            problems.append(exc.message)
    names = sorted(bases)
    for index, name in enumerate(names):
        for other in names[index + 1:]:
            if is_within(bases[name], bases[other]) or is_within(bases[other], bases[name]):
                problems.append('%s %s and %s %s overlap: the layers must be separate trees'
                                % (name, bases[name], other, bases[other]))
    clean = []
    for path in paths:
        try:
            path = normalize(path, 'path')
        except PersistenceError as exc:
            problems.append(exc.message)
            continue
        for name in names:
            if is_within(path, bases[name]) or is_within(bases[name], path):
                problems.append('path %s overlaps %s %s' % (path, name, bases[name]))
        for earlier in clean:
            if path == earlier:
                problems.append('path %s is listed twice' % path)
            elif is_within(path, earlier) or is_within(earlier, path):
                problems.append('paths %s and %s are nested: the second bind would show the first overlay, '
                                'not the image' % (earlier, path))
        clean.append(path)
    if problems:
        raise PersistenceError('; '.join(problems), problems=problems)
    return clean, bases


class Layers:
    """Where one directory's layers live, as host paths (C(path) is the directory as seen inside the root)."""

    __slots__ = ('path', 'target', 'lower', 'upper', 'work')

    def __init__(self, path, target, lower, upper, work):
        self.path = path
        self.target = target
        self.lower = lower
        self.upper = upper
        self.work = work

    def options(self):
        return 'lowerdir=%s,upperdir=%s,workdir=%s' % (self.lower, self.upper, self.work)

    def to_result(self, mounted):
        return dict(path=self.path, target=self.target, lower=self.lower, upper=self.upper, work=self.work,
                    mounted=mounted)


def layers_for(root, path, bases):
    """The Layers of C(path) (normalised, inside C(root)) with the normalised C(bases) of validate_options."""
    return Layers(
        path=path,
        target=sandbox_path(root, path),
        lower=sandbox_path(root, bases['lower_base'] + path),
        upper=sandbox_path(root, bases['upper_base'] + path),
        work=sandbox_path(root, bases['work_base'] + path))


def unescape_option(text):
    r"""Undo overlayfs's own escapes, as the kernel does (each '\' makes the next character literal)."""
    out = []
    chars = iter(text)
    for char in chars:
        if char == '\\':
            char = next(chars, '')
        out.append(char)
    return ''.join(out)


def split_lowerdir(value):
    """Split a lowerdir value on unescaped ':' into (lower layers, data-only layers after '::'), unescaped."""
    parts = []
    current = []
    chars = iter(value)
    for char in chars:
        if char == '\\':
            current.append(char)
            current.append(next(chars, ''))
        elif char == ':':
            parts.append(''.join(current))
            current = []
        else:
            current.append(char)
    parts.append(''.join(current))
    lower, data = [], []
    target = lower
    for part in parts:
        if part == '':
            target = data
            continue
        target.append(unescape_option(part))
    return lower, data


def escape_layer(path):
    r"""C(path) escaped for a lowerdir option (',' ':' '\' preceded by '\'), the inverse of split_lowerdir."""
    return ''.join('\\' + char if char in SPECIAL else char for char in path)


def overlay_layers(mount):
    """The layers of an overlay mount, from its super options: dict(lower, data, upper, work); None if not overlay.

    The kernel shows each option value as given at mount time (with overlayfs's '\' escapes), octal-escaped
    for mountinfo. Layers added with the new mount API show as one lowerdir+ / datadir+ each, unescaped.
    """
    if mount.fstype != 'overlay':
        return None
    found = dict(lower=[], data=[], upper=None, work=None)
    for option in mount.super_options:
        key, _sep, value = option.partition('=')
        value = _mountinfo.unescape(value)
        if key == 'lowerdir':
            lower, data = split_lowerdir(value)
            found['lower'].extend(lower)
            found['data'].extend(data)
        elif key == 'lowerdir+':
            found['lower'].append(value)
        elif key == 'datadir+':
            found['data'].append(value)
        elif key == 'upperdir':
            found['upper'] = unescape_option(value)
        elif key == 'workdir':
            found['work'] = unescape_option(value)
    return found


def _same_path(found, wanted):
    return found is not None and found.startswith('/') and posixpath.normpath(found) == wanted


def is_our_overlay(mount, layers):
    """Whether C(mount) is the overlay of C(layers): on its target, one lower (the bind), its upper and work."""
    found = overlay_layers(mount)
    return (found is not None and mount.target == layers.target and len(found['lower']) == 1 and not found['data']
            and _same_path(found['lower'][0], layers.lower) and _same_path(found['upper'], layers.upper)
            and _same_path(found['work'], layers.work))


def describe_overlay(found):
    text = 'lowerdir=%s, upperdir=%s, workdir=%s' % (':'.join(found['lower']) or '-', found['upper'] or '-',
                                                     found['work'] or '-')
    if found['data']:
        text += ', data layers %s' % ':'.join(found['data'])
    return text


def stack_at(mounts, target):
    """The mounts on C(target), bottom first."""
    return [mount for mount in mounts if mount.target == target]


def top_of(stack):
    """The visible one of mounts stacked on one target: the one no other mount of the stack sits on."""
    if not stack:
        return None
    parents = set(mount.parent_id for mount in stack)
    tops = [mount for mount in stack if mount.mount_id not in parents]
    return (tops or stack)[-1]


def providing(mounts, path, ignore=()):
    """The mount that shows C(path) when the mounts with ids in C(ignore) are left out, and the root a bind of
    C(path) gets (its directory inside that mount's filesystem); (None, None) when no mount holds it."""
    mounts = [mount for mount in mounts if mount.mount_id not in ignore]
    stack = stack_at(mounts, path)
    if stack:
        mount = top_of(stack)
        return mount, mount.root
    holders = [mount for mount in mounts if is_within(path, mount.target)]
    if not holders:
        return None, None
    longest = max(len(mount.target) for mount in holders)
    mount = top_of([holder for holder in holders if len(holder.target) == longest])
    rest = path[len(mount.target):].lstrip('/')
    return mount, posixpath.join(mount.root, rest) if rest else mount.root


def is_read_only(mount):
    return 'ro' in mount.options


def render(mount):
    """One line of the mount table as the diff shows it."""
    flag = 'ro' if is_read_only(mount) else 'rw'
    found = overlay_layers(mount)
    if found is not None:
        return '%s overlay %s %s\n' % (mount.target, describe_overlay(found), flag)
    return '%s %s %s root=%s %s\n' % (mount.target, mount.fstype, mount.source, mount.root, flag)


class PathState:
    """What mountinfo says about one directory's layers."""

    __slots__ = ('layers', 'overlay', 'bind', 'base', 'base_root', 'problems', 'submounts', 'lower_stack',
                 'target_stack')

    def __init__(self, layers):
        self.layers = layers
        self.overlay = None
        self.bind = None
        self.base = None
        self.base_root = None
        self.problems = []
        self.submounts = []
        self.lower_stack = []
        self.target_stack = []

    def table(self):
        """The mount table lines of the lower and the target, as they are now."""
        return ''.join(render(mount) for mount in self.lower_stack + self.target_stack)

    def predicted_table(self, mounted):
        """The same lines after the layers are mounted (C(mounted)) or taken down."""
        lines = [render(mount) for mount in self.lower_stack if mount is not self.bind]
        if mounted and self.base is not None:
            lines.append('%s %s %s root=%s ro\n' % (self.layers.lower, self.base.fstype, self.base.source,
                                                    self.base_root))
        lines.extend(render(mount) for mount in self.target_stack if mount is not self.overlay)
        if mounted:
            lines.append('%s overlay %s rw\n' % (self.layers.target, describe_overlay(dict(
                lower=[self.layers.lower], data=[], upper=self.layers.upper, work=self.layers.work))))
        return ''.join(lines)


def inspect(mounts, layers):
    """Read C(layers)' state from C(mounts) (a parsed mountinfo); problems found go to PathState.problems."""
    state = PathState(layers)
    state.target_stack = stack_at(mounts, layers.target)
    state.lower_stack = stack_at(mounts, layers.lower)
    top = top_of(state.target_stack)
    ours = [mount for mount in state.target_stack if is_our_overlay(mount, layers)]
    if top is not None and top in ours:
        state.overlay = top
    elif top is not None and top.fstype == 'overlay':
        state.problems.append('%s is already an overlay with other layers (%s): not ours, left alone'
                              % (layers.target, describe_overlay(overlay_layers(top))))
    elif ours:
        state.problems.append('%s: %s %s is mounted over its overlay' % (layers.target, top.fstype, top.source))
    state.base, state.base_root = providing(mounts, layers.target, [mount.mount_id for mount in ours])
    lower_top = top_of(state.lower_stack)
    if lower_top is not None:
        if state.base is not None and lower_top.devno == state.base.devno and lower_top.root == state.base_root:
            state.bind = lower_top
        else:
            state.problems.append(
                '%s is already a mount point (%s %s, root %s), not the bind of %s: refusing to stack another mount '
                'on it' % (layers.lower, lower_top.fstype, lower_top.source, lower_top.root, layers.target))
    state.submounts = [mount.target for mount in mounts
                       if mount.target != layers.target and is_within(mount.target, layers.target)]
    return state


def _existing_ancestor(path):
    while not os.path.lexists(path):
        path = posixpath.dirname(path)
    return path


def _mount_actions(plan, runner, state):
    layers = state.layers

    def bind():
        runner.run('mount', ['--bind', layers.target, layers.lower], device=layers.target)

    def secure():
        # Private first: on a shared mount the overlay mounted on the target would propagate onto the bind.
        runner.run('mount', ['--make-private', layers.lower], device=layers.lower)
        runner.run('mount', ['-o', 'remount,bind,ro', layers.lower], device=layers.lower)

    def overlay():
        runner.run('mount', ['-t', 'overlay', '-o', layers.options(), 'overlay', layers.target], device=layers.target)

    if state.bind is None:
        plan.add('overlay-bind', layers.path, 'bind-mount %s on %s' % (layers.target, layers.lower), bind)
    if state.bind is None or not is_read_only(state.bind):
        plan.add('overlay-secure', layers.path, 'make %s private and read-only' % layers.lower, secure)
    if state.overlay is None:
        plan.add('overlay-mount', layers.path, 'mount overlay on %s (%s)' % (layers.target, layers.options()),
                 overlay)


def _dir_actions(plan, root, state, problems):
    layers = state.layers
    try:
        image = os.stat(layers.target)
    except OSError as exc:
        problems.append('cannot inspect %s: %s' % (layers.target, exc.strerror))
        return
    # The overlay's root directory shows the upper directory's owner and mode: give it the image's.
    wanted = ((layers.lower, DIR_MODE, (0, 0)),
              (layers.upper, stat.S_IMODE(image.st_mode), (image.st_uid, image.st_gid)),
              (layers.work, DIR_MODE, (0, 0)))
    for path, mode, owner in wanted:
        try:
            missing = _files.missing_dirs(root, path)
        except PersistenceError as exc:
            problems.append(exc.message)
            continue
        if missing:
            plan.add('overlay-mkdir', layers.path, 'create %s (owner %d:%d, mode %04o)' % (path, owner[0], owner[1], mode),
                     lambda path=path, mode=mode, owner=owner: _files.make_dirs(root, path, mode, owner))
    upper, work = _existing_ancestor(layers.upper), _existing_ancestor(layers.work)
    if os.lstat(upper).st_dev != os.lstat(work).st_dev:
        problems.append('%s and %s are on different filesystems: overlayfs needs upper and work on one'
                        % (layers.upper, layers.work))


def _refuse(problems):
    if len(problems) == 1:
        message = problems[0]
    else:
        message = '%d problems, nothing changed: %s' % (len(problems), '; '.join(problems))
    return PersistenceError(message, problems=problems)


def check_target(root, layers):
    """Problem with the image's directory C(layers.target) (missing, a symlink, not a directory), or None."""
    try:
        missing = _files.missing_dirs(root, layers.target)
    except PersistenceError as exc:
        return exc.message
    if missing:
        return '%s does not exist (the image has no %s)' % (missing[0], layers.path)
    for char_path in (layers.lower, layers.upper, layers.work):
        what = special_char(char_path)
        if what:
            return '%s holds %s, which overlayfs mount options cannot carry: refused' % (char_path, what)
    return None


def plan_mounted(runner, root, states):
    """The plan that mounts every path's layers, in order; (plan, warnings). Raises before any write if any path
    cannot be mounted (every problem named)."""
    plan = Plan()
    problems = []
    warnings = []
    for state in states:
        layers = state.layers
        problem = check_target(root, layers)
        if problem:
            problems.append(problem)
            continue
        if state.problems:
            problems.extend(state.problems)
            continue
        if state.overlay is not None:
            if state.bind is None:
                warnings.append('%s: the overlay is mounted but its lower bind %s is not (the overlay keeps '
                                'working; it is not re-created under a mounted overlay)' % (layers.target, layers.lower))
            elif not is_read_only(state.bind):
                _mount_actions(plan, runner, state)
            continue
        if state.submounts:
            problems.append('%s has submounts (%s) that the bind would not carry and the overlay would hide: '
                            'refused' % (layers.target, ', '.join(state.submounts)))
            continue
        _dir_actions(plan, root, state, problems)
        _mount_actions(plan, runner, state)
    if problems:
        raise _refuse(problems)
    for state in states:
        if any(action.device == state.layers.path for action in plan.actions):
            plan.expected[state.layers.path] = state.predicted_table(True)
    return plan, warnings


def plan_unmounted(runner, states):
    """The plan that takes the overlays down, then the binds, both in reverse order. Raises before any write if
    any of them cannot be taken down (every problem named)."""
    plan = Plan()
    problems = []
    for state in reversed(states):
        layers = state.layers
        if state.problems:
            problems.extend(state.problems)
            continue
        if state.overlay is None:
            continue
        if state.submounts:
            # umount would fail busy half-way through; a lazy unmount would hide it. Refused up front.
            problems.append('%s has submounts (%s) on its overlay: unmount them first'
                            % (layers.target, ', '.join(state.submounts)))
            continue
        plan.add('overlay-umount', layers.path, 'unmount overlay %s' % layers.target,
                 lambda layers=layers: runner.run('umount', [layers.target], device=layers.target))
    for state in reversed(states):
        layers = state.layers
        if state.bind is not None and not state.problems:
            plan.add('overlay-unbind', layers.path, 'unmount bind %s' % layers.lower,
                     lambda layers=layers: runner.run('umount', [layers.lower], device=layers.lower))
    if problems:
        raise _refuse(problems)
    for state in states:
        if any(action.device == state.layers.path for action in plan.actions):
            plan.expected[state.layers.path] = state.predicted_table(False)
    return plan


def verify(states, mounted, touched):
    """Re-read state after applying: the kernel, not the tools' exit codes, says what is mounted.

    C(touched) lists the paths the plan acted on; with C(mounted) their binds must be there and read-only.
    """
    for state in states:
        layers = state.layers
        if mounted:
            if state.problems:
                raise CommandError('after mounting: %s' % '; '.join(state.problems), device=layers.target)
            if state.overlay is None:
                raise CommandError('%s: the overlay is not in mountinfo after mounting it' % layers.target,
                                   device=layers.target)
            if layers.path in touched and (state.bind is None or not is_read_only(state.bind)):
                raise CommandError('%s: the lower bind is not there read-only after mounting it' % layers.lower,
                                   device=layers.lower)
        elif state.overlay is not None or state.bind is not None:
            raise CommandError('%s: still mounted after unmounting it' % layers.target, device=layers.target)

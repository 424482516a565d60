# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Overlays over the image's directories (boot step 7): the layer paths, and what mountinfo says about them.

For each directory D of the image (D as seen inside the root R):

- lower: R<lower_base>/D, a private, read-only bind mount of the image's R/D;
- upper: R<upper_base>/D, where the overlay's writes land (on the data filesystem);
- work:  R<work_base>/D, overlayfs's work directory (on the same filesystem as upper);

and an overlay (lowerdir=lower, upperdir=upper, workdir=work) mounted on R/D.

Whether a layer is there is read from /proc/self/mountinfo only: the overlay by its mount point, fstype and
the lowerdir/upperdir/workdir super options the kernel reports; the bind by its mount point, device number and
root (the directory of the filesystem it shows), which must be those of the image's R/D. The plans are in
_overlay_plan.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath

from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError
from ansible_collections.lightwhale.persistence.plugins.module_utils._lock import sandbox_path

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
            if _mountinfo.is_within(bases[name], bases[other]) or _mountinfo.is_within(bases[other], bases[name]):
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
            if _mountinfo.is_within(path, bases[name]) or _mountinfo.is_within(bases[name], path):
                problems.append('path %s overlaps %s %s' % (path, name, bases[name]))
        for earlier in clean:
            if path == earlier:
                problems.append('path %s is listed twice' % path)
            elif _mountinfo.is_within(path, earlier) or _mountinfo.is_within(earlier, path):
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
    state.target_stack = _mountinfo.stack_at(mounts, layers.target)
    state.lower_stack = _mountinfo.stack_at(mounts, layers.lower)
    top = _mountinfo.top_of(state.target_stack)
    ours = [mount for mount in state.target_stack if is_our_overlay(mount, layers)]
    if top is not None and top in ours:
        state.overlay = top
    elif top is not None and top.fstype == 'overlay':
        state.problems.append('%s is already an overlay with other layers (%s): not ours, left alone'
                              % (layers.target, describe_overlay(overlay_layers(top))))
    elif ours:
        state.problems.append('%s: %s %s is mounted over its overlay' % (layers.target, top.fstype, top.source))
    state.base, state.base_root = _mountinfo.providing(mounts, layers.target, [mount.mount_id for mount in ours])
    lower_top = _mountinfo.top_of(state.lower_stack)
    if lower_top is not None:
        if state.base is not None and lower_top.devno == state.base.devno and lower_top.root == state.base_root:
            state.bind = lower_top
        else:
            state.problems.append(
                '%s is already a mount point (%s %s, root %s), not the bind of %s: refusing to stack another mount '
                'on it' % (layers.lower, lower_top.fstype, lower_top.source, lower_top.root, layers.target))
    state.submounts = _mountinfo.below(mounts, layers.target)
    return state

# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every command that writes (to a disk, or to the kernel's view of disks and mounts) is run from _writes only.

Outside _writes (and _command, which runs what it is given), each command the core or a module runs must be a
literal tool with literal leading arguments that make it one of the read-only probes below. A new writing command
anywhere else, or a command built at run time, fails this test: check mode, the crash checkpoints and the plan's
record of what was done only see writes that go through a plan action into _writes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os

import pytest

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins')
WRITING_PATH = {'_writes.py', '_command.py'}
# (tool, leading arguments) of every read-only command the core runs.
READS = (
    ('wipefs', '--no-act'),
    ('sfdisk', '--json'),
    ('btrfs', 'filesystem', 'df'),
    ('btrfs', 'filesystem', 'usage'),
    ('btrfs', 'subvolume', 'list'),
    ('btrfs', 'balance', 'status'),
    ('btrfs', 'replace', 'status'),
    ('lvs', '--noheadings'),
    ('pvs', '--noheadings'),
)


def sources():
    for folder in ('module_utils', 'modules'):
        for name in sorted(os.listdir(os.path.join(PLUGINS, folder))):
            if name.endswith('.py') and name not in WRITING_PATH:
                yield os.path.join(folder, name)


def literal(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def imported(tree):
    """The names a file's imports bind (a module's own C(run) function is not a command)."""
    return set((alias.asname or alias.name).split('.')[0] for node in ast.walk(tree)
               if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names)


def commands(tree):
    """(line, tool, leading literal arguments) of every C(x.run(tool, [args...])) call on something that is not an
    imported module; tool None when not literal."""
    modules = imported(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'run'):
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and receiver.id in modules:
            continue
        if node.args:
            yield node.lineno, literal(node.args[0]), leading_words(node.args[1:])


def leading_words(args):
    """The literal strings that start an argument list (C(['a', 'b'] + rest) gives a, b)."""
    words = []
    if args:
        head = args[0]
        while isinstance(head, ast.BinOp):
            head = head.left
        if isinstance(head, ast.List):
            for element in head.elts:
                if literal(element) is None:
                    break
                words.append(literal(element))
    return tuple(words)


def is_read(tool, words):
    return any((tool,) + words[:len(read) - 1] == read for read in READS)


@pytest.mark.parametrize('source', list(sources()))
def test_only_the_writing_path_runs_writing_commands(source):
    with open(os.path.join(PLUGINS, source)) as handle:
        tree = ast.parse(handle.read(), source)
    offending = ['%s:%d: %s %s' % (source, line, tool or '(not a literal)', ' '.join(words))
                 for line, tool, words in commands(tree) if tool is None or not is_read(tool, words)]
    assert not offending, 'writing commands outside _writes: %s' % offending
    names = set(node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute))
    modules = set(alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                  for alias in node.names)
    assert 'run_command' not in names and not modules & {'subprocess', 'os.system'}, source


def test_the_check_sees_a_writing_command():
    """The checker itself: a partx, a mount and a command built at run time are all found."""
    tree = ast.parse("import _magic_run\n_magic_run.run(module)\nrunner.run('partx', ['--add', path])\nrunner.run('mount', ['-t', 'tmpfs'] + rest)\n"
                     "runner.run(tool, ['--no-act'])\nrunner.run('wipefs', ['--no-act', '--json', path])\n"
                     "runner.run('btrfs', ['device', 'scan'])\n")
    verdicts = [(tool, is_read(tool, words)) for _line, tool, words in commands(tree)]
    assert sorted(verdicts, key=str) == sorted([('partx', False), ('mount', False), (None, False), ('wipefs', True),
                                                ('btrfs', False)], key=str)

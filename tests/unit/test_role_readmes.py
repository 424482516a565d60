# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/role-readmes: each role's README.md shows the variables of its meta/argument_specs.yml.

The rendering on a synthetic argument spec, then --check on the repository and on a copy of a role whose argument
spec gained an option (the block is then out of date, and writing brings it back).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import os
import shutil
import subprocess
import sys
from importlib.machinery import SourceFileLoader

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'role-readmes')


def load_script():
    loader = SourceFileLoader('role_readmes', SCRIPT)
    spec = importlib.util.spec_from_loader('role_readmes', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def run_script(root, *args):
    """Runs the copy of the script under root (it works on root/roles) -> (exit status, stdout + stderr)."""
    proc = subprocess.run([sys.executable, os.path.join(root, 'scripts', 'role-readmes')] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


SPEC = {'argument_specs': {'main': {'short_description': 'Main', 'options': {
    'mode': {'type': 'str', 'choices': ['fast', 'safe'], 'default': 'safe',
             'description': ['Pick V(fast) or C(safe), see O(plain) and O(mode=fast) and M(ns.col.mod).',
                             'I(Second) paragraph, U(https://example.org/a) and L(the docs,https://example.org/d).']},
    'paths': {'type': 'list', 'elements': 'path', 'required': True,
              'description': 'C(a|b) or a | b; RV(out), P(ns.col.other#role), O(ns.col.mod#module:state=absent).'},
    'opts': {'type': 'dict', 'default': {}, 'description': 'Options.',
             'options': {'count': {'type': 'raw', 'default': 1, 'description': 'How many.'}}},
    'plain': {'description': 'No type, no default.'},
    'overlays': {'type': 'list', 'elements': 'path', 'default': ['/etc', '/var'], 'description': 'Dirs.'},
    'empty': {'type': 'str', 'default': '', 'description': 'Empty.'},
    'flag': {'type': 'bool', 'default': False, 'description': 'A flag.'},
}}}}


def test_render_converts_markup_escapes_pipes_and_shows_defaults_and_choices():
    block = load_script().render(SPEC).splitlines()
    assert block[0] == ('<!-- BEGIN generated from meta/argument_specs.yml: edit that file, '
                        'then run scripts/role-readmes -->')
    assert block[-1] == '<!-- END generated -->'
    assert block[2:4] == ['| Variable | Type | Default | Description |', '| --- | --- | --- | --- |']
    assert block[4:12] == [
        '| `mode` | str | `safe` | Pick `fast` or `safe`, see `plain` and `mode=fast` and `ns.col.mod`. *Second* '
        'paragraph, <https://example.org/a> and [the docs](https://example.org/d). Choices: `fast`, `safe`. |',
        '| `paths` | list of path | *required* | `a\\|b` or a \\| b; `out`, `ns.col.other`, `state=absent` of '
        '`ns.col.mod`. |',
        '| `opts` | dict | `{}` | Options. |',
        '| `opts.count` | raw | `1` | How many. |',
        '| `plain` | str |  | No type, no default. |',
        '| `overlays` | list of path | `[/etc, /var]` | Dirs. |',
        '| `empty` | str | `""` | Empty. |',
        '| `flag` | bool | `false` | A flag. |',
    ]


def test_render_names_each_entry_point_when_there_are_several():
    spec = {'argument_specs': {'other': {'short_description': 'The C(other) one', 'options': {}},
                               'main': {'options': {'x': {'type': 'int', 'default': 3, 'description': 'X.'}}}}}
    block = load_script().render(spec)
    assert block.index('### Entry point `main`') < block.index('| `x` | int | `3` | X. |')
    assert block.index('| `x` | int | `3` | X. |') < block.index('### Entry point `other`')
    assert 'The `other` one\n\nNo variables.' in block


def test_check_passes_on_the_repository():
    status, output = run_script(ROOT, '--check')
    assert status == 0, output
    for role in os.listdir(os.path.join(ROOT, 'roles')):
        assert os.path.isfile(os.path.join(ROOT, 'roles', role, 'README.md')), role


def test_check_fails_when_an_option_is_added_and_writing_brings_the_block_back(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'scripts'))
    shutil.copy(SCRIPT, os.path.join(root, 'scripts'))
    shutil.copytree(os.path.join(ROOT, 'roles', 'enable'), os.path.join(root, 'roles', 'enable'))
    readme = os.path.join(root, 'roles', 'enable', 'README.md')
    specs_path = os.path.join(root, 'roles', 'enable', 'meta', 'argument_specs.yml')
    assert run_script(root, '--check')[0] == 0

    with open(specs_path) as handle:
        specs = yaml.safe_load(handle)
    specs['argument_specs']['main']['options']['lightwhale_persistence_new'] = {
        'type': 'int', 'default': 7, 'description': 'A new option.'}
    with open(specs_path, 'w') as handle:
        yaml.safe_dump(specs, handle)
    with open(readme) as handle:
        before = handle.read()

    status, output = run_script(root, '--check')
    assert status == 1
    assert 'roles/enable/README.md' in output
    with open(readme) as handle:
        assert handle.read() == before, '--check wrote the README'

    assert run_script(root)[0] == 0
    with open(readme) as handle:
        after = handle.read()
    assert '| `lightwhale_persistence_new` | int | `7` | A new option. |' in after
    # The hand-written text around the block is kept.
    assert after.split('<!-- BEGIN')[0] == before.split('<!-- BEGIN')[0]
    assert after.split('<!-- END generated -->')[1] == before.split('<!-- END generated -->')[1]
    assert run_script(root, '--check')[0] == 0


def test_check_fails_on_a_readme_without_the_markers(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'scripts'))
    shutil.copy(SCRIPT, os.path.join(root, 'scripts'))
    shutil.copytree(os.path.join(ROOT, 'roles', 'boot'), os.path.join(root, 'roles', 'boot'))
    with open(os.path.join(root, 'roles', 'boot', 'README.md'), 'w') as handle:
        handle.write('# Role lightwhale.persistence.boot\n')
    status, output = run_script(root, '--check')
    assert status == 1
    assert 'roles/boot/README.md' in output

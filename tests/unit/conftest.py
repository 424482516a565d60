# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the collection importable under plain pytest too (ansible-test units already arranges it), and the
fixtures the module tests share."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import sys
import tempfile

import pytest

from ansible.module_utils.testing import patch_module_args

try:
    import ansible_collections.lightwhale.persistence.plugins.module_utils._layout  # noqa: F401 pylint: disable=unused-import
except ImportError:
    _REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _TREE = tempfile.mkdtemp(prefix='lw-unit-')
    os.makedirs(os.path.join(_TREE, 'ansible_collections', 'lightwhale'))
    os.symlink(_REPO, os.path.join(_TREE, 'ansible_collections', 'lightwhale', 'persistence'))
    sys.path.insert(0, _TREE)
    for _name in [name for name in sys.modules if name == 'ansible_collections' or name.startswith('ansible_collections.')]:
        del sys.modules[_name]


@pytest.fixture
def run_module(capsys):
    """run_module(module, args) -> the result (a dict) that module.main() printed when run with these arguments."""

    def run(module, args):
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
        return json.loads(capsys.readouterr().out)

    return run


@pytest.fixture
def file_tree():
    """file_tree(root) -> every path under root (directories and files), relative to it, sorted."""

    def tree(root):
        return sorted(os.path.relpath(os.path.join(path, name), root)
                      for path, dirs, files in os.walk(root) for name in dirs + files)

    return tree

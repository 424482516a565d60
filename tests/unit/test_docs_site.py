# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/lib/docs_site.py: the guides' labels and sections, the Ansible inventory, and the link check of the site."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'scripts', 'lib'))
import docs_site  # noqa: E402  pylint: disable=wrong-import-position


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as fh:
        fh.write(text)


def site(tmp_path, pages):
    for name, body in pages.items():
        write(str(tmp_path / name), '<html><body>%s</body></html>' % body)
    return str(tmp_path)


def test_every_guide_of_the_repository_is_in_a_section():
    listed = [name for title, names in docs_site.SECTIONS for name in names]
    assert sorted(listed) == docs_site.guides_in(os.path.join(ROOT, 'docs'))
    assert len(listed) == len(set(listed))


def test_a_guide_left_out_of_the_sections_fails_the_build(tmp_path):
    write(str(tmp_path / 'docs' / 'new-guide.md'), '# New\n')
    for name in docs_site.guides_in(os.path.join(ROOT, 'docs')):
        write(str(tmp_path / 'docs' / (name + '.md')), '# %s\n' % name)
    with pytest.raises(SystemExit) as exc:
        docs_site.write_extra_docs(str(tmp_path))
    assert 'new-guide' in str(exc.value)


def test_guides_get_their_label(tmp_path):
    write(str(tmp_path / 'docs' / 'boot-sequence.md'), '# The boot sequence\n')
    docs_site.copy_guides(str(tmp_path / 'docs'), str(tmp_path / 'out'))
    with open(str(tmp_path / 'out' / 'boot-sequence.md')) as fh:
        assert fh.read() == ('(ansible_collections.lightwhale.persistence.docsite.boot_sequence)=\n\n'
                             '# The boot sequence\n')


def test_the_inventory_is_one_sphinx_reads(tmp_path):
    path = str(tmp_path / 'objects.inv')
    docs_site.write_inventory(path)
    with open(path, 'rb') as fh:
        data = fh.read()
    header, sep, body = data.partition(b'compressed using zlib.\n')
    assert header.startswith(b'# Sphinx inventory version 2\n') and sep
    lines = zlib.decompress(body).decode().splitlines()
    assert 'common_return_values std:label -1 reference_appendices/common_return_values.html' \
           '#common-return-values Return Values' in lines
    assert any(line.startswith('ansible_collections.ansible.builtin.reboot_module std:label -1 '
                               'collections/ansible/builtin/reboot_module.html'
                               '#ansible-collections-ansible-builtin-reboot-module ') for line in lines)


def test_links_that_resolve_pass(tmp_path, capsys):
    root = site(tmp_path, {
        'index.html': '<a href="a.html#part">a</a> <a href="#top">top</a> <a id="top"></a>'
                      '<a href="https://docs.ansible.com/">ansible</a> <img src="_static/x.png">',
        'a.html': '<h1 id="part">A</h1> <a href="index.html">home</a> <a href="sub/">sub</a>',
        'sub/index.html': '<a href="../a.html">up</a>',
        '_static/x.png': '',
    })
    assert docs_site.check_links(root) == 0
    assert '0 broken' in capsys.readouterr().out


@pytest.mark.parametrize('body, reason', [
    ('<a href="missing.html">x</a>', 'no such file'),
    ('<a href="a.html#nowhere">x</a>', 'no such anchor'),
    ('<a href="#nowhere">x</a>', 'no such anchor'),
    ('<a href="/">x</a>', 'a path from the web root'),
    ('<a href="/etc/passwd">x</a>', 'a path from the web root'),
    ('<a href="https://example.invalid/docs">x</a>', 'a host that does not exist'),
    ('<a href="https://example.com/">x</a>', 'a host that does not exist'),
])
def test_broken_links_fail(tmp_path, capsys, body, reason):
    root = site(tmp_path, {'index.html': body, 'a.html': '<h1 id="part">A</h1>'})
    assert docs_site.check_links(root) == 1
    assert reason in capsys.readouterr().out

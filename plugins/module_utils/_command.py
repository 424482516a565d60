# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Running the block-device tools: found on PATH once, argument lists (no shell), C locale, checked exit codes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError

# Tool output is parsed: pin the locale so messages and number formats do not move.
C_LOCALE = {'LC_ALL': 'C', 'LANG': 'C', 'LANGUAGE': 'C'}


class Runner:
    """Runs commands through AnsibleModule.run_command and raises CommandError on an unexpected exit code."""

    def __init__(self, module):
        self.module = module
        self._paths = {}
        self.log = []

    def path(self, tool):
        if tool not in self._paths:
            # required=True fails the module with a clear 'Failed to find required executable' message.
            self._paths[tool] = self.module.get_bin_path(tool, required=True)
        return self._paths[tool]

    def run(self, tool, args, data=None, ok=(0,), device=None):
        """Run C(tool) with C(args); return (rc, stdout, stderr). C(ok) lists the exit codes that are not errors."""
        cmd = [self.path(tool)] + [str(arg) for arg in args]
        rc, out, err = self.module.run_command(cmd, data=data, environ_update=C_LOCALE)
        self.log.append({'cmd': cmd, 'rc': rc})
        if rc not in ok:
            raise CommandError(
                '%s failed (exit %s)%s: %s' % (
                    ' '.join(cmd), rc, ' on %s' % device if device else '', (err or out).strip() or 'no output'),
                cmd=cmd, rc=rc, stdout=out, stderr=err, device=device)
        return rc, out, err

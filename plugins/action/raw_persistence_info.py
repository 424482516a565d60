# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""raw_persistence_info: persistence_info for a host without Python - a shell probe over the connection, the facts
made on the controller (_raw_probe)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_probe
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError
from ansible_collections.lightwhale.persistence.plugins.plugin_utils import _raw_shell

ARGUMENT_SPEC = dict(
    devices=dict(type='list', elements='str', default=[]),
    root=dict(type='str', default='/'),
)


def gather(action, devices, root):
    """The facts of the host behind C(action)'s connection: the listed devices, or the host scan."""
    scan_skipped = None
    if not devices:
        names = _raw_probe.listed_names(_raw_shell.run(action, _raw_probe.shell_command(_raw_probe.LIST_SCRIPT, [])))
        devices, scan_skipped = _raw_probe.scan_plan(names)
    text = _raw_shell.run(action, _raw_probe.shell_command(_raw_probe.PROBE_SCRIPT, [root] + list(devices)))
    return _raw_probe.facts(_raw_probe.Probe(text), root, scan_skipped)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(gather(self, args['devices'], args['root']))
        except PersistenceError as error:
            result.update(_raw_shell.failure(error))
        return result

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Step 7 as lw_overlay runs it: check the options, read mountinfo (_overlay), plan (_overlay_plan), apply, verify,
report."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay_plan
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner


def probe(specs):
    mounts = _mountinfo.read_mounts()
    return [_overlay.inspect(mounts, layers) for layers in specs]


def run(module, runner, root, specs):
    mounted = module.params['state'] == 'mounted'
    states = probe(specs)
    if mounted:
        plan, warnings = _overlay_plan.plan_mounted(runner, root, states)
    else:
        plan, warnings = _overlay_plan.plan_unmounted(runner, states), []
    for warning in warnings:
        module.warn(warning)
    touched = [layers.path for layers in specs if layers.path in plan.expected]
    before = ''.join(state.table() for state in states if state.layers.path in touched)

    found = states
    if plan and not module.check_mode:
        plan.apply()
        found = probe(specs)
        _overlay_plan.verify(found, mounted, touched)
    if module.check_mode:
        overlays = [layers.to_result(mounted) for layers in specs]
    else:
        overlays = [state.layers.to_result(state.overlay is not None) for state in found]

    result = dict(changed=bool(plan), actions=plan.describe(), overlays=overlays)
    if module._diff and plan:
        if module.check_mode:
            after = ''.join(plan.expected[path] for path in touched)
        else:
            after = ''.join(state.table() for state in found if state.layers.path in touched)
        result['diff'] = dict(before=before, after=after)
    return result


def execute(module):
    """lw_overlay: every path's layers checked before anything is read, then the run under the lock."""
    params = module.params
    paths, bases = _overlay.validate_options(params['paths'], params['lower_base'], params['upper_base'],
                                             params['work_base'])
    root = _overlay.resolve_root(params['root'])
    specs = [_overlay.layers_for(root, path, bases) for path in paths]
    with _module.lock(module, root):
        return run(module, Runner(module), root, specs)

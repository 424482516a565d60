# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Step 7 as lw_overlay runs it: check the options, read mountinfo (_overlay), plan (_overlay_plan), apply, verify,
report; then, when asked, Docker's data root through the /etc overlay (_docker) and this step's part of the status
file (_status)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.lightwhale.persistence.plugins.module_utils import _docker
from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _module
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mount
from ansible_collections.lightwhale.persistence.plugins.module_utils import _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay
from ansible_collections.lightwhale.persistence.plugins.module_utils import _overlay_plan
from ansible_collections.lightwhale.persistence.plugins.module_utils import _status
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError

DOCKER_WITHOUT_ETC = ("Docker data-root not set: /etc has no overlay, and daemon.json is never written into the "
                      "image")


def probe(specs):
    mounts = _mountinfo.read_mounts()
    return [_overlay.inspect(mounts, layers) for layers in specs]


def run(module, runner, root, specs, notes):
    mounted = module.params['state'] == 'mounted'
    states = probe(specs)
    if mounted:
        plan, warnings = _overlay_plan.plan_mounted(runner, root, states)
    else:
        plan, warnings = _overlay_plan.plan_unmounted(runner, states), []
    for warning in warnings:
        _module.warn(module, notes, warning)
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


def docker(module, root, specs, result, notes):
    """Docker's data-root in /etc/docker/daemon.json, read and written through the /etc overlay just mounted; the
    result gains C(docker), its actions and C(changed). In check mode, with the /etc overlay still to be mounted, the
    file is read where the overlay will show it from: its upper layer, else the image."""
    etc = [layers for layers in specs if layers.path == '/etc']
    if not etc:
        _module.warn(module, notes, DOCKER_WITHOUT_ETC)
        return None
    read_from = None
    if module.check_mode and _overlay.inspect(_mountinfo.read_mounts(), etc[0]).overlay is None:
        upper = os.path.join(etc[0].upper, 'docker', 'daemon.json')
        read_from = upper if os.path.lexists(upper) else None
        if _mount.missing_dirs(root, os.path.dirname(_layout.DOCKER_DATA_ROOT)):
            # No state directory yet (the data filesystem is still to be mounted): nothing to read the plan from.
            action = 'docker: set %s = %s in %s once the data filesystem is mounted' % (
                _docker.DATA_ROOT_KEY, _layout.DOCKER_DATA_ROOT, _layout.DOCKER_CONFIG)
            result['actions'].append(action)
            result['changed'] = True
            return _layout.DOCKER_DATA_ROOT
    found = None
    try:
        found = _docker.plan(root, _layout.DOCKER_CONFIG, _layout.DOCKER_DATA_ROOT, read_from)
        for warning in found.warnings:
            _module.warn(module, notes, warning)
        if found.plan and not module.check_mode:
            found.plan.apply()
            _docker.verify(root, _layout.DOCKER_CONFIG, _layout.DOCKER_DATA_ROOT)
    except PersistenceError as exc:
        # The overlays stay mounted; the failure names the step it belongs to.
        exc.message = 'Docker data-root: %s' % exc.message
        done = found.plan.done if found is not None else []
        exc.details['actions'] = result['actions'] + ['docker: %s' % action for action in done]
        exc.details['changed'] = result['changed'] or bool(done)
        raise
    result['actions'].extend('docker: %s' % action for action in found.plan.describe())
    result['changed'] = result['changed'] or bool(found.plan)
    result['docker'] = dict(data_root=_layout.DOCKER_DATA_ROOT, previous_data_root=found.previous,
                            config=found.config_path, directory=found.data_dir)
    return _layout.DOCKER_DATA_ROOT


def record_status(module, root, specs, notes, failure=None, data_root=None):
    """This step's part of the status file: the overlays wanted, Docker's data root, warnings, the failure."""
    paths = [layers.path for layers in specs]
    part = dict(overlays=paths, docker_data_root=data_root, failure=failure, warnings=list(notes))
    mounted = (lambda wanted: [path for path in wanted if path in paths]) if module.check_mode and not failure else None
    return _status.record(module, module.params['root'], 'overlay', part, mounted)


def execute(module):
    """lw_overlay: every path's layers checked before anything is read, then the run under the lock; Docker and the
    status file when asked (state=mounted)."""
    params = module.params
    paths, bases = _overlay.validate_options(params['paths'], params['lower_base'], params['upper_base'],
                                             params['work_base'])
    root = _overlay.resolve_root(params['root'])
    specs = [_overlay.layers_for(root, path, bases) for path in paths]
    mounted = params['state'] == 'mounted'
    notes = []
    with _module.lock(module, root):
        try:
            result = run(module, Runner(module), root, specs, notes)
            data_root = docker(module, root, specs, result, notes) if params['docker'] and mounted else None
        except PersistenceError as exc:
            if params['record_status'] and mounted:
                try:
                    exc.details['status'] = record_status(module, root, specs, notes, failure=exc.message)['status']
                except PersistenceError as status_error:
                    exc.details['msg'] = '%s; the status file was not written: %s' % (exc.message, status_error.message)
            raise
        if params['record_status'] and mounted:
            recorded = record_status(module, root, specs, notes, data_root=data_root)
            result['status'] = recorded['status']
            result['changed'] = result['changed'] or recorded['changed']
        return result

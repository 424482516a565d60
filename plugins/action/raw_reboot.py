# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""raw_reboot: reboot a host without Python and wait until it is back, over the connection alone. The host is back
when its shell answers with another boot id (/proc/sys/kernel/random/boot_id) than before the reboot."""

from __future__ import annotations

import re
import time

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase

from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_probe
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import PersistenceError
from ansible_collections.lightwhale.persistence.plugins.plugin_utils import _raw_shell

ARGUMENT_SPEC = dict(
    reboot_command=dict(type='str', default='reboot'),
    reboot_timeout=dict(type='int', default=600),
    poll_interval=dict(type='int', default=5),
)
BOOT_ID = 'cat /proc/sys/kernel/random/boot_id'
_BOOT_ID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def boot_id(self):
        """The host's boot id, or '' when its answer holds none (a banner of a host going down is no answer)."""
        found = _BOOT_ID.search(_raw_shell.run(self, BOOT_ID))
        return found.group(0) if found else ''

    def wait(self, before, timeout, interval):
        """Poll until the host answers with a boot id other than C(before); the seconds it took."""
        start = time.time()
        last = 'no answer yet'
        while time.time() - start < timeout:
            time.sleep(interval)
            try:
                self._connection.reset()
                now = self.boot_id()
            except (AnsibleConnectionFailure, PersistenceError) as exc:
                last = str(exc).strip()[-300:]
                continue
            if now and now != before:
                return int(time.time() - start)
            last = 'still the boot id of before the reboot'
        raise PersistenceError('the host did not come back within %d s of the reboot (last: %s)' % (timeout, last))

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if self._connection.transport == 'local':
            result.update(failed=True, changed=False, rebooted=False,
                          msg='a reboot over the local connection would reboot the control node: refused')
            return result
        if args['reboot_timeout'] < 1 or args['poll_interval'] < 1:
            result.update(failed=True, changed=False, rebooted=False,
                          msg='reboot_timeout and poll_interval must be at least 1')
            return result
        if self._task.check_mode:
            result.update(changed=True, rebooted=True, elapsed=0)
            return result
        try:
            before = self.boot_id()
            if not before:
                raise PersistenceError('the host did not say its boot id (%s)' % BOOT_ID)
            # Delayed, so that the shell returns and the connection closes before the host goes down; detached
            # with SIGHUP ignored, because the raw connection may run it on a terminal whose hang-up would end it.
            command = "trap '' HUP; (sleep 2; %s) </dev/null >/dev/null 2>&1 &" % args['reboot_command']
            try:
                _raw_shell.run(self, '/bin/sh -c ' + _raw_probe.quote(command))
            except AnsibleConnectionFailure:
                pass  # the host went down before the shell returned: the reboot is under way
            elapsed = self.wait(before, args['reboot_timeout'], args['poll_interval'])
        except PersistenceError as error:
            result.update(_raw_shell.failure(error), rebooted=False)
            return result
        result.update(changed=True, rebooted=True, elapsed=elapsed)
        return result

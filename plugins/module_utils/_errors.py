# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Errors the core raises; modules turn them into fail_json with the device and the reason."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class PersistenceError(Exception):
    """Base error: C(device) names the device concerned (or None), C(details) goes into the result."""

    def __init__(self, message, device=None, **details):
        super(PersistenceError, self).__init__(message)
        self.message = message
        self.device = device
        self.details = details

    def result(self):
        result = dict(self.details)
        if self.device:
            result['device'] = self.device
        return result


class DeviceError(PersistenceError):
    """A device is not fit for what was asked (missing, a partition, read-only, in use, holds data...)."""


class ProbeError(PersistenceError):
    """A probe failed. Never read as 'blank disk': the caller stops."""


class CommandError(PersistenceError):
    """A command exited with an unexpected status, or its effect could not be verified."""

    def __init__(self, message, cmd=None, rc=None, stdout='', stderr='', device=None):
        super(CommandError, self).__init__(message, device=device, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class LockTimeout(PersistenceError):
    """Another run holds the persistence lock for longer than we wait."""


class MountConflict(PersistenceError):
    """Something other than what a module would mount is mounted where it would mount: nothing is changed."""

# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Names, magic bytes and paths of the Lightwhale persistence layout, in one place."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

MAGIC = b'lightwhale-please-format-me'

SWAP_PARTLABEL = 'lightwhale-swap'
DATA_PARTLABEL = 'lightwhale-data'
SWAP_LABEL = 'lightwhale-swap'
DATA_LABEL = 'lightwhale-data'

# GPT partition type GUIDs (upper case, as sfdisk prints them).
GPT_TYPE_LINUX_SWAP = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F'
GPT_TYPE_LINUX_FS = '0FC63DAF-8483-4772-8E79-3D69D8477DE4'

SUBVOL_DATA = '@lightwhale-data'
SUBVOL_STATE = '@lightwhale-state'
SUBVOL_SNAPSHOTS = '@lightwhale-state-snapshots'

# Staging names of a rollback or reset at the top level of the filesystem, beside @lightwhale-state (_state_change).
SUBVOL_STATE_NEW = '@lightwhale-state.new'
SUBVOL_STATE_OLD = '@lightwhale-state.old'
# Inside @lightwhale-state-snapshots: each snapshot's description, time and flags, beside it (_snapshot).
SNAPSHOT_META_DIR = '.meta'

DATA_MOUNT = '/mnt/lightwhale-data'
# On @lightwhale-data (never rolled back): the pending rollback or reset, read at boot before the state is mounted.
REQUEST_DIR = '/mnt/lightwhale-data/.lightwhale-persistence'
REQUEST_FILE = '/mnt/lightwhale-data/.lightwhale-persistence/request.json'
# Set once the kernel command line's rollback word was carried out; cleared at the first boot without the word.
CMDLINE_ROLLBACK_DONE = '/mnt/lightwhale-data/.lightwhale-persistence/cmdline-rollback.done'
CMDLINE_ROLLBACK = 'lightwhale.rollback'
STATE_DIR = '/mnt/lightwhale-data/lightwhale-state'
RUN_DIR = '/run/lightwhale'
# Temporary top-level mounts of the data filesystem, a creation's or a snapshot's:
# <root>/run/lightwhale/<prefix>XXXXXX. One prefix for all, so that any run's cleanup undoes a killed run's leftover.
TOP_PREFIX = 'datafs-top-'
LOCK_FILE = '/run/lightwhale/persistence.lock'
STATUS_FILE = '/run/lightwhale/persistence.json'

# Boot step 7: the image's directories that get an overlay, in mount order, and where the layers live.
OVERLAY_PATHS = ('/etc', '/var', '/home')
OVERLAY_LOWER_BASE = '/run/lightwhale/overlay/lower'
OVERLAY_UPPER_BASE = '/mnt/lightwhale-data/lightwhale-state/overlay/upper'
OVERLAY_WORK_BASE = '/mnt/lightwhale-data/lightwhale-state/overlay/work'

# Docker's data root (on the data filesystem, not under the /var overlay) and the file that names it.
DOCKER_DATA_ROOT = '/mnt/lightwhale-data/lightwhale-state/docker'
DOCKER_CONFIG = '/etc/docker/daemon.json'

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB

# Partitions start at 1 MiB; the backup GPT needs 33 sectors at the end, rounded up to 1 MiB here.
ALIGNMENT = MIB
GPT_TAIL = MIB
# The smallest data partition we lay out: btrfs with DUP metadata needs about 110 MiB, with room to spare.
MIN_DATA_SIZE = 256 * MIB
MAX_AUTO_SWAP = 4 * GIB

# The MBR boot-code area: the magic header lives here, and GPT tools may leave it untouched.
BOOT_CODE_SIZE = 440

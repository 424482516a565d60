# -*- coding: utf-8 -*-
# Copyright (c) lightwhale.persistence developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Hosts without Python: the shell script that writes the magic header on one disk, after the controller planned it
(_magic.plan_present on a raw probe's Disk reports), and what its output says.

Right before writing, the script checks again what the plan relied on, so a disk that changed since the probe is
refused: still a block device, no holder, not mounted, not swap; and unless the plan wipes it, still no kernel
partition, no signature (wipefs) and zeros in its first and last MiB. It then writes the 27 bytes and a newline at
byte 0 (dd conv=notrunc), syncs, and reads the header back.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.lightwhale.persistence.plugins.module_utils import _layout
from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_probe
from ansible_collections.lightwhale.persistence.plugins.module_utils._errors import CommandError, DeviceError

# Arguments: the disk's path, 'wipe' or 'blank', the header text.
MARK_SCRIPT = r'''
exec 2>/dev/null
m='::lw::'
p=$1; how=$2; magic=$3
say() { echo "$m $*"; echo "$m end"; exit 0; }
for tool in dd od tr wc cat ls grep sync wipefs; do
    command -v "$tool" >/dev/null || say refused "$tool is not on the host"
done
[ -r /proc/self/mountinfo ] && [ -r /proc/swaps ] || say refused "cannot read /proc/self/mountinfo or /proc/swaps"
hex() { od -An -v -tx1 | tr -d ' \n'; }
nonzero() { dd if="$p" bs=512 skip="$1" count="$2" 2>/dev/null | tr -d '\000' | wc -c; }
bytes() { dd if="$p" bs=512 skip="$1" count="$2" 2>/dev/null | wc -c; }
marked() { case $(dd if="$p" bs=512 count=1 2>/dev/null | hex) in "$want"*) return 0 ;; esac; return 1; }
[ -b "$p" ] || say refused "not a block device any more"
n=${p##*/}; s=/sys/class/block/$n
[ -e "$s/size" ] || say refused "not in sysfs any more"
want=$(printf '%s' "$magic" | hex)
marked && say already
for q in "$s" "$s/$n"*; do
    [ "$q" = "$s" ] || [ -e "$q/partition" ] || continue
    q=${q##*/}
    [ -z "$(ls "/sys/class/block/$q/holders")" ] || say refused "in use: held by" $(ls "/sys/class/block/$q/holders")
    d=$(cat "/sys/class/block/$q/dev")
    while read -r _id _parent mm _root target _rest; do
        [ "$mm" = "$d" ] && say refused "in use: /dev/$q is mounted at $target"
    done < /proc/self/mountinfo
    grep -q " - [^ ]* /dev/$q " /proc/self/mountinfo && say refused "in use: /dev/$q is mounted"
    grep -q "^/dev/$q[[:space:]]" /proc/swaps && say refused "in use: /dev/$q is an active swap area"
    for b in /sys/fs/btrfs/*/devices/"$q"; do
        [ -e "$b" ] && say refused "in use: /dev/$q is a member of a mounted btrfs"
    done
    [ "$q" = "$n" ] || [ "$how" = wipe ] || say refused "kernel partition $q appeared since the probe"
done
sectors=$(cat "$s/size")
span=2048; [ "$sectors" -lt 2048 ] && span=$sectors
last=$((sectors - span))
if [ "$how" = wipe ]; then
    wipefs --all --quiet "$p" || say failed "wipefs --all failed"
    dd if=/dev/zero of="$p" bs=512 count="$span" conv=notrunc 2>/dev/null || say failed "cannot zero the first MiB"
    dd if=/dev/zero of="$p" bs=512 seek="$last" count="$span" conv=notrunc 2>/dev/null ||
        say failed "cannot zero the last MiB"
    for q in "$s/$n"*; do
        [ -e "$q/partition" ] && { partx -d "$p" || say failed "partx -d failed"; break; }
    done
else
    found=$(wipefs --no-act --noheadings --output TYPE,OFFSET "$p") || say refused "wipefs failed"
    [ -z "$found" ] || say refused "holds a signature since the probe:" $found
    for at in 0 "$last"; do
        [ "$(bytes "$at" "$span")" -eq $((span * 512)) ] || say refused "cannot read the MiB at sector $at"
        [ "$(nonzero "$at" "$span")" -eq 0 ] || say refused "non-zero data at sector $at since the probe"
    done
fi
printf '%s\n' "$magic" | dd of="$p" conv=notrunc 2>/dev/null || say failed "cannot write the header"
sync
marked || say failed "the header is not there after writing it"
say written
'''


def command(path, wipe):
    """The command line that marks C(path); C(wipe): the plan wipes it first (force)."""
    return _raw_probe.shell_command(MARK_SCRIPT, [path, 'wipe' if wipe else 'blank', _layout.MAGIC.decode('ascii')])


def outcome(path, text):
    """'written' or 'already' from the script's output; DeviceError for a refusal, CommandError for a failure or an
    output that is not the script's."""
    parts = _raw_probe.sections(text)
    name, argument, _lines = parts[0]
    if name in ('written', 'already'):
        return name
    if name == 'refused':
        raise DeviceError('%s: %s; nothing written' % (path, argument), device=path,
                          refused=[dict(device=path, reason=argument)])
    if name == 'failed':
        raise CommandError('%s: %s' % (path, argument), device=path, stdout=text)
    raise CommandError('%s: the marking script printed %r' % (path, text[-300:]), device=path, stdout=text)

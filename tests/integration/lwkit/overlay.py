"""Helpers for the overlay tests: a sample image under a sandbox root, a filesystem for the upper layers,
and snapshots of directory trees and of the mount table (read from /proc/self/mountinfo, parsed here and
not by the collection's own code, so the tests check the module against the kernel).

- make_image(root)              sample /etc, /var, /home (owners and modes of a real image) under root
- mount_tmpfs(path)             a tmpfs on path (made if missing)
- mount_fs(device, path)        mount a block device on path (made if missing)
- tree(path)                    {relative path: (kind, mode, uid, gid, content or link target)}, no crossing into
                                other mounts, no symlink followed
- mount_lines(under)            the raw mountinfo lines of mounts on or under a directory
- mount_table(under)            the same as MountLine tuples (target, fstype, root, ro, super options)
- umount_under(under)           unmount everything on or under a directory, topmost first
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from typing import NamedTuple

from .sysutil import run

SAMPLE_FILES = {
    # path: (kind, mode, uid, gid, content or link target)
    "etc": ("dir", 0o755, 0, 0, None),
    "etc/hostname": ("file", 0o644, 0, 0, "lightwhale\n"),
    "etc/motd": ("file", 0o644, 0, 0, "Welcome to the image\n"),
    "etc/shadow": ("file", 0o640, 0, 42, "root:*:19000:0:99999:7:::\n"),
    "etc/ssh": ("dir", 0o755, 0, 0, None),
    "etc/ssh/sshd_config": ("file", 0o600, 0, 0, "PermitRootLogin no\n"),
    "etc/mtab": ("link", 0o777, 0, 0, "/proc/self/mounts"),
    "var": ("dir", 0o755, 0, 0, None),
    "var/log": ("dir", 0o755, 0, 0, None),
    "var/lib": ("dir", 0o755, 0, 0, None),
    "var/lib/image.db": ("file", 0o644, 0, 0, "from the image\n"),
    "var/tmp": ("dir", 0o1777, 0, 0, None),
    "home": ("dir", 0o755, 0, 0, None),
    "home/op": ("dir", 0o750, 1000, 1000, None),
    "home/op/.ssh": ("dir", 0o700, 1000, 1000, None),
    "home/op/.ssh/authorized_keys": ("file", 0o600, 1000, 1000, "ssh-ed25519 AAAA op@fleet\n"),
    "home/op/.profile": ("file", 0o644, 1000, 1000, "export EDITOR=vi\n"),
}


def make_image(root, files=None):
    """Create the sample image (default SAMPLE_FILES) under root; owners and modes set whatever the umask."""
    files = SAMPLE_FILES if files is None else files
    for rel, (kind, mode, uid, gid, content) in sorted(files.items()):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind == "dir":
            os.makedirs(path, exist_ok=True)
        elif kind == "file":
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(content)
        else:
            os.symlink(content, path)
            os.lchown(path, uid, gid)
            continue
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    return files


def mount_tmpfs(path, size="64M"):
    os.makedirs(path, exist_ok=True)
    run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "lwtest-data", path])


def mount_fs(device, path):
    os.makedirs(path, exist_ok=True)
    run(["mount", device, path])


def _digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


def tree(top):
    """Snapshot of everything under top (top itself as '.'): kinds, modes, owners, contents."""
    snap = {}
    top_dev = os.lstat(top).st_dev
    for dirpath, dirnames, filenames in os.walk(top):
        for name in list(dirnames):
            if os.lstat(os.path.join(dirpath, name)).st_dev != top_dev:
                dirnames.remove(name)  # another filesystem (a mount): not part of this tree
        for name in [""] + dirnames + filenames:
            path = os.path.join(dirpath, name) if name else dirpath
            if not name and dirpath != top:
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                kind, what = "link", os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                kind, what = "dir", None
            elif stat.S_ISREG(info.st_mode):
                kind, what = "file", _digest(path)
            else:
                kind, what = "other", None
            snap[os.path.relpath(path, top)] = (kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, what)
    return snap


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


class MountLine(NamedTuple):
    target: str
    fstype: str
    source: str
    root: str
    ro: bool
    super_options: str
    mount_id: int
    parent_id: int
    devno: str


def _parse(line):
    left, _sep, right = line.rstrip("\n").partition(" - ")
    f, r = left.split(" "), right.split(" ")
    return MountLine(target=_unescape(f[4]), fstype=r[0], source=_unescape(r[1]), root=_unescape(f[3]),
                     ro="ro" in f[5].split(","), super_options=r[2] if len(r) > 2 else "",
                     mount_id=int(f[0]), parent_id=int(f[1]), devno=f[2])


def _under(target, top):
    return target == top or target.startswith(top.rstrip("/") + "/")


def mount_lines(under):
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return [line for line in fh if _under(_parse(line).target, under)]


def mount_table(under):
    return [_parse(line) for line in mount_lines(under)]


def overlay_options(line):
    """{lowerdir, upperdir, workdir} of an overlay MountLine, octal escapes undone."""
    options = {}
    for option in line.super_options.split(","):
        key, _sep, value = option.partition("=")
        if key in ("lowerdir", "upperdir", "workdir"):
            options[key] = _unescape(value)
    return options


def umount_under(under):
    """Unmount everything on or under a directory, mounts nothing sits on first; returns what is left."""
    for _attempt in range(20):
        lines = mount_table(under)
        if not lines:
            return []
        parents = {line.parent_id for line in lines}
        for line in lines:
            if line.mount_id not in parents:
                run(["umount", line.target], check=False)
    return [line.target for line in mount_table(under)]

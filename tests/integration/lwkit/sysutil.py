"""Small system helpers for the test kit: commands, /proc/self/mountinfo, /proc/swaps.

Everything here reads what the kernel says (mountinfo, /proc/swaps, sysfs) rather than
udev links or fstab: the sandbox has no udev.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass

C_ENV = dict(os.environ, LC_ALL="C", LANG="C")


class CommandError(RuntimeError):
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        super().__init__(f"{' '.join(map(str, argv))} -> rc={rc}\nstdout: {out}\nstderr: {err}")


def run(argv, check=True, input=None, timeout=120, env=None):
    """Run argv (a list) in the C locale; returns CompletedProcess with text output."""
    argv = [str(a) for a in argv]
    proc = subprocess.run(  # the return code is checked below, with the output in the error
        argv,
        check=False,
        input=input,
        capture_output=True,
        text=not isinstance(input, bytes),
        timeout=timeout,
        env=env or C_ENV,
        # lvm complains about inherited fds; close them
        close_fds=True,
    )
    if isinstance(proc.stdout, bytes):
        proc.stdout = proc.stdout.decode("utf-8", "replace")
        proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _unescape(field):
    # mountinfo and /proc/swaps escape space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@dataclass
class Mount:
    mount_id: int
    parent_id: int
    majmin: str
    root: str
    mount_point: str
    fstype: str
    source: str


def read_mountinfo(path="/proc/self/mountinfo"):
    mounts = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            left, _sep, right = line.rstrip("\n").partition(" - ")
            f = left.split(" ")
            r = right.split(" ")
            mounts.append(
                Mount(
                    mount_id=int(f[0]),
                    parent_id=int(f[1]),
                    majmin=f[2],
                    root=_unescape(f[3]),
                    mount_point=_unescape(f[4]),
                    fstype=r[0],
                    source=_unescape(r[1]) if len(r) > 1 else "",
                )
            )
    return mounts


def read_swaps(path="/proc/swaps"):
    """Return the list of active swap file names (as the kernel prints them)."""
    names = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        next(fh, None)  # header line
        for line in fh:
            if line.strip():
                names.append(_unescape(line.split()[0]))
    return names


def umount(target):
    """Unmount target; fall back to a lazy unmount. Returns True when it is gone."""
    if run(["umount", target], check=False).returncode == 0:
        return True
    return run(["umount", "-l", target], check=False).returncode == 0


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def mount_ns_id(pid="self"):
    return os.readlink(f"/proc/{pid}/ns/mnt")


def in_private_mount_ns():
    """True when this process does not share its mount namespace with PID 1."""
    try:
        return mount_ns_id("self") != mount_ns_id("1")
    except OSError:
        return False


def ensure_private_mount_ns():
    """Second net behind `unshare --mount --propagation private`.

    When the test process still shares PID 1's mount namespace, move it into a new one with
    private propagation (unshare(2) + mount --make-rprivate /), so mounts made by tests (and by
    the Ansible runs they start, which inherit it) never show on the host. Must run while the
    process has a single thread (pytest_configure). Returns a short description of what happened.
    """
    if in_private_mount_ns():
        return "already in a private mount namespace"
    import ctypes

    CLONE_NEWNS = 0x00020000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        return f"unshare(CLONE_NEWNS) failed: {os.strerror(err)}; mounts are visible on the host"
    run(["mount", "--make-rprivate", "/"])
    return "moved into a new private mount namespace"

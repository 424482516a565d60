"""Loop disks backed by sparse image files, and the teardown that always cleans them up.

Only loops created by this kit are ever touched: every disk is kept in a process-wide registry
(path + backing file), and teardown checks that the loop still points at our image before it
detaches it, and before it releases the swap and mounts on it (a pulled disk's loop number may back
another test's disk by then). Teardown order for a set of disks:

1. swapoff every active swap whose device is one of the disks or their partitions (/proc/swaps);
2. unmount every mount whose source or device number is one of them, or whose mount point lies
   under the kit's temp dirs (/proc/self/mountinfo; lazy unmount as fallback), deepest first;
3. btrfs device scan --forget on every node (best effort), blockdev --setrw (the read-only flag of
   a loop device survives losetup -d and would leak into the next user of that loop);
4. partx -d (partitions added by partx stay in the kernel after losetup -d otherwise);
5. losetup -d; remove the image file.

A second net: atexit and a SIGTERM handler run the same teardown for whatever is still registered.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import stat
import time
import threading
from dataclasses import dataclass, field

from .sysutil import read_mountinfo, read_swaps, run, umount, wait_for

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$", re.I)
_MULT = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(size):
    """'512M' / '512MiB' / '1G' / 4096 -> bytes (IEC multiples)."""
    if isinstance(size, int):
        return size
    m = _SIZE_RE.match(str(size))
    if not m:
        raise ValueError(f"bad size {size!r}")
    return int(m.group(1)) * _MULT[m.group(2).upper()]


@dataclass
class LoopDisk:
    path: str  # /dev/loopN
    image: str  # backing sparse file
    name: str  # label given by the test (for messages)
    size: int  # bytes
    workdir: str = ""  # temp dir of the test that owns it
    _torn_down: bool = field(default=False, repr=False)
    _pulled: bool = field(default=False, repr=False)  # detached by the test (unplug): its loop number is anyone's

    @property
    def kname(self):
        return os.path.basename(self.path)

    def __str__(self):
        return self.path

    def __fspath__(self):
        return self.path

    def part(self, number):
        return f"{self.path}p{number}"

    def partition_nodes(self):
        """Partitions the kernel currently knows for this loop (sysfs), as /dev paths."""
        out = []
        for d in sorted(glob.glob(f"/sys/block/{self.kname}/{self.kname}p*")):
            out.append("/dev/" + os.path.basename(d))
        return sorted(out, key=lambda p: int(p.rsplit("p", 1)[1]))

    def devnums(self):
        """major:minor strings of the disk and its partitions."""
        nums = set()
        for d in [f"/sys/block/{self.kname}"] + glob.glob(f"/sys/block/{self.kname}/{self.kname}p*"):
            try:
                with open(os.path.join(d, "dev")) as fh:
                    nums.add(fh.read().strip())
            except OSError:
                pass
        return nums

    def kernel_partitions(self):
        """{node: (start, size)} in 512-byte sectors, as the kernel has them (sysfs)."""
        out = {}
        for node in self.partition_nodes():
            base = f"/sys/block/{self.kname}/{os.path.basename(node)}"
            try:
                with open(base + "/start") as a, open(base + "/size") as b:
                    out[node] = (int(a.read()), int(b.read()))
            except OSError:
                pass
        return out

    def table_partitions(self):
        """{node: (start, size)} in 512-byte sectors, as the partition table on the disk has them."""
        proc = run(["sfdisk", "--json", self.path], check=False)
        if proc.returncode != 0:
            return {}
        table = json.loads(proc.stdout)["partitiontable"]
        factor = int(table.get("sectorsize", 512)) // 512
        return {p["node"]: (int(p["start"]) * factor, int(p["size"]) * factor) for p in table.get("partitions", [])}

    def rescan(self, wait=True, timeout=10.0):
        """Make the kernel's partitions match the table on the disk (no udev here), wait for the nodes.

        `partx -u` is not enough: with util-linux 2.38, when partitions moved it drops them without
        adding them back (and returns 0). So when sysfs differs from the table: partx -d, then partx -a.
        Returns the partition device paths; raises if the kernel still disagrees with the table."""
        self.flush()
        want = self.table_partitions()
        if self.kernel_partitions() != want:
            run(["partx", "-d", self.path], check=False)
            if want:
                run(["partx", "-a", self.path], check=False)
        if wait:
            ok = wait_for(lambda: all(_is_blockdev(n) for n in want), timeout=timeout)
            if not ok:
                missing = [n for n in want if not _is_blockdev(n)]
                raise RuntimeError(f"partition nodes did not appear: {missing}")
        have = self.kernel_partitions()
        if have != want:
            raise RuntimeError(f"{self.path}: kernel partitions {have} do not match the table {want}")
        return sorted(want, key=lambda p: int(p.rsplit("p", 1)[1]))

    def flush(self):
        """Write back and drop the block-device page cache of the disk and its partitions, so the
        image file and reads through the device agree."""
        for node in [self.path] + self.partition_nodes():
            if _is_blockdev(node):
                run(["blockdev", "--flushbufs", node], check=False)

    def read(self, offset, length):
        """Bytes at offset, read through the device after a flush."""
        self.flush()
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def write(self, offset, data, sync=True):
        """Write bytes through the device at offset (fsync'd)."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.flush()

    def teardown(self):
        teardown_disks([self])


def _is_blockdev(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# registry and teardown

_lock = threading.RLock()
_registry: dict[str, LoopDisk] = {}  # path -> disk
_temp_roots: set[str] = set()  # dirs whose mounts teardown removes
_pending_images: set[str] = set()  # images being attached right now
_removable_roots: set[str] = set()  # temp dirs the second net deletes


def register_temp_root(path, remove=False):
    """Mounts under `path` are undone by the second net; with remove=True it also deletes the dir."""
    with _lock:
        _temp_roots.add(os.path.realpath(path))
        if remove:
            _removable_roots.add(os.path.realpath(path))


def unregister_temp_root(path):
    with _lock:
        _temp_roots.discard(os.path.realpath(path))
        _removable_roots.discard(os.path.realpath(path))


@contextlib.contextmanager
def temp_root(path):
    """Within: `path` is a temp root (mounts under it are undone by the second net too). At the end, also on
    failure, everything mounted under it is unmounted and it is a temp root no more (the dir itself stays)."""
    register_temp_root(path)
    try:
        yield path
    finally:
        teardown_disks([], extra_roots=[path])
        unregister_temp_root(path)


def registered_disks():
    with _lock:
        return list(_registry.values())


def attach(image, size, name="disk", workdir=""):
    """Create a sparse image of `size` and attach it with losetup -f --show -P."""
    size_b = parse_size(size)
    with open(image, "wb") as fh:
        fh.truncate(size_b)
    # The image is noted before attaching, so a signal between attach and registration is
    # still covered by the atexit/SIGTERM net (it finds such loops by backing file).
    with _lock:
        _pending_images.add(image)
        try:
            path = run(["losetup", "-f", "--show", "-P", image]).stdout.strip()
            disk = LoopDisk(path=path, image=image, name=name, size=size_b, workdir=workdir)
            _registry[path] = disk
        finally:
            _pending_images.discard(image)
    if run(["blockdev", "--getro", path]).stdout.strip() != "0":
        # someone else's leftover read-only flag on this loop (see module docstring)
        run(["blockdev", "--setrw", path])
    return disk


def _backing_file(path):
    proc = run(["losetup", "-n", "-O", "BACK-FILE", path], check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def _same_image(back, image):
    """Whether backing file BACK (as losetup names it: a deleted file gets " (deleted)") is the file IMAGE."""
    return back is not None and os.path.realpath(back.replace(" (deleted)", "")) == os.path.realpath(image)


def _release_users(disks, extra_roots=()):
    """swapoff and unmount everything that uses the disks (or lives under the given dirs)."""
    paths, nums = set(), set()
    for d in disks:
        paths.add(d.path)
        paths.update(d.partition_nodes())
        nums.update(d.devnums())
    kn = {os.path.basename(p) for p in paths}
    knames_re = re.compile(r"^(%s)(p\d+)?$" % "|".join(re.escape(d.kname) for d in disks)) if disks else None
    problems = []

    # 1. swap
    for name in read_swaps():
        base = os.path.basename(name)
        hit = base in kn or (knames_re is not None and knames_re.match(base))
        if not hit:
            try:
                st = os.stat(name)
                hit = stat.S_ISBLK(st.st_mode) and f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" in nums
            except OSError:
                pass
        if hit:
            # The kernel prints the path as seen from the swapon caller's mount namespace; from
            # another namespace it can read "/loop0p1" (relative to /dev's mount): try /dev/NAME too.
            tries = [name] + ([f"/dev/{base}"] if name != f"/dev/{base}" else [])
            if not any(run(["swapoff", t], check=False).returncode == 0 for t in tries):
                problems.append(f"swapoff {name} failed")

    # 2. mounts, deepest first; several passes (a lazy umount can reveal the one below)
    roots = [r.rstrip("/") + "/" for r in extra_roots]
    for _pass in range(5):
        victims = []
        for m in read_mountinfo():
            src_base = os.path.basename(m.source) if m.source.startswith("/dev/") else None
            hit = (
                m.majmin in nums
                or m.source in paths
                or (src_base is not None and src_base in kn)
                or any((m.mount_point + "/").startswith(r) for r in roots)
            )
            if hit:
                victims.append(m)
        if not victims:
            break
        victims.sort(key=lambda m: m.mount_point.count("/"), reverse=True)
        for m in victims:
            if m.fstype == "btrfs":
                # A background conversion or replace keeps the filesystem busy: stop it first.
                run(["btrfs", "balance", "cancel", m.mount_point], check=False)
                run(["btrfs", "replace", "cancel", m.mount_point], check=False)
            if not umount(m.mount_point):
                problems.append(f"umount {m.mount_point} failed")
    return problems


def _users_of(node):
    """What may hold a partition open, for the message of a failed teardown."""
    name = os.path.basename(node)
    found = ["active swap"] if node in read_swaps() else []
    try:
        found += [f"held by {h}" for h in os.listdir(f"/sys/class/block/{name}/holders")]
    except OSError:
        pass
    if any(m.source == node for m in read_mountinfo()):
        found.append("mounted in this namespace")
    return ", ".join(found) or "no swap, holder or mount seen"


def teardown_disks(disks, extra_roots=()):
    """Release and detach the given kit disks. Never raises; returns a list of problems."""
    problems = []
    with _lock:
        disks = [d for d in disks if not d._torn_down]
        if not disks and not extra_roots:
            return problems
        # Users are released only on loops that still back our images: a pulled disk's loop number may back another
        # test's disk by now, and its swap and mounts are that test's.
        backs = [_backing_file(d.path) for d in disks]
        ours = [d for d, back in zip(disks, backs) if _same_image(back, d.image)]
        try:
            problems += _release_users(ours, extra_roots)
        except Exception as exc:  # keep going: detaching matters more
            problems.append(f"release: {exc!r}")
        have_btrfs = shutil.which("btrfs") is not None
        for d, back in zip(disks, backs):
            try:
                if any(d is mine for mine in ours):
                    nodes = [d.path] + d.partition_nodes()
                    if have_btrfs:
                        for n in nodes:
                            run(["btrfs", "device", "scan", "--forget", n], check=False)
                    for n in nodes:
                        run(["blockdev", "--setrw", n], check=False)
                    # partx -d refuses a partition that is still open; a device the kernel is closing after an
                    # unmount or swapoff (btrfs closes its members asynchronously) is free a moment later.
                    for attempt in range(20):
                        if not d.partition_nodes():
                            break
                        if attempt:
                            time.sleep(0.1)
                        run(["partx", "-d", d.path], check=False)
                    for n in d.partition_nodes():  # still busy after 2 s: say so, and what holds it
                        problems.append(f"partition {n} still known to the kernel ({_users_of(n)})")
                    if run(["losetup", "-d", d.path], check=False).returncode != 0:
                        problems.append(f"losetup -d {d.path} failed")
                elif back is not None and not d._pulled:
                    # A pulled disk's loop number may back any disk by now (another test's, under xdist): normal.
                    problems.append(f"{d.path} now backs {back}, not our {d.image}: left alone")
            except Exception as exc:
                problems.append(f"{d.path}: {exc!r}")
            finally:
                d._torn_down = True
                if _registry.get(d.path) is d:  # a pulled disk's loop number may be another disk's now
                    del _registry[d.path]
                try:
                    os.unlink(d.image)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    problems.append(f"rm {d.image}: {exc!r}")
    return problems


def teardown_everything(remove_roots=True):
    """The second net: tear down every disk still registered and every temp root's mounts.

    With remove_roots=False the removable temp dirs (the session dir) are kept: for a call in the middle of a
    session (the kit's self-test), where later tests still use them."""
    with _lock:
        disks = list(_registry.values())
        roots = list(_temp_roots)
        known = {d.image for d in disks}
        for image in list(_pending_images):
            if image in known:
                continue
            proc = run(["losetup", "-n", "-O", "NAME", "-j", image], check=False)
            for path in proc.stdout.split():
                disks.append(LoopDisk(path=path, image=image, name="pending", size=0))
    problems = teardown_disks(disks, extra_roots=roots)
    for root in list(_removable_roots) if remove_roots else []:
        if not any((m.mount_point + "/").startswith(root + "/") for m in read_mountinfo()):
            shutil.rmtree(root, ignore_errors=True)
    return problems


_installed = False


def install_safety_net():
    """atexit + SIGTERM (and SIGHUP) handlers that run teardown_everything(). Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(teardown_everything)

    def make_handler(signum, previous):
        def handler(sig, frame):
            try:
                teardown_everything()
            finally:
                if callable(previous):
                    previous(sig, frame)
                else:
                    signal.signal(sig, signal.SIG_DFL)
                    os.kill(os.getpid(), sig)

        return handler

    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            prev = signal.getsignal(signum)
            if prev in (signal.SIG_IGN,):
                continue
            signal.signal(signum, make_handler(signum, prev if callable(prev) else None))
        except (ValueError, OSError):  # not the main thread
            pass

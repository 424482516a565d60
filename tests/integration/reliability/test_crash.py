"""Crash at any point converges: the boot playbook is killed (SIGKILL) at every step boundary of a first
boot on 1, 2 and 3 magic disks, and inside mkfs.btrfs while it writes; the next boot must reach the same end state as
an uninterrupted boot of the same disk count and lose no file written before. The same for every step boundary of an
everyday boot (the filesystem exists), with files written into the persistent upper layers by an earlier boot.

How the kill is made deterministic (no timing race):
- Step boundaries: the core's test-only checkpoints (plugins/module_utils/_plan.py). LIGHTWHALE_PERSISTENCE_CRASH_AT=
  after:STEP@N makes the module SIGKILL itself right after the N-th action of that step; LIGHTWHALE_PERSISTENCE_CRASH_
  TRACE=<file> lists every checkpoint a run passes. A boundary between two actions is one point: "before:" the very
  first action of the boot, then "after:" every action (the "before:" of the next action is the same state). The
  lists below are written out by hand and compared with the trace of a real uninterrupted boot, so a new step cannot
  stay untested; the crash run's own trace must end exactly at its point.
- Inside mkfs.btrfs: a test-only PATH shim runs the real mkfs.btrfs under strace, which SIGKILLs its main thread at
  its MKFS_KILL_AT-th pwrite64 (strace counts per thread), then SIGKILLs the module that ran it. The disk then holds a
  partial btrfs (the superblock with mkfs's temporary magic), checked before the next boot.

The kill takes down the module process at the point; the playbook then goes on along its failure path, as the role
is designed to (a failed stage is recorded, the next one runs when it can, the status file is written). Its trace
must match the uninterrupted boot's up to the point.

Each crash boot runs in its own private mount namespace (its mounts vanish when it ends), followed by what a power-off
does (power_off: swap off, the kernel forgets partitions and btrfs members). The converging boot runs in the test's
namespace, so its end state can be read with the plain tools (sfdisk, blkid, btrfs, findmnt, /proc/swaps), and is
compared with the reference boot of the same disk count (one per count, computed once per module). The boot after it
must change nothing.

The whole matrix is the claim; all but a few named points per count are marked slow (deselect with -m "not slow").
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile

import pytest
from lwkit import figures
from lwkit import loop as lwloop
from lwkit.boot import BootRunner, ok, power_off, status_of
from lwkit.disk import MAGIC, write_header
from lwkit.overlay import make_image, mount_table, tree, umount_under
from lwkit.sysutil import read_swaps, run

pytestmark = [pytest.mark.needs_module(name) for name in ("magic_disk", "lw_datafs", "lw_overlay", "lw_status")]

CRASH_ENV = "LIGHTWHALE_PERSISTENCE_CRASH_AT"
TRACE_ENV = "LIGHTWHALE_PERSISTENCE_CRASH_TRACE"
CLAIM = "crash at any point converges"
COUNTS = (1, 2, 3)
DATA = "mnt/lightwhale-data"
STATE = DATA + "/lightwhale-state"
DOCKER = "/" + STATE + "/docker"
OVERLAYS = ("/etc", "/var", "/home")
SUPER = 65536  # the primary btrfs superblock, from the start of the partition
MKFS_KILL_AT = 30  # main thread's pwrite64 to kill mkfs.btrfs at: after its first superblock, before it finishes
DURING_MKFS = "during:mkfs"
CANARY = "crash-canary"


# ------------------------------------------------------------------------------------------ the points

def first_boot_actions(count):
    """Every action a first boot on `count` magic disks applies, in order, as STEP@N (N: per module run)."""
    actions = ["mount-tmpfs@1"]                                  # lw_datafs mounted: volatile until step 5
    for disk in range(1, count + 1):                             # magic_disk partitioned, disk after disk
        actions += [f"{step}@{disk}" for step in ("clear-partitions", "write-gpt", "sync-partitions",
                                                  "wipe-partitions", "wipe-header")]
    actions += [f"mkswap@{i}" for i in range(1, count + 1)]      # lw_datafs mounted again: it creates, then mounts
    actions += ["mkfs@1", "mount-top@1", "subvolume@1", "subvolume@2", "subvolume@3", "umount-top@1", "label@1"]
    actions += ["umount-tmpfs@1"]                                # lw_datafs mounted, replace_tmpfs: the tmpfs goes
    actions += ["mount-data@1", "mount-state@1"] + [f"swapon@{i}" for i in range(1, count + 1)]
    actions += overlay_actions(first=True)
    actions += ["mkdir-config@1", "write-config@1", "mkdir-data-root@1"]  # lw_overlay's Docker step
    return actions


def overlay_actions(first):
    """Per path: create the lower (under /run, so at every boot), upper and work directories, bind, secure, mount."""
    out = []
    for n, _path in enumerate(OVERLAYS, 1):
        if first:
            out += [f"overlay-mkdir@{3 * n - 2}", f"overlay-mkdir@{3 * n - 1}", f"overlay-mkdir@{3 * n}"]
        else:
            out += [f"overlay-mkdir@{n}"]
        out += [f"overlay-bind@{n}", f"overlay-secure@{n}", f"overlay-mount@{n}"]
    return out


def everyday_actions(count):
    """Every action an everyday boot applies (the data filesystem exists, the upper layers too). After a power-off
    the kernel knows no partition of the disks: lw_datafs tells it of them first, one disk after the other. Between
    the two mounts, the state step finds nothing due (no request, no boot snapshots)."""
    return [f"sync-partitions@{i}" for i in range(1, count + 1)] + ["mount-data@1", "state-change@1", "mount-state@1"] + \
        [f"swapon@{i}" for i in range(1, count + 1)] + overlay_actions(first=False)


def boundaries(actions):
    """The step boundaries of a run: before its first action, then after each one."""
    return ["before:" + actions[0]] + ["after:" + action for action in actions]


def first_boot_points(count):
    points = boundaries(first_boot_actions(count))
    # Inside the long step: mkfs.btrfs killed while it writes (after before:mkfs, before after:mkfs).
    points.insert(points.index("after:mkfs@1"), DURING_MKFS)
    return points


def everyday_points(count):
    return boundaries(everyday_actions(count))


# A few named points per count run by default; the rest of the matrix is slow (CI runs it all).
QUICK = {"before:mount-tmpfs@1", "after:write-gpt@1", DURING_MKFS, "after:subvolume@2", "after:umount-top@1",
         "after:mount-data@1", "after:overlay-mount@2"}
QUICK_EVERYDAY = {"after:mount-state@1", "after:overlay-mount@2"}


# Steps whose code and data do not depend on the number of disks (the overlays and Docker's data root act on the
# mounted data filesystem): their points run for 1 disk, and for 2 and 3 disks only when named in QUICK, unless
# LW_CRASH_FULL=1 asks for the whole matrix (about 20 min on two CPUs; CI's budget does not allow it in every run).
SAME_FOR_ANY_COUNT = ("state-change", "overlay-mkdir", "overlay-bind", "overlay-secure", "overlay-mount", "mkdir-config",
                      "write-config", "mkdir-data-root")
FULL = os.environ.get("LW_CRASH_FULL") == "1"


def in_matrix(count, point, quick):
    step = point.split(":", 1)[-1].split("@", 1)[0]
    return FULL or count == 1 or point in quick or step not in SAME_FOR_ANY_COUNT


def matrix(points_of, quick):
    return [pytest.param(count, point, id=f"{count}disk-{point}",
                         marks=() if point in quick else pytest.mark.slow)
            for count in COUNTS for point in points_of(count) if in_matrix(count, point, quick)]


# ------------------------------------------------------------------------------------------ helpers

def path(root, rel):
    return os.path.join(root, rel.lstrip("/"))


def reboot_here(root, disks):
    """A reboot for boots run in the test's own namespace: unmount everything under root, empty /run, power off."""
    left = umount_under(root)
    assert not left, f"could not unmount {left}"
    run_dir = path(root, "run")
    for name in os.listdir(run_dir):
        full = os.path.join(run_dir, name)
        shutil.rmtree(full) if os.path.isdir(full) and not os.path.islink(full) else os.unlink(full)
    power_off(disks)


def read_trace(file):
    try:
        with open(file, encoding="utf-8") as fh:
            return fh.read().split()
    except FileNotFoundError:
        return []


def actions_of(trace):
    """The actions of an uninterrupted run from its trace; each must show as before:X then after:X, once."""
    assert len(trace) == len(set(trace)), f"a checkpoint was reached twice (a point would be ambiguous): {trace}"
    assert len(trace) % 2 == 0, trace
    actions = []
    for before, after in zip(trace[0::2], trace[1::2]):
        assert before.startswith("before:") and after == "after:" + before[len("before:"):], (before, after)
        actions.append(before[len("before:"):])
    return actions


def superblock(disk, number=2):
    """(magic, label) of the btrfs superblock on partition `number`, read from the table and the disk itself (the
    kernel may have forgotten the partitions)."""
    for part in disk.table_partitions().items():
        node, (start, _size) = part
        if node.endswith(f"p{number}"):
            raw = disk.read(start * 512 + SUPER, 4096)
            return raw[64:72], raw[299:299 + 256].rstrip(b"\0").decode("utf-8", "replace")
    return None, None


def describe(root, disks):
    """The end state, in words that do not depend on the loop devices' names or the filesystem's UUID."""
    index = {}
    for i, disk in enumerate(disks):
        index[disk.path] = f"disk{i}"
        for n in (1, 2):
            index[disk.part(n)] = f"disk{i}p{n}"
    state = {}
    layouts, uuids = [], set()
    for disk in disks:
        table = json.loads(run(["sfdisk", "--json", disk.path]).stdout)["partitiontable"]
        layouts.append([(p.get("name"), p["type"], p["start"], p["size"]) for p in table["partitions"]] +
                       [table["label"], disk.read(0, len(MAGIC)) == MAGIC])
        probes = {}
        for n in (1, 2):
            out = run(["blkid", "-p", "-o", "export", disk.part(n)], check=False).stdout
            probe = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            probes[n] = (probe.get("TYPE"), probe.get("LABEL"))
            if n == 2:
                uuids.add(probe.get("UUID"))
        layouts[-1].append(probes)
    state["disks"] = layouts
    state["one filesystem uuid"] = len(uuids) == 1 and None not in uuids
    data = path(root, DATA)
    df = run(["btrfs", "filesystem", "df", data]).stdout
    state["profiles"] = sorted(line.split(":")[0].strip().lower() for line in df.splitlines() if ":" in line)
    listed = run(["btrfs", "subvolume", "list", data]).stdout
    state["subvolumes"] = sorted(line.split(" path ", 1)[1] for line in listed.splitlines() if " path " in line)
    show = run(["btrfs", "filesystem", "show", "--raw", data]).stdout
    state["members"] = sorted(index.get(word, word) for line in show.splitlines() if "devid" in line
                              for word in line.split() if word.startswith("/dev/"))
    names = {os.path.basename(node): name for node, name in index.items()}
    state["swaps"] = sorted(names[os.path.basename(area)] for area in read_swaps() if os.path.basename(area) in names)
    state["mounts"] = [(line.target[len(root):], line.fstype,
                        "<root>" + line.root[len(root):] if line.root.startswith(root + "/") else line.root, line.ro)
                       for line in mount_table(root)]
    with open(path(root, "etc/docker/daemon.json"), encoding="utf-8") as fh:
        state["daemon.json"] = fh.read()
    info = os.stat(path(root, DOCKER))
    state["docker data root"] = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
    state["state tree"] = {rel: entry for rel, entry in tree(path(root, STATE)).items() if CANARY not in rel}
    status = status_of(root)
    # The parts each step recorded ("steps") name the devices and the UUID again; the composed fields say it all.
    for key in ("time", "created", "summary", "steps"):
        status.pop(key, None)
    status["uuid"] = "the members' UUID" if uuids == {status.get("uuid")} else status.get("uuid")
    for key in ("devices", "swap_devices"):
        status[key] = [index.get(item, item) for item in status[key]]
    state["status"] = status
    return state


def diff(got, want):
    lines = []
    for key in sorted(set(got) | set(want)):
        mine, theirs = got.get(key), want.get(key)
        if mine == theirs:
            continue
        if isinstance(mine, dict) and isinstance(theirs, dict):
            lines += [f"{key}[{sub!r}]: got {mine.get(sub)!r}, want {theirs.get(sub)!r}"
                      for sub in sorted(set(mine) | set(theirs)) if mine.get(sub) != theirs.get(sub)]
        else:
            lines.append(f"{key}:\n  got  {mine!r}\n  want {theirs!r}")
    return "\n".join(lines)


def killed_task(res):
    """The task whose module was SIGKILLed: Ansible reports it failed, with the exit status of a SIGKILL."""
    failed = [rec for rec in res.results if rec.get("event") == "failed"
              and str(rec.get("action", "")).startswith("lightwhale.persistence.")]
    assert res.rc != 0 and failed, "no module of the collection failed: the crash did not happen\n" + res.explain()
    result = failed[0]["result"]
    assert result.get("rc") in (-9, 137) and "Killed" in result.get("module_stderr", ""), json.dumps(result)[:3000]
    return failed[0]


def stopped_at(reached, reference, point, res):
    """The killed run passed the same checkpoints as the uninterrupted one up to `point` (the kill itself: killed_task).
    What follows is the rest of the boot along its failure path, as designed (a failed stage is recorded, the next one
    runs when it can), which may pass later checkpoints of the uninterrupted boot again."""
    end = reference.index(point) + 1
    assert reached[:end] == reference[:end], f"{' '.join(reached)}\n{res.explain()}"


class Boots(BootRunner):
    """BootRunner with extra environment for the playbook (the crash point, the trace, a PATH shim)."""

    def __init__(self, ansible):
        super().__init__(ansible)
        self.extra = {}
        self.path_first = None

    def environment(self, root, results_file, extra=None):
        env = super().environment(root, results_file, extra)
        env.update(self.extra)
        if self.path_first:
            env["PATH"] = self.path_first + os.pathsep + env["PATH"]
        return env

    def traced(self, root, disks, trace, **kwargs):
        """A boot in the test's namespace that writes its checkpoint trace."""
        self.extra = {TRACE_ENV: trace}
        try:
            return self.boot(root, disks, **kwargs)
        finally:
            self.extra = {}

    def crashed(self, root, disks, point, trace, shim=None, after=""):
        """A boot in its own namespace killed at `point` (a checkpoint, or inside mkfs through the shim), then
        the power-off."""
        self.extra = {TRACE_ENV: trace}
        if shim is None:
            self.extra[CRASH_ENV] = point
        self.path_first = shim
        try:
            res, out = self.boot_in_namespace(root, disks, after=after)
        finally:
            self.extra, self.path_first = {}, None
            power_off(disks)
        return res, out


def make_box(workdir):
    root = os.path.join(workdir, "root")
    os.makedirs(os.path.join(root, "run"))
    make_image(root)
    # Files of the image the boot must never lose nor change (the overlays' lower layers).
    for rel in ("etc", "var/lib", "home/op"):
        with open(path(root, f"{rel}/{CANARY}"), "w", encoding="utf-8") as fh:
            fh.write(f"image {rel}\n")
    return os.path.realpath(root)


def image_canaries_intact(root):
    for rel in ("etc", "var/lib", "home/op"):
        with open(path(root, f"{rel}/{CANARY}"), encoding="utf-8") as fh:
            assert fh.read() == f"image {rel}\n", rel


def mkfs_shim(directory, marker):
    """A PATH shim for mkfs.btrfs (test-only): the real one under strace, killed at its MKFS_KILL_AT-th pwrite64,
    then SIGKILL to the module that ran it (the shim's parent), as a power cut would stop both."""
    real = shutil.which("mkfs.btrfs", path="/usr/sbin:/sbin:/usr/bin:/bin")
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is not installed (scripts/setup installs it)")
    os.makedirs(directory, exist_ok=True)
    shim = os.path.join(directory, "mkfs.btrfs")
    with open(shim, "w", encoding="utf-8") as fh:
        fh.write(f"""#!/bin/sh
# Test-only (tests/integration/reliability/test_crash.py): kill mkfs.btrfs while it writes, then the module.
{strace} -f -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=KILL:when={MKFS_KILL_AT} {real} "$@"
echo "$?" > {marker}
kill -KILL "$PPID"
""")
    os.chmod(shim, 0o755)
    return directory


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def boots(ansible):
    return Boots(ansible)


@pytest.fixture
def box(lw_workdir):
    with lwloop.temp_root(make_box(lw_workdir)) as root:
        yield root


class Reference:
    def __init__(self, count, state, first_trace, everyday_trace):
        self.count = count
        self.state = state
        self.first_trace = first_trace
        self.everyday_trace = everyday_trace


@pytest.fixture(scope="module")
def reference(boots, lw_session_dir):
    """reference(count) -> Reference: an uninterrupted first boot and an everyday boot after a reboot, on fresh disks
    (computed once per count and module): their end state and their checkpoint traces."""
    cache = {}

    def get(count):
        if count in cache:
            return cache[count]
        workdir = tempfile.mkdtemp(prefix=f"reference-{count}-", dir=lw_session_dir)
        root = make_box(workdir)
        lwloop.register_temp_root(root)
        disks = []
        try:
            for i in range(count):
                disk = lwloop.attach(os.path.join(workdir, f"magic{i}.img"), "512M", name=f"ref-magic{i}",
                                     workdir=workdir)
                disks.append(disk)
                write_header(disk)
            first = os.path.join(workdir, "first.trace")
            ok(boots.traced(root, disks, first), changed=True)
            state = describe(root, disks)
            assert status_of(root)["mode"] == "persistent" and status_of(root)["created"] is True
            reboot_here(root, disks)
            everyday = os.path.join(workdir, "everyday.trace")
            ok(boots.traced(root, disks, everyday), changed=True)
            again = describe(root, disks)
            assert again == state, "an everyday boot after a reboot did not reach the first boot's state\n" + \
                diff(again, state)
            cache[count] = Reference(count, state, read_trace(first), read_trace(everyday))
        finally:
            problems = lwloop.teardown_disks(disks, extra_roots=[root])
            lwloop.unregister_temp_root(root)
            assert not problems, problems
        return cache[count]

    return get


def record(measure, converged):
    figures.add(CLAIM, measure, 1 if converged else 0, 1, "points")
    figures.add(CLAIM, "all disk counts, first and everyday boots: converged / injection points",
                1 if converged else 0, 1, "points")


# ------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("count", COUNTS)
def test_the_points_are_every_boundary_a_real_boot_passes(reference, count):
    """The lists of this file against the trace of real, uninterrupted boots: nothing new stays untested."""
    ref = reference(count)
    assert actions_of(ref.first_trace) == first_boot_actions(count)
    assert actions_of(ref.everyday_trace) == everyday_actions(count)
    points = [p for p in first_boot_points(count) if p != DURING_MKFS]
    assert points == boundaries(actions_of(ref.first_trace))
    # Each point is reached once in the whole boot (per module run counts do not collide across modules).
    assert len(set(first_boot_points(count))) == len(first_boot_points(count))


@pytest.mark.parametrize("count,point", matrix(first_boot_points, QUICK))
def test_first_boot_killed_at_a_point_converges(boots, reference, box, magic_disks, lw_workdir, count, point):
    ref = reference(count)
    disks = magic_disks(count)
    image = {d: tree(path(box, d)) for d in ("etc", "var", "home")}
    converged = False
    try:
        trace = os.path.join(lw_workdir, "crash.trace")
        shim = marker = None
        if point == DURING_MKFS:
            marker = os.path.join(lw_workdir, "mkfs.status")
            shim = mkfs_shim(os.path.join(lw_workdir, "shim"), marker)
        res, _out = boots.crashed(box, disks, point, trace, shim=shim)
        killed_task(res)
        stopped_at(read_trace(trace), ref.first_trace, point if shim is None else "before:mkfs@1", res)

        # The label is the commit point: before it, no data partition carries it; after it, all do.
        supers = [superblock(disk) for disk in disks]
        labelled = [label == "lightwhale-data" and magic == b"_BHRfS_M" for magic, label in supers]
        points = first_boot_points(count)
        committed = points.index(point) >= points.index("after:label@1")
        assert labelled == [committed] * count, supers
        if point == DURING_MKFS:
            with open(marker, encoding="utf-8") as fh:
                assert fh.read().strip() == "137", "strace did not kill mkfs.btrfs while it wrote"
            # A partial filesystem: mkfs's temporary magic on the first member, no complete btrfs anywhere.
            assert supers[0][0] == b"!BHRfS_M", supers
            assert all(magic != b"_BHRfS_M" for magic, _label in supers), supers

        res = ok(boots.boot(box, disks))
        state = describe(box, disks)
        assert state == ref.state, f"after a crash at {point} the next boot did not converge\n" + diff(state, ref.state)
        # Created at this boot unless the crashed one got past the commit point (the label).
        assert status_of(box)["created"] is (not committed)
        image_canaries_intact(box)
        assert {d: tree(path(box, f"run/lightwhale/overlay/lower/{d}")) for d in ("etc", "var", "home")} == image
        if FULL or point in QUICK:
            # The converged state equals the reference, whose next boot changes nothing; run it for the named points.
            ok(boots.boot(box, disks), changed=False)
        converged = True
    finally:
        record(f"{count} disk(s), first boot: converged / injection points", converged)


WRITE_CANARIES = f"""
    echo upper-etc > "$ROOT/etc/{CANARY}-upper"
    mkdir -p "$ROOT/var/{CANARY}-app" && echo upper-var > "$ROOT/var/{CANARY}-app/state"
    echo upper-home > "$ROOT/home/{CANARY}-upper"
    echo docker > "$ROOT{DOCKER}/{CANARY}"
    head -c 1048576 /dev/urandom > "$ROOT/mnt/lightwhale-data/{CANARY}.bin"
    sha256sum "$ROOT/mnt/lightwhale-data/{CANARY}.bin" | cut -d' ' -f1
    sync
"""


@pytest.mark.parametrize("count,point", matrix(everyday_points, QUICK_EVERYDAY))
def test_everyday_boot_killed_at_a_point_loses_nothing_and_converges(boots, reference, box, magic_disks,
                                                                     lw_workdir, count, point):
    ref = reference(count)
    disks = magic_disks(count)
    converged = False
    try:
        first, digest = boots.boot_in_namespace(box, disks, after=WRITE_CANARIES)
        ok(first, changed=True)
        power_off(disks)
        digest = digest.strip()
        assert len(digest) == 64, digest

        trace = os.path.join(lw_workdir, "crash.trace")
        res, _out = boots.crashed(box, disks, point, trace)
        killed_task(res)
        stopped_at(read_trace(trace), ref.everyday_trace, point, res)

        ok(boots.boot(box, disks), changed=True)
        state = describe(box, disks)
        assert state == ref.state, f"after a crash at {point} the next boot did not converge\n" + diff(state, ref.state)
        assert status_of(box)["created"] is False
        image_canaries_intact(box)
        expected = {f"etc/{CANARY}-upper": "upper-etc\n", f"var/{CANARY}-app/state": "upper-var\n",
                    f"home/{CANARY}-upper": "upper-home\n", f"{DOCKER}/{CANARY}": "docker\n"}
        for rel, content in expected.items():
            with open(path(box, rel), encoding="utf-8") as fh:
                assert fh.read() == content, rel
        assert run(["sha256sum", path(box, f"{DATA}/{CANARY}.bin")]).stdout.split()[0] == digest
        if FULL or point in QUICK_EVERYDAY:
            ok(boots.boot(box, disks), changed=False)
        converged = True
    finally:
        record(f"{count} disk(s), everyday boot: converged, nothing lost / injection points", converged)

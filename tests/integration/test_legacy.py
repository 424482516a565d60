"""A legacy data filesystem (labelled lightwhale-data, not btrfs: the ext4 of Lightwhale 2.x) on loop devices.

Every run lists its loop disks and uses a sandbox root. The filesystem is made with the real mkfs and filled with
files before the first run; afterwards the files are compared by SHA-256 (mount itself writes to the filesystem,
so the device's bytes are not compared), the mounts with findmnt and /proc/self/mountinfo, swap with /proc/swaps.
Swap is global even in the private mount namespace: the kit's loop teardown swaps off every partition of the
test's disks, and each test swaps off what it saw activated.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

import pytest

from lwkit import blkid_probe
from lwkit.boot import findmnt, module_runs, status_of
from lwkit.boot import ok as boot_ok
from lwkit.overlay import mount_table
from lwkit.sysutil import read_swaps, run

pytestmark = [pytest.mark.needs_module("lw_datafs"), pytest.mark.needs_module("lw_overlay")]

FILES = {"hello.txt": b"written by Lightwhale 2.x\n", "lightwhale-state/docker/blob": os.urandom(65536),
         "deep/a/b/c.bin": os.urandom(4096)}


# ------------------------------------------------------------------------------------------ helpers

def ok(res, changed=None):
    assert res.rc == 0 and not res.failed, res.explain()
    if changed is not None:
        assert res.changed is changed, f"expected changed={changed}\n" + res.explain()
    return res


def fill(device, fstype, files=None):
    """Mount C(device) on a temporary directory, write C(files) (default FILES, minus the state dir's when
    given None), unmount; return their SHA-256 by relative path."""
    files = FILES if files is None else files
    where = tempfile.mkdtemp(prefix="legacy-fill-")
    run(["mount", "-t", fstype, device, where])
    try:
        for rel, data in files.items():
            path = os.path.join(where, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
    finally:
        run(["umount", where])
        os.rmdir(where)
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def hashes(base, rels):
    out = {}
    for rel in rels:
        with open(os.path.join(base, rel), "rb") as fh:
            out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def mkfs(device, fstype="ext4", label="lightwhale-data"):
    # (xfs cannot carry the label: its labels have at most 12 characters.)
    run([f"mkfs.{fstype}", "-q", "-F", "-L", label, device])


def partitioned(loopdev, size="512M"):
    """A disk as Lightwhale 2.x may have left it: GPT, a swap area labelled lightwhale-swap, then the ext4 labelled
    lightwhale-data (partitions named otherwise, so only the labels tell)."""
    disk = loopdev(size, name="legacy-gpt")
    run(["sfdisk", "--quiet", disk.path], input="label: gpt\nsize=64MiB, type=S, name=swap\ntype=L, name=data\n")
    disk.rescan()
    run(["mkswap", "-L", "lightwhale-swap", disk.part(1)])
    mkfs(disk.part(2))
    return disk


def swapoff(*paths):
    active = read_swaps()
    for path in paths:
        if path in active or os.path.realpath(path) in active:
            run(["swapoff", path], check=False)


@pytest.fixture
def datafs(ansible, sandbox_root):
    def call(devices, state="mounted", check=False, diff=False, **options):
        args = dict(devices=[str(d) for d in devices], state=state, root=sandbox_root, kernel_cmdline="quiet")
        args.update(options)
        return ansible.run_module("lw_datafs", args, check=check, diff=diff)

    return call


@pytest.fixture
def paths(sandbox_root):
    real = os.path.realpath(sandbox_root)
    data = os.path.join(real, "mnt/lightwhale-data")
    return dict(root=real, data=data, state=os.path.join(data, "lightwhale-state"))


def tree_of(root):
    found = []
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            found.append(os.path.relpath(os.path.join(base, name), root))
    return sorted(found)


# ------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("fstype", ["ext4", pytest.param("ext2", marks=pytest.mark.slow)])
def test_whole_disk_legacy_is_mounted_as_it_is_then_nothing_changes(datafs, loopdev, paths, fstype):
    disk = loopdev("512M", name="legacy-whole")
    mkfs(disk.path, fstype)
    files = {"hello.txt": FILES["hello.txt"], "deep/a/b/c.bin": FILES["deep/a/b/c.bin"]}
    before = fill(disk.path, fstype, files)
    uuid = blkid_probe(disk.path)["UUID"]

    check = ok(datafs([disk], check=True), changed=True)
    assert not os.path.exists(paths["data"]) or not os.listdir(paths["data"])
    assert findmnt(paths["data"]) is None

    first = ok(datafs([disk]), changed=True)
    assert first["mode"] == "persistent" and first["legacy"] is True and first["fstype"] == fstype
    assert first["devices"] == [disk.path] and first["uuid"] == uuid and first["label"] == "lightwhale-data"
    assert first["subvolumes"] == [] and first["data_profile"] is None
    assert check["mode"] == first["mode"] and check["legacy"] is True
    assert [m["target"] for m in check["mounts"]] == [m["target"] for m in first["mounts"]] == [paths["data"]]
    mount = findmnt(paths["data"])
    assert mount["fstype"] == fstype and mount["source"] == disk.path and mount["fsroot"] == "/", mount
    # The state directory is a plain directory on it, root 0755, not a mount.
    st = os.lstat(paths["state"])
    assert oct(st.st_mode & 0o7777) == "0o755" and st.st_uid == 0
    assert findmnt(paths["state"]) is None
    assert hashes(paths["data"], files) == before
    assert any("no subvolumes" in w and "no snapshots" in w for w in first.get("warnings", [])), first.explain()
    # Never formatted: the same filesystem, same uuid and label.
    assert blkid_probe(disk.path)["TYPE"] == fstype and blkid_probe(disk.path)["UUID"] == uuid

    again = ok(datafs([disk]), changed=False)
    assert again["mode"] == "persistent" and again["legacy"] is True and again["actions"] == []
    ok(datafs([disk], check=True), changed=False)

    # state=present creates nothing on a legacy host.
    present = ok(datafs([disk], state="present"), changed=False)
    assert present["legacy"] is True and present["actions"] == []

    down = ok(datafs([disk], state="unmounted"), changed=True)
    assert any("unmount" in a for a in down["actions"])
    assert findmnt(paths["data"]) is None
    ok(datafs([disk], state="unmounted"), changed=False)
    assert blkid_probe(disk.path)["UUID"] == uuid
    where = tempfile.mkdtemp()
    run(["mount", "-o", "ro", disk.path, where])
    try:
        assert hashes(where, files) == before and os.path.isdir(os.path.join(where, "lightwhale-state"))
    finally:
        run(["umount", where])
        os.rmdir(where)


def test_legacy_on_a_partition_with_its_swap(datafs, loopdev, paths):
    disk = partitioned(loopdev)
    before = fill(disk.part(2), "ext4")
    try:
        check = ok(datafs([disk], check=True), changed=True)
        assert check["swap_devices"] == [disk.part(1)]
        assert disk.part(1) not in read_swaps()

        first = ok(datafs([disk]), changed=True)
        assert first["legacy"] is True and first["devices"] == [disk.part(2)]
        assert first["swap_devices"] == [disk.part(1)] and disk.part(1) in read_swaps()
        assert first["magic_partitions"] == {"swap": [], "data": []}
        assert hashes(paths["data"], FILES) == before
        assert findmnt(paths["data"])["source"] == disk.part(2)
        ok(datafs([disk]), changed=False)

        # swap=false turns it off, noswap on the command line too.
        off = ok(datafs([disk], swap=False), changed=True)
        assert disk.part(1) not in read_swaps() and off["swap_devices"] == []
        ok(datafs([disk], swap=False), changed=False)
        ok(datafs([disk], kernel_cmdline="quiet noswap"), changed=False)
        ok(datafs([disk]), changed=True)
        assert disk.part(1) in read_swaps()

        down = ok(datafs([disk], state="unmounted"), changed=True)
        assert disk.part(1) not in read_swaps() and findmnt(paths["data"]) is None, down.explain()
        ok(datafs([disk], state="unmounted"), changed=False)
        # Never formatted: both signatures as they were.
        assert blkid_probe(disk.part(1))["LABEL"] == "lightwhale-swap"
        assert blkid_probe(disk.part(2))["TYPE"] == "ext4"
    finally:
        swapoff(disk.part(1))


def test_legacy_and_btrfs_both_labelled_is_the_several_filesystems_failure(datafs, loopdev, paths):
    old = loopdev("512M", name="legacy-ext4")
    new = loopdev("512M", name="legacy-btrfs")
    mkfs(old.path)
    run(["mkfs.btrfs", "-q", "-f", "-L", "lightwhale-data", new.path])
    res = datafs([old, new], state="present")
    assert res.failed and "several filesystems are labelled lightwhale-data" in res.msg, res.explain()
    assert old.path in res.msg and new.path in res.msg
    assert findmnt(paths["data"]) is None
    # With state=mounted: the tmpfs so the host boots, the failure said.
    mounted = datafs([old, new])
    assert mounted.failed and mounted["mode"] == "volatile" and "several filesystems" in mounted["failure"]
    assert findmnt(paths["data"])["fstype"] == "tmpfs"


def test_a_foreign_mount_is_not_taken_for_the_legacy_filesystem(datafs, loopdev, paths):
    """state=unmounted leaves an ext4 alone that is not the labelled one's device; state=mounted refuses it."""
    ours = loopdev("256M", name="legacy-ours")
    other = loopdev("256M", name="legacy-other")
    mkfs(ours.path)
    mkfs(other.path, label="something-else")
    os.makedirs(paths["data"], exist_ok=True)
    run(["mount", other.path, paths["data"]])
    try:
        res = datafs([ours])
        assert res.failed and "not the legacy data filesystem" in res.msg, res.explain()
        assert res.changed is False
        down = datafs([ours], state="unmounted")
        assert down.failed and "left alone" in down.msg, down.explain()
        assert findmnt(paths["data"])["source"] == other.path
    finally:
        run(["umount", paths["data"]], check=False)


def test_snapshots_are_refused_on_a_legacy_host(ansible, datafs, loopdev, paths, sandbox_root):
    disk = loopdev("256M", name="legacy-snap")
    mkfs(disk.path)
    ok(datafs([disk], boot_snapshots=2, kernel_cmdline="quiet lightwhale.rollback"), changed=True)
    res = ansible.run_module("lw_snapshot", dict(root=sandbox_root, name="before-change"))
    assert res.failed and "legacy" in res.msg and "snapshots" in res.msg, res.explain()
    res = ansible.run_module("lw_snapshot", dict(root=sandbox_root, name="before-change", state="rolled_back"))
    assert res.failed and "legacy" in res.msg, res.explain()
    info = ok(ansible.run_module("persistence_info", dict(root=sandbox_root, devices=[disk.path])), changed=False)
    assert info["mode"] == "persistent" and info["filesystem"]["legacy"] is True, info.explain()
    assert info["filesystem"]["fstype"] == "ext4" and info["filesystem"]["members"] == [disk.path]
    assert "legacy ext4" in info["summary"]


def test_boot_role_on_a_legacy_disk_with_overlays(boot, box, loopdev):
    disk = partitioned(loopdev)
    before = fill(disk.part(2), "ext4")
    data = os.path.join(box, "mnt/lightwhale-data")
    try:
        # Check mode first: nothing mounted, no status file, no swap, the files as they were.
        boot_ok(boot.boot(box, [disk], check=True), changed=True)
        assert findmnt(data) is None and not os.path.exists(os.path.join(box, "run/lightwhale/persistence.json"))
        assert disk.part(1) not in read_swaps() and not [line for line in mount_table(box) if line.fstype == "overlay"]
        boot_ok(boot.boot(box, [disk]), changed=True)
        status = status_of(box)
        assert status["mode"] == "persistent" and status["legacy"] is True and status["fstype"] == "ext4"
        assert status["summary"].startswith(
            f"lightwhale-persistence: persistent legacy ext4 on {disk.part(2)}; swap {disk.part(1)}; overlays /etc /var /home")
        assert any("no subvolumes" in w for w in status["warnings"])
        overlays = [line.target[len(box):] for line in mount_table(box) if line.fstype == "overlay"]
        assert overlays == ["/etc", "/var", "/home"]
        # Upper layers on the legacy filesystem's state directory; a file written through /etc lands there.
        with open(os.path.join(box, "etc/legacy-test"), "w") as fh:
            fh.write("kept\n")
        assert os.path.isfile(os.path.join(data, "lightwhale-state/overlay/upper/etc/legacy-test"))
        assert hashes(data, FILES) == before
        with open(os.path.join(box, "etc/docker/daemon.json")) as fh:
            assert json.load(fh)["data-root"] == "/mnt/lightwhale-data/lightwhale-state/docker"
        again = boot_ok(boot.boot(box, [disk]), changed=False)
        assert module_runs(again) == {"lw_datafs": 1, "lw_overlay": 1}
    finally:
        for target in ("home", "var", "etc"):
            run(["umount", os.path.join(box, target)], check=False)
        run(["umount", "-R", data], check=False)
        swapoff(disk.part(1))

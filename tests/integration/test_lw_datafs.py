"""lightwhale.persistence.lw_datafs through real `ansible` runs on loop devices.

Magic disks are laid out by the real magic_disk module first (state=partitioned). Every run lists its loop
disks in `devices` and uses a sandbox root, so nothing outside the test's own loops and directories is
touched. Outcomes are checked with the plain tools, not with the module's own words: `btrfs filesystem df`
(profiles), `btrfs subvolume list`, `blkid -p` (labels), `findmnt` (mounts), /proc/swaps, and content
hashes of the whole images ("nothing written").

Swap is global even in the private mount namespace: the kit's loop teardown swaps off every partition of
the test's disks before detaching them, also when the test fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import threading

import pytest
import yaml

from lwkit import blkid_probe, changed_disks, snapshot
from lwkit.boot import REPO_ROOT, findmnt, fs_df, status_of
from lwkit.sysutil import read_mountinfo, read_swaps, run

pytestmark = [pytest.mark.needs_module("lw_datafs"), pytest.mark.needs_module("magic_disk")]

SUBVOLS = ["@lightwhale-data", "@lightwhale-state", "@lightwhale-state-snapshots"]
PROFILES = {1: ("single", "dup"), 2: ("raid1", "raid1"), 3: ("raid1", "raid1c3"), 4: ("raid1", "raid1c4")}
CRASH_ENV = "LIGHTWHALE_PERSISTENCE_CRASH_AT"


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture
def datafs(ansible, sandbox_root):
    """datafs(devices, state='mounted', check=False, diff=False, env=None, **options) -> RunResult."""

    def call(devices, state="mounted", check=False, diff=False, env=None, **options):
        args = dict(devices=[str(d) for d in devices], state=state, root=sandbox_root, kernel_cmdline="quiet")
        args.update(options)
        return ansible.run_module("lw_datafs", args, check=check, diff=diff, env=env)

    return call


@pytest.fixture
def magic_disks(ansible, sandbox_root, magic_disk):
    """magic_disks(n, size='512M', swap=True) -> [LoopDisk]: n disks with the header, laid out by magic_disk."""

    def make(count, size="512M", swap=True):
        disks = [magic_disk(size, name=f"magic{i}") for i in range(count)]
        res = ansible.run_module("magic_disk", dict(devices=[d.path for d in disks], state="partitioned",
                                                    root=sandbox_root, kernel_cmdline="quiet", swap=swap))
        assert res.rc == 0 and not res.failed, res.explain()
        return disks

    return make


@pytest.fixture
def paths(sandbox_root):
    real = os.path.realpath(sandbox_root)
    data = os.path.join(real, "mnt/lightwhale-data")
    return dict(root=real, data=data, state=os.path.join(data, "lightwhale-state"),
                run=os.path.join(real, "run/lightwhale"))


# ------------------------------------------------------------------------------------------ helpers

def ok(res, changed=None):
    assert res.rc == 0 and not res.failed, res.explain()
    if changed is not None:
        assert res.changed is changed, f"expected changed={changed}\n" + res.explain()
    return res


def failed(res, *needles):
    assert res.rc != 0 and res.failed, "expected a failure\n" + res.explain()
    text = (res.msg + " " + str(res.get("failure", ""))).lower()
    for needle in needles:
        assert needle.lower() in text, f"failure does not say {needle!r}\n" + res.explain()
    return res


def killed(res):
    """The module was SIGKILLed at the crash point: Ansible reports a failed task."""
    assert res.rc != 0, "the run was not interrupted\n" + res.explain()
    return res


def subvolumes(mountpoint):
    out = run(["btrfs", "subvolume", "list", mountpoint]).stdout
    return sorted(line.split(" path ", 1)[1] for line in out.splitlines() if " path " in line)


def our_swaps(disks):
    names = {os.path.basename(d.path) for d in disks}
    return sorted(s for s in read_swaps() if any(os.path.basename(s).startswith(n + "p") for n in names))


def mounts_under(root):
    return [m for m in read_mountinfo() if (m.mount_point + "/").startswith(root.rstrip("/") + "/")]


def assert_persistent(res, disks, paths, degraded=False):
    """Everything the plain tools say about a mounted data filesystem on `disks` (partition 2 of each)."""
    count = len(disks)
    data_profile, metadata_profile = PROFILES[count]
    uuid = res["uuid"]
    assert uuid and res["label"] == "lightwhale-data", res.explain()
    assert res["mode"] == ("degraded" if degraded else "persistent"), res.explain()
    for disk in disks:
        probe = blkid_probe(disk.part(2))
        assert probe.get("TYPE") == "btrfs" and probe.get("LABEL") == "lightwhale-data", probe
        assert probe.get("UUID") == uuid, probe
    data = findmnt(paths["data"])
    state = findmnt(paths["state"])
    assert data and data["fstype"] == "btrfs" and data["fsroot"] == "/@lightwhale-data", data
    assert state and state["fstype"] == "btrfs" and state["fsroot"] == "/@lightwhale-state", state
    df = fs_df(paths["data"])
    assert df["Data"] == {data_profile} and df["Metadata"] == {metadata_profile}, df
    assert subvolumes(paths["data"]) == SUBVOLS
    assert (res["data_profile"], res["metadata_profile"]) == (data_profile, metadata_profile), res.explain()
    assert res["subvolumes"] == SUBVOLS
    assert sorted(res["devices"]) == sorted(d.part(2) for d in disks)
    mode = stat.S_IMODE(os.stat(paths["state"]).st_mode)
    assert mode == 0o755, oct(mode)


def step_names(res):
    return [a.split(": ", 1)[-1] for a in res.get("actions", [])]


def crash(point):
    return {CRASH_ENV: point}


# ------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_every_state_twice_on_n_magic_disks(datafs, magic_disks, paths, count):
    """present, mounted, unmounted: each changes then does not; profiles, subvolumes, labels, mounts, swap."""
    disks = magic_disks(count)
    res = ok(datafs(disks, "present"), changed=True)
    assert res["created"] is True and res["mode"] == "persistent"
    assert (res["data_profile"], res["metadata_profile"]) == PROFILES[count]
    assert res["subvolumes"] == SUBVOLS and res["mounts"] == []
    uuid = res["uuid"]
    for disk in disks:
        probe = blkid_probe(disk.part(1))
        assert probe.get("TYPE") == "swap" and probe.get("LABEL") == "lightwhale-swap", probe
    assert mounts_under(paths["root"]) == [], "present mounted something"
    assert not os.path.isdir(paths["run"]) or not [p for p in os.listdir(paths["run"]) if p.startswith("datafs")]

    res = ok(datafs(disks, "present"), changed=False)
    assert res["uuid"] == uuid and res["created"] is False and res["actions"] == []

    res = ok(datafs(disks, "mounted"), changed=True)
    assert_persistent(res, disks, paths)
    assert res["uuid"] == uuid
    assert our_swaps(disks) == sorted(d.part(1) for d in disks)
    assert sorted(res["swap_devices"]) == sorted(d.part(1) for d in disks)
    assert not any("mkfs" in a or "label" in a for a in res["actions"]), res["actions"]

    res = ok(datafs(disks, "mounted"), changed=False)
    assert_persistent(res, disks, paths)

    res = ok(datafs(disks, "unmounted"), changed=True)
    assert findmnt(paths["data"]) is None and findmnt(paths["state"]) is None
    assert our_swaps(disks) == [] and res["mounts"] == [] and res["swap_devices"] == []
    ok(datafs(disks, "unmounted"), changed=False)


def test_check_mode_writes_nothing_and_predicts_the_real_run(datafs, magic_disks, paths):
    disks = magic_disks(2)
    before = snapshot(disks)
    check = ok(datafs(disks, "mounted", check=True, diff=True), changed=True)
    assert changed_disks(before, disks) == [], "check mode wrote to a disk"
    assert mounts_under(paths["root"]) == [] and our_swaps(disks) == []
    assert check["created"] is True and check["uuid"] is None and check["mode"] == "persistent"
    assert (check["data_profile"], check["metadata_profile"]) == PROFILES[2]
    assert check["subvolumes"] == SUBVOLS
    assert sorted(m["target"] for m in check["mounts"]) == sorted([paths["data"], paths["state"]])
    assert "data filesystem: none yet" in check["diff"]["before"]
    assert "new; data raid1, metadata raid1" in check["diff"]["after"]

    real = ok(datafs(disks, "mounted", diff=True), changed=True)
    assert real["actions"] == check["actions"], "check mode predicted other actions than the real run made"
    assert real["swap_devices"] == check["swap_devices"]
    assert [(m["target"], m["fstype"], m["root"]) for m in real["mounts"]] == \
        [(m["target"], m["fstype"], m["root"]) for m in check["mounts"]]
    assert real["uuid"] in real["diff"]["after"]

    # On the existing, mounted filesystem: nothing to predict; unmounted predicted without unmounting.
    ok(datafs(disks, "mounted", check=True), changed=False)
    before = snapshot(disks)
    check = ok(datafs(disks, "unmounted", check=True), changed=True)
    assert findmnt(paths["data"]) and findmnt(paths["state"]) and our_swaps(disks), "check mode unmounted something"
    real = ok(datafs(disks, "unmounted"), changed=True)
    assert real["actions"] == check["actions"]
    # And mounting an existing filesystem again, predicted then done.
    check = ok(datafs(disks, "mounted", check=True), changed=True)
    assert mounts_under(paths["root"]) == []
    real = ok(datafs(disks, "mounted"), changed=True)
    assert real["actions"] == check["actions"] and real["uuid"] == check["uuid"]
    assert_persistent(real, disks, paths)


def _forget_and_detach_partitions(disk):
    """What a reboot or an unplugged disk does to the kernel's view: no partitions, no btrfs registration."""
    for node in disk.partition_nodes():
        run(["btrfs", "device", "scan", "--forget", node], check=False)
    run(["partx", "-d", disk.path])
    assert disk.partition_nodes() == []


def test_reboot_keeps_files_and_formats_nothing(datafs, magic_disks, paths):
    disks = magic_disks(2)
    first = ok(datafs(disks), changed=True)
    with open(os.path.join(paths["data"], "hello.txt"), "w") as handle:
        handle.write("survives")
    os.makedirs(os.path.join(paths["state"], "docker"))
    with open(os.path.join(paths["state"], "docker", "state.txt"), "w") as handle:
        handle.write("state survives")
    ok(datafs(disks, "unmounted"), changed=True)
    for disk in disks:
        _forget_and_detach_partitions(disk)

    again = ok(datafs(disks), changed=True)
    assert again["uuid"] == first["uuid"] and again["created"] is False
    assert not any("mkfs" in a or "label" in a or "mkswap" in a for a in again["actions"]), again["actions"]
    with open(os.path.join(paths["data"], "hello.txt")) as handle:
        assert handle.read() == "survives"
    with open(os.path.join(paths["state"], "docker", "state.txt")) as handle:
        assert handle.read() == "state survives"
    assert_persistent(again, disks, paths)


CRASH_POINTS = [
    "before:mkswap", "after:mkswap@2", "before:mkfs", "after:mkfs", "after:mount-top", "after:subvolume@1",
    "after:subvolume@2", "after:subvolume@3", "after:umount-top", "before:label", "after:label",
    "after:mount-data", "after:mount-state",
]
NAMED_IN_THE_ISSUE = {"before:mkfs", "after:mkfs", "after:subvolume@2", "before:label"}


@pytest.mark.parametrize("point", [
    pytest.param(p, marks=() if p in NAMED_IN_THE_ISSUE else pytest.mark.slow) for p in CRASH_POINTS])
def test_interrupted_creation_converges(datafs, magic_disks, paths, point):
    """SIGKILL at a step boundary of the first run; the next run reaches the same layout as an uninterrupted one."""
    disks = magic_disks(2)
    killed(datafs(disks, env=crash(point)))
    labelled = [d for d in disks if blkid_probe(d.part(2)).get("LABEL") == "lightwhale-data"]
    committed = CRASH_POINTS.index(point) >= CRASH_POINTS.index("after:label")
    # The label is the commit point: before it no partition carries it, after it all do.
    assert labelled == (disks if committed else []), [blkid_probe(d.part(2)) for d in disks]
    res = ok(datafs(disks), changed=True)
    assert_persistent(res, disks, paths)
    assert res["created"] is (not committed), res["actions"]
    if point in ("after:mount-top", "after:subvolume@1", "after:subvolume@2", "after:subvolume@3"):
        # The killed run left its temporary top-level mount in this namespace: undone first.
        assert "undo what an interrupted creation left" in res["actions"][0], res["actions"]
    assert not mounts_under(paths["run"]), "a temporary mount survived"
    ok(datafs(disks), changed=False)


def test_raid1_with_a_member_missing_mounts_degraded(datafs, magic_disks, paths):
    first, second = magic_disks(2)
    created = ok(datafs([first, second]), changed=True)
    payload = os.urandom(256 * 1024)
    with open(os.path.join(paths["data"], "payload.bin"), "wb") as handle:
        handle.write(payload)
    ok(datafs([first, second], "unmounted"), changed=True)
    _forget_and_detach_partitions(second)

    res = ok(datafs([first]), changed=True)
    assert res["mode"] == "degraded" and res["missing"] == ["devid 2"], res.explain()
    assert res["uuid"] == created["uuid"] and res["devices"] == [first.part(2)]
    assert any("devid 2" in w and "degraded" in w for w in res.get("warnings", [])), res.explain()
    assert "degraded" in findmnt(paths["data"])["options"].split(",")
    with open(os.path.join(paths["data"], "payload.bin"), "rb") as handle:
        assert handle.read() == payload
    again = ok(datafs([first]), changed=False)
    assert again["mode"] == "degraded" and again["missing"] == ["devid 2"]

    # The member comes back: after a remount the filesystem is whole again.
    ok(datafs([first], "unmounted"), changed=True)
    run(["partx", "-a", second.path])
    back = ok(datafs([first, second]), changed=True)
    assert back["mode"] == "persistent" and back["missing"] == [], back.explain()
    assert "degraded" not in findmnt(paths["data"])["options"].split(",")


def test_damaged_superblock_boots_volatile_and_writes_nothing(datafs, magic_disks, paths):
    (disk,) = magic_disks(1)
    ok(datafs([disk], "present"), changed=True)
    # Damage the primary superblock (its root tree pointer): the checksum no longer matches.
    node = disk.part(2)
    fd = os.open(node, os.O_RDWR)
    try:
        os.pwrite(fd, b"\xff" * 8, 65536 + 80)
        os.fsync(fd)
    finally:
        os.close(fd)
    disk.flush()
    before = snapshot([disk])

    res = failed(datafs([disk]), "checksum", node)
    assert res["mode"] == "volatile" and "checksum" in res["failure"], res.explain()
    assert res.changed and any("tmpfs" in a for a in res["actions"])
    tmpfs = findmnt(paths["data"])
    assert tmpfs and tmpfs["fstype"] == "tmpfs", tmpfs
    assert stat.S_IMODE(os.stat(paths["data"]).st_mode) == 0o755
    assert os.path.isdir(paths["state"]) and stat.S_IMODE(os.stat(paths["state"]).st_mode) == 0o755
    assert changed_disks(before, [disk]) == [], "a write reached the damaged disk"

    again = failed(datafs([disk]), "checksum")
    assert again["mode"] == "volatile" and not again.changed, again.explain()
    failed(datafs([disk], "present"), "checksum")
    ok(datafs([disk], "unmounted"), changed=True)
    assert findmnt(paths["data"]) is None
    assert changed_disks(before, [disk]) == [], "a write reached the damaged disk"


def test_unmountable_filesystem_falls_back_to_tmpfs_and_fails(datafs, magic_disks, paths):
    """Found, superblock fine, but the kernel refuses it (here: the data subvolume is gone)."""
    (disk,) = magic_disks(1)
    created = ok(datafs([disk], "present"), changed=True)
    top = os.path.join(paths["root"], "top")
    os.makedirs(top)
    run(["mount", "-o", "subvolid=5", disk.part(2), top])
    try:
        run(["btrfs", "subvolume", "delete", os.path.join(top, "@lightwhale-data")])
    finally:
        run(["umount", top])
    res = failed(datafs([disk]), "tmpfs")
    assert res["mode"] == "volatile" and res["uuid"] == created["uuid"] and res["failure"], res.explain()
    assert findmnt(paths["data"])["fstype"] == "tmpfs" and os.path.isdir(paths["state"])
    # Next run: the tmpfs is there although the filesystem is: said so, nothing changed.
    again = failed(datafs([disk]), "tmpfs")
    assert again["mode"] == "volatile" and not again.changed and again["failure"], again.explain()


def returned_always(module):
    """The RETURN keys of MODULE documented as returned always."""
    with open(os.path.join(REPO_ROOT, "plugins", "modules", module + ".py"), encoding="utf-8") as fh:
        source = fh.read()
    doc = yaml.safe_load(source.split("RETURN = r\'\'\'", 1)[1].split("\'\'\'", 1)[0])
    return sorted(key for key, value in doc.items() if value.get("returned") == "always")


def test_a_failure_returns_every_key_documented_always(datafs, magic_disks, loopdev, paths):
    always = returned_always("lw_datafs")
    assert "data_profile" in always and "subvolumes" in always, always
    # Refused before it looked at the host: every key there, empty, and nothing written.
    refused = failed(datafs([], mount_options=["nodatacow"]), "nodatacow")
    assert not [key for key in always if key not in refused], refused.explain()
    assert refused["mode"] is None and refused["actions"] == [] and not refused.changed, refused.explain()
    # The data filesystem is mounted, then a second filesystem claims the label: the run fails, the mounted one
    # stays, and the result says what it is (members, profiles, subvolumes, swap), as a successful run would.
    (disk,) = magic_disks(1)
    mounted = ok(datafs([disk]), changed=True)
    claimant = loopdev("300M", name="claimant")
    run(["mkfs.btrfs", "-q", "-f", "-L", "lightwhale-data", claimant.path])
    res = failed(datafs([disk, claimant]), "several filesystems are labelled lightwhale-data")
    assert not [key for key in always if key not in res], res.explain()
    assert res["mode"] == "persistent" and res["uuid"] == mounted["uuid"], res.explain()
    for key in ("devices", "missing", "num_devices", "data_profile", "metadata_profile", "subvolumes", "swap_devices",
                "magic_partitions", "legacy", "fstype"):
        assert res[key] == mounted[key], (key, res.explain())
    assert res["created"] is False and res["state_change"] is None and not res.changed, res.explain()
    # Nothing mounted yet: the tmpfs, volatile, and empty facts.
    ok(datafs([disk], state="unmounted"), changed=True)
    volatile = failed(datafs([disk, claimant]), "several filesystems are labelled lightwhale-data")
    assert not [key for key in always if key not in volatile], volatile.explain()
    assert volatile["mode"] == "volatile" and volatile["data_profile"] is None and volatile["subvolumes"] == []
    assert volatile["num_devices"] == 0 and volatile["swap_devices"] == [], volatile.explain()
    ok(datafs([disk], state="unmounted"), changed=True)


def _spawn(ansible, args, tag):
    """Start `ansible -m lw_datafs` without waiting (run_module waits): (Popen, results file)."""
    results = os.path.join(ansible.workdir, f"concurrent-{tag}-{os.getpid()}-{threading.get_ident()}.jsonl")
    cmd = [ansible.ansible, "localhost", "-c", "local", "-i", "localhost,",
           "-e", f"ansible_python_interpreter={ansible.python}",
           "-m", "lightwhale.persistence.lw_datafs", "-a", json.dumps(args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ansible.workdir,
                            env=ansible.env({"LWKIT_RESULTS_FILE": results}))
    return proc, results


def _collect(proc, results):
    out, err = proc.communicate(timeout=600)
    records = []
    if os.path.exists(results):
        with open(results) as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    tasks = [r for r in records if r.get("event") in ("ok", "failed")]
    result = tasks[-1]["result"] if tasks else {}
    return proc.returncode, result, out + err


def test_two_runs_at_once_format_once(ansible, magic_disks, sandbox_root, paths):
    disks = magic_disks(2)
    args = dict(devices=[d.path for d in disks], state="mounted", root=sandbox_root, kernel_cmdline="quiet")
    started = [_spawn(ansible, args, tag) for tag in ("a", "b")]
    outcomes = [_collect(proc, results) for proc, results in started]
    for rc, result, output in outcomes:
        assert rc == 0 and not result.get("failed"), output
    created = [result for _rc, result, _out in outcomes if result.get("created")]
    assert len(created) == 1, [r.get("actions") for _rc, r, _o in outcomes]
    mkfs = [a for _rc, r, _o in outcomes for a in r.get("actions", []) if "create a btrfs" in a]
    assert len(mkfs) == 1, mkfs
    uuids = {result["uuid"] for _rc, result, _out in outcomes}
    assert len(uuids) == 1
    assert {blkid_probe(d.part(2)).get("UUID") for d in disks} == uuids
    assert [m.fstype for m in mounts_under(paths["data"])].count("btrfs") == 2  # data + state, once each


def test_a_held_lock_makes_a_run_wait_then_give_up(datafs, magic_disks, paths):
    disks = magic_disks(1)
    before = snapshot(disks)
    os.makedirs(paths["run"], exist_ok=True)
    fd = os.open(os.path.join(paths["run"], "persistence.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        res = failed(datafs(disks, timeout=2), "persistence.lock")
        assert "tmpfs" not in res.msg, "a lock timeout must not fall back (the other run may be formatting)"
    finally:
        os.close(fd)
    assert changed_disks(before, disks) == [] and mounts_under(paths["root"]) == []
    ok(datafs(disks), changed=True)


def test_swap_on_off_and_noswap(datafs, magic_disks, paths):
    disks = magic_disks(2)
    res = ok(datafs(disks, kernel_cmdline="ro quiet noswap"), changed=True)
    assert res["swap"] is False and res["swap_devices"] == [] and our_swaps(disks) == []
    for disk in disks:
        assert "TYPE" not in blkid_probe(disk.part(1)), "noswap: the swap partitions stay blank"
    ok(datafs(disks, kernel_cmdline="ro quiet noswap"), changed=False)

    res = ok(datafs(disks), changed=True)
    assert [a.split(": ", 1)[1] for a in res["actions"]] == [
        "format as swap, label lightwhale-swap", "format as swap, label lightwhale-swap",
        "activate swap", "activate swap"], res["actions"]
    assert our_swaps(disks) == sorted(d.part(1) for d in disks) == sorted(res["swap_devices"])
    ok(datafs(disks), changed=False)

    res = ok(datafs(disks, swap=False), changed=True)
    assert our_swaps(disks) == [] and res["swap_devices"] == []
    ok(datafs(disks, swap=False), changed=False)
    ok(datafs(disks, kernel_cmdline="noswap"), changed=False)
    assert our_swaps(disks) == []

    ok(datafs(disks), changed=True)
    assert our_swaps(disks) == sorted(d.part(1) for d in disks)
    res = ok(datafs(disks, "unmounted"), changed=True)
    assert sum("deactivate swap" in a for a in res["actions"]) == 2
    assert our_swaps(disks) == []


def test_no_magic_disks_mounts_a_volatile_tmpfs(datafs, loopdev, decoy, paths):
    blank = loopdev("64M", name="blank")
    other, _what = decoy("btrfs_other_label")
    disks = [blank, other]
    before = snapshot(disks)
    check = ok(datafs(disks, check=True), changed=True)
    assert mounts_under(paths["root"]) == []
    res = ok(datafs(disks), changed=True)
    assert res["actions"] == check["actions"] and res["mode"] == check["mode"] == "volatile"
    assert res["uuid"] is None and res["label"] is None and res["devices"] == []
    tmpfs = findmnt(paths["data"])
    assert tmpfs["fstype"] == "tmpfs", tmpfs
    for path in (paths["data"], paths["state"]):
        info = os.stat(path)
        assert stat.S_IMODE(info.st_mode) == 0o755 and info.st_uid == 0 and info.st_gid == 0, path
    assert findmnt(paths["state"]) is None, "the state directory lives inside the tmpfs"
    ok(datafs(disks), changed=False)
    ok(datafs(disks, "unmounted"), changed=True)
    assert findmnt(paths["data"]) is None
    ok(datafs(disks, "unmounted"), changed=False)
    assert changed_disks(before, disks) == []


def test_magic_data_partition_added_later_holding_data_is_reported_and_untouched(datafs, magic_disks, paths):
    (first,) = magic_disks(1)
    created = ok(datafs([first]), changed=True)
    (later,) = magic_disks(1)
    # Laid out, header gone, and then someone's filesystem on its data partition: not blank, so never joined.
    run(["mkfs.ext4", "-q", "-L", "someones", later.part(2)])
    before = snapshot([later])
    res = ok(datafs([first, later]), changed=False)
    assert res["uuid"] == created["uuid"] and res["devices"] == [first.part(2)]
    assert any(later.part(2) in w and "not part of the data filesystem" in w for w in res.get("warnings", [])), \
        res.explain()
    assert changed_disks(before, [later]) == []
    ok(datafs([first, later], "present"), changed=False)
    assert changed_disks(before, [later]) == []


def test_something_else_mounted_is_refused_before_any_write(datafs, magic_disks, paths):
    disks = magic_disks(1)
    os.makedirs(paths["data"])
    run(["mount", "-t", "tmpfs", "-o", "mode=0700", "other", paths["data"]])
    before = snapshot(disks)
    res = failed(datafs(disks), paths["data"], "mounted there")
    assert not res.changed and res.get("actions", []) == []
    assert changed_disks(before, disks) == [], "refused, yet something was written"
    assert findmnt(paths["data"])["source"] == "other"
    run(["umount", paths["data"]])

    # The filesystem mounted by hand with the wrong subvolume at the data mount point: refused too.
    ok(datafs(disks, "present"), changed=True)
    run(["mount", "-o", "subvol=@lightwhale-state", disks[0].part(2), paths["data"]])
    res = failed(datafs(disks), "@lightwhale-data")
    assert not res.changed


def test_a_magic_partition_with_foreign_content_is_never_formatted(datafs, magic_disks, decoy, paths):
    (disk,) = magic_disks(1)
    run(["mkfs.ext4", "-q", "-F", "-L", "someone-else", disk.part(2)])
    other, _what = decoy("ext4")
    before = snapshot([disk, other])
    res = failed(datafs([disk, other]), disk.part(2), "ext4")
    assert res["refused"][0]["device"] == disk.part(2), res.explain()
    assert res["mode"] == "volatile" and findmnt(paths["data"])["fstype"] == "tmpfs"
    assert changed_disks(before, [disk, other]) == []
    failed(datafs([disk, other], "present"), "ext4")
    assert changed_disks(before, [disk, other]) == []


@pytest.mark.parametrize("options, needle", [
    (dict(mount_options=["subvol=/x"]), "mount_options"),
    (dict(timeout=-1), "timeout"),
    (dict(state="formatted"), "state"),
])
def test_bad_options_are_refused(datafs, magic_disks, options, needle):
    disks = magic_disks(1)
    before = snapshot(disks)
    failed(datafs(disks, **options), needle)
    assert changed_disks(before, disks) == []


def test_a_partition_is_not_a_candidate(datafs, magic_disks):
    (disk,) = magic_disks(1)
    before = snapshot([disk])
    failed(datafs([disk.part(2)]), "partition")
    failed(datafs([disk], root="/nonexistent/root"), "nonexistent")
    assert changed_disks(before, [disk]) == []


def test_mount_options_are_applied_recorded_and_shown(datafs, magic_disks, paths):
    disks = magic_disks(1)
    wanted = ["noatime", "compress=zstd:3", "commit=60"]
    first = ok(datafs(disks, mount_options=wanted, record_status=True), changed=True)
    for target in (paths["data"], paths["state"]):
        options = findmnt(target)["options"].split(",")
        assert {"noatime", "compress=zstd:3", "commit=60"} <= set(options), options
    assert first["mount_options"] == wanted
    status = status_of(paths["root"])
    assert status["mount_options"] == wanted
    assert "(noatime,compress=zstd:3,commit=60)" in status["summary"], status["summary"]
    ok(datafs(disks, mount_options=wanted, record_status=True), changed=False)


@pytest.mark.parametrize("option, reason", [
    ("nodatacow", "turns off checksums"),
    ("compress=gzip", "the value must be zlib[:1-9], lzo, zstd[:1-15] or no"),
    ("commit=0", "the value must be seconds, 1 to 300"),
    ("noatime,nodatacow", "one option per item"),
    ("degraded", "added by the module"),
    ("user_xattr", "not one of the options safe to change at each boot"),
])
def test_a_refused_mount_option_is_named_and_nothing_is_written(datafs, magic_disks, paths, option, reason):
    disks = magic_disks(1)
    before = snapshot(disks)
    failed(datafs(disks, mount_options=["noatime", option], record_status=True), repr(option), reason)
    assert changed_disks(before, disks) == []
    # Refused before anything: no mount, no status file.
    assert findmnt(paths["data"]) is None and not os.path.exists(os.path.join(paths["run"], "persistence.json"))


def test_an_early_failure_leaves_a_mounted_data_filesystem_as_it_is(datafs, magic_disks, paths):
    """A state=mounted run that fails before the disks are surveyed (a listed path that does not exist) on a host
    whose data filesystem is mounted: reported persistent, with the filesystem, and left mounted."""
    disks = magic_disks(1)
    ok(datafs(disks), changed=True)
    res = failed(datafs(["/dev/lw-no-such-disk"]), "/dev/lw-no-such-disk")
    assert res["mode"] == "persistent" and "stays mounted" in res["msg"], res.explain()
    assert res["devices"] == [disks[0].part(2)] and res["uuid"] and res["label"] == "lightwhale-data", res.explain()
    assert findmnt(paths["data"])["fstype"] == "btrfs"


def test_unmounted_with_a_creation_pending_unmounts_the_tmpfs(datafs, magic_disks, paths):
    """Laid-out magic disks not yet formatted (a creation pending) and the volatile tmpfs mounted: state=unmounted
    unmounts the tmpfs and creates nothing (the read-back must not expect the filesystem a mounted run would make)."""
    disks = magic_disks(1)
    os.makedirs(paths["data"], exist_ok=True)
    run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", paths["data"]])
    res = ok(datafs(disks, "unmounted"), changed=True)
    assert findmnt(paths["data"]) is None
    assert res["created"] is False, res.explain()
    assert blkid_probe(disks[0].part(2)).get("TYPE") is None, "state=unmounted formatted the data partition"
    ok(datafs(disks, "unmounted"), changed=False)


def test_replace_tmpfs_swaps_an_empty_volatile_tmpfs_for_the_new_filesystem(ansible, datafs, magic_disk, paths,
                                                                            sandbox_root):
    """The boot's first-boot path: step 1 mounted the volatile tmpfs, steps 2-5 made the filesystem; step 6 with
    replace_tmpfs unmounts the empty tmpfs and mounts the subvolumes in one run. Without the option, or with anything
    in the tmpfs, it is refused as before and nothing changes."""
    disk = magic_disk("512M", name="magic0")
    volatile = ok(datafs([disk]), changed=True)
    assert volatile["mode"] == "volatile" and findmnt(paths["data"])["fstype"] == "tmpfs"
    laid_out = ansible.run_module("magic_disk", dict(devices=[disk.path], state="partitioned", root=sandbox_root,
                                                     kernel_cmdline="quiet"))
    assert laid_out.rc == 0 and laid_out.changed, laid_out.explain()
    ok(datafs([disk], "present"), changed=True)

    failed(datafs([disk]), "tmpfs")
    with open(os.path.join(paths["state"], "kept.txt"), "w", encoding="utf-8") as handle:
        handle.write("not empty")
    refused = failed(datafs([disk], replace_tmpfs=True), "tmpfs")
    assert not refused.changed and findmnt(paths["data"])["fstype"] == "tmpfs"
    os.unlink(os.path.join(paths["state"], "kept.txt"))

    check = ok(datafs([disk], replace_tmpfs=True, check=True), changed=True)
    assert findmnt(paths["data"])["fstype"] == "tmpfs", "check mode unmounted the tmpfs"
    res = ok(datafs([disk], replace_tmpfs=True), changed=True)
    assert res["actions"] == check["actions"] and step_names(res)[0].startswith("unmount the empty volatile tmpfs")
    assert_persistent(res, [disk], paths)
    assert [m["fstype"] for m in res["mounts"]] == ["btrfs", "btrfs"]
    ok(datafs([disk], replace_tmpfs=True), changed=False)

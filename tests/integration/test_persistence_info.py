"""lightwhale.persistence.persistence_info through real `ansible` runs on loop devices in a sandbox root.

Each test builds a host state with the other modules (magic_disk, lw_datafs, lw_overlay) - none yet, volatile,
persistent, degraded - then checks what persistence_info reports against the plain tools (btrfs, findmnt, statvfs),
and that it wrote nothing: the disks' contents, the whole mount table, our swap areas, the sandbox root's tree
(no lock file), and the kernel's partitions (it never runs partx) are the same before and after.
"""

from __future__ import annotations

import json
import os

import pytest

from lwkit.fleet import Sandbox, Snapshot, forget_and_detach
from lwkit.sysutil import run

pytestmark = [pytest.mark.needs_module("persistence_info"), pytest.mark.needs_module("lw_datafs")]

SUBVOLS = ["@lightwhale-data", "@lightwhale-state", "@lightwhale-state-snapshots"]


@pytest.fixture
def box(ansible, sandbox_root):
    return Sandbox(ansible, sandbox_root)


def read_only(box, disks, check=False, **args):
    """persistence_info, asserting it succeeded, changed nothing, and left everything as it was."""
    before = Snapshot(box.root, disks)
    res = box.info(disks, check=check, **args)
    after = Snapshot(box.root, disks)
    assert res.rc == 0 and not res.failed, res.explain()
    assert res.changed is False, res.explain()
    assert before == after, "persistence_info changed something: %r" % (before.diff(after),)
    return res


def by_device(res):
    return {item["device"]: item for item in res["disks"]}


def test_none_yet_a_magic_disk_an_empty_disk_and_decoys(box, loopdev, magic_disk, decoy):
    empty = loopdev("300M", name="empty")
    magic = magic_disk("300M")
    ext4, _what = decoy("ext4")
    gpt, _what = decoy("gpt_partitions")
    random_head, _what = decoy("random_first_mib")
    disks = [empty, magic, ext4, gpt, random_head]

    res = read_only(box, disks)
    assert res["mode"] == "none-yet" and res["filesystem"] is None, res.explain()
    assert res["magic_disks"] == [magic.path]
    assert [item["device"] for item in res["empty_disks"]] == [empty.path]
    assert res["empty_disks"][0]["size"] == 300 * 1024 * 1024
    seen = by_device(res)
    assert seen[magic.path]["empty"] is False and "magic header" in seen[magic.path]["reasons"][0]
    assert "ext4" in seen[ext4.path]["reasons"][0]
    assert "partition" in " ".join(seen[gpt.path]["reasons"]) or "gpt" in " ".join(seen[gpt.path]["reasons"])
    assert "non-zero" in seen[random_head.path]["reasons"][0]
    assert res["status"] is None and res["swap"] == dict(active=False, devices=[])
    assert [item["mounted"] for item in res["overlays"]] == [False, False, False]
    assert res["summary"].startswith("none-yet;") and "1 magic disk(s) waiting" in res["summary"]
    # /run/lightwhale was never made: no lock, no status file.
    assert not os.path.exists(os.path.join(box.root, "run", "lightwhale"))


def test_volatile_host(box, loopdev):
    empty = loopdev("300M", name="empty")
    box.ok("lw_datafs", devices=[empty], state="mounted")
    res = read_only(box, [empty])
    assert res["mode"] == "volatile" and res["filesystem"] is None, res.explain()
    assert [item["device"] for item in res["empty_disks"]] == [empty.path]
    assert res["problems"] == [], res.explain()


def test_persistent_raid1_host_with_overlays_and_status(box, magic_disk, loopdev):
    first, second = magic_disk("600M", name="m1"), magic_disk("600M", name="m2")
    spare = loopdev("300M", name="spare")
    created = box.boot([first, second])
    box.overlays()
    status = dict(version=1, mode="persistent", ok=True, uuid=created["uuid"])
    with open(os.path.join(box.root, "run", "lightwhale", "persistence.json"), "w", encoding="utf-8") as handle:
        json.dump(status, handle)
    data = os.path.join(os.path.realpath(box.root), "mnt", "lightwhale-data")
    run(["sync"])

    res = read_only(box, [first, second, spare])
    assert res["mode"] == "persistent", res.explain()
    fs = res["filesystem"]
    assert fs["uuid"] == created["uuid"] and fs["label"] == "lightwhale-data" and fs["mounted"] is True
    assert fs["members"] == [first.part(2), second.part(2)] and fs["missing"] == [] and fs["num_devices"] == 2
    assert (fs["data_profile"], fs["metadata_profile"]) == ("raid1", "raid1")
    assert fs["subvolumes"] == SUBVOLS
    info = os.statvfs(data)
    assert fs["size"] == info.f_blocks * info.f_frsize and 0 < fs["free"] <= fs["size"]
    assert fs["usage"]["device_size"] == part_size(first.part(2)) + part_size(second.part(2))
    assert fs["usage"]["data_ratio"] == 2.0 and fs["usage"]["device_missing"] == 0
    assert res["swap"] == dict(active=True, devices=[first.part(1), second.part(1)])
    assert [(item["path"], item["mounted"]) for item in res["overlays"]] == [
        ("/etc", True), ("/var", True), ("/home", True)]
    assert res["overlays"][0]["upper"] == os.path.join(data, "lightwhale-state", "overlay", "upper", "etc")
    assert res["status"] == status
    assert res["magic_disks"] == [] and [item["device"] for item in res["empty_disks"]] == [spare.path]
    assert by_device(res)[first.path]["empty"] is False
    members = "%s,%s" % (first.part(2), second.part(2))
    assert res["summary"].startswith("persistent; raid1/raid1 on %s (2 of 2 members)" % members)
    assert res["problems"] == [], res.explain()

    # Check mode is the same run, and says the same.
    checked = read_only(box, [first, second, spare], check=True)
    for key in ("mode", "filesystem", "swap", "overlays", "status", "empty_disks", "magic_disks"):
        if key == "filesystem":
            assert {k: v for k, v in checked[key].items() if k not in ("free", "usage")} == {
                k: v for k, v in fs.items() if k not in ("free", "usage")}
        else:
            assert checked[key] == res[key], key


def part_size(node):
    """A partition's size in bytes, as the kernel has it."""
    with open("/sys/class/block/%s/size" % os.path.basename(node)) as handle:
        return int(handle.read()) * 512


def test_degraded_host_names_the_missing_member(box, magic_disk):
    first, second = magic_disk("600M", name="m1"), magic_disk("600M", name="m2")
    created = box.boot([first, second])
    box.ok("lw_datafs", devices=[first, second], state="unmounted")
    forget_and_detach(second)
    degraded = box.ok("lw_datafs", devices=[first], state="mounted")
    assert degraded["mode"] == "degraded", degraded.explain()

    res = read_only(box, [first])
    assert res["mode"] == "degraded", res.explain()
    fs = res["filesystem"]
    assert fs["uuid"] == created["uuid"] and fs["members"] == [first.part(2)]
    assert fs["missing"] == ["devid 2"] and fs["num_devices"] == 2
    assert "missing devid 2" in res["summary"] and "(1 of 2 members" in res["summary"]


def test_filesystem_found_but_not_mounted(box, magic_disk):
    (disk,) = [magic_disk("600M")]
    box.ok("magic_disk", devices=[disk], state="partitioned")
    created = box.ok("lw_datafs", devices=[disk], state="present")
    res = read_only(box, [disk])
    assert res["mode"] == "none-yet", res.explain()
    fs = res["filesystem"]
    assert fs["mounted"] is False and fs["uuid"] == created["uuid"] and fs["members"] == [disk.part(2)]
    assert fs["size"] is None and fs["usage"] == {}
    assert res["magic_partitions"] == dict(swap=[disk.part(1)], data=[disk.part(2)])


def test_partitions_the_kernel_does_not_know_are_reported_not_probed(box, magic_disk):
    disk = magic_disk("600M")
    box.ok("magic_disk", devices=[disk], state="partitioned")
    box.ok("lw_datafs", devices=[disk], state="present")
    forget_and_detach(disk)
    res = read_only(box, [disk])
    assert disk.partition_nodes() == [], "persistence_info told the kernel about partitions"
    assert res["filesystem"] is None and res["mode"] == "none-yet"
    assert any("not known to the kernel" in problem for problem in res["problems"]), res.explain()
    assert res["empty_disks"] == []


def test_something_foreign_on_the_data_mount_point_is_a_problem(box, loopdev):
    other = loopdev("300M", name="ext4")
    run(["mkfs.ext4", "-q", "-F", other.path])
    target = os.path.join(box.root, "mnt", "lightwhale-data")
    os.makedirs(target)
    run(["mount", "-o", "ro", other.path, target])  # read-only: ext4 writes nothing by itself
    res = read_only(box, [other])
    assert res["mode"] == "none-yet", res.explain()
    assert any("not the data filesystem" in problem for problem in res["problems"]), res.explain()


def test_one_module_run_reports_everything(box, magic_disk):
    disk = magic_disk("600M")
    box.boot([disk])
    res = read_only(box, [disk])
    tasks = [rec for rec in res.results if rec.get("event") in ("ok", "failed")]
    assert len(tasks) == 1
    for key in ("mode", "summary", "filesystem", "swap", "overlays", "status", "magic_disks", "magic_partitions",
                "empty_disks", "disks", "problems", "failure"):
        assert key in res, key
    assert (res["filesystem"]["data_profile"], res["filesystem"]["metadata_profile"]) == ("single", "dup")

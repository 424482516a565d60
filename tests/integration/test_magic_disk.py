"""lightwhale.persistence.magic_disk through real `ansible` runs on loop devices.

Every test that may write lists its loop disks explicitly in `devices`; the only host-scan test runs in
check mode. "Nothing written" is always proven by content hashes of the whole image (lwkit.sha256_of).
"""

from __future__ import annotations

import os
import warnings

import pytest

from lwkit import (DATA_LABEL, GUID_LINUX_FS, GUID_LINUX_SWAP, MAGIC, MIB, SWAP_LABEL, blkid_probe, changed_disks, gpt_remnants,
                   has_header, is_blockdev, partition_table, partitions_of, read_bytes, sha256_of, signatures_of, snapshot, write_header)
from lwkit.decoys import DECOYS, DECOYS_BY_NAME, DecoyUnavailable
from lwkit.sysutil import read_mountinfo, run

pytestmark = pytest.mark.needs_module("magic_disk")

SECTORS_PER_MIB = MIB // 512
REFUSABLE = [d.name for d in DECOYS if d.kind != "blank"]
BLANK = [d.name for d in DECOYS if d.kind == "blank"]


@pytest.fixture
def md(ansible, sandbox_root):
    """md(devices, state, check=False, diff=False, **options) -> RunResult of magic_disk.

    Always a sandbox root and an explicit kernel command line (the host's may say anything)."""

    def call(devices, state, check=False, diff=False, **options):
        args = dict(devices=[str(d) for d in devices], state=state, root=sandbox_root)
        args.setdefault("kernel_cmdline", "quiet")
        args.update(options)
        return ansible.run_module("magic_disk", args, check=check, diff=diff)

    return call


def ok(res):
    assert res.rc == 0 and not res.failed, res.explain()
    return res


def refused(res, *needles):
    """The run failed, and its message names every needle (case-insensitive)."""
    assert res.rc != 0 and res.failed, "expected a failure\n" + res.explain()
    text = (res.msg + " " + repr(res.get("refused", ""))).lower()
    for needle in needles:
        assert str(needle).lower() in text, f"failure message does not name {needle!r}\n" + res.explain()
    return res


def refused_any(res, words):
    text = (res.msg + " " + repr(res.get("refused", ""))).lower()
    assert any(w in text for w in words), f"failure message names none of {words}\n" + res.explain()


def plant_all_decoys(loopdev):
    """Every decoy that can be made here, as [(Decoy, LoopDisk)]; the others are warned about (and their
    own test_kit test reports the skip with the reason)."""
    planted, missing = [], []
    for spec in DECOYS:
        disk = loopdev(spec.size, name=f"decoy-{spec.name}")
        try:
            spec.plant(disk)
        except DecoyUnavailable as exc:
            missing.append(f"{spec.name}: {exc}")
            continue
        planted.append((spec, disk))
    if missing:
        warnings.warn("decoys not made on this host: " + "; ".join(missing))
    return planted


def entry_for(res, disk):
    matches = [d for d in res.get("disks", []) if d.get("device") == disk.path]
    assert len(matches) == 1, f"{disk.path} not reported exactly once\n" + res.explain()
    return matches[0]


def gpt_sectors(disk):
    table = partition_table(disk)
    assert table and table["label"] == "gpt", f"{disk.path}: no GPT: {table}"
    return table


def assert_magic_layout(disk, swap_mib=None, swap=True):
    """The disk holds exactly our layout: GPT, [p1 swap,] data filling the rest, 1 MiB aligned, no header."""
    head = read_bytes(disk, 0, 512)
    assert MAGIC not in head, f"{disk.path}: the magic header survived partitioning"
    table = gpt_sectors(disk)
    parts = sorted(table["partitions"], key=lambda p: p["start"])
    if swap:
        assert len(parts) == 2, parts
        p1, p2 = parts
        assert p1["node"] == disk.part(1) and p2["node"] == disk.part(2), parts
        assert p1["name"] == SWAP_LABEL and p1["type"].upper() == GUID_LINUX_SWAP, p1
        assert p1["start"] == SECTORS_PER_MIB, p1
        assert p1["size"] % SECTORS_PER_MIB == 0, p1
        if swap_mib is not None:
            assert p1["size"] == swap_mib * SECTORS_PER_MIB, p1
        assert p2["start"] == p1["start"] + p1["size"], parts
    else:
        assert len(parts) == 1, parts
        p2 = parts[0]
        assert p2["start"] == SECTORS_PER_MIB, p2
    assert p2["name"] == DATA_LABEL and p2["type"].upper() == GUID_LINUX_FS, p2
    assert p2["start"] % SECTORS_PER_MIB == 0 and p2["size"] % SECTORS_PER_MIB == 0, p2
    last_usable = table["lastlba"]
    end = p2["start"] + p2["size"] - 1
    assert end <= last_usable, (end, last_usable)
    # "filling the rest": what is left after it is less than the 1 MiB alignment plus the backup GPT
    assert last_usable - end < 2 * SECTORS_PER_MIB, (end, last_usable)
    verify = run(["sgdisk", "--verify", disk.path], check=False)
    assert "No problems found" in verify.stdout, verify.stdout
    # the kernel's partitions (what /dev/loopNpM address) are exactly the table's, start and size
    kernel, table_geo = disk.kernel_partitions(), disk.table_partitions()
    assert kernel == table_geo, (
        f"{disk.path}: the kernel's partitions (sysfs start, size in sectors) {kernel} "
        f"differ from the partition table on the disk {table_geo}"
    )
    return parts


# ------------------------------------------------------------------------------------------------
# each state twice; check mode predicts and writes nothing


def _check_then_real(md, disks, state, **opts):
    """check run (asserting nothing is written), then the real run; returns (predicted, real)."""
    before = snapshot(disks)
    predicted = ok(md(disks, state, check=True, diff=True, **opts))
    assert changed_disks(before, disks) == [], "check mode wrote to a disk\n" + predicted.explain()
    real = ok(md(disks, state, diff=True, **opts))
    assert real.changed == predicted.changed, (
        f"check mode predicted changed={predicted.changed}, the real run reported {real.changed}\n"
        + predicted.explain() + "\n" + real.explain()
    )
    assert (predicted.get("actions") or []) == (real.get("actions") or []), (predicted.explain(), real.explain())
    if real.changed:
        assert real.get("diff"), "changed with --diff but no diff\n" + real.explain()
    return predicted, real


@pytest.mark.parametrize("state", ["present", "absent", "partitioned"])
def test_each_state_twice_changed_then_not(md, loopdev, state):
    disk = loopdev("512M", name=f"{state}-target")
    if state != "present":
        write_header(disk)
    _predicted, first = _check_then_real(md, [disk], state)
    assert first.changed, "the first run must change the disk\n" + first.explain()
    after_first = sha256_of(disk)
    if state == "present":
        assert read_bytes(disk, 0, 28) == MAGIC + b"\n"
    elif state == "absent":
        assert not has_header(disk)
        assert read_bytes(disk, 0, 28) == bytes(28)
    else:
        assert_magic_layout(disk)
    _predicted, second = _check_then_real(md, [disk], state)
    assert not second.changed, "the second run must change nothing\n" + second.explain()
    assert second.get("actions") == []
    assert sha256_of(disk) == after_first, "the second run wrote to the disk"


def test_present_on_a_blank_disk_writes_only_the_header(md, loopdev):
    disk = loopdev("300M", name="blank")
    reference = loopdev("300M", name="reference")
    write_header(reference, newline=True)
    ok(md([disk], "present"))
    assert sha256_of(disk) == sha256_of(reference), "present wrote more than the 27 bytes + newline"


def test_absent_keeps_a_partitioned_disk_and_decoys_untouched(md, loopdev):
    laid_out = loopdev("512M", name="laid-out")
    write_header(laid_out)
    ok(md([laid_out], "partitioned"))
    planted = plant_all_decoys(loopdev)
    disks = [laid_out] + [d for _spec, d in planted]
    before = snapshot(disks)
    res = ok(md(disks, "absent"))
    assert not res.changed, res.explain()
    assert changed_disks(before, disks) == []


# ------------------------------------------------------------------------------------------------
# decoys


def test_partitioned_never_writes_a_decoy(md, loopdev):
    planted = plant_all_decoys(loopdev)
    magic = loopdev("512M", name="magic")
    write_header(magic)
    decoy_disks = [d for _spec, d in planted]
    disks = decoy_disks + [magic]
    before = snapshot(decoy_disks)
    magic_before = sha256_of(magic)

    predicted = ok(md(disks, "partitioned", check=True))
    assert changed_disks(before, decoy_disks) == [] and sha256_of(magic) == magic_before, "check mode wrote"
    assert predicted.changed

    res = ok(md(disks, "partitioned"))
    assert res.changed
    assert changed_disks(before, decoy_disks) == [], "partitioned wrote to a decoy\n" + res.explain()
    assert_magic_layout(magic)
    assert res["magic_disks"] == [magic.path], res.explain()
    for spec, disk in planted:
        entry = entry_for(res, disk)
        assert entry["magic"] is False, (spec.name, entry)
        assert entry.get("layout") is None, (spec.name, entry)
    assert res["magic_partitions"] == {"swap": [magic.part(1)], "data": [magic.part(2)]}, res.explain()

    again = ok(md(disks, "partitioned"))
    assert not again.changed, again.explain()
    assert changed_disks(before, decoy_disks) == []


def test_partitioned_says_why_each_other_candidate_is_passed_over(md, loopdev):
    """The module always returns what it saw ("Always return what was seen: which candidates carry the header, which partitions are
    named ..., and why each other candidate was skipped." Every listed non-magic disk must come with a
    reason, in `skipped_disks` or in its `disks[].skipped`."""
    planted = plant_all_decoys(loopdev)
    magic = loopdev("512M", name="magic")
    write_header(magic)
    res = ok(md([d for _spec, d in planted] + [magic], "partitioned", check=True))
    reasons = {s.get("device"): s.get("reason") for s in res.get("skipped_disks", [])}
    missing = []
    for spec, disk in planted:
        entry = entry_for(res, disk)
        if not (reasons.get(disk.path) or entry.get("skipped")):
            missing.append(f"{spec.name} ({disk.path})")
    assert missing == [], "no reason given for passing over: " + ", ".join(missing) + "\n" + res.explain()


def _disk_is_clean_with_header(disk):
    assert read_bytes(disk, 0, 28) == MAGIC + b"\n", read_bytes(disk, 0, 64)
    assert signatures_of(disk) == [], f"wipefs -n still finds {signatures_of(disk)}"
    assert blkid_probe(disk) == {}, f"blkid -p still finds {blkid_probe(disk)}"
    assert gpt_remnants(disk) == [], f"'EFI PART' left at offsets {gpt_remnants(disk)}"
    assert partitions_of(disk) == []
    assert disk.partition_nodes() == [], f"the kernel still knows partitions {disk.partition_nodes()}"


@pytest.mark.parametrize("name", REFUSABLE)
def test_present_refuses_a_decoy_without_force_and_wipes_it_with_force(md, decoy, name):
    disk, what = decoy(name)
    spec = DECOYS_BY_NAME[name]
    if name in ("gpt_partitions", "mbr_partition"):
        disk.rescan()  # as a real kernel would have: partition nodes exist
    before = sha256_of(disk)

    res = md([disk], "present")
    refused(res, disk.path)
    if spec.words:
        refused_any(res, spec.words)
    assert sha256_of(disk) == before, f"present without force wrote to the {what} decoy"

    check = md([disk], "present", check=True)
    refused(check, disk.path)

    predicted = ok(md([disk], "present", force=True, check=True))
    assert predicted.changed
    assert sha256_of(disk) == before, "check mode with force wrote"

    forced = ok(md([disk], "present", force=True))
    assert forced.changed
    _disk_is_clean_with_header(disk)
    assert entry_for(forced, disk)["magic"] is True

    again = ok(md([disk], "present", force=True))
    assert not again.changed, "present on a disk that carries the header must not wipe it again\n" + again.explain()


@pytest.mark.parametrize("name", BLANK)
def test_present_takes_a_blank_decoy_without_force(md, decoy, loopdev, name):
    """All zeros is what `present` is for: it is marked without force, and nothing but the header is written."""
    disk, _what = decoy(name)
    reference = loopdev(DECOYS_BY_NAME[name].size, name="reference")
    write_header(reference)
    res = ok(md([disk], "present"))
    assert res.changed
    assert sha256_of(disk) == sha256_of(reference)


def test_present_refuses_a_laid_out_lightwhale_disk(md, magic_disk):
    disk = magic_disk("512M")
    ok(md([disk], "partitioned"))
    before = sha256_of(disk)
    refused(md([disk], "present"), disk.path, "partition")
    assert sha256_of(disk) == before


# ------------------------------------------------------------------------------------------------
# bad input: failure naming the device, nothing written


@pytest.mark.parametrize("state", ["present", "absent", "partitioned"])
def test_a_path_that_does_not_exist(md, loopdev, lw_workdir, state):
    other = loopdev("512M", name="bystander")
    if state != "present":
        write_header(other)
    missing = os.path.join(lw_workdir, "no-such-disk")
    before = sha256_of(other)
    res = md([other, missing], state)
    refused(res, missing)
    assert sha256_of(other) == before, "a listed disk was written although the run failed"


@pytest.mark.parametrize("state", ["present", "partitioned"])
def test_a_partition_instead_of_a_whole_disk(md, loopdev, state):
    disk = loopdev("512M", name="holds-partitions")
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk.path],
        input="label: gpt\nsize=300M, name=first\nname=second\n")
    disk.rescan()
    write_header(disk.part(1))  # a naive tool would take this partition for a magic disk
    before = sha256_of(disk)
    res = md([disk.part(1)], state)
    refused(res, disk.part(1), "partition")
    assert sha256_of(disk) == before


@pytest.mark.parametrize("state", ["present", "absent", "partitioned"])
def test_a_read_only_loop_device(md, loopdev, state):
    disk = loopdev("512M", name="read-only")
    if state != "present":
        write_header(disk)
    run(["blockdev", "--setro", disk.path])
    before = sha256_of(disk)
    res = md([disk], state)
    refused(res, disk.path, "read-only")
    assert sha256_of(disk) == before


@pytest.mark.parametrize("force", [False, True])
def test_a_mounted_device_is_refused_even_with_force(md, decoy, lw_workdir, force):
    disk, _what = decoy("ext4")
    target = os.path.join(lw_workdir, "mnt")
    os.makedirs(target)
    run(["mount", "-o", "ro", disk.path, target])
    before = sha256_of(disk)
    res = md([disk], "present", force=force)
    refused(res, disk.path)
    refused_any(res, ("mounted", "in use"))
    assert sha256_of(disk) == before
    assert any(m.mount_point == target for m in read_mountinfo())


def test_a_magic_disk_with_a_mounted_partition_is_not_partitioned(md, loopdev, lw_workdir):
    disk = loopdev("512M", name="magic-over-mounted-gpt")
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk.path], input="label: gpt\nsize=200M, name=old\n")
    disk.rescan()
    run(["mkfs.ext4", "-q", "-F", disk.part(1)])
    target = os.path.join(lw_workdir, "mnt")
    os.makedirs(target)
    run(["mount", "-o", "ro", disk.part(1), target])
    write_header(disk)
    before = sha256_of(disk)
    res = md([disk], "partitioned")
    refused(res, disk.path)
    refused_any(res, ("mounted", "in use"))
    assert sha256_of(disk) == before


@pytest.mark.parametrize(
    "size,options",
    [("100M", {}), ("200M", {"swap": False}), ("512M", {"swap_size": "400M"})],
    ids=["100M-auto-swap", "200M-no-swap", "512M-swap-400M"],
)
def test_a_disk_too_small_for_the_layout(md, loopdev, size, options):
    small = loopdev(size, name="too-small")
    write_header(small)
    other = loopdev("512M", name="fits")
    write_header(other)
    disks = [small, other]
    before = snapshot(disks)
    res = md(disks, "partitioned", **options)
    refused(res, small.path, "small")
    assert changed_disks(before, disks) == [], "a too-small disk in the list must stop every write"


# ------------------------------------------------------------------------------------------------
# the layout


def test_a_partitioned_disk_is_not_partitioned_again(md, magic_disk):
    disk = magic_disk("512M")
    first = ok(md([disk], "partitioned"))
    parts = assert_magic_layout(disk, swap_mib=64)  # auto: min(RAM, 4 GiB, 512M/8)
    uuids = [p["uuid"] for p in parts]
    assert first["magic_partitions"] == {"swap": [disk.part(1)], "data": [disk.part(2)]}, first.explain()
    for node in first["magic_partitions"]["swap"] + first["magic_partitions"]["data"]:
        assert is_blockdev(node), f"{node} is not a block device when the module returned"
    image = sha256_of(disk)

    second = ok(md([disk], "partitioned"))
    assert not second.changed, second.explain()
    assert second["magic_disks"] == []
    assert entry_for(second, disk)["layout"] == "lightwhale"
    assert second["magic_partitions"] == first["magic_partitions"]
    assert [p["uuid"] for p in partitions_of(disk)] == uuids, "partition UUIDs changed on the second run"
    assert sha256_of(disk) == image


def test_the_partition_nodes_are_made_again_after_a_fresh_attach(md, magic_disk):
    """A disk attached anew shows no partitions to the kernel until partx runs: the module must do it, as a plan
    action that check mode predicts and the result reports; the next run has nothing to tell."""
    disk = magic_disk("512M")
    ok(md([disk], "partitioned"))
    run(["partx", "-d", disk.path])
    assert disk.partition_nodes() == []
    check = ok(md([disk], "partitioned", check=True))
    assert check.changed and disk.partition_nodes() == [], "check mode told the kernel"
    res = ok(md([disk], "partitioned"))
    assert res.changed
    assert res["actions"] == check["actions"] == [f"{disk.path}: tell the kernel the partitions {disk.part(1)}, {disk.part(2)}"]
    for node in (disk.part(1), disk.part(2)):
        assert is_blockdev(node), f"{node} missing after the run\n" + res.explain()
    assert not ok(md([disk], "partitioned")).changed


@pytest.mark.parametrize(
    "options",
    [{"swap": False}, {"kernel_cmdline": "quiet noswap"}],
    ids=["swap-false", "cmdline-noswap"],
)
def test_no_swap_gives_a_single_data_partition(md, magic_disk, options):
    disk = magic_disk("512M")
    res = ok(md([disk], "partitioned", **options))
    assert res["swap"] is False, res.explain()
    assert_magic_layout(disk, swap=False)
    assert res["magic_partitions"]["swap"] == []
    assert len(res["magic_partitions"]["data"]) == 1 and is_blockdev(res["magic_partitions"]["data"][0])


def test_noswap_must_be_a_whole_word(md, magic_disk):
    disk = magic_disk("512M")
    res = ok(md([disk], "partitioned", kernel_cmdline="quiet noswapfile=1 lightwhale.noswap"))
    assert res["swap"] is True, res.explain()
    assert_magic_layout(disk)


def test_explicit_swap_size(md, magic_disk):
    disk = magic_disk("600M")  # auto would be 75 MiB
    ok(md([disk], "partitioned", swap_size="64M"))
    assert_magic_layout(disk, swap_mib=64)


@pytest.mark.parametrize("newline", [True, False], ids=["with-newline", "without-newline"])
def test_header_with_and_without_newline_counts(md, magic_disk, newline):
    disk = magic_disk("512M", newline=newline)
    res = ok(md([disk], "partitioned"))
    assert res["magic_disks"] == [disk.path]
    assert_magic_layout(disk)


def test_header_over_an_old_gpt_gets_a_fresh_layout(md, loopdev):
    disk = loopdev("512M", name="header-over-gpt")
    run(["sgdisk", "-n", "1:0:+50M", "-c", "1:old-a", "-n", "2:0:+50M", "-c", "2:old-b",
         "-n", "3:0:0", "-c", "3:old-c", disk.path])
    old_uuids = {p["uuid"] for p in partitions_of(disk)}
    disk.rescan()
    assert len(disk.partition_nodes()) == 3
    write_header(disk)
    assert partition_table(disk)["label"] == "gpt", "the stale GPT must still be there under the header"
    res = ok(md([disk], "partitioned"))
    assert res["magic_disks"] == [disk.path]
    parts = assert_magic_layout(disk)
    assert not ({p["uuid"] for p in parts} & old_uuids), "an old partition survived"
    assert not any(p.get("name", "").startswith("old-") for p in parts)
    assert disk.partition_nodes() == [disk.part(1), disk.part(2)], "a stale partition is still in the kernel"
    # both GPT copies are the new one
    assert len(gpt_remnants(disk)) == 2


# ------------------------------------------------------------------------------------------------
# what the module reports


def test_results_say_what_was_seen(md, loopdev, lw_workdir):
    magic = loopdev("512M", name="magic")
    write_header(magic)
    blank = loopdev("300M", name="blank")
    gpt = loopdev("128M", name="gpt")
    DECOYS_BY_NAME["gpt_partitions"].plant(gpt)
    link = os.path.join(lw_workdir, "by-id-magic")
    os.symlink(magic.path, link)

    devices = [link, blank, gpt, magic]  # magic listed twice: once through a link

    # check mode reports the disks as found before the run
    seen = ok(md(devices, "partitioned", check=True))
    assert [d["device"] for d in seen["disks"]] == [magic.path, blank.path, gpt.path], seen.explain()
    m, b, g = seen["disks"]
    assert m["given"] == link and b["given"] == blank.path and g["given"] == gpt.path
    assert (m["magic"], b["magic"], g["magic"]) == (True, False, False)
    assert (m["layout"], b["layout"], g["layout"]) == (None, None, None)
    assert (m["partition_table"], b["partition_table"], g["partition_table"]) == (None, None, "gpt")
    assert (m["size"], b["size"], g["size"]) == (512 * MIB, 300 * MIB, 128 * MIB)
    assert (m["read_only"], b["read_only"], g["read_only"]) == (False, False, False)
    assert [p["name"] for p in g["partitions"]] == ["old-esp", "old-root"]
    assert {s["type"] for s in g["signatures"]} >= {"gpt"}
    assert seen["magic_disks"] == [magic.path]

    # the real run reports them as found after it
    res = ok(md(devices, "partitioned"))
    assert [d["device"] for d in res["disks"]] == [magic.path, blank.path, gpt.path], res.explain()
    m, b, g = res["disks"]
    assert m["magic"] is False, "the header must be gone after partitioning"
    assert m["layout"] == "lightwhale" and g["layout"] is None and b["layout"] is None
    assert m["partition_table"] == "gpt"
    assert [p["name"] for p in m["partitions"]] == [SWAP_LABEL, DATA_LABEL]
    assert res["magic_disks"] == [magic.path], "magic_disks: the disks that carried the header at the start"
    assert res["magic_partitions"] == {"swap": [magic.part(1)], "data": [magic.part(2)]}
    for node in res["magic_partitions"]["swap"] + res["magic_partitions"]["data"]:
        assert is_blockdev(node)
    assert res["actions"] and all(magic.path in a for a in res["actions"]), res["actions"]
    assert res["swap"] is True


def test_check_mode_predicts_the_partition_nodes(md, magic_disk):
    disk = magic_disk("512M")
    predicted = ok(md([disk], "partitioned", check=True))
    assert predicted["magic_partitions"] == {"swap": [disk.part(1)], "data": [disk.part(2)]}, predicted.explain()
    real = ok(md([disk], "partitioned"))
    assert real["magic_partitions"] == predicted["magic_partitions"]


def test_host_scan_in_check_mode_never_takes_loop_devices(md, magic_disk):
    """The default scan, read-only (check mode): a magic loop disk is not a candidate unless listed."""
    disk = magic_disk("512M")
    before = sha256_of(disk)
    res = ok(md([], "partitioned", check=True))
    assert sha256_of(disk) == before
    assert disk.path not in res["magic_disks"], res.explain()
    for entry in res["disks"]:
        if os.path.basename(entry["device"]).startswith("loop"):
            assert entry["skipped"], f"loop device {entry['device']} taken as a candidate\n" + res.explain()
    listed = {s["device"]: s["reason"] for s in res["skipped_disks"]}
    assert "loop" in (listed.get(disk.path) or ""), res.explain()
    if not res["magic_disks"]:
        assert not res.changed, res.explain()
    loops = [p for parts in res["magic_partitions"].values() for p in parts if "/loop" in p]
    assert loops == [], res.explain()


def test_present_and_absent_need_devices(md):
    for state in ("present", "absent"):
        res = md([], state)
        refused(res, "devices")

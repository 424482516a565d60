"""A data filesystem over time, through real `ansible` runs of lw_datafs on loop devices: a magic disk joins a
persistent host (grow, 1 to 2 to 3 members), takes a missing member's place (replace), and the chunks a degraded
period left with one copy get their copies back (heal) - the profiles converted in the background each time.

Files are checked by SHA-256 across every step; outcomes with the plain tools (`btrfs filesystem df`, `blkid -p`,
/proc/swaps). Every run lists its loop disks in `devices` and uses a sandbox root in the test's private mount
namespace; the background job is waited for before the next step and before teardown.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from lwkit import blkid_probe, changed_disks, has_header, sha256_of, snapshot, write_header
from lwkit.boot import fs_df, power_off, replug, unplug, wait_conversion
from lwkit.decoys import decoy_pool
from lwkit.fleet import Sandbox, summary_lines
from lwkit.sysutil import read_swaps, run

from .test_lw_datafs import PROFILES, crash, killed, ok
from .test_lw_datafs import datafs, magic_disks, paths  # noqa: F401 pylint: disable=unused-import

pytestmark = [pytest.mark.needs_module("lw_datafs"), pytest.mark.needs_module("magic_disk")]


def write_files(directory, names, size_mib=8):
    """Files of random bytes; returns {name: sha256}."""
    sums = {}
    for name in names:
        data = os.urandom(size_mib * 1024 * 1024)
        with open(os.path.join(directory, name), "wb") as fh:
            fh.write(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    run(["sync"])
    return sums


def assert_files(directory, sums):
    for name, digest in sums.items():
        with open(os.path.join(directory, name), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == digest, name


def converged(datafs, disks, paths, count):
    """Wait for the background job, then a run that changes nothing and finds `count` members of the right profiles."""
    wait_conversion(paths["run"])
    res = ok(datafs(disks), changed=False)
    data_profile, metadata_profile = PROFILES[count]
    df = fs_df(paths["data"])
    assert df["Data"] == {data_profile} and df["Metadata"] == {metadata_profile}, df
    assert (res["data_profile"], res["metadata_profile"]) == (data_profile, metadata_profile), res.explain()
    assert res["mode"] == "persistent" and res["missing"] == [] and res["conversion"] is None, res.explain()
    assert len(res["devices"]) == count, res.explain()
    return res


def pause_conversion(paths):
    """Pause the balance of the background conversion (it stops, its state stays on the disks), and wait for the job
    to end."""
    for _try in range(200):
        if run(["btrfs", "balance", "pause", paths["data"]], check=False).returncode == 0:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the background conversion never ran a balance to pause")
    wait_conversion(paths["run"])


def first_boot(datafs, magic_disks, count=1):
    """`count` magic disks laid out and made the data filesystem (what a first boot does)."""
    disks = magic_disks(count)
    return disks, ok(datafs(disks), changed=True)


def status_of(paths):
    with open(os.path.join(paths["run"], "persistence.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_a_magic_disk_joins_then_a_third_one_profiles_follow(datafs, magic_disks, magic_disk, paths):
    disks, res = first_boot(datafs, magic_disks)
    assert (res["data_profile"], res["metadata_profile"]) == ("single", "dup")
    sums = write_files(paths["data"], ["one.bin", "two.bin"])

    new = magic_disk("512M", name="new")
    images = snapshot(disks + [new])
    check = ok(datafs(disks + [new], check=True), changed=True)
    assert changed_disks(images, disks + [new]) == [], "check mode wrote"
    assert check["joined"] == [new.part(2)], check.explain()
    assert check["conversion"]["state"] == "converting" and check["conversion"]["target"] == "raid1/raid1"
    assert any("add to the data filesystem" in action for action in check["actions"]), check.explain()

    grown = ok(datafs(disks + [new], record_status=True), changed=True)
    assert grown["joined"] == [new.part(2)], grown.explain()
    assert sorted(grown["devices"]) == sorted([disks[0].part(2), new.part(2)]), grown.explain()
    assert grown["conversion"] is not None and grown["conversion"]["target"] == "raid1/raid1", grown.explain()
    assert not has_header(new), "the header is wiped once the disk joined"
    probe = blkid_probe(new.part(2))
    assert probe.get("LABEL") == "lightwhale-data" and probe.get("UUID") == res["uuid"], probe
    assert new.part(1) in read_swaps(), "the new swap partition is active"
    status = status_of(paths)
    assert status["joined"] == [new.part(2)] and status["conversion"]["target"] == "raid1/raid1", status
    assert f"(joined: {new.part(2)})" in status["summary"], status["summary"]
    converged(datafs, disks + [new], paths, 2)
    assert_files(paths["data"], sums)

    third = magic_disk("512M", name="third")
    ok(datafs(disks + [new, third]), changed=True)
    converged(datafs, disks + [new, third], paths, 3)
    assert_files(paths["data"], sums)


def test_two_magic_disks_join_at_once(datafs, magic_disks, magic_disk, paths):
    disks, _res = first_boot(datafs, magic_disks)
    sums = write_files(paths["data"], ["a.bin"])
    new = [magic_disk("512M", name=f"new{i}") for i in range(2)]
    grown = ok(datafs(disks + new), changed=True)
    assert sorted(grown["joined"]) == sorted(disk.part(2) for disk in new), grown.explain()
    converged(datafs, disks + new, paths, 3)
    assert_files(paths["data"], sums)


def test_a_replacement_takes_the_missing_members_place_and_redundancy_comes_back(
        datafs, magic_disks, magic_disk, paths):
    disks, _res = first_boot(datafs, magic_disks, 2)
    sums = write_files(paths["data"], ["before.bin"])
    ok(datafs(disks, state="unmounted"), changed=True)
    power_off(disks)
    unplug(disks[1])

    degraded = ok(datafs(disks[:1]), changed=True)
    assert degraded["mode"] == "degraded" and degraded["missing"] == ["devid 2"], degraded.explain()
    assert degraded["conversion"] is None, "nothing converts while a member is missing"
    sums.update(write_files(paths["data"], ["during.bin"], size_mib=64))
    assert "single" in fs_df(paths["data"])["Data"], "writes while degraded land in single chunks"

    new = magic_disk("512M", name="replacement")
    images = snapshot(disks[:1] + [new])
    check = ok(datafs(disks[:1] + [new], check=True), changed=True)
    assert changed_disks(images, disks[:1] + [new]) == [], "check mode wrote"
    assert check["conversion"]["state"] == "replacing" and check["conversion"]["target"] == "raid1/raid1", \
        check.explain()
    replaced = ok(datafs(disks[:1] + [new], record_status=True), changed=True)
    assert replaced["joined"] == [new.part(2)], replaced.explain()
    assert any("take the place of the missing member devid 2" in action for action in replaced["actions"])
    wait_conversion(paths["run"])
    # A replace that ended before the run's conversion step, or the next run, converts the single chunks back.
    ok(datafs(disks[:1] + [new]))
    converged(datafs, disks[:1] + [new], paths, 2)
    assert_files(paths["data"], sums)


def test_a_replacement_takes_the_device_id_the_kernel_says_is_missing(datafs, magic_disks, magic_disk, paths):
    """Device ids with a gap (a member removed by hand): the superblocks' count suggests devid 2 is missing, the
    kernel knows it is devid 3."""
    disks, _res = first_boot(datafs, magic_disks, 3)
    run(["btrfs", "balance", "start", "-f", "-mconvert=raid1", "-sconvert=raid1", paths["data"]])
    run(["btrfs", "device", "remove", disks[1].part(2), paths["data"]])
    sums = write_files(paths["data"], ["kept.bin"])
    kept = [disks[0], disks[2]]
    ok(datafs(kept, state="unmounted"), changed=True)
    power_off(disks)
    unplug(disks[2])

    degraded = ok(datafs(kept[:1]), changed=True)
    assert degraded["mode"] == "degraded" and degraded["missing"] == ["devid 3"], degraded.explain()
    new = magic_disk("512M", name="replacement")
    replaced = ok(datafs(kept[:1] + [new]), changed=True)
    assert any("take the place of the missing member devid 3" in action for action in replaced["actions"]), \
        replaced.explain()
    converged(datafs, kept[:1] + [new], paths, 2)
    assert_files(paths["data"], sums)


def test_a_disk_that_arrives_while_the_conversion_is_paused_joins_and_the_conversion_starts_again(
        datafs, magic_disks, magic_disk, paths):
    # Disks with room to spare: raid1c3 metadata needs free space on all three members.
    disks = magic_disks(1, size="1G")
    ok(datafs(disks), changed=True)
    sums = write_files(paths["data"], [f"f{i}.bin" for i in range(4)], size_mib=48)
    second = magic_disk("1G", name="second")
    ok(datafs(disks + [second]), changed=True)
    pause_conversion(paths)
    fsid = blkid_probe(disks[0].part(2))["UUID"]
    with open(f"/sys/fs/btrfs/{fsid}/exclusive_operation", encoding="ascii") as fh:
        assert fh.read().strip() == "balance paused"

    third = magic_disk("1G", name="third")
    grown = ok(datafs(disks + [second, third]), changed=True)
    assert grown["joined"] == [third.part(2)] and grown["unusable_disks"] == [], grown.explain()
    assert grown["conversion"] is not None and grown["conversion"]["target"] == "raid1/raid1c3", grown.explain()
    converged(datafs, disks + [second, third], paths, 3)
    assert_files(paths["data"], sums)


def test_a_profile_stronger_than_the_member_count_calls_for_is_kept(datafs, magic_disks, paths):
    """An operator's raid1c3 data on three members: the boot converts nothing down."""
    disks, _res = first_boot(datafs, magic_disks, 3)
    sums = write_files(paths["data"], ["strong.bin"])
    run(["btrfs", "balance", "start", "-dconvert=raid1c3", paths["data"]])
    res = ok(datafs(disks), changed=False)
    assert res["conversion"] is None and res["data_profile"] == "raid1c3", res.explain()
    assert not os.path.exists(os.path.join(paths["run"], "conversion.json")), "a conversion job was started"
    assert fs_df(paths["data"])["Data"] == {"raid1c3"}
    assert_files(paths["data"], sums)


def test_a_member_back_after_a_degraded_period_gets_its_copies_back(datafs, magic_disks, paths):
    disks, _res = first_boot(datafs, magic_disks, 2)
    ok(datafs(disks, state="unmounted"), changed=True)
    power_off(disks)
    unplug(disks[1])
    ok(datafs(disks[:1]))
    sums = write_files(paths["data"], ["during.bin"], size_mib=64)
    ok(datafs(disks[:1], state="unmounted"), changed=True)
    power_off(disks[:1])
    replug(disks[1])

    back = ok(datafs(disks, record_status=True), changed=True)
    assert back["mode"] == "persistent", back.explain()
    conversion = back["conversion"]
    assert conversion is not None and conversion["state"] == "restoring redundancy", back.explain()
    assert "single" in conversion["profiles"]["data"], conversion
    assert "restoring redundancy to raid1/raid1" in status_of(paths)["summary"]
    converged(datafs, disks, paths, 2)
    assert_files(paths["data"], sums)


@pytest.mark.parametrize("size, reason", [("64M", "too small for the layout")])
def test_a_magic_disk_that_cannot_be_used_is_reported_and_not_written(datafs, magic_disks, magic_disk, paths,
                                                                      size, reason):
    disks, _res = first_boot(datafs, magic_disks)
    small = magic_disk(size, name="small")
    images = snapshot(disks + [small])
    ok(datafs(disks + [small], record_status=True))
    res = ok(datafs(disks + [small], record_status=True), changed=False)
    assert res["joined"] == [] and res["unusable_disks"][0]["device"] == small.path, res.explain()
    assert reason in res["unusable_disks"][0]["reason"], res.explain()
    assert any(small.path in warning for warning in res.get("warnings", [])), res.explain()
    assert changed_disks(images, [small]) == [], "nothing written to the unusable disk"
    assert f"magic disk {small.path} not used" in status_of(paths)["summary"]


def test_a_header_on_a_member_disk_is_removed_and_nothing_else_written(datafs, magic_disks, paths):
    """What a run killed between the join and the header wipe leaves, and an operator's header on a member."""
    disks, res = first_boot(datafs, magic_disks)
    sums = write_files(paths["data"], ["a.bin"])
    write_header(disks[0])
    cleared = ok(datafs(disks), changed=True)
    assert cleared["joined"] == [] and cleared["devices"] == res["devices"], cleared.explain()
    assert len(cleared["actions"]) == 1 and "wipe the magic header" in cleared["actions"][0], cleared.explain()
    assert "is a member already" in cleared["actions"][0], cleared.explain()
    assert not has_header(disks[0])
    ok(datafs(disks), changed=False)
    assert_files(paths["data"], sums)


TRACE_ENV = "LIGHTWHALE_PERSISTENCE_CRASH_TRACE"
# The steps of a join, written out by hand and compared with the trace of an uninterrupted one, so that a new step
# cannot stay untested (the header is wiped by the GPT write).
GROW_STEPS = ["clear-partitions", "write-gpt", "sync-partitions", "wipe-partitions", "mkswap", "device-add", "swapon",
              "convert"]


def test_the_points_are_every_step_a_real_join_passes(datafs, magic_disks, magic_disk, paths, lw_workdir):
    disks, _res = first_boot(datafs, magic_disks)
    new = magic_disk("512M", name="new")
    trace = os.path.join(lw_workdir, "trace")
    ok(datafs(disks + [new], env={TRACE_ENV: trace}), changed=True)
    with open(trace, encoding="utf-8") as fh:
        reached = [point[len("after:"):].split("@")[0] for point in fh.read().split() if point.startswith("after:")]
    assert reached == GROW_STEPS, reached
    converged(datafs, disks + [new], paths, 2)


@pytest.mark.parametrize("point", [f"{when}:{step}" for step in GROW_STEPS for when in ("before", "after")])
def test_a_join_killed_anywhere_converges(datafs, magic_disks, magic_disk, paths, point):
    disks, _res = first_boot(datafs, magic_disks)
    sums = write_files(paths["data"], ["a.bin"])
    new = magic_disk("512M", name="new")
    killed(datafs(disks + [new], env=crash(point)))
    ok(datafs(disks + [new]))
    converged(datafs, disks + [new], paths, 2)
    assert not has_header(new)
    assert_files(paths["data"], sums)


def test_enable_joins_a_listed_disk_at_once_and_verifies_the_profiles(ansible, sandbox_root, magic_disk, loopdev, paths):
    box = Sandbox(ansible, sandbox_root)
    first = magic_disk("512M", name="first")
    box.boot([first])
    sums = write_files(paths["data"], ["a.bin"])
    new = loopdev("512M", name="new")
    before = sha256_of(new)
    checked = box.enable([first, new], check=True, lightwhale_persistence_disks=[new.path])
    assert checked.rc == 0, checked.stdout[-6000:]
    assert sha256_of(new) == before, "check mode wrote"
    assert "would mark" in summary_lines(checked)["localhost"] and "would join now" in summary_lines(checked)["localhost"]

    grown = box.enable([first, new], lightwhale_persistence_disks=[new.path])
    assert grown.rc == 0, grown.stdout[-6000:]
    line = summary_lines(grown)["localhost"]
    assert line.startswith("localhost: persistent, members 2") and "profile raid1/raid1" in line, line
    assert f"marked {new.path}" in line and "joined now (2 member(s), raid1/raid1)" in line, line
    wait_conversion(paths["run"])
    assert_files(paths["data"], sums)

    again = box.enable([first, new], lightwhale_persistence_disks=[new.path])
    assert again.rc == 0 and "left alone" in summary_lines(again)["localhost"], again.stdout[-6000:]


def test_enable_joins_with_the_swap_and_mount_options_of_the_hosts_boot(ansible, sandbox_root, magic_disk, loopdev, paths):
    """A host that booted without swap and with noatime: the disk enable joins gets no swap partition, no swap goes
    on, and the status file still names the options the filesystem is mounted with."""
    box = Sandbox(ansible, sandbox_root)
    first = magic_disk("512M", name="first")
    box.ok("magic_disk", devices=[first], state="partitioned", swap=False)
    box.ok("lw_datafs", devices=[first], state="mounted", swap=False, mount_options=["noatime"], record_status=True)
    new = loopdev("512M", name="new")
    grown = box.enable([first, new], lightwhale_persistence_disks=[new.path])
    assert grown.rc == 0, grown.stdout[-6000:]
    assert "joined now (2 member(s), raid1/raid1)" in summary_lines(grown)["localhost"], grown.stdout[-6000:]
    wait_conversion(paths["run"])
    assert [blkid_probe(node).get("TYPE") for node in new.partition_nodes()] == ["btrfs"], new.partition_nodes()
    assert not [area for area in read_swaps() if area.startswith((first.path + "p", new.path + "p"))], read_swaps()
    assert status_of(paths)["mount_options"] == ["noatime"], status_of(paths)


def test_enable_verification_passes_stronger_profiles_and_fails_weaker_ones(ansible, sandbox_root, magic_disks, paths):
    box = Sandbox(ansible, sandbox_root)
    disks = magic_disks(3)
    box.ok("lw_datafs", devices=disks, state="mounted")
    # The operator's choice, stronger than the raid1/raid1c3 three members call for: verified, with and without Python.
    run(["btrfs", "balance", "start", "-dconvert=raid1c3", paths["data"]])
    for python in ({}, dict(ansible_python_interpreter="/nonexistent")):
        res = box.enable(disks, lightwhale_persistence_verify=True, **python)
        assert res.rc == 0 and "members 3" in res.stdout and "profile raid1c3/raid1c3" in res.stdout, (
            python, res.stdout[-6000:])
    # Chunks of one copy, as a degraded period leaves them (the background conversion would mend them at the next run).
    run(["btrfs", "balance", "start", "-dconvert=single", paths["data"]])
    for python in ({}, dict(ansible_python_interpreter="/nonexistent")):
        res = box.enable(disks, lightwhale_persistence_verify=True, **python)
        assert res.rc != 0 and "expected persistent with 3 member(s)" in res.stdout, (python, res.stdout[-6000:])
        assert "the member count calls for the profiles (or stronger) raid1/raid1c3" in res.stdout, res.stdout[-6000:]


def test_a_conversion_cut_by_a_power_off_goes_on_at_the_next_boot(datafs, magic_disks, magic_disk, paths):
    disks, _res = first_boot(datafs, magic_disks, 1)
    sums = write_files(paths["data"], [f"f{i}.bin" for i in range(4)], size_mib=48)
    new = magic_disk("1G", name="new")
    ok(datafs(disks + [new]), changed=True)
    # Cut the conversion as a power-off does: the balance stops, its state stays on the disks.
    pause_conversion(paths)
    assert "single" in fs_df(paths["data"])["Data"], "the conversion was cut before its end"
    ok(datafs(disks + [new], state="unmounted"), changed=True)
    power_off(disks + [new])

    again = ok(datafs(disks + [new]), changed=True)
    assert again["conversion"] is not None and again["conversion"]["target"] == "raid1/raid1", again.explain()
    converged(datafs, disks + [new], paths, 2)
    assert_files(paths["data"], sums)


def test_only_the_magic_disk_joins_every_decoy_listed_beside_it_is_untouched(
        datafs, magic_disks, magic_disk, loopdev, paths):
    """The header stays the only consent: the disks listed beside the magic one - every decoy the kit can make here
    (headers at other offsets or in other case, filesystems, tables, RAID, LVM, LUKS, random bytes, zeros) - stay
    byte for byte as they were while the magic one joins."""
    disks, _res = first_boot(datafs, magic_disks)
    pool = decoy_pool(loopdev)
    assert len(pool) >= 12, sorted(pool)
    decoys = [disk for disk, _what in pool.values()]
    new = magic_disk("512M", name="new")
    before = snapshot(decoys)
    grown = ok(datafs(disks + decoys + [new]), changed=True)
    assert grown["joined"] == [new.part(2)] and grown["unusable_disks"] == [], grown.explain()
    converged(datafs, disks + decoys + [new], paths, 2)
    assert changed_disks(before, decoys) == [], "a decoy was written"


def test_enable_over_the_shell_marks_a_listed_disk_which_joins_at_the_next_boot(
        ansible, sandbox_root, magic_disk, loopdev, paths):
    """A host without Python: enable marks the listed disk over the shell (no join at once there), and the next
    boot's lw_datafs lays it out and joins it."""
    box = Sandbox(ansible, sandbox_root)
    first = magic_disk("512M", name="first")
    box.boot([first])
    new = loopdev("512M", name="new")
    res = box.enable([first, new], lightwhale_persistence_disks=[new.path], ansible_python_interpreter="/nonexistent")
    assert res.rc == 0, res.stdout[-6000:]
    line = summary_lines(res)["localhost"]
    assert f"marked {new.path}" in line and "persistent after the next boot (2 member(s), raid1/raid1)" in line, line
    assert has_header(new)
    # The next boot (lw_datafs, as the boot role runs it) lays the disk out and joins it.
    joined = ok(datafs_run(box, [first, new]), changed=True)
    assert joined["joined"] == [new.part(2)], joined.explain()
    wait_conversion(paths["run"])


def datafs_run(box, disks):
    return box.module("lw_datafs", devices=disks, state="mounted")

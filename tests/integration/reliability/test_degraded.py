"""Reliability: degraded and damaged data filesystems.

- RAID1 (2 disks) and raid1c3 (3 disks): the first boot formats them and data is written; after a power-off one
  member is pulled (its loop device detached, as a dead or unplugged disk), and the next boot must come up
  persistent in `degraded` mode, with a warning naming the missing device id, the status file saying so, and the
  data intact. Data is written while degraded; the member is plugged back in, and the next boot must be normal
  again (mode persistent, not mounted degraded), with every file intact. The block-group profiles after that are
  checked and recorded as they are (see the docstring of the test).
- A damaged superblock (one flipped byte in the primary btrfs superblock: its checksum no longer matches, the
  kernel refuses it): on a single disk the boot must be volatile (tmpfs) with the failure in the status file and a
  non-zero exit, and nothing may be written to the damaged disk; with one RAID1 member damaged the boot is
  degraded (that member counted as missing) and the damaged disk is still not written.

Every boot is the real boot playbook in a fresh mount namespace (lwkit.boot.BootRunner.boot_in_namespace), followed
by a power-off (swap off, partitions and btrfs registrations forgotten), as at a reboot.
"""

from __future__ import annotations

import json
import os

import pytest
from lwkit import figures, sha256_of
from lwkit.boot import findmnt, ok, power_off, replug, status_of, unplug

pytestmark = [pytest.mark.needs_module(name) for name in ("magic_disk", "lw_datafs", "lw_overlay", "lw_status")]

DEGRADED = "degraded RAID boots persistent"
DAMAGED = "damaged superblock never replaced"
PROFILES = {2: ("raid1", "raid1"), 3: ("raid1", "raid1c3")}
SUPERBLOCK = 64 * 1024
SECTIONS_SCRIPT = """
D="$ROOT/mnt/lightwhale-data"
section() { echo "== $1 =="; }
"""


def sections(out):
    """The output of an `after` script, split at '== name ==' lines: {name: text}."""
    found, name = {}, None
    for line in out.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            name = line[3:-3]
            found[name] = []
        elif name is not None:
            found[name].append(line)
    return {key: "\n".join(lines) for key, lines in found.items()}


def df_profiles(text):
    """{"Data": {"raid1", ...}, ...} from `btrfs filesystem df` output."""
    profiles = {}
    for line in text.splitlines():
        if line.startswith("WARNING:"):  # btrfs-progs' note on mixed profiles
            continue
        kind, _sep, rest = line.partition(",")
        if rest:
            profiles.setdefault(kind.strip(), set()).add(rest.split(":")[0].strip().lower())
    return profiles


SHOW = SECTIONS_SCRIPT + """
section options; findmnt -n -o OPTIONS "$D"
section files; for f in "$D"/*.bin; do sha256sum "$f" | sed "s|  $D/| |"; done; cat "$ROOT/etc/kept"
section df; btrfs filesystem df "$D"
section status; cat "$ROOT/run/lightwhale/persistence.json"
"""


def write_file(name, mib):
    return f'head -c {mib}M /dev/urandom > "$D/{name}" && sync\n'


def expect_files(text, files):
    """The files section lists exactly these {name: sha256} and the /etc file written at the first boot."""
    lines = text.splitlines()
    seen = dict(reversed(line.split(" ", 1)) for line in lines[:-1])
    assert seen == files and lines[-1] == "kept", text


def data_partition_offset(disk):
    """Byte offset of the disk's second partition (lightwhale-data), from the table on the disk."""
    parts = sorted(disk.table_partitions().values())
    assert len(parts) == 2, parts
    return parts[1][0] * 512


def damage_superblock(disk):
    """Flip one byte in the padding of the primary btrfs superblock of the data partition: nothing but its
    checksum is wrong (bit rot), and the kernel refuses the superblock."""
    offset = data_partition_offset(disk) + SUPERBLOCK + 3900
    assert disk.read(data_partition_offset(disk) + SUPERBLOCK + 64, 8) == b"_BHRfS_M"
    byte = disk.read(offset, 1)[0]
    disk.write(offset, bytes([byte ^ 0x5A]))


@pytest.mark.parametrize("count", [2, 3], ids=["raid1", "raid1c3"])
def test_a_missing_member_boots_degraded_then_normal_when_it_is_back(boot, box, magic_disks, count):
    """Found (kernel 6.x, btrfs-progs 6.2): while degraded, RAID1 with one of two members writes new data chunks as
    `single` (one copy): after the member is back the boot sees raid1 and single data chunks and converts the single
    ones back in the background (status conversion "restoring redundancy"); the boot after that finds only raid1.
    raid1c3 with two of three members left still allocates raid1 data chunks. Metadata needed no new chunk in either
    case."""
    disks = magic_disks(count)
    data_profile, metadata_profile = PROFILES[count]
    first, out = boot.boot_in_namespace(box, disks, after=SECTIONS_SCRIPT + write_file("before.bin", 24)
                                        + 'echo kept > "$ROOT/etc/kept"\n' + SHOW)
    ok(first, changed=True)
    shown = sections(out)
    files = dict(line.split(" ", 1)[::-1] for line in shown["files"].splitlines()[:-1])
    assert list(files) == ["before.bin"], shown
    status = json.loads(shown["status"])
    assert status["mode"] == "persistent" and status["created"] is True, status
    assert (status["data_profile"], status["metadata_profile"]) == (data_profile, metadata_profile)
    power_off(disks)

    pulled = disks[-1]
    devid = count  # the members are formatted in the order they are listed: the last one is devid <count>
    unplug(pulled)
    present = disks[:-1]
    degraded, out = boot.boot_in_namespace(box, present, after=SHOW + SECTIONS_SCRIPT + write_file("during.bin", 64)
                                           + 'section during; sha256sum "$D/during.bin" | cut -d" " -f1\n'
                                           + 'section df-after; btrfs filesystem df "$D"\n')
    shown = sections(out)
    status = json.loads(shown["status"])
    is_degraded = (degraded.rc == 0 and "degraded" in shown["options"].split(",") and status["mode"] == "degraded"
                   and status["ok"] is True and status["missing"] == [f"devid {devid}"]
                   and any(f"devid {devid}" in warning for warning in status["warnings"]))
    figures.add(DEGRADED, "RAID1/raid1c3 with a member pulled: booted degraded, warned, data intact", int(is_degraded),
                1, "cases")
    ok(degraded, changed=True)
    assert "degraded" in shown["options"].split(","), shown["options"]
    assert status["mode"] == "degraded" and status["ok"] is True and status["failure"] is None, status
    assert status["missing"] == [f"devid {devid}"], status
    assert any(f"devid {devid}" in warning for warning in status["warnings"]), status["warnings"]
    assert status["devices"] == [d.part(2) for d in present], status
    assert status["summary"].startswith(f"lightwhale-persistence: DEGRADED {data_profile}/{metadata_profile}"), status
    expect_files(shown["files"], files)
    files["during.bin"] = shown["during"].strip()
    degraded_df = df_profiles(shown["df-after"])
    power_off(present)

    replug(pulled)
    back, out = boot.boot_in_namespace(box, disks, after=SHOW)
    shown = sections(out)
    status = json.loads(shown["status"])
    profiles = df_profiles(shown["df"])
    normal = (back.rc == 0 and "degraded" not in shown["options"].split(",") and status["mode"] == "persistent"
              and status["ok"] is True and status["missing"] == [])
    figures.add(DEGRADED, "member plugged back in: next boot normal (not degraded), data intact", int(normal), 1,
                "cases")
    ok(back)
    assert "degraded" not in shown["options"].split(","), shown["options"]
    assert status["mode"] == "persistent" and status["ok"] is True and status["missing"] == [], status
    assert status["devices"] == [d.part(2) for d in disks], status
    expect_files(shown["files"], files)
    print(f"profiles while degraded: {degraded_df}; after the member is back: {profiles}; "
          f"status: {status['data_profile']}/{status['metadata_profile']}; warnings: {status['warnings']}")
    # What the degraded writes left behind, asserted as found (see the docstring); the role says so in a warning
    # whenever a profile is mixed.
    assert profiles["Metadata"] == {metadata_profile}, (degraded_df, profiles)  # no new metadata chunk was needed
    if count == 2:
        assert "single" in degraded_df["Data"], degraded_df
        # The boot converts the single-copy chunks back in the background (a soft balance).
        assert status["conversion"] and status["conversion"]["state"] == "restoring redundancy", status
        assert status["conversion"]["target"] == f"{data_profile}/{metadata_profile}", status
        assert "restoring redundancy" in status["summary"], status["summary"]
        mixed = 1
    else:
        assert profiles["Data"] == {"raid1"}, (degraded_df, profiles)
        assert status["conversion"] is None, status
        mixed = 0
    figures.add(DEGRADED, "cases whose degraded writes left single-copy chunks (converted back by the boot)", mixed, 1,
                "cases")
    power_off(disks)

    # The next boot: every chunk has its copies again, nothing converts, nothing warns of mixed profiles.
    healed, out = boot.boot_in_namespace(box, disks, after=SHOW)
    shown = sections(out)
    status = json.loads(shown["status"])
    ok(healed)
    profiles = df_profiles(shown["df"])
    assert profiles["Data"] == {data_profile} and profiles["Metadata"] == {metadata_profile}, profiles
    assert status["conversion"] is None and status["mode"] == "persistent", status
    assert not any("several" in warning for warning in status["warnings"]), status["warnings"]
    expect_files(shown["files"], files)
    power_off(disks)


def test_a_damaged_superblock_boots_volatile_with_a_failure_and_is_not_written(boot, box, magic_disks):
    (disk,) = magic_disks(1)
    first, _out = boot.boot_in_namespace(box, [disk], after=SECTIONS_SCRIPT + write_file("before.bin", 4))
    ok(first, changed=True)
    power_off([disk])
    damage_superblock(disk)
    before = sha256_of(disk)

    res = boot.boot(box, [disk])
    status = status_of(box)
    data = findmnt(os.path.join(box, "mnt/lightwhale-data"))
    unchanged = sha256_of(disk) == before
    volatile = (res.rc != 0 and data["fstype"] == "tmpfs" and status["mode"] == "volatile"
                and status["ok"] is False and bool(status["failure"]))
    figures.add(DAMAGED, "damaged superblock on a single disk: volatile, failure reported, exit non-zero",
                int(volatile), 1, "cases")
    figures.add(DAMAGED, "damaged disks left byte for byte", int(unchanged), 1, "disks")
    assert res.rc == 2, res.explain()
    assert data["fstype"] == "tmpfs", data
    assert status["mode"] == "volatile" and status["ok"] is False, status
    assert disk.part(2) in status["failure"] and "superblock" in status["failure"], status["failure"]
    assert "nothing was formatted" in status["failure"], status["failure"]
    assert status["summary"].startswith("lightwhale-persistence: FAILED: "), status["summary"]
    assert unchanged, "the disk with the damaged superblock was written to"


def test_a_damaged_raid1_member_is_counted_missing_and_not_written(boot, box, magic_disks):
    disks = magic_disks(2)
    first, _out = boot.boot_in_namespace(box, disks, after=SECTIONS_SCRIPT + write_file("before.bin", 4))
    ok(first, changed=True)
    power_off(disks)
    damaged = disks[1]
    damage_superblock(damaged)
    before = sha256_of(damaged)

    res, out = boot.boot_in_namespace(box, disks, after=SHOW)
    shown = sections(out)
    status = json.loads(shown["status"])
    power_off(disks)
    unchanged = sha256_of(damaged) == before
    degraded = (res.rc == 0 and status["mode"] == "degraded" and status["missing"] == ["devid 2"]
                and any(damaged.part(2) in warning and "damaged superblock" in warning
                        for warning in status["warnings"]))
    figures.add(DAMAGED, "damaged superblock on one RAID1 member: degraded on the other, warned", int(degraded), 1,
                "cases")
    figures.add(DAMAGED, "damaged disks left byte for byte", int(unchanged), 1, "disks")
    ok(res)
    assert "degraded" in shown["options"].split(","), shown["options"]
    assert status["mode"] == "degraded" and status["missing"] == ["devid 2"], status
    assert status["devices"] == [disks[0].part(2)], status
    assert any(damaged.part(2) in warning and "damaged superblock" in warning for warning in status["warnings"]), \
        status["warnings"]
    assert unchanged, "the member with the damaged superblock was written to"

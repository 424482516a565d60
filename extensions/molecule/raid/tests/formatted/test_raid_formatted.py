"""Scenario raid, after the reboot that formatted: one btrfs over all disks of each VM, data RAID1, metadata
RAID1 on 2 disks and RAID1C3 on 3 (SPEC section 1, step 5), a swap partition on each disk."""

METADATA = {2: "raid1", 3: "raid1c3"}


def test_raid_layout(lw):
    disks = lw.platform["disks"]
    serials = ["lwd%d" % i for i in range(1, disks + 1)]
    status = lw.check_persistent(serials, "raid1", METADATA[disks])
    assert status["created"] is True, status
    assert len(status["devices"]) == disks, status
    assert lw.profiles()["system"] == METADATA[disks]


def test_summary_names_the_profiles(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent raid1/%s" % METADATA[lw.platform["disks"]]), summary
    assert summary in lw.boot_log()

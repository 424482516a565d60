"""Scenario grow, after the reboot that followed the at-once join of lwd2: the boot finds one btrfs over lwd1 and lwd2,
data, metadata and system RAID1, a swap partition on each disk, nothing left to convert, files intact."""


def test_persistent_raid1_on_both_disks(lw):
    status = lw.check_persistent(["lwd1", "lwd2"], "raid1", "raid1")
    assert status["missing"] == [] and len(status["devices"]) == 2, status
    assert lw.profiles()["system"] == "raid1", lw.profiles()


def test_found_not_made_nothing_joined_nothing_to_convert(lw):
    status = lw.status()
    assert status["created"] is False, status
    assert status.get("joined", "(not reported)") == [], status
    assert "conversion" in status and status["conversion"] is None, status


def test_summary_names_raid1(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent raid1/raid1"), summary


def test_files_intact(lw):
    lw.check_files()

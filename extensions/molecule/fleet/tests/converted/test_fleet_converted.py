"""Scenario fleet, after the enable playbook marked, rebooted and verified both VMs: each has one btrfs over all its
disks, made at the boot after the marking - data RAID1, metadata and system RAID1 on 2 disks and RAID1C3 on 3 - with
a swap partition on each disk."""


def test_converted_with_the_members_its_disks_give(lw):
    serials = lw.serials()
    status = lw.check_persistent(serials, "raid1", lw.raid1_metadata())
    assert len(status["devices"]) == len(serials) and status["missing"] == [], status
    assert lw.profiles()["system"] == lw.raid1_metadata()


def test_the_filesystem_was_made_by_the_boot_after_the_marking(lw):
    # The status file is rewritten only when the state changes: created=true says this boot made the filesystem.
    assert lw.status()["created"] is True, lw.status()


def test_summary_names_the_profiles(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent raid1/%s" % lw.raid1_metadata()), summary
    assert summary in lw.boot_log()

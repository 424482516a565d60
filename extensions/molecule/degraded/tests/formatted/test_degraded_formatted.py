"""Scenario degraded, after the reboot that formatted: RAID1/RAID1 over both disks."""


def test_raid1_over_both_disks(lw):
    status = lw.check_persistent(["lwd1", "lwd2"], "raid1", "raid1")
    assert status["created"] is True, status

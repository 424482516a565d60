"""Scenario fleet, after the enable playbook marked, rebooted and verified both VMs: each has the layout of SPEC
section 1 on its own disks - one disk single/DUP, two disks RAID1 - made at the boot after the marking."""

PROFILES = {1: ("single", "dup"), 2: ("raid1", "raid1")}


def test_converted_with_the_members_its_disks_give(lw):
    count = int(lw.platform["disks"])
    serials = ["lwd%d" % index for index in range(1, count + 1)]
    status = lw.check_persistent(serials, *PROFILES[count])
    assert len(status["devices"]) == count and status["missing"] == [], status


def test_the_filesystem_was_made_by_the_boot_after_the_marking(lw):
    # The status file is rewritten only when the state changes: created=true says this boot made the filesystem.
    assert lw.status()["created"] is True, lw.status()
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent"), summary

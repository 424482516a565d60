"""Scenario fleet, the member put back: persistent again with every member, data intact."""

METADATA = {2: "raid1", 3: "raid1c3"}


def test_back_to_normal(lw):
    disks = lw.platform["disks"]
    status = lw.check_persistent(["lwd%d" % i for i in range(1, disks + 1)], None, METADATA[disks])
    assert status["missing"] == [], status
    assert len(status["devices"]) == disks, status
    assert "raid1" in lw.profiles()["data"].split(","), lw.profiles()
    assert "degraded" not in lw.mount("/mnt/lightwhale-data")["options"].split(",")
    assert "MISSING" not in lw.run("btrfs filesystem show /mnt/lightwhale-data")


def test_summary_says_persistent(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent raid1/%s" % METADATA[lw.platform["disks"]]), summary


def test_files_intact(lw):
    lw.check_files()

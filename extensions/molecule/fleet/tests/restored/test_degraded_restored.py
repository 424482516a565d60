"""Scenario fleet, the member put back: persistent again with every member, data intact."""


def test_back_to_normal(lw):
    serials = lw.serials()
    status = lw.check_persistent(serials, None, lw.raid1_metadata())
    assert status["missing"] == [], status
    assert len(status["devices"]) == len(serials), status
    assert "raid1" in lw.profiles()["data"].split(","), lw.profiles()
    assert "degraded" not in lw.mount("/mnt/lightwhale-data")["options"].split(",")
    assert "MISSING" not in lw.run("btrfs filesystem show /mnt/lightwhale-data")


def test_summary_says_persistent(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent raid1/%s" % lw.raid1_metadata()), summary


def test_files_intact(lw):
    lw.check_files()

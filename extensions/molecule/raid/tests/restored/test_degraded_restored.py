"""Scenario degraded, the member put back: persistent again with both members, data intact."""


def test_back_to_normal(lw):
    status = lw.check_persistent(["lwd1", "lwd2"], None, "raid1")
    assert status["missing"] == [], status
    assert len(status["devices"]) == 2, status
    assert "raid1" in lw.profiles()["data"].split(","), lw.profiles()
    assert "degraded" not in lw.mount("/mnt/lightwhale-data")["options"].split(",")
    assert "MISSING" not in lw.run("btrfs filesystem show /mnt/lightwhale-data")


def test_summary_says_persistent(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent raid1"), summary


def test_files_intact(lw):
    lw.check_files()

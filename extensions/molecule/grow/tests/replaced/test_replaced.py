"""Scenario grow, after lwd3 replaced the lost lwd1 at once and a reboot followed: persistent on lwd2 and lwd3, not
degraded, data, metadata and system RAID1 only, a swap partition on each disk, every file intact - the ones written
before lwd1 was lost and the ones written while the host was degraded."""


def test_lwd1_is_gone(lw):
    assert not lw.host.file(lw.disk("lwd1")).exists


def test_persistent_raid1_on_the_remaining_and_the_new_disk(lw):
    status = lw.check_persistent(["lwd2", "lwd3"], "raid1", "raid1")
    assert status["missing"] == [] and len(status["devices"]) == 2, status
    assert lw.profiles()["system"] == "raid1", lw.profiles()
    assert "degraded" not in lw.mount("/mnt/lightwhale-data")["options"].split(",")
    assert "MISSING" not in lw.run("btrfs filesystem show /mnt/lightwhale-data")


def test_nothing_to_convert(lw):
    status = lw.status()
    assert "conversion" in status and status["conversion"] is None, status
    assert status.get("joined", "(not reported)") == [], status


def test_summary_says_persistent(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent raid1/raid1"), summary


def test_files_intact_also_those_written_while_degraded(lw):
    files = lw.expected()["files"]
    assert "/etc/lw-test/degraded.bin" in files, sorted(files)
    lw.check_files()

"""Scenario degraded, booted with one RAID1 member gone: persistent in degraded mode, said loudly, data intact."""


def test_boots_persistent_degraded(lw):
    assert not lw.host.file(lw.disk("lwd2")).exists
    status = lw.check_persistent(["lwd1"], None, None, mode="degraded", total=2)
    assert status["missing"], status
    assert len(status["devices"]) == 1, status
    assert "degraded" in lw.mount("/mnt/lightwhale-data")["options"].split(","), lw.mount("/mnt/lightwhale-data")
    assert "MISSING" in lw.run("btrfs filesystem show /mnt/lightwhale-data")


def test_says_so_in_status_journal_and_summary(lw):
    status = lw.status()
    summary = status["summary"]
    assert "DEGRADED" in summary and "MISSING" in summary, summary
    assert status["warnings"], status
    log = lw.boot_log()
    assert summary in log
    assert "degraded" in log.lower()
    assert summary in lw.console()


def test_files_intact(lw):
    lw.check_files()

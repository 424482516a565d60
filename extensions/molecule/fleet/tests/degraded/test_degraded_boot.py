"""Scenario fleet, each VM booted with its last disk gone (RAID1 on 2 disks, RAID1C3 metadata on 3): persistent in
degraded mode, said loudly, data intact."""


def test_boots_persistent_degraded(lw):
    serials = lw.serials()
    assert not lw.host.file(lw.disk(serials[-1])).exists
    status = lw.check_persistent(serials[:-1], None, None, mode="degraded", total=len(serials))
    assert status["missing"], status
    assert len(status["devices"]) == len(serials) - 1, status
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

"""Scenario volatile, first boot: no data filesystem, so a tmpfs, overlays on it, the status says volatile."""


def test_volatile_after_boot(lw):
    lw.check_volatile()


def test_status_and_log_say_volatile(lw):
    status = lw.status()
    assert status["summary"].startswith("lightwhale-persistence: volatile"), status["summary"]
    assert status["summary"] in lw.boot_log()
    assert status["summary"] in lw.console()

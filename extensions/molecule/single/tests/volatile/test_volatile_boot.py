"""Scenario single, first boot: the disk carries no header, so no data filesystem: a tmpfs, overlays on it, the
status says volatile, and the blank disk was not written."""


def test_volatile_after_boot(lw):
    lw.check_volatile()


def test_status_and_log_say_volatile(lw):
    status = lw.status()
    assert status["summary"].startswith("lightwhale-persistence: volatile"), status["summary"]
    assert status["summary"] in lw.boot_log()
    assert status["summary"] in lw.console()


def test_blank_disk_not_written(lw):
    # Its first MiB (partition tables, the header, signatures) holds nothing but zeros.
    assert lw.run("head -c 1048576 %s | tr -d '\\000' | wc -c" % lw.disk("lwd1")) == "0"
